/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Host block-device attachment (Apple's
 * VZDiskBlockDeviceStorageDeviceAttachment): a device node or an
 * inherited file descriptor.
 *
 * Size from BLKGETSIZE64, logical block size from BLKSSZGET, physical
 * from BLKPBSZGET.  Automatic caching means O_DIRECT here: the page cache
 * would only double the guest's own cache.  Sync modes are full and none,
 * as Apple's VZDiskSynchronizationMode.
 *
 * Discard is BLKDISCARD (a hint: afterwards the device returns what it
 * returns).  write_zeroes uses fallocate PUNCH_HOLE when trimming is
 * allowed (the kernel then guarantees zeros and fails rather than falling
 * back to writing), then BLKZEROOUT; unaligned heads and tails are
 * written as zero buffers.  Fast zeroing is offered only when the device
 * has a real write-zeroes command (queue/write_zeroes_max_bytes > 0).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "backend.h"
#include "file/file.h"
#include "minmax.h"
#include "rounding.h"

struct blockdev {
  struct vd_attachment a;       /* must be first */
  struct vd_file f;
  uint32_t lbs;                 /* logical block size */
  bool hw_discard;              /* queue/discard_max_bytes > 0 */
  bool hw_zero;                 /* queue/write_zeroes_max_bytes > 0 */
};

#define BDEV(a) ((struct blockdev *) (a))

static uint64_t
sysfs_queue_u64 (dev_t rdev, const char *attr)
{
  char path[128];
  unsigned long long v = 0;
  FILE *fp;

  snprintf (path, sizeof path, "/sys/dev/block/%u:%u/queue/%s",
            major (rdev), minor (rdev), attr);
  fp = fopen (path, "re");
  if (fp == NULL) {
    /* A partition: its queue is the parent disk's. */
    snprintf (path, sizeof path, "/sys/dev/block/%u:%u/../queue/%s",
              major (rdev), minor (rdev), attr);
    fp = fopen (path, "re");
  }
  if (fp == NULL)
    return 0;
  if (fscanf (fp, "%llu", &v) != 1)
    v = 0;
  fclose (fp);
  return v;
}

static int
bdev_pread (struct vd_attachment *a, void *buf, size_t count,
            uint64_t offset, uint32_t flags)
{
  return vd_file_pread (&BDEV (a)->f, buf, count, offset);
}

static int
bdev_pwrite (struct vd_attachment *a, const void *buf, size_t count,
             uint64_t offset, uint32_t flags)
{
  return vd_file_pwrite (&BDEV (a)->f, buf, count, offset,
                         flags & VD_FLAG_FUA);
}

static int
bdev_preadv (struct vd_attachment *a, const struct iovec *iov, int iovcnt,
             size_t count, uint64_t offset, uint32_t flags)
{
  return vd_file_preadv (&BDEV (a)->f, iov, iovcnt, count, offset);
}

static int
bdev_pwritev (struct vd_attachment *a, const struct iovec *iov, int iovcnt,
              size_t count, uint64_t offset, uint32_t flags)
{
  return vd_file_pwritev (&BDEV (a)->f, iov, iovcnt, count, offset,
                          flags & VD_FLAG_FUA);
}

static int
bdev_flush (struct vd_attachment *a, uint32_t flags)
{
  return vd_file_sync (&BDEV (a)->f);
}

static int
maybe_fua (struct blockdev *b, uint32_t flags)
{
  return (flags & VD_FLAG_FUA) ? vd_file_sync (&b->f) : 0;
}

/* Split [offset, offset+count) into an aligned middle and unaligned
 * head/tail (which are handled with ordinary writes).
 */
static void
split_aligned (uint64_t offset, uint64_t count, uint32_t lbs,
               uint64_t *mid_off, uint64_t *mid_len)
{
  uint64_t start = ROUND_UP (offset, (uint64_t) lbs);
  uint64_t end = ROUND_DOWN (offset + count, (uint64_t) lbs);

  if (end <= start) {
    *mid_off = offset;
    *mid_len = 0;
  }
  else {
    *mid_off = start;
    *mid_len = end - start;
  }
}

static int
bdev_zero_edges (struct blockdev *b, uint64_t count, uint64_t offset,
                 uint64_t mid_off, uint64_t mid_len, uint32_t flags)
{
  bool fua = flags & VD_FLAG_FUA;

  if (mid_len == 0)
    return vd_file_write_zero_buffers (&b->f, count, offset, fua);
  if (mid_off > offset &&
      vd_file_write_zero_buffers (&b->f, mid_off - offset, offset, fua) == -1)
    return -1;
  if (offset + count > mid_off + mid_len &&
      vd_file_write_zero_buffers (&b->f, offset + count - (mid_off + mid_len),
                                  mid_off + mid_len, fua) == -1)
    return -1;
  return 0;
}

static int
bdev_discard (struct vd_attachment *a, uint64_t count, uint64_t offset,
              uint32_t flags)
{
  struct blockdev *b = BDEV (a);
  uint64_t mid_off, mid_len;
  uint64_t range[2];

  split_aligned (offset, count, b->lbs, &mid_off, &mid_len);
  if (mid_len == 0 || !b->hw_discard)
    return 0;                   /* a hint we cannot act on */
  range[0] = mid_off;
  range[1] = mid_len;
  if (b->f.direct)
    pthread_rwlock_rdlock (&b->f.rmw_lock);
  int r = ioctl (b->f.fd, BLKDISCARD, range);
  int err = errno;
  if (b->f.direct)
    pthread_rwlock_unlock (&b->f.rmw_lock);
  if (r == -1) {
    if (err == EOPNOTSUPP) {
      b->hw_discard = false;
      return 0;
    }
    vd_error (err, "%s: BLKDISCARD at offset %" PRIu64 " count %" PRIu64,
              a->name, mid_off, mid_len);
    return -1;
  }
  return maybe_fua (b, flags);
}

static int
bdev_write_zeroes (struct vd_attachment *a, uint64_t count, uint64_t offset,
                   uint32_t flags)
{
  struct blockdev *b = BDEV (a);
  uint64_t mid_off, mid_len;
  uint64_t range[2];
  int r, err;

  split_aligned (offset, count, b->lbs, &mid_off, &mid_len);
  if (mid_len > 0 && (flags & VD_FLAG_MAY_TRIM)) {
    if (vd_file_punch_hole (&b->f, mid_len, mid_off) == 0)
      goto edges;
    if (!vd_file_unsupported (errno))
      return -1;
  }
  if ((flags & VD_FLAG_FAST_ZERO) && !b->hw_zero) {
    vd_error_msg (ENOTSUP, "%s: write_zeroes: the device has no fast "
                  "zeroing command", a->name);
    return -1;
  }
  if (mid_len > 0) {
    range[0] = mid_off;
    range[1] = mid_len;
    if (b->f.direct)
      pthread_rwlock_rdlock (&b->f.rmw_lock);
    r = ioctl (b->f.fd, BLKZEROOUT, range);
    err = errno;
    if (b->f.direct)
      pthread_rwlock_unlock (&b->f.rmw_lock);
    if (r == -1) {
      if (err != EOPNOTSUPP && err != EINVAL) {
        vd_error (err, "%s: BLKZEROOUT at offset %" PRIu64 " count %"
                  PRIu64, a->name, mid_off, mid_len);
        return -1;
      }
      return vd_file_write_zero_buffers (&b->f, count, offset,
                                         flags & VD_FLAG_FUA);
    }
  }
 edges:
  if (bdev_zero_edges (b, count, offset, mid_off, mid_len, flags) == -1)
    return -1;
  return maybe_fua (b, flags);
}

static int
bdev_cache (struct vd_attachment *a, uint64_t count, uint64_t offset,
            uint32_t flags)
{
  struct blockdev *b = BDEV (a);
  int err;

  if (b->f.direct)
    return 0;
  err = posix_fadvise (b->f.fd, offset, count, POSIX_FADV_WILLNEED);
  if (err) {
    vd_error (err, "%s: cache", a->name);
    return -1;
  }
  return 0;
}

static int
bdev_properties (struct vd_attachment *a, vd_property_fn fn, void *ud)
{
  struct blockdev *b = BDEV (a);

  if (fn (ud, "blockdev.hardware-discard", VD_PROP_BOOL, NULL,
          b->hw_discard) == -1 ||
      fn (ud, "blockdev.hardware-zero", VD_PROP_BOOL, NULL, b->hw_zero) == -1)
    return -1;
  return 0;
}

static int
bdev_close (struct vd_attachment *a)
{
  vd_file_close (&BDEV (a)->f);
  return 0;
}

static const struct vd_backend_ops blockdev_ops = {
  .struct_size = sizeof blockdev_ops,
  .format = "blockdev",
  .pread = bdev_pread,
  .pwrite = bdev_pwrite,
  .preadv = bdev_preadv,
  .pwritev = bdev_pwritev,
  .flush = bdev_flush,
  .discard = bdev_discard,
  .write_zeroes = bdev_write_zeroes,
  .cache = bdev_cache,
  .properties = bdev_properties,
  .close = bdev_close,
};

struct vd_attachment *
vd_blockdev_open (const char *path, int fd, const struct vd_open_options *opts)
{
  struct blockdev *b;
  struct vd_open_options o;
  struct stat st;
  int64_t size;
  int lbs = 512;
  unsigned int pbs = 0;
  const char *name = path;
  char fdname[32];

  vd_open_options_resolve (opts, &o);
  if (path == NULL) {
    snprintf (fdname, sizeof fdname, "fd:%d", fd);
    name = fdname;
  }
  if (o.sync_mode != VD_SYNC_FULL && o.sync_mode != VD_SYNC_NONE) {
    vd_error_msg (EINVAL, "%s: block devices take the sync modes full and "
                  "none, not %s", name, vd_sync_mode_name (o.sync_mode));
    return NULL;
  }
  if (o.caching_mode == VD_CACHING_AUTOMATIC)
    o.caching_mode = VD_CACHING_UNCACHED;

  b = calloc (1, sizeof *b);
  if (b == NULL) {
    vd_error (errno, "%s", name);
    return NULL;
  }
  if (vd_attachment_init (&b->a, &blockdev_ops, name, &o) == -1) {
    free (b);
    return NULL;
  }
  if (vd_file_open (&b->f, path, fd, b->a.name, b->a.read_only,
                    o.caching_mode, o.sync_mode,
                    !(o.flags & VD_OPEN_NO_LOCK)) == -1)
    goto fail;
  if (!b->f.is_blockdev) {
    vd_error_msg (EINVAL, "%s: not a block device", name);
    goto fail_file;
  }
  size = vd_file_get_size (&b->f);
  if (size == -1)
    goto fail_file;
  if (ioctl (b->f.fd, BLKSSZGET, &lbs) == -1 || lbs <= 0)
    lbs = 512;
  if (ioctl (b->f.fd, BLKPBSZGET, &pbs) == -1 || pbs == 0)
    pbs = lbs;
  if (fstat (b->f.fd, &st) == 0) {
    b->hw_discard = sysfs_queue_u64 (st.st_rdev, "discard_max_bytes") > 0;
    b->hw_zero = sysfs_queue_u64 (st.st_rdev, "write_zeroes_max_bytes") > 0;
  }
  b->lbs = lbs;
  atomic_store (&b->a.size, size);
  b->a.block_size = lbs;
  b->a.pref_block_size = MAX (pbs, 4096u);

  b->a.caps = VD_CAP_FLUSH | VD_CAP_FUA | VD_CAP_CACHE | VD_CAP_MULTI_CONN;
  if (!b->a.read_only) {
    b->a.caps |= VD_CAP_WRITE | VD_CAP_ZERO;
    if (b->hw_discard)
      b->a.caps |= VD_CAP_DISCARD;
    if (b->hw_zero)
      b->a.caps |= VD_CAP_FAST_ZERO;
  }
  return &b->a;

 fail_file:
  vd_file_close (&b->f);
 fail:
  vd_attachment_fini (&b->a);
  free (b);
  return NULL;
}
