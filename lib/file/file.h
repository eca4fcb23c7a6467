/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * POSIX file I/O shared by the RAW and block-device backends: full
 * (looping) pread/pwrite, O_DIRECT with aligned bounce buffers, the sync
 * modes, and QEMU-style image locking.
 *
 * Method (O_DIRECT):
 *   With caching "uncached" the fd is opened O_DIRECT and every request
 *   must be aligned in offset, length and memory address.  Requests whose
 *   range is aligned but whose buffer is not are copied through an aligned
 *   bounce buffer.  Requests whose range is unaligned are widened to the
 *   alignment: reads read the wider range and copy out; writes read the
 *   head and tail blocks, patch them and write the wider range
 *   (read-modify-write).  Two RMW writes to the same block, or an RMW and
 *   an aligned write, must not interleave, so RMW takes rmw_lock
 *   exclusively and aligned I/O takes it shared.  Bounce buffers are
 *   bounded (VD_FILE_BOUNCE_MAX); longer requests are done in pieces.
 */
#ifndef VD_LIB_FILE_H
#define VD_LIB_FILE_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VD_FILE_BOUNCE_MAX (4u * 1024 * 1024)

struct vd_file {
  int fd;                       /* owned */
  const char *name;             /* for messages; borrowed from the owner */
  bool direct;                  /* fd is O_DIRECT */
  bool is_blockdev;             /* S_ISBLK */
  bool read_only;
  uint32_t align;               /* O_DIRECT offset/length alignment, or 1 */
  uint32_t mem_align;           /* O_DIRECT buffer alignment, or 1 */
  int sync_mode;                /* enum vd_sync_mode */
  atomic_bool meta_dirty;       /* size/allocation changed since last sync */
  pthread_rwlock_t rmw_lock;    /* see "Method" */
  uint64_t dev, ino;            /* for lock-holder lookup */
};

/* Open path (or reopen inherited fd >= 0 when path is NULL) with the given
 * access and resolved caching mode (VD_CACHING_CACHED or _UNCACHED).
 * lock: take the image lock (exclusive for writers, shared for readers).
 * On failure nothing is left open.  0 or -1 (raised).
 */
int vd_file_open (struct vd_file *f, const char *path, int fd,
                  const char *name, bool read_only, int caching_mode,
                  int sync_mode, bool lock);
void vd_file_close (struct vd_file *f);

/* Read/write exactly count bytes (loops over short transfers; EOF is an
 * EIO error).  Any alignment.  fua: make the write durable before
 * returning (RWF_DSYNC), unless sync mode is none.  0 or -1 (raised).
 */
int vd_file_pread (struct vd_file *f, void *buf, size_t count,
                   uint64_t offset);
int vd_file_pwrite (struct vd_file *f, const void *buf, size_t count,
                    uint64_t offset, bool fua);

/* The same for the count bytes of iovcnt segments (1..IOV_MAX).  One
 * preadv/pwritev2 when the file is cached or every segment suits
 * O_DIRECT; otherwise in pieces through a bounce buffer.
 */
struct iovec;
int vd_file_preadv (struct vd_file *f, const struct iovec *iov, int iovcnt,
                    size_t count, uint64_t offset);
int vd_file_pwritev (struct vd_file *f, const struct iovec *iov, int iovcnt,
                     size_t count, uint64_t offset, bool fua);

/* Write count zero bytes at offset with ordinary writes (fallback for
 * file systems and devices without a zeroing primitive).
 */
int vd_file_write_zero_buffers (struct vd_file *f, uint64_t count,
                                uint64_t offset, bool fua);

/* Make previous writes durable according to the sync mode:
 * full: fdatasync (fsync when meta_dirty); fsync: fsync; none: nothing.
 */
int vd_file_sync (struct vd_file *f);

/* Note that the file's size or allocation changed (ftruncate,
 * fallocate, writes past EOF): the next full sync will be an fsync.
 */
static inline void
vd_file_meta_changed (struct vd_file *f)
{
  atomic_store (&f->meta_dirty, true);
}

/* fallocate wrappers that keep the O_DIRECT read-modify-write rule (see
 * "Method") and record the allocation change.  Return 0, or -1 with errno
 * set and NOTHING raised when the operation is unsupported (EOPNOTSUPP,
 * ENOSYS, EINVAL from fallocate), so callers can fall back; other errors
 * are raised.
 */
int vd_file_punch_hole (struct vd_file *f, uint64_t count, uint64_t offset);
int vd_file_zero_range (struct vd_file *f, uint64_t count, uint64_t offset);
int vd_file_allocate (struct vd_file *f, uint64_t count, uint64_t offset);

/* True for errno values that mean "this fallocate mode is unsupported". */
static inline bool
vd_file_unsupported (int err)
{
  return err == EOPNOTSUPP || err == ENOSYS || err == EINVAL ||
    err == ENOTTY;
}

/* Current size: st_size for files, BLKGETSIZE64 for block devices. */
int64_t vd_file_get_size (struct vd_file *f);

/* Bytes allocated on the host (st_blocks * 512), or -1. */
int64_t vd_file_allocated (struct vd_file *f);

/* Describe a lock conflict on dev/ino: "process 123 (vdisk) holds it for
 * writing", or "another process holds it".  Writes into buf.
 */
void vd_file_describe_lock_holder (uint64_t dev, uint64_t ino, char *buf,
                                   size_t len);
/* The same for the file open on fd. */
void vd_file_describe_lock_holder_fd (int fd, char *buf, size_t len);

#endif
