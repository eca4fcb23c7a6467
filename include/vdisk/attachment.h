/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The attachment: one interface to a virtual disk, whatever is behind it
 * (a RAW or ASIF image file, a host block device, an NBD export).  The
 * server, the CLI and every test use only this interface.
 *
 * Conventions for every call below:
 *  - Errors: -1 (or NULL) with a thread-local message and errno, see
 *    <vdisk/error.h>.
 *  - Buffers belong to the caller; the library never keeps a pointer to
 *    them after a call returns.
 *  - Thread safety: an open attachment may be used from many threads at
 *    once (pread, pwrite, flush, discard, write_zeroes, block_status and
 *    the getters); only vd_attachment_close must not race with other calls.
 *  - Blocking: I/O calls block until the operation is done (for NBD
 *    attachments: until the reply arrives, or the reconnection window has
 *    expired).  Getters never block once the attachment is started.
 *  - Requests are validated before any backend sees them: writes to a
 *    read-only attachment fail with EROFS and never touch the image;
 *    reads and discards past the end fail with EINVAL, writes and
 *    write_zeroes past the end with ENOSPC; operations the attachment
 *    cannot do fail with EOPNOTSUPP.  Any offset and length are accepted
 *    (no alignment is required, even with VD_CACHING_UNCACHED).
 */
#ifndef VDISK_ATTACHMENT_H
#define VDISK_ATTACHMENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <vdisk/error.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vd_attachment;

/* Caching modes (values as Apple's VZDiskImageCachingMode).
 *
 * VD_CACHING_AUTOMATIC picks what cannot corrupt a guest: the host page
 *   cache for image files (guest flushes are still honoured according to
 *   the sync mode, so data the guest flushed is on disk), and O_DIRECT
 *   for host block devices, where the page cache only doubles memory use.
 *   It never picks a mode that would drop or reorder flushed data.
 * VD_CACHING_UNCACHED: O_DIRECT; unaligned requests go through aligned
 *   bounce buffers (read-modify-write for writes).
 * VD_CACHING_CACHED: the host page cache.
 */
enum vd_caching_mode {
  VD_CACHING_AUTOMATIC = 0,
  VD_CACHING_UNCACHED = 1,
  VD_CACHING_CACHED = 2,
};

/* Synchronisation modes (values as Apple's VZDiskImageSynchronizationMode;
 * block devices and NBD take only FULL and NONE, Apple's
 * VZDiskSynchronizationMode).
 *
 * VD_SYNC_FULL: when flush (or a FUA write) returns, the data is on
 *   stable storage: fdatasync(2), or fsync(2) when the file's size or
 *   allocation changed since the last sync.  For NBD: NBD_CMD_FLUSH and
 *   FUA are forwarded to the server.
 * VD_SYNC_FSYNC: at least as strong as POSIX fsync(2) (on Linux fsync
 *   also flushes the device's volatile cache, so this equals FULL).
 * VD_SYNC_NONE: flush and FUA are accepted and do nothing.  After a host
 *   crash the image contents, and their order, are undefined.
 */
enum vd_sync_mode {
  VD_SYNC_FULL = 1,
  VD_SYNC_FSYNC = 2,
  VD_SYNC_NONE = 3,
};

/* Open flags (struct vd_open_options.flags). */
#define VD_OPEN_READ_ONLY  (1u << 0) /* refuse every write; shared lock */
#define VD_OPEN_NO_LOCK    (1u << 1) /* take no image lock (qemu-img -U);
                                        the caller accepts the risk */

/* Connection events of an NBD attachment (Apple's delegate methods).
 * VD_EVENT_CONNECTED: a connection was established (first connect and
 *   every reconnect); err is 0, message NULL.
 * VD_EVENT_FAILED: the attachment failed for good (reconnection window
 *   exhausted, or the export changed); err is an errno value and message
 *   describes it.  Fired at most once; every later call fails.
 * Events are delivered from whichever thread noticed them, without any
 * attachment lock held; the callback must not call vd_attachment_close.
 */
enum vd_event {
  VD_EVENT_CONNECTED = 1,
  VD_EVENT_FAILED = 2,
};

typedef void (*vd_event_fn) (void *user_data, struct vd_attachment *a,
                             int event, int err, const char *message);

struct vd_event_callback {
  vd_event_fn callback;         /* may be NULL: no events */
  void *user_data;              /* passed to callback and free */
  void (*free) (void *user_data); /* called once when the attachment is
                                     closed (or open fails); may be NULL */
};

/* Options for vd_attachment_open.  Always initialise with
 * vd_open_options_init, which sets struct_size so that fields can be
 * added later without breaking callers built against this version.
 */
struct vd_open_options {
  size_t struct_size;           /* sizeof (struct vd_open_options) */
  uint32_t flags;               /* VD_OPEN_* */
  int caching_mode;             /* enum vd_caching_mode */
  int sync_mode;                /* enum vd_sync_mode */
  const char *format;           /* NULL to detect; else "raw", "asif",
                                   "blockdev" or "nbd" */
  double timeout;               /* NBD: seconds a connection may stay
                                   unusable before the attachment fails
                                   (connect, reply wait and reconnection
                                   window); <= 0 selects the default,
                                   VD_NBD_DEFAULT_TIMEOUT */
  struct vd_event_callback events; /* NBD connection events */
};

#define VD_NBD_DEFAULT_TIMEOUT 30.0

/* Fill opts with the defaults: writable, VD_CACHING_AUTOMATIC,
 * VD_SYNC_FULL, format detected, default timeout, no events.
 */
VD_API void vd_open_options_init (struct vd_open_options *opts);

/* Open an attachment.  spec is one of:
 *   PATH            an image file (RAW, or ASIF when it starts with the
 *                   "shdw" magic) or a host block device
 *   fd:N            an inherited file descriptor (block device or file);
 *                   it is duplicated, the caller keeps N
 *   nbd://... nbds://... nbd+unix://... nbds+unix://... nbd+vsock://...
 *                   an NBD export (no network access until started)
 * A path that itself starts with "fd:" or "nbd" can be written "./fd:3".
 * opts may be NULL for the defaults.
 *
 * Image files and block devices are locked like QEMU does: a writer takes
 * an exclusive OFD lock, readers a shared one; a conflicting open fails
 * with EBUSY and names the process holding the lock.
 *
 * Returns a new attachment (free it with vd_attachment_close) or NULL.
 * Blocks only for local file system access.
 */
VD_API struct vd_attachment *vd_attachment_open (const char *spec,
                                                 const struct vd_open_options *opts);

/* Start the attachment: for NBD, connect and negotiate (lazy otherwise:
 * the first call that needs the export starts it).  For local images a
 * no-op.  Returns 0 or -1.  Blocks up to the timeout.
 */
VD_API int vd_attachment_start (struct vd_attachment *a);

/* Flush (unless VD_SYNC_NONE or read-only), release the lock, free a.
 * Returns 0, or -1 if the final flush failed (a is freed anyway).
 * NULL is accepted and returns 0.
 */
VD_API int vd_attachment_close (struct vd_attachment *a);

/* Request flags. */
#define VD_FLAG_FUA        (1u << 0) /* pwrite, write_zeroes, discard:
                                        durable (per sync mode) on return */
#define VD_FLAG_MAY_TRIM   (1u << 1) /* write_zeroes: may deallocate */
#define VD_FLAG_FAST_ZERO  (1u << 2) /* write_zeroes: fail with ENOTSUP
                                        rather than write zeros slowly */
#define VD_FLAG_REQ_ONE    (1u << 3) /* block_status: one extent only */

/* Read count bytes at offset into buf.  0 or -1. */
VD_API int vd_attachment_pread (struct vd_attachment *a, void *buf,
                                size_t count, uint64_t offset,
                                uint32_t flags);

/* Write count bytes at offset.  With VD_FLAG_FUA the data is durable
 * (according to the sync mode) when the call returns.  0 or -1.
 */
VD_API int vd_attachment_pwrite (struct vd_attachment *a, const void *buf,
                                 size_t count, uint64_t offset,
                                 uint32_t flags);

/* vd_attachment_pread and vd_attachment_pwrite over iovcnt segments
 * (0 to IOV_MAX), in order, as if they were one buffer; their total is
 * the count, and may not exceed the maximum request size.  RAW images
 * and block devices transfer straight into or out of the segments (one
 * preadv or pwritev2, or pread/pwrite when a single segment holds all
 * the bytes; with uncached access, when every segment's address
 * and length are aligned as O_DIRECT asks, else through a buffer); ASIF
 * images likewise, one such call per chunk (or per run of written blocks
 * of a partially written chunk; sub-block writes into a partially
 * written chunk go through a buffer); the other kinds go through a
 * buffer.  The array and the memory it points
 * to are used during the call only.  Flags, errors and blocking as for
 * pread and pwrite; EINVAL for more than IOV_MAX segments or a total
 * that overflows.  0 or -1.
 */
VD_API int vd_attachment_preadv (struct vd_attachment *a,
                                 const struct iovec *iov, int iovcnt,
                                 uint64_t offset, uint32_t flags);
VD_API int vd_attachment_pwritev (struct vd_attachment *a,
                                  const struct iovec *iov, int iovcnt,
                                  uint64_t offset, uint32_t flags);

/* Make every write that returned before this call durable, according to
 * the sync mode.  0 or -1.
 */
VD_API int vd_attachment_flush (struct vd_attachment *a, uint32_t flags);

/* Discard (trim) a range: the space may be returned to the host.  RAW and
 * ASIF images read zeros there afterwards; block devices and NBD exports
 * return whatever the device or server does (NBD: undefined contents).
 * Flags: VD_FLAG_FUA.  0 or -1.
 */
VD_API int vd_attachment_discard (struct vd_attachment *a, uint64_t count,
                                  uint64_t offset, uint32_t flags);

/* Make a range read as zeros.  Flags: VD_FLAG_FUA, VD_FLAG_MAY_TRIM (the
 * range may be deallocated), VD_FLAG_FAST_ZERO (fail with ENOTSUP instead
 * of falling back to writing zero buffers).  0 or -1.
 */
VD_API int vd_attachment_write_zeroes (struct vd_attachment *a,
                                       uint64_t count, uint64_t offset,
                                       uint32_t flags);

/* Hint that a range will be read soon (NBD_CMD_CACHE).  0 or -1. */
VD_API int vd_attachment_cache (struct vd_attachment *a, uint64_t count,
                                uint64_t offset, uint32_t flags);

/* Allocation states reported by block_status (bits, as NBD's
 * base:allocation): data = 0, zero = VD_STATE_ZERO (allocated, reads as
 * zeros), hole = VD_STATE_HOLE | VD_STATE_ZERO (unallocated, reads as
 * zeros).
 */
#define VD_STATE_HOLE (1u << 0)
#define VD_STATE_ZERO (1u << 1)

/* Called once per extent, in order; return 0 to continue, -1 to stop
 * (block_status then returns -1 with whatever error the callback set,
 * or ECANCELED).
 */
typedef int (*vd_extent_fn) (void *user_data, uint64_t offset,
                             uint64_t length, uint32_t state);

/* Describe the allocation of [offset, offset + count).  The extents are
 * contiguous, start at offset, never extend past offset + count and
 * adjacent extents have different states.  The backend may describe less
 * than count (never nothing) when finding out more would be expensive;
 * call again from where it stopped.  With VD_FLAG_REQ_ONE exactly one
 * extent is reported.  0 or -1.
 */
VD_API int vd_attachment_block_status (struct vd_attachment *a,
                                       uint64_t count, uint64_t offset,
                                       uint32_t flags, vd_extent_fn fn,
                                       void *user_data);

/* Virtual disk size in bytes, or -1 (NBD attachment that cannot start). */
VD_API int64_t vd_attachment_get_size (struct vd_attachment *a);

/* Logical block size a guest should see (512 or 4096). 0 on error. */
VD_API uint32_t vd_attachment_get_block_size (struct vd_attachment *a);

/* Preferred I/O size: requests of this size and alignment avoid
 * read-modify-write and partial allocation (ASIF: the chunk size).
 */
VD_API uint32_t vd_attachment_get_preferred_block_size (struct vd_attachment *a);

/* Largest count accepted by one pread/pwrite (bigger requests are
 * refused with EINVAL; the NBD server advertises this).
 */
VD_API uint32_t vd_attachment_get_max_request (struct vd_attachment *a);

/* Capabilities: 1 yes, 0 no, -1 error (an NBD attachment that cannot
 * start).  Fixed once the attachment is started.
 */
VD_API int vd_attachment_is_read_only (struct vd_attachment *a);
VD_API int vd_attachment_can_write (struct vd_attachment *a);
VD_API int vd_attachment_can_flush (struct vd_attachment *a);
VD_API int vd_attachment_can_fua (struct vd_attachment *a);
VD_API int vd_attachment_can_discard (struct vd_attachment *a);
VD_API int vd_attachment_can_zero (struct vd_attachment *a);
VD_API int vd_attachment_can_fast_zero (struct vd_attachment *a);
VD_API int vd_attachment_can_extents (struct vd_attachment *a);
VD_API int vd_attachment_can_cache (struct vd_attachment *a);
/* 1 when flushes on one attachment cover writes made through any other
 * attachment of the same image opened by this process (a shared cache, or
 * none): the NBD server advertises CAN_MULTI_CONN from it.
 */
VD_API int vd_attachment_can_multi_conn (struct vd_attachment *a);

/* "raw", "asif", "blockdev" or "nbd".  Borrowed, valid until close. */
VD_API const char *vd_attachment_get_format (struct vd_attachment *a);

/* The spec the attachment was opened with.  Borrowed, valid until close. */
VD_API const char *vd_attachment_get_name (struct vd_attachment *a);

/* The caching and sync modes in effect (automatic is resolved to what it
 * picked).
 */
VD_API int vd_attachment_get_caching_mode (struct vd_attachment *a);
VD_API int vd_attachment_get_sync_mode (struct vd_attachment *a);

/* Descriptive properties for `vdisk image info`.  fn is called once per
 * property, in a stable order.  Keys are stable (documented in
 * vdisk-image-info(1)); a key with a dot ("asif.chunk-size") belongs to
 * the format-specific group named before the dot.  For VD_PROP_STRING
 * str is set, else u (VD_PROP_BOOL: 0 or 1).  Strings are borrowed for the
 * duration of the callback.  Return -1 from fn to stop.  0 or -1.
 */
enum vd_property_type {
  VD_PROP_STRING = 0,
  VD_PROP_UINT = 1,
  VD_PROP_BOOL = 2,
};
typedef int (*vd_property_fn) (void *user_data, const char *key, int type,
                               const char *str, uint64_t u);
VD_API int vd_attachment_get_properties (struct vd_attachment *a,
                                         vd_property_fn fn,
                                         void *user_data);

/* Names for enum values ("automatic", "full", ...), and the reverse (-1
 * with EINVAL for unknown names).
 */
VD_API const char *vd_caching_mode_name (int mode);
VD_API const char *vd_sync_mode_name (int mode);
VD_API int vd_caching_mode_from_name (const char *name);
VD_API int vd_sync_mode_from_name (const char *name);

#ifdef __cplusplus
}
#endif

#endif /* VDISK_ATTACHMENT_H */
