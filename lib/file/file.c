/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * See file.h for the O_DIRECT method.  Locking: OFD locks (fcntl
 * F_OFD_SETLK) on the whole file, exclusive for writers and shared for
 * readers, as QEMU does with its permission bytes.  OFD locks belong to
 * the open file description, so two attachments of one image in the same
 * process conflict as they would in two processes, and the lock goes away
 * with the last fd, even on kill -9.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vdisk/attachment.h"
#include "aligned-alloc.h"
#include "errors.h"
#include "file.h"
#include "iov.h"
#include "minmax.h"
#include "rounding.h"

/* In dio-align.c: statx (STATX_DIOALIGN) without <sys/stat.h>. */
int vd_dio_alignment (int fd, uint32_t *mem_align, uint32_t *offset_align);

void
vd_file_describe_lock_holder (uint64_t dev, uint64_t ino, char *buf,
                              size_t len)
{
  /* OFD locks report l_pid = -1, but /proc/PID/fdinfo/FD lists the locks
   * of each open file description ("lock: 1: OFDLCK ADVISORY WRITE -1
   * MAJ:MIN:INO 0 EOF"), so walk them.  Only done on the error path.
   */
  char want[64];
  DIR *proc;
  struct dirent *pd;

  snprintf (want, sizeof want, "%02x:%02x:%" PRIu64 " ",
            major (dev), minor (dev), ino);
  snprintf (buf, len, "another process");
  proc = opendir ("/proc");
  if (proc == NULL)
    return;
  while ((pd = readdir (proc)) != NULL) {
    char path[600], line[512];
    DIR *fdd;
    struct dirent *fe;

    if (pd->d_name[0] < '0' || pd->d_name[0] > '9')
      continue;
    snprintf (path, sizeof path, "/proc/%s/fdinfo", pd->d_name);
    fdd = opendir (path);
    if (fdd == NULL)
      continue;
    while ((fe = readdir (fdd)) != NULL) {
      FILE *fp;
      if (fe->d_name[0] == '.')
        continue;
      snprintf (path, sizeof path, "/proc/%s/fdinfo/%s", pd->d_name,
                fe->d_name);
      fp = fopen (path, "re");
      if (fp == NULL)
        continue;
      bool found = false, writer = false;
      while (fgets (line, sizeof line, fp)) {
        const char *at;
        if (strncmp (line, "lock:", 5) == 0 && (at = strstr (line, want))) {
          long long lo = 0, hi = -1;
          char end[32] = "";
          found = true;
          /* A writer holds QEMU's write-permission byte (101; adjacent
           * locks are shown merged, "100 101"), or (other tools) an
           * exclusive lock.
           */
          if (sscanf (at + strlen (want), "%lld %31s", &lo, end) == 2)
            hi = strcmp (end, "EOF") == 0 ? LLONG_MAX : strtoll (end, NULL, 10);
          if (strstr (line, "WRITE") || (lo <= 101 && 101 <= hi))
            writer = true;
        }
      }
      if (found) {
        char comm[64] = "?";
        FILE *cf;
        snprintf (path, sizeof path, "/proc/%s/comm", pd->d_name);
        cf = fopen (path, "re");
        if (cf) {
          if (fgets (comm, sizeof comm, cf))
            comm[strcspn (comm, "\n")] = '\0';
          fclose (cf);
        }
        snprintf (buf, len, "process %s (%s), which has it open for %s",
                  pd->d_name, comm, writer ? "writing" : "reading");
        fclose (fp);
        closedir (fdd);
        closedir (proc);
        return;
      }
      fclose (fp);
    }
    closedir (fdd);
  }
  closedir (proc);
}

void
vd_file_describe_lock_holder_fd (int fd, char *buf, size_t len)
{
  struct stat st;

  if (fstat (fd, &st) == -1) {
    snprintf (buf, len, "another process");
    return;
  }
  vd_file_describe_lock_holder (st.st_dev, st.st_ino, buf, len);
}

/* QEMU's lock bytes (block/file-posix.c): permission bit i held is a
 * shared lock on byte 100 + i; permission bit i *not shared* with others
 * is a shared lock on byte 200 + i.  Conflicts are found by testing
 * whether an exclusive lock could be taken on the bytes of the other
 * side.  Using the same bytes makes vdisk and QEMU see each other's
 * opens exactly as QEMU processes see each other, including
 * `qemu-img -U` reading an image vdisk serves.
 */
#define LOCK_PERM_BASE   100
#define LOCK_SHARED_BASE 200
#define PERM_CONSISTENT_READ 0x01
#define PERM_WRITE           0x02
#define PERM_WRITE_UNCHANGED 0x04
#define PERM_RESIZE          0x08
#define PERM_ALL             0x0f

static const char *
perm_name (int bit)
{
  switch (bit) {
  case PERM_CONSISTENT_READ: return "consistent read";
  case PERM_WRITE: return "write";
  case PERM_WRITE_UNCHANGED: return "write unchanged";
  default: return "resize";
  }
}

static int
lock_byte (int fd, off_t byte, short type)
{
  struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
                      .l_start = byte, .l_len = 1 };
  return fcntl (fd, F_OFD_SETLK, &fl);
}

/* 1 if another open file description holds a lock on byte, 0 if not,
 * -1 on error.
 */
static int
byte_in_use (int fd, off_t byte)
{
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                      .l_start = byte, .l_len = 1 };
  if (fcntl (fd, F_OFD_GETLK, &fl) == -1)
    return -1;
  return fl.l_type != F_UNLCK;
}

static int
take_lock (struct vd_file *f, bool exclusive)
{
  /* A writer needs consistent reads, writes and (formats that grow the
   * file) resizes, and shares only reads; a reader needs consistent reads
   * and lets nobody write or resize under it.
   */
  int perm = PERM_CONSISTENT_READ | (exclusive ? PERM_WRITE | PERM_RESIZE : 0);
  int shared = PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED;
  int unshared = PERM_ALL & ~shared;
  int conflict = 0;
  bool conflict_shared = false;

  for (int i = 0; i < 4; ++i) {
    int bit = 1 << i;
    if (((perm & bit) && lock_byte (f->fd, LOCK_PERM_BASE + i, F_RDLCK) == -1) ||
        ((unshared & bit) &&
         lock_byte (f->fd, LOCK_SHARED_BASE + i, F_RDLCK) == -1)) {
      if (errno == EINVAL || errno == ENOLCK || errno == EOPNOTSUPP) {
        /* File systems without lock support (some FUSE, NFS without
         * lockd): open anyway, as QEMU does, but say so.
         */
        vd_warning ("%s: cannot lock the image (%s); other processes will "
                    "not be kept out", f->name, strerror (errno));
        return 0;
      }
      if (errno != EAGAIN && errno != EACCES) {
        vd_error (errno, "%s: locking the image", f->name);
        return -1;
      }
      conflict = bit;           /* someone holds an exclusive lock */
      break;
    }
  }
  /* Our permissions must be shared by everyone else, and nobody may hold
   * a permission we do not share.
   */
  for (int i = 0; i < 4 && !conflict; ++i) {
    int bit = 1 << i, r;
    if ((perm & bit) &&
        (r = byte_in_use (f->fd, LOCK_SHARED_BASE + i)) != 0) {
      if (r == -1)
        goto lock_error;
      conflict = bit;
    }
    else if ((unshared & bit) &&
             (r = byte_in_use (f->fd, LOCK_PERM_BASE + i)) != 0) {
      if (r == -1)
        goto lock_error;
      conflict = bit;
      conflict_shared = true;
    }
  }
  if (conflict) {
    char who[256];
    struct flock all = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
    fcntl (f->fd, F_OFD_SETLK, &all);
    vd_file_describe_lock_holder (f->dev, f->ino, who, sizeof who);
    vd_error_msg (EBUSY, "%s: image is in use by %s; refusing to open it "
                  "for %s (%s%s lock held elsewhere; use a read-only open, "
                  "or --force-share if you know it is safe)", f->name, who,
                  exclusive ? "writing" : "reading",
                  conflict_shared ? "a " : "no sharing of the ",
                  perm_name (conflict));
    return -1;
  }
  return 0;

 lock_error:
  vd_error (errno, "%s: testing the image lock", f->name);
  return -1;
}

int
vd_file_open (struct vd_file *f, const char *path, int inherited_fd,
              const char *name, bool read_only, int caching_mode,
              int sync_mode, bool lock)
{
  int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  struct stat st;

  memset (f, 0, sizeof *f);
  f->fd = -1;
  f->name = name;
  f->read_only = read_only;
  f->sync_mode = sync_mode;
  f->direct = caching_mode == VD_CACHING_UNCACHED;
  f->align = f->mem_align = 1;
  if (f->direct)
    flags |= O_DIRECT;

  if (path) {
    f->fd = open (path, flags);
    if (f->fd == -1) {
      if (errno == EINVAL && f->direct)
        vd_error_msg (EINVAL, "%s: this file system does not support "
                      "uncached (O_DIRECT) access; use the cached or "
                      "automatic caching mode", name);
      else
        vd_error (errno, "%s", name);
      return -1;
    }
  }
  else {
    /* Reopen through /proc so that this attachment has its own file
     * description: its own O_DIRECT flag and its own OFD lock, without
     * changing the flags of the caller's descriptor.
     */
    char proc[64];
    int fl = fcntl (inherited_fd, F_GETFL);
    if (fl == -1) {
      vd_error (errno, "%s: not an open file descriptor", name);
      return -1;
    }
    if (!read_only && (fl & O_ACCMODE) == O_RDONLY) {
      vd_error_msg (EBADF, "%s: file descriptor %d is open read-only; "
                    "open the attachment read-only", name, inherited_fd);
      return -1;
    }
    snprintf (proc, sizeof proc, "/proc/self/fd/%d", inherited_fd);
    f->fd = open (proc, flags);
    if (f->fd == -1) {
      if (errno == EINVAL && f->direct)
        vd_error_msg (EINVAL, "%s: O_DIRECT is not supported here; use the "
                      "cached caching mode", name);
      else
        vd_error (errno, "%s: reopening file descriptor %d", name,
                  inherited_fd);
      return -1;
    }
  }

  if (fstat (f->fd, &st) == -1) {
    vd_error (errno, "%s: stat", name);
    goto fail;
  }
  if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode)) {
    vd_error_msg (EINVAL, "%s: not a regular file or block device", name);
    goto fail;
  }
  f->is_blockdev = S_ISBLK (st.st_mode);
  f->dev = st.st_dev;
  f->ino = st.st_ino;

  if (f->direct) {
    uint32_t mem = 0, off = 0;
    if (f->is_blockdev) {
      int ss = 0;
      if (ioctl (f->fd, BLKSSZGET, &ss) == 0 && ss > 0)
        off = mem = ss;
    }
    else
      vd_dio_alignment (f->fd, &mem, &off);
    /* Unknown: 4096 satisfies every device we know of. */
    f->align = off && is_power_of_2 (off) ? off : 4096;
    f->mem_align = mem && is_power_of_2 (mem) ? mem : 4096;
    if (f->mem_align < sizeof (void *))
      f->mem_align = sizeof (void *);
  }
  pthread_rwlock_init (&f->rmw_lock, NULL);

  if (lock && take_lock (f, !read_only) == -1) {
    pthread_rwlock_destroy (&f->rmw_lock);
    goto fail;
  }
  return 0;

 fail:
  close (f->fd);
  f->fd = -1;
  return -1;
}

void
vd_file_close (struct vd_file *f)
{
  if (f->fd >= 0) {
    close (f->fd);              /* also drops the OFD lock */
    f->fd = -1;
    pthread_rwlock_destroy (&f->rmw_lock);
  }
}

/* Plain full transfers on the fd, no alignment handling. */

static int
full_pread (struct vd_file *f, void *buf, size_t count, uint64_t offset)
{
  char *p = buf;

  while (count > 0) {
    ssize_t r = pread (f->fd, p, count, offset);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      vd_error (errno, "%s: read at offset %" PRIu64, f->name, offset);
      return -1;
    }
    if (r == 0) {
      vd_error_msg (EIO, "%s: read at offset %" PRIu64 ": unexpected end "
                    "of file", f->name, offset);
      return -1;
    }
    p += r;
    count -= r;
    offset += r;
  }
  return 0;
}

static int
full_pwrite (struct vd_file *f, const void *buf, size_t count,
             uint64_t offset, bool fua)
{
  const char *p = buf;
  int rwf = fua && f->sync_mode != VD_SYNC_NONE ? RWF_DSYNC : 0;

  while (count > 0) {
    struct iovec iov = { .iov_base = (void *) p, .iov_len = count };
    ssize_t r = pwritev2 (f->fd, &iov, 1, offset, rwf);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      vd_error (errno, "%s: write at offset %" PRIu64, f->name, offset);
      return -1;
    }
    if (r == 0) {
      vd_error_msg (EIO, "%s: write at offset %" PRIu64 " made no progress",
                    f->name, offset);
      return -1;
    }
    p += r;
    count -= r;
    offset += r;
  }
  return 0;
}

static void *
bounce_alloc (struct vd_file *f, size_t size)
{
  void *p = vd_aligned_alloc (MAX (f->mem_align, (uint32_t) 4096), size);

  if (p == NULL)
    vd_error (errno, "%s: allocating a %zu byte I/O buffer", f->name, size);
  return p;
}

/* Bounce buffer for a request of count bytes: big enough for the widened
 * range (one alignment unit at each end), capped, so small unaligned
 * requests do not allocate (and mmap) megabytes each time.
 */
static size_t
bounce_size (struct vd_file *f, size_t count)
{
  size_t n = count < VD_FILE_BOUNCE_MAX - 2 * (size_t) f->align
    ? count + 2 * (size_t) f->align : VD_FILE_BOUNCE_MAX;
  return ROUND_UP (n, (size_t) f->align);
}

static bool
aligned_request (struct vd_file *f, const void *buf, size_t count,
                 uint64_t offset)
{
  return IS_ALIGNED (offset, (uint64_t) f->align) &&
    IS_ALIGNED ((uint64_t) count, (uint64_t) f->align) &&
    IS_ALIGNED ((uintptr_t) buf, (uintptr_t) f->mem_align);
}

int
vd_file_pread (struct vd_file *f, void *buf, size_t count, uint64_t offset)
{
  char *out = buf;
  char *bounce;
  size_t bsize;
  int r = 0;

  if (!f->direct || aligned_request (f, buf, count, offset)) {
    if (!f->direct)
      return full_pread (f, buf, count, offset);
    pthread_rwlock_rdlock (&f->rmw_lock);
    r = full_pread (f, buf, count, offset);
    pthread_rwlock_unlock (&f->rmw_lock);
    return r;
  }

  /* Unaligned O_DIRECT read: widen each piece to the alignment. */
  bsize = bounce_size (f, count);
  bounce = bounce_alloc (f, bsize);
  if (bounce == NULL)
    return -1;
  pthread_rwlock_rdlock (&f->rmw_lock);
  while (count > 0) {
    uint64_t start = ROUND_DOWN (offset, (uint64_t) f->align);
    size_t skip = offset - start;
    size_t n = MIN (count, bsize - f->align);
    size_t wide = ROUND_UP (skip + n, (size_t) f->align);
    if (wide > bsize) {
      wide = bsize;
      n = wide - skip;
    }
    r = full_pread (f, bounce, wide, start);
    if (r == -1)
      break;
    memcpy (out, bounce + skip, n);
    out += n;
    offset += n;
    count -= n;
  }
  pthread_rwlock_unlock (&f->rmw_lock);
  vd_aligned_free (bounce);
  return r;
}

int
vd_file_pwrite (struct vd_file *f, const void *buf, size_t count,
                uint64_t offset, bool fua)
{
  const char *in = buf;
  char *bounce;
  size_t bsize;
  bool rmw;
  int r = 0;

  if (!f->direct)
    return full_pwrite (f, buf, count, offset, fua);
  if (aligned_request (f, buf, count, offset)) {
    pthread_rwlock_rdlock (&f->rmw_lock);
    r = full_pwrite (f, buf, count, offset, fua);
    pthread_rwlock_unlock (&f->rmw_lock);
    return r;
  }

  bsize = bounce_size (f, count);
  bounce = bounce_alloc (f, bsize);
  if (bounce == NULL)
    return -1;
  /* Only a range that is unaligned needs read-modify-write, and only RMW
   * needs the exclusive lock; an aligned range from an unaligned buffer
   * is just copied.
   */
  rmw = !IS_ALIGNED (offset, (uint64_t) f->align) ||
    !IS_ALIGNED ((uint64_t) count, (uint64_t) f->align);
  if (rmw)
    pthread_rwlock_wrlock (&f->rmw_lock);
  else
    pthread_rwlock_rdlock (&f->rmw_lock);
  while (count > 0) {
    uint64_t start = ROUND_DOWN (offset, (uint64_t) f->align);
    size_t skip = offset - start;
    size_t n = MIN (count, bsize - f->align);
    size_t wide = ROUND_UP (skip + n, (size_t) f->align);
    if (wide > bsize) {
      wide = bsize;
      n = wide - skip;
    }
    if (skip > 0 || n < wide) {
      /* Read the head block and the tail block (which may be the same). */
      r = full_pread (f, bounce, f->align, start);
      if (r == 0 && wide > f->align)
        r = full_pread (f, bounce + wide - f->align, f->align,
                        start + wide - f->align);
      if (r == -1)
        break;
    }
    memcpy (bounce + skip, in, n);
    r = full_pwrite (f, bounce, wide, start, fua);
    if (r == -1)
      break;
    in += n;
    offset += n;
    count -= n;
  }
  pthread_rwlock_unlock (&f->rmw_lock);
  vd_aligned_free (bounce);
  return r;
}

/* Vectored transfers. */

/* preadv or pwritev2 until every segment is done; a short transfer goes
 * on from where it stopped (in a copy of the array: the caller's is
 * const).
 */
static int
full_rwv (struct vd_file *f, const struct iovec *iov, int iovcnt,
          uint64_t offset, bool write, bool fua)
{
  const int rwf = write && fua && f->sync_mode != VD_SYNC_NONE ? RWF_DSYNC : 0;
  struct iovec *own = NULL;
  int r = 0;

  for (;;) {
    ssize_t n;

    while (iovcnt > 0 && iov->iov_len == 0) {
      iov++;
      iovcnt--;
    }
    if (iovcnt == 0)
      break;
    n = write ? pwritev2 (f->fd, iov, MIN (iovcnt, IOV_MAX), offset, rwf)
      : preadv (f->fd, iov, MIN (iovcnt, IOV_MAX), offset);
    if (n == -1) {
      if (errno == EINTR)
        continue;
      vd_error (errno, "%s: %s at offset %" PRIu64, f->name,
                write ? "write" : "read", offset);
      r = -1;
      break;
    }
    if (n == 0) {
      vd_error_msg (EIO, "%s: %s at offset %" PRIu64 ": %s", f->name,
                    write ? "write" : "read", offset,
                    write ? "no progress" : "unexpected end of file");
      r = -1;
      break;
    }
    offset += n;
    while (iovcnt > 0 && (size_t) n >= iov->iov_len) {
      n -= iov->iov_len;
      iov++;
      iovcnt--;
    }
    if (n > 0) {
      struct iovec *first;
      if (own == NULL) {
        own = malloc (iovcnt * sizeof *own);
        if (own == NULL) {
          vd_error (errno, "%s: %s at offset %" PRIu64, f->name,
                    write ? "write" : "read", offset);
          r = -1;
          break;
        }
        memcpy (own, iov, iovcnt * sizeof *own);
        iov = own;
      }
      first = (struct iovec *) iov;   /* in own */
      first->iov_base = (char *) first->iov_base + n;
      first->iov_len -= n;
    }
  }
  free (own);
  return r;
}

/* Whether O_DIRECT takes the segments as they are: the offset, and each
 * segment's address and length, aligned.
 */
static bool
aligned_vector (struct vd_file *f, const struct iovec *iov, int iovcnt,
                uint64_t offset)
{
  if (!IS_ALIGNED (offset, (uint64_t) f->align))
    return false;
  for (int i = 0; i < iovcnt; ++i)
    if (!IS_ALIGNED ((uintptr_t) iov[i].iov_base, (uintptr_t) f->mem_align) ||
        !IS_ALIGNED ((uint64_t) iov[i].iov_len, (uint64_t) f->align))
      return false;
  return true;
}

/* O_DIRECT with unaligned segments: gather or scatter through an aligned
 * buffer, piece by piece (vd_file_pread/pwrite take care of an
 * unaligned offset or length).
 */
struct rwv_ctx {
  struct vd_file *f;
  bool fua;
};

static int
rwv_piece (void *opaque, void *buf, size_t n, uint64_t offset, bool write)
{
  struct rwv_ctx *c = opaque;

  return write ? vd_file_pwrite (c->f, buf, n, offset, c->fua)
    : vd_file_pread (c->f, buf, n, offset);
}

static int
bounce_rwv (struct vd_file *f, const struct iovec *iov, int iovcnt,
            size_t count, uint64_t offset, bool write, bool fua)
{
  struct rwv_ctx c = { f, fua };

  return vd_iov_bounce (iov, iovcnt, count, offset, write,
                        MAX (f->mem_align, (uint32_t) 4096),
                        VD_FILE_BOUNCE_MAX, rwv_piece, &c, f->name);
}

int
vd_file_preadv (struct vd_file *f, const struct iovec *iov, int iovcnt,
                size_t count, uint64_t offset)
{
  int r;

  if (!f->direct)
    return full_rwv (f, iov, iovcnt, offset, false, false);
  if (!aligned_vector (f, iov, iovcnt, offset))
    return bounce_rwv (f, iov, iovcnt, count, offset, false, false);
  pthread_rwlock_rdlock (&f->rmw_lock);
  r = full_rwv (f, iov, iovcnt, offset, false, false);
  pthread_rwlock_unlock (&f->rmw_lock);
  return r;
}

int
vd_file_pwritev (struct vd_file *f, const struct iovec *iov, int iovcnt,
                 size_t count, uint64_t offset, bool fua)
{
  int r;

  if (!f->direct)
    return full_rwv (f, iov, iovcnt, offset, true, fua);
  if (!aligned_vector (f, iov, iovcnt, offset))
    return bounce_rwv (f, iov, iovcnt, count, offset, true, fua);
  pthread_rwlock_rdlock (&f->rmw_lock);
  r = full_rwv (f, iov, iovcnt, offset, true, fua);
  pthread_rwlock_unlock (&f->rmw_lock);
  return r;
}

int
vd_file_write_zero_buffers (struct vd_file *f, uint64_t count,
                            uint64_t offset, bool fua)
{
  size_t bufsize = MIN (count, (uint64_t) VD_FILE_BOUNCE_MAX);
  char *zero;
  int r = 0;

  bufsize = ROUND_UP (bufsize, (size_t) 4096);
  zero = bounce_alloc (f, bufsize);
  if (zero == NULL)
    return -1;
  memset (zero, 0, bufsize);
  while (count > 0 && r == 0) {
    size_t n = MIN (count, (uint64_t) bufsize);
    r = vd_file_pwrite (f, zero, n, offset, fua);
    offset += n;
    count -= n;
  }
  vd_aligned_free (zero);
  return r;
}

int
vd_file_sync (struct vd_file *f)
{
  int r;

  switch (f->sync_mode) {
  case VD_SYNC_NONE:
    return 0;
  case VD_SYNC_FSYNC:
    atomic_store (&f->meta_dirty, false);
    r = fsync (f->fd);
    break;
  default:
    /* fdatasync already writes the metadata needed to read the data back
     * (size, block map); fsync is used after a size or allocation change
     * anyway, because the promise of "full" is worth one more inode
     * write on every file system we run on.
     */
    if (atomic_exchange (&f->meta_dirty, false))
      r = fsync (f->fd);
    else
      r = fdatasync (f->fd);
    break;
  }
  if (r == -1) {
    atomic_store (&f->meta_dirty, true);
    vd_error (errno, "%s: flush", f->name);
    return -1;
  }
  return 0;
}

static int
do_fallocate (struct vd_file *f, int mode, uint64_t count, uint64_t offset,
              const char *what)
{
  int r;

  if (f->direct)
    pthread_rwlock_rdlock (&f->rmw_lock);
  do
    r = fallocate (f->fd, mode, offset, count);
  while (r == -1 && errno == EINTR);
  if (f->direct)
    pthread_rwlock_unlock (&f->rmw_lock);
  if (r == -1) {
    if (vd_file_unsupported (errno))
      return -1;
    vd_error (errno, "%s: %s at offset %" PRIu64 " count %" PRIu64,
              f->name, what, offset, count);
    errno = EIO;                /* raised: not "unsupported" */
    return -1;
  }
  vd_file_meta_changed (f);
  return 0;
}

int
vd_file_punch_hole (struct vd_file *f, uint64_t count, uint64_t offset)
{
  return do_fallocate (f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                       count, offset, "punching a hole");
}

int
vd_file_zero_range (struct vd_file *f, uint64_t count, uint64_t offset)
{
  return do_fallocate (f, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                       count, offset, "zeroing a range");
}

int
vd_file_allocate (struct vd_file *f, uint64_t count, uint64_t offset)
{
  return do_fallocate (f, FALLOC_FL_KEEP_SIZE, count, offset,
                       "allocating a range");
}

int64_t
vd_file_get_size (struct vd_file *f)
{
  struct stat st;

  if (f->is_blockdev) {
    uint64_t size;
    if (ioctl (f->fd, BLKGETSIZE64, &size) == -1) {
      vd_error (errno, "%s: BLKGETSIZE64", f->name);
      return -1;
    }
    return size;
  }
  if (fstat (f->fd, &st) == -1) {
    vd_error (errno, "%s: stat", f->name);
    return -1;
  }
  return st.st_size;
}

int64_t
vd_file_allocated (struct vd_file *f)
{
  struct stat st;

  if (f->is_blockdev)
    return vd_file_get_size (f);
  if (fstat (f->fd, &st) == -1)
    return -1;
  return (int64_t) st.st_blocks * 512;
}
