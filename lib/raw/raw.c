/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * RAW image attachment: the file is the disk.
 *
 * Sparse by design: discard punches holes, write_zeroes punches (when
 * trimming is allowed) or zeroes ranges with fallocate, block_status
 * walks SEEK_DATA/SEEK_HOLE.  Where the file system lacks a primitive we
 * fall back to the next one, and finally to writing zero buffers, so
 * that discarded and zeroed ranges always read back as zeros (the ASIF
 * property tests compare RAW and ASIF byte for byte).
 *
 * Also the "file" layer under ASIF: ASIF opens its container through
 * vd_raw_open and grows it with resize (ftruncate).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "file/file.h"
#include "minmax.h"
#include "rounding.h"

struct raw {
  struct vd_attachment a;       /* must be first */
  struct vd_file f;
};

#define RAW(a) ((struct raw *) (a))

/* Extents reported per block_status call at most: SEEK_DATA/SEEK_HOLE
 * cost a system call each, and callers continue from where we stop.
 */
#define RAW_MAX_EXTENTS 1024

static int
raw_pread (struct vd_attachment *a, void *buf, size_t count, uint64_t offset,
           uint32_t flags)
{
  return vd_file_pread (&RAW (a)->f, buf, count, offset);
}

static int
raw_pwrite (struct vd_attachment *a, const void *buf, size_t count,
            uint64_t offset, uint32_t flags)
{
  return vd_file_pwrite (&RAW (a)->f, buf, count, offset,
                         flags & VD_FLAG_FUA);
}

static int
raw_preadv (struct vd_attachment *a, const struct iovec *iov, int iovcnt,
            size_t count, uint64_t offset, uint32_t flags)
{
  return vd_file_preadv (&RAW (a)->f, iov, iovcnt, count, offset);
}

static int
raw_pwritev (struct vd_attachment *a, const struct iovec *iov, int iovcnt,
             size_t count, uint64_t offset, uint32_t flags)
{
  return vd_file_pwritev (&RAW (a)->f, iov, iovcnt, count, offset,
                          flags & VD_FLAG_FUA);
}

static int
raw_flush (struct vd_attachment *a, uint32_t flags)
{
  return vd_file_sync (&RAW (a)->f);
}

static int
maybe_fua (struct raw *r, uint32_t flags)
{
  if (flags & VD_FLAG_FUA)
    return vd_file_sync (&r->f);
  return 0;
}

/* Zero without deallocating: ZERO_RANGE, else punch + re-allocate (tmpfs
 * and others have PUNCH_HOLE but not ZERO_RANGE), else -1 with errno
 * EOPNOTSUPP and nothing raised.
 */
static int
raw_zero_allocated (struct raw *r, uint64_t count, uint64_t offset)
{
  if (vd_file_zero_range (&r->f, count, offset) == 0)
    return 0;
  if (!vd_file_unsupported (errno))
    return -1;
  if (vd_file_punch_hole (&r->f, count, offset) == 0) {
    /* The range reads as zeros now; allocating it again is only for the
     * NO_HOLE promise, so if that fails the zeroing still stands.
     */
    if (vd_file_allocate (&r->f, count, offset) == -1 &&
        !vd_file_unsupported (errno))
      return -1;
    return 0;
  }
  if (!vd_file_unsupported (errno))
    return -1;
  errno = EOPNOTSUPP;
  return -1;
}

static int
raw_write_zeroes (struct vd_attachment *a, uint64_t count, uint64_t offset,
                  uint32_t flags)
{
  struct raw *r = RAW (a);

  if (flags & VD_FLAG_MAY_TRIM) {
    if (vd_file_punch_hole (&r->f, count, offset) == 0)
      return maybe_fua (r, flags);
    if (!vd_file_unsupported (errno))
      return -1;
  }
  if (raw_zero_allocated (r, count, offset) == 0)
    return maybe_fua (r, flags);
  if (errno != EOPNOTSUPP)
    return -1;
  if (flags & VD_FLAG_FAST_ZERO) {
    vd_error_msg (ENOTSUP, "%s: write_zeroes: the file system cannot zero "
                  "quickly", a->name);
    return -1;
  }
  return vd_file_write_zero_buffers (&r->f, count, offset,
                                     flags & VD_FLAG_FUA);
}

static int
raw_discard (struct vd_attachment *a, uint64_t count, uint64_t offset,
             uint32_t flags)
{
  struct raw *r = RAW (a);

  if (vd_file_punch_hole (&r->f, count, offset) == 0)
    return maybe_fua (r, flags);
  if (!vd_file_unsupported (errno))
    return -1;
  /* No hole punching: keep the "reads as zeros" promise anyway. */
  return raw_write_zeroes (a, count, offset, flags & VD_FLAG_FUA);
}

static int
raw_block_status (struct vd_attachment *a, uint64_t count, uint64_t offset,
                  uint32_t flags, struct vd_extents *e)
{
  struct raw *r = RAW (a);
  uint64_t end = vd_extents_end (e);
  int n = 0;

  while (!vd_extents_full (e) && n++ < RAW_MAX_EXTENTS) {
    uint64_t pos = vd_extents_next (e);
    off_t data, hole;

    data = lseek (r->f.fd, pos, SEEK_DATA);
    if (data == -1) {
      if (errno == ENXIO)       /* no data after pos */
        return vd_extents_add (e, pos, end - pos,
                               VD_STATE_HOLE | VD_STATE_ZERO);
      vd_error (errno, "%s: lseek SEEK_DATA at %" PRIu64, a->name, pos);
      return -1;
    }
    if ((uint64_t) data > pos) {
      if (vd_extents_add (e, pos, data - pos,
                          VD_STATE_HOLE | VD_STATE_ZERO) == -1)
        return -1;
      continue;
    }
    hole = lseek (r->f.fd, pos, SEEK_HOLE);
    if (hole == -1) {
      if (errno == ENXIO)       /* truncated under us: rest is hole */
        return vd_extents_add (e, pos, end - pos,
                               VD_STATE_HOLE | VD_STATE_ZERO);
      vd_error (errno, "%s: lseek SEEK_HOLE at %" PRIu64, a->name, pos);
      return -1;
    }
    if ((uint64_t) hole <= pos)  /* cannot happen; do not loop forever */
      return vd_extents_add (e, pos, end - pos, 0);
    if (vd_extents_add (e, pos, hole - pos, 0) == -1)
      return -1;
  }
  return 0;
}

static int
raw_cache (struct vd_attachment *a, uint64_t count, uint64_t offset,
           uint32_t flags)
{
  struct raw *r = RAW (a);
  int err;

  if (r->f.direct)
    return 0;                   /* nothing to prefetch into */
  err = posix_fadvise (r->f.fd, offset, count, POSIX_FADV_WILLNEED);
  if (err) {
    vd_error (err, "%s: cache", a->name);
    return -1;
  }
  return 0;
}

static int
raw_resize (struct vd_attachment *a, uint64_t new_size)
{
  struct raw *r = RAW (a);
  int64_t cur;

  if (r->f.direct && !IS_ALIGNED (new_size, (uint64_t) r->f.align)) {
    vd_error_msg (EINVAL, "%s: uncached images must have a size that is a "
                  "multiple of %" PRIu32, a->name, r->f.align);
    return -1;
  }
  /* A layer above (ASIF) sets the size after writes past the end have
   * already made the file that long.  ftruncate to the same size is not
   * free: it still updates the inode's times and marks it dirty, which
   * cost 3% of a sequential first write of an ASIF image.
   */
  cur = vd_file_get_size (&r->f);
  if (cur == -1)
    return -1;
  if ((uint64_t) cur == new_size)
    return 0;
  if (ftruncate (r->f.fd, new_size) == -1) {
    vd_error (errno, "%s: resizing to %" PRIu64, a->name, new_size);
    return -1;
  }
  vd_file_meta_changed (&r->f);
  return 0;
}

static int64_t
raw_allocated_size (struct vd_attachment *a)
{
  return vd_file_allocated (&RAW (a)->f);
}

static int
raw_close (struct vd_attachment *a)
{
  vd_file_close (&RAW (a)->f);
  return 0;
}

static const struct vd_backend_ops raw_ops = {
  .struct_size = sizeof raw_ops,
  .format = "raw",
  .pread = raw_pread,
  .pwrite = raw_pwrite,
  .preadv = raw_preadv,
  .pwritev = raw_pwritev,
  .flush = raw_flush,
  .discard = raw_discard,
  .write_zeroes = raw_write_zeroes,
  .block_status = raw_block_status,
  .cache = raw_cache,
  .resize = raw_resize,
  .allocated_size = raw_allocated_size,
  .close = raw_close,
};

struct vd_attachment *
vd_raw_open (const char *path, int fd, const struct vd_open_options *opts)
{
  struct raw *r;
  struct vd_open_options o;
  int64_t size;
  uint32_t caps;
  const char *name = path;
  char fdname[32];

  vd_open_options_resolve (opts, &o);
  if (path == NULL) {
    snprintf (fdname, sizeof fdname, "fd:%d", fd);
    name = fdname;
  }
  /* Automatic means the page cache for image files: flushes are honoured
   * per the sync mode, so guests never lose flushed data, and it works on
   * every file system (tmpfs and some FUSE/NFS mounts refuse O_DIRECT).
   */
  if (o.caching_mode == VD_CACHING_AUTOMATIC)
    o.caching_mode = VD_CACHING_CACHED;

  r = calloc (1, sizeof *r);
  if (r == NULL) {
    vd_error (errno, "%s", name);
    return NULL;
  }
  if (vd_attachment_init (&r->a, &raw_ops, name, &o) == -1) {
    free (r);
    return NULL;
  }
  if (vd_file_open (&r->f, path, fd, r->a.name, r->a.read_only,
                    o.caching_mode, o.sync_mode,
                    !(o.flags & VD_OPEN_NO_LOCK)) == -1)
    goto fail;
  if (r->f.is_blockdev) {
    vd_error_msg (EINVAL, "%s: is a block device (open it as a block "
                  "device attachment)", name);
    goto fail_file;
  }
  size = vd_file_get_size (&r->f);
  if (size == -1)
    goto fail_file;
  if (r->f.direct && !IS_ALIGNED ((uint64_t) size, (uint64_t) r->f.align)) {
    vd_error_msg (EINVAL, "%s: size %" PRIi64 " is not a multiple of %"
                  PRIu32 ", which uncached (O_DIRECT) access needs here; "
                  "use the cached caching mode", name, size, r->f.align);
    goto fail_file;
  }
  atomic_store (&r->a.size, size);
  r->a.block_size = 512;
  r->a.pref_block_size = r->f.direct ? MAX (r->f.align, 4096u) : 4096;

  caps = VD_CAP_FLUSH | VD_CAP_FUA | VD_CAP_EXTENTS | VD_CAP_CACHE |
    VD_CAP_MULTI_CONN;
  if (!r->a.read_only)
    caps |= VD_CAP_WRITE | VD_CAP_DISCARD | VD_CAP_ZERO | VD_CAP_FAST_ZERO |
      VD_CAP_RESIZE;
  r->a.caps = caps;
  return &r->a;

 fail_file:
  vd_file_close (&r->f);
 fail:
  vd_attachment_fini (&r->a);
  free (r);
  return NULL;
}
