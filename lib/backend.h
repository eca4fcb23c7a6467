/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The internal backend interface: what a RAW, ASIF, block-device or NBD
 * implementation (or a decorator such as fault injection and reconnect)
 * provides to the attachment core.
 *
 * Method:
 *   The public entry points (lib/attachment.c) start the attachment if
 *   needed, then validate every request once: range (offset + count within
 *   the size), read-only, capabilities, flags, and the maximum request
 *   size.  Backends therefore never see an invalid request and do not
 *   re-check; they may assert.
 *
 *   A backend allocates a struct that begins with struct vd_attachment
 *   (so the core frees it with free (a)), fills it with vd_attachment_init
 *   and returns it.  Layered backends (ASIF over a file, faults over
 *   anything) keep a pointer to the child attachment and call it through
 *   the vd_backend_* functions below, which skip the public validation
 *   but keep the same contract.
 *
 *   Every method may be called from several threads at once (except
 *   close); a backend that needs serialisation provides it itself.
 *
 *   Errors: raise with vd_error (lib/errors.h) and return -1.  The errno
 *   is data: the NBD server maps it onto the wire (docs/internals/
 *   conventions.md lists the values to use).
 */
#ifndef VD_LIB_BACKEND_H
#define VD_LIB_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vdisk/attachment.h"
#include "errors.h"

/* Capability bits (struct vd_attachment.caps). */
#define VD_CAP_WRITE      (1u << 0)
#define VD_CAP_FLUSH      (1u << 1)
#define VD_CAP_FUA        (1u << 2)
#define VD_CAP_DISCARD    (1u << 3)
#define VD_CAP_ZERO       (1u << 4)
#define VD_CAP_FAST_ZERO  (1u << 5)
#define VD_CAP_EXTENTS    (1u << 6)
#define VD_CAP_CACHE      (1u << 7)
#define VD_CAP_MULTI_CONN (1u << 8)
#define VD_CAP_RESIZE     (1u << 9)  /* ops->resize works */

/* Default maximum request: 32 MiB, what NBD clients expect to work. */
#define VD_DEFAULT_MAX_REQUEST (32u * 1024 * 1024)

/* Extent accumulator for block_status (lib/extents.c). */
struct vd_extents;

/* Add the next extent.  Extents must be added in order; the first must
 * start at the request offset (or before it: the overlap is clipped).
 * Adjacent extents with equal states are merged, anything past the
 * request end is clipped.  Returns 0, or -1 (raised) for a gap.
 */
int vd_extents_add (struct vd_extents *e, uint64_t offset, uint64_t length,
                    uint32_t state);
/* Where the next extent must start. */
uint64_t vd_extents_next (const struct vd_extents *e);
/* True once the request range is covered (or REQ_ONE has its extent):
 * the backend may stop adding.
 */
bool vd_extents_full (const struct vd_extents *e);
/* Request end (offset + count) of this block_status call. */
uint64_t vd_extents_end (const struct vd_extents *e);

/* A standalone accumulator, for layered backends that query a child (or
 * the core itself).  Free with vd_extents_free.
 */
struct vd_extents *vd_extents_new (uint64_t offset, uint64_t count,
                                   uint32_t flags);
void vd_extents_free (struct vd_extents *e);
size_t vd_extents_count (const struct vd_extents *e);
void vd_extents_get (const struct vd_extents *e, size_t i,
                     uint64_t *offset, uint64_t *length, uint32_t *state);

struct vd_attachment;

struct vd_backend_ops {
  size_t struct_size;           /* sizeof (struct vd_backend_ops) */
  const char *format;           /* "raw", "asif", "blockdev", "nbd", ... */

  /* Optional.  Make the attachment usable (NBD: connect) and fill size,
   * caps and block sizes if open did not.  Called once, under the start
   * lock, before any I/O method.  If it fails, the attachment is dead:
   * every later call fails with the same message.  It must not call the
   * user's event callback itself (the callback may call getters, which
   * would wait for the start lock): deliver events from another thread.
   */
  int (*start) (struct vd_attachment *a);

  int (*pread) (struct vd_attachment *a, void *buf, size_t count,
                uint64_t offset, uint32_t flags);
  /* Required when VD_CAP_WRITE. */
  int (*pwrite) (struct vd_attachment *a, const void *buf, size_t count,
                 uint64_t offset, uint32_t flags);
  /* Optional: the same over iovcnt segments (1..IOV_MAX) holding count
   * bytes, already checked as for pread/pwrite.  Without them the core
   * goes through a buffer (vd_attachment_preadv).
   */
  int (*preadv) (struct vd_attachment *a, const struct iovec *iov,
                 int iovcnt, size_t count, uint64_t offset, uint32_t flags);
  int (*pwritev) (struct vd_attachment *a, const struct iovec *iov,
                  int iovcnt, size_t count, uint64_t offset, uint32_t flags);
  /* Always called for vd_attachment_flush, whatever the sync mode: the
   * backend decides what a flush means (VD_SYNC_NONE: nothing durable,
   * but a format may still write out buffered metadata).
   */
  int (*flush) (struct vd_attachment *a, uint32_t flags);
  /* Required when VD_CAP_DISCARD / VD_CAP_ZERO / VD_CAP_EXTENTS /
   * VD_CAP_CACHE respectively.
   */
  int (*discard) (struct vd_attachment *a, uint64_t count, uint64_t offset,
                  uint32_t flags);
  int (*write_zeroes) (struct vd_attachment *a, uint64_t count,
                       uint64_t offset, uint32_t flags);
  int (*block_status) (struct vd_attachment *a, uint64_t count,
                       uint64_t offset, uint32_t flags,
                       struct vd_extents *e);
  int (*cache) (struct vd_attachment *a, uint64_t count, uint64_t offset,
                uint32_t flags);

  /* Optional (VD_CAP_RESIZE): change the virtual size.  For a plain file
   * this is ftruncate; formats use it on their child to append chunks.
   * The core updates a->size after success.
   */
  int (*resize) (struct vd_attachment *a, uint64_t new_size);

  /* Optional: format-specific properties for vdisk image info (keys
   * "<format>.<name>", see vd_attachment_get_properties).  The core
   * reports the generic ones.
   */
  int (*properties) (struct vd_attachment *a, vd_property_fn fn,
                     void *user_data);

  /* Optional: bytes the image occupies on the host, or -1 if unknown. */
  int64_t (*allocated_size) (struct vd_attachment *a);

  /* Release everything the backend owns (child attachments, fds, memory
   * other than the struct itself).  The core has already flushed.  Return
   * -1 if something that matters failed (the core still frees a).
   */
  int (*close) (struct vd_attachment *a);
};

struct vd_attachment {
  const struct vd_backend_ops *ops;
  char *name;                   /* spec or path, for messages; owned */
  _Atomic uint64_t size;        /* virtual size in bytes (after start) */
  uint32_t caps;                /* VD_CAP_* (after start) */
  uint32_t block_size;          /* logical block size (512 or 4096) */
  uint32_t pref_block_size;     /* preferred I/O size */
  uint32_t max_request;         /* largest pread/pwrite count */
  int caching_mode;             /* resolved: never AUTOMATIC */
  int sync_mode;                /* enum vd_sync_mode */
  bool read_only;               /* writes refused with EROFS */
  atomic_bool started;          /* start done (or not needed) */
  bool start_failed;            /* start failed for good */
  char *start_error;            /* its message, repeated by later calls */
  pthread_mutex_t start_lock;   /* serialises start */
  struct vd_event_callback events; /* owned; freed at close */
};

/* Initialise the common part.  name is copied.  Until start, caps = 0.
 * The events callback is not taken from opts: vd_attachment_open attaches
 * it once the backend is open (and frees it if the open fails), so a
 * backend never owns it before it exists.  Returns 0 or -1 (ENOMEM,
 * raised).
 */
int vd_attachment_init (struct vd_attachment *a,
                        const struct vd_backend_ops *ops, const char *name,
                        const struct vd_open_options *opts);

/* Free the common part (not a itself).  Used by backends whose open fails
 * after vd_attachment_init, before they free their struct.
 */
void vd_attachment_fini (struct vd_attachment *a);

/* Resolve options (NULL = defaults) into a private copy. */
void vd_open_options_resolve (const struct vd_open_options *in,
                              struct vd_open_options *out);

/* Child calls for layered backends: no public validation, no start (the
 * caller must have started the child: vd_backend_start).
 */
int vd_backend_start (struct vd_attachment *a);
int vd_backend_pread (struct vd_attachment *a, void *buf, size_t count,
                      uint64_t offset, uint32_t flags);
int vd_backend_pwrite (struct vd_attachment *a, const void *buf,
                       size_t count, uint64_t offset, uint32_t flags);
/* The same over iovcnt (1..IOV_MAX) segments holding count (> 0) bytes,
 * as vd_attachment_preadv/pwritev do after their checks: one buffer when
 * a single segment holds bytes, else the backend's own vectored call,
 * else through a bounce buffer.
 */
int vd_backend_preadv (struct vd_attachment *a, const struct iovec *iov,
                       int iovcnt, size_t count, uint64_t offset,
                       uint32_t flags);
int vd_backend_pwritev (struct vd_attachment *a, const struct iovec *iov,
                        int iovcnt, size_t count, uint64_t offset,
                        uint32_t flags);
int vd_backend_flush (struct vd_attachment *a, uint32_t flags);
int vd_backend_discard (struct vd_attachment *a, uint64_t count,
                        uint64_t offset, uint32_t flags);
int vd_backend_write_zeroes (struct vd_attachment *a, uint64_t count,
                             uint64_t offset, uint32_t flags);
int vd_backend_block_status (struct vd_attachment *a, uint64_t count,
                             uint64_t offset, uint32_t flags,
                             struct vd_extents *e);
int vd_backend_resize (struct vd_attachment *a, uint64_t new_size);
int64_t vd_backend_allocated_size (struct vd_attachment *a);
static inline uint64_t
vd_backend_size (struct vd_attachment *a)
{
  return atomic_load (&a->size);
}

/* Deliver a connection event to the user's callback (NBD). */
void vd_attachment_emit_event (struct vd_attachment *a, int event, int err,
                               const char *message);

/* Backend constructors (each in its own directory). */
struct vd_attachment *vd_raw_open (const char *path, int fd,
                                   const struct vd_open_options *opts);
struct vd_attachment *vd_blockdev_open (const char *path, int fd,
                                        const struct vd_open_options *opts);
/* Open an ASIF image on top of an already opened file attachment (which
 * the ASIF attachment then owns, also on failure).
 */
struct vd_attachment *vd_asif_open (struct vd_attachment *file,
                                    const struct vd_open_options *opts);
struct vd_attachment *vd_nbd_open (const char *uri,
                                   const struct vd_open_options *opts);

/* Write a blank ASIF image into fd (an empty, freshly created file);
 * path is for messages.  0 or -1 (raised).
 */
int vd_asif_create_fd (int fd, const char *path, uint64_t size);

#endif
