/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Public entry points of the attachment API: start on first use, validate
 * once (range, read-only, capabilities, flags, request size), dispatch to
 * the backend.  Backends never see an invalid request.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "vdisk/attachment.h"
#include "backend.h"
#include "checked-overflow.h"
#include "iov.h"

VD_API void
vd_open_options_init (struct vd_open_options *opts)
{
  memset (opts, 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
  opts->caching_mode = VD_CACHING_AUTOMATIC;
  opts->sync_mode = VD_SYNC_FULL;
  opts->timeout = VD_NBD_DEFAULT_TIMEOUT;
}

void
vd_open_options_resolve (const struct vd_open_options *in,
                         struct vd_open_options *out)
{
  vd_open_options_init (out);
  if (in == NULL)
    return;
  /* Copy only the fields the caller's version of the struct has. */
  size_t n = in->struct_size;
  if (n > sizeof *out)
    n = sizeof *out;
  if (n > sizeof (size_t))
    memcpy ((char *) out + sizeof (size_t), (const char *) in + sizeof (size_t),
            n - sizeof (size_t));
  out->struct_size = sizeof *out;
  if (out->timeout <= 0)
    out->timeout = VD_NBD_DEFAULT_TIMEOUT;
}

int
vd_attachment_init (struct vd_attachment *a, const struct vd_backend_ops *ops,
                    const char *name, const struct vd_open_options *opts)
{
  a->ops = ops;
  a->name = strdup (name);
  if (a->name == NULL) {
    vd_error (errno, "strdup");
    return -1;
  }
  atomic_init (&a->size, 0);
  a->caps = 0;
  a->block_size = 512;
  a->pref_block_size = 4096;
  a->max_request = VD_DEFAULT_MAX_REQUEST;
  a->caching_mode = opts ? opts->caching_mode : VD_CACHING_AUTOMATIC;
  a->sync_mode = opts ? opts->sync_mode : VD_SYNC_FULL;
  a->read_only = opts && (opts->flags & VD_OPEN_READ_ONLY);
  atomic_init (&a->started, ops->start == NULL);
  a->start_failed = false;
  a->start_error = NULL;
  pthread_mutex_init (&a->start_lock, NULL);
  memset (&a->events, 0, sizeof a->events);
  return 0;
}

void
vd_attachment_fini (struct vd_attachment *a)
{
  if (a->events.free)
    a->events.free (a->events.user_data);
  a->events.free = NULL;
  a->events.callback = NULL;
  pthread_mutex_destroy (&a->start_lock);
  free (a->name);
  a->name = NULL;
  free (a->start_error);
  a->start_error = NULL;
}

void
vd_attachment_emit_event (struct vd_attachment *a, int event, int err,
                          const char *message)
{
  if (a->events.callback)
    a->events.callback (a->events.user_data, a, event, err, message);
}

int
vd_backend_start (struct vd_attachment *a)
{
  int r = 0;

  if (atomic_load_explicit (&a->started, memory_order_acquire))
    return 0;
  pthread_mutex_lock (&a->start_lock);
  if (!atomic_load (&a->started)) {
    if (a->start_failed) {
      /* Dead since a failed start (Apple's client is too): repeat why. */
      vd_error_msg (ESHUTDOWN, "%s: the attachment failed to start and "
                    "cannot be used: %s", a->name,
                    a->start_error ? a->start_error : "unknown error");
      r = -1;
    }
    else {
      r = a->ops->start (a);
      if (r == 0) {
        if (a->read_only)
          a->caps &= ~(VD_CAP_WRITE | VD_CAP_DISCARD | VD_CAP_ZERO |
                       VD_CAP_FAST_ZERO | VD_CAP_RESIZE);
        atomic_store_explicit (&a->started, true, memory_order_release);
      }
      else {
        const char *e = vd_get_error ();
        a->start_failed = true;
        a->start_error = strdup (e ? e : "start failed");
      }
    }
  }
  pthread_mutex_unlock (&a->start_lock);
  return r;
}

VD_API int
vd_attachment_start (struct vd_attachment *a)
{
  return vd_backend_start (a);
}

VD_API int
vd_attachment_close (struct vd_attachment *a)
{
  int r = 0;

  if (a == NULL)
    return 0;
  /* Flush what the guest wrote, as QEMU does on close.  A backend whose
   * flush means nothing in this sync mode makes it a no-op itself; an
   * attachment that never started has nothing to flush.
   */
  if (atomic_load (&a->started) && (a->caps & VD_CAP_WRITE) &&
      a->ops->flush && a->ops->flush (a, 0) == -1)
    r = -1;
  if (a->ops->close && a->ops->close (a) == -1)
    r = -1;
  vd_attachment_fini (a);
  free (a);
  return r;
}

/* Validation helpers. */

static int
check_range (struct vd_attachment *a, const char *op, uint64_t count,
             uint64_t offset, int err)
{
  uint64_t end, size = vd_backend_size (a);

  if (ADD_OVERFLOW (offset, count, &end) || end > size) {
    vd_error_msg (err, "%s: %s: offset %" PRIu64 " + count %" PRIu64
                  " is beyond the end of the disk (size %" PRIu64 ")",
                  a->name, op, offset, count, size);
    return -1;
  }
  return 0;
}

static int
check_write (struct vd_attachment *a, const char *op)
{
  if (a->read_only || !(a->caps & VD_CAP_WRITE)) {
    vd_error_msg (EROFS, "%s: %s: the attachment is read-only", a->name, op);
    return -1;
  }
  return 0;
}

static int
check_flags (struct vd_attachment *a, const char *op, uint32_t flags,
             uint32_t allowed)
{
  if (flags & ~allowed) {
    vd_error_msg (EINVAL, "%s: %s: invalid flags 0x%" PRIx32, a->name, op,
                  flags & ~allowed);
    return -1;
  }
  return 0;
}

static int
check_cap (struct vd_attachment *a, const char *op, uint32_t cap)
{
  if (!(a->caps & cap)) {
    vd_error_msg (EOPNOTSUPP, "%s: %s is not supported by this %s "
                  "attachment", a->name, op, a->ops->format);
    return -1;
  }
  return 0;
}

static int
check_request_size (struct vd_attachment *a, const char *op, size_t count)
{
  if (count > a->max_request) {
    vd_error_msg (EINVAL, "%s: %s: count %zu is larger than the maximum "
                  "request size %" PRIu32, a->name, op, count,
                  a->max_request);
    return -1;
  }
  return 0;
}

/* Public I/O. */

VD_API int
vd_attachment_pread (struct vd_attachment *a, void *buf, size_t count,
                     uint64_t offset, uint32_t flags)
{
  if (vd_backend_start (a) == -1 ||
      check_flags (a, "pread", flags, 0) == -1 ||
      check_request_size (a, "pread", count) == -1 ||
      check_range (a, "pread", count, offset, EINVAL) == -1)
    return -1;
  if (count == 0)
    return 0;
  return a->ops->pread (a, buf, count, offset, flags);
}

VD_API int
vd_attachment_pwrite (struct vd_attachment *a, const void *buf, size_t count,
                      uint64_t offset, uint32_t flags)
{
  if (vd_backend_start (a) == -1 ||
      check_write (a, "pwrite") == -1 ||
      check_flags (a, "pwrite", flags, VD_FLAG_FUA) == -1 ||
      check_request_size (a, "pwrite", count) == -1 ||
      check_range (a, "pwrite", count, offset, ENOSPC) == -1)
    return -1;
  if (count == 0)
    return 0;
  return a->ops->pwrite (a, buf, count, offset, flags);
}

/* The total of the segments, or -1 (EINVAL). */
static int
iov_count (struct vd_attachment *a, const char *op, const struct iovec *iov,
           int iovcnt, size_t *count)
{
  size_t n = 0;

  if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt > 0 && iov == NULL)) {
    vd_error_msg (EINVAL, "%s: %s: %d segments (0 to %d allowed)", a->name,
                  op, iovcnt, IOV_MAX);
    return -1;
  }
  for (int i = 0; i < iovcnt; ++i)
    if (ADD_OVERFLOW (n, iov[i].iov_len, &n)) {
      vd_error_msg (EINVAL, "%s: %s: the segments add up to more than "
                    "SIZE_MAX bytes", a->name, op);
      return -1;
    }
  *count = n;
  return 0;
}

/* The one non-empty segment, or NULL if there are several. */
static const struct iovec *
single_segment (const struct iovec *iov, int iovcnt)
{
  const struct iovec *one = NULL;

  for (int i = 0; i < iovcnt; ++i)
    if (iov[i].iov_len > 0) {
      if (one)
        return NULL;
      one = &iov[i];
    }
  return one;
}

/* Backends without vectored I/O: through an aligned buffer (so that an
 * uncached child file takes it as it is), 4 MiB at a time at most.
 */
#define IOV_BOUNCE_MAX (4u << 20)

struct bounce_ctx {
  struct vd_attachment *a;
  uint32_t flags;
};

static int
bounce_piece (void *opaque, void *buf, size_t n, uint64_t offset, bool write)
{
  struct bounce_ctx *b = opaque;

  return write ? b->a->ops->pwrite (b->a, buf, n, offset, b->flags)
    : b->a->ops->pread (b->a, buf, n, offset, b->flags);
}

static int
bounce_iov (struct vd_attachment *a, const struct iovec *iov, int iovcnt,
            size_t count, uint64_t offset, uint32_t flags, bool write)
{
  struct bounce_ctx b = { a, flags };

  return vd_iov_bounce (iov, iovcnt, count, offset, write, 4096,
                        IOV_BOUNCE_MAX, bounce_piece, &b, a->name);
}

/* A vectored request already checked, count > 0: one buffer if only one
 * segment holds bytes, else the backend's own vectored call, else through
 * a buffer.  For the public calls and for layered backends alike.
 */
static int
rw_vector (struct vd_attachment *a, const struct iovec *iov, int iovcnt,
           size_t count, uint64_t offset, uint32_t flags, bool write)
{
  const struct iovec *one = single_segment (iov, iovcnt);

  if (one)
    return write ? a->ops->pwrite (a, one->iov_base, count, offset, flags)
      : a->ops->pread (a, one->iov_base, count, offset, flags);
  if (write && a->ops->pwritev)
    return a->ops->pwritev (a, iov, iovcnt, count, offset, flags);
  if (!write && a->ops->preadv)
    return a->ops->preadv (a, iov, iovcnt, count, offset, flags);
  return bounce_iov (a, iov, iovcnt, count, offset, flags, write);
}

VD_API int
vd_attachment_preadv (struct vd_attachment *a, const struct iovec *iov,
                      int iovcnt, uint64_t offset, uint32_t flags)
{
  size_t count;

  if (vd_backend_start (a) == -1 ||
      check_flags (a, "preadv", flags, 0) == -1 ||
      iov_count (a, "preadv", iov, iovcnt, &count) == -1 ||
      check_request_size (a, "preadv", count) == -1 ||
      check_range (a, "preadv", count, offset, EINVAL) == -1)
    return -1;
  if (count == 0)
    return 0;
  return rw_vector (a, iov, iovcnt, count, offset, flags, false);
}

VD_API int
vd_attachment_pwritev (struct vd_attachment *a, const struct iovec *iov,
                       int iovcnt, uint64_t offset, uint32_t flags)
{
  size_t count;

  if (vd_backend_start (a) == -1 ||
      check_write (a, "pwritev") == -1 ||
      check_flags (a, "pwritev", flags, VD_FLAG_FUA) == -1 ||
      iov_count (a, "pwritev", iov, iovcnt, &count) == -1 ||
      check_request_size (a, "pwritev", count) == -1 ||
      check_range (a, "pwritev", count, offset, ENOSPC) == -1)
    return -1;
  if (count == 0)
    return 0;
  return rw_vector (a, iov, iovcnt, count, offset, flags, true);
}

VD_API int
vd_attachment_flush (struct vd_attachment *a, uint32_t flags)
{
  if (vd_backend_start (a) == -1 ||
      check_flags (a, "flush", flags, 0) == -1)
    return -1;
  if (!(a->caps & VD_CAP_WRITE) || a->ops->flush == NULL)
    return 0;                   /* nothing can be dirty */
  return a->ops->flush (a, flags);
}

VD_API int
vd_attachment_discard (struct vd_attachment *a, uint64_t count,
                       uint64_t offset, uint32_t flags)
{
  if (vd_backend_start (a) == -1 ||
      check_write (a, "discard") == -1 ||
      check_flags (a, "discard", flags, VD_FLAG_FUA) == -1 ||
      check_cap (a, "discard", VD_CAP_DISCARD) == -1 ||
      check_range (a, "discard", count, offset, EINVAL) == -1)
    return -1;
  if (count == 0)
    return 0;
  return a->ops->discard (a, count, offset, flags);
}

VD_API int
vd_attachment_write_zeroes (struct vd_attachment *a, uint64_t count,
                            uint64_t offset, uint32_t flags)
{
  if (vd_backend_start (a) == -1 ||
      check_write (a, "write_zeroes") == -1 ||
      check_flags (a, "write_zeroes", flags,
                   VD_FLAG_FUA | VD_FLAG_MAY_TRIM | VD_FLAG_FAST_ZERO) == -1 ||
      check_cap (a, "write_zeroes", VD_CAP_ZERO) == -1 ||
      check_range (a, "write_zeroes", count, offset, ENOSPC) == -1)
    return -1;
  if ((flags & VD_FLAG_FAST_ZERO) && !(a->caps & VD_CAP_FAST_ZERO)) {
    vd_error_msg (ENOTSUP, "%s: write_zeroes: fast zeroing is not "
                  "supported", a->name);
    return -1;
  }
  if (count == 0)
    return 0;
  return a->ops->write_zeroes (a, count, offset, flags);
}

VD_API int
vd_attachment_cache (struct vd_attachment *a, uint64_t count, uint64_t offset,
                     uint32_t flags)
{
  if (vd_backend_start (a) == -1 ||
      check_flags (a, "cache", flags, 0) == -1 ||
      check_range (a, "cache", count, offset, EINVAL) == -1)
    return -1;
  if (count == 0 || !(a->caps & VD_CAP_CACHE) || a->ops->cache == NULL)
    return 0;                   /* a hint: nothing to do is success */
  return a->ops->cache (a, count, offset, flags);
}

VD_API int
vd_attachment_block_status (struct vd_attachment *a, uint64_t count,
                            uint64_t offset, uint32_t flags,
                            vd_extent_fn fn, void *user_data)
{
  struct vd_extents *e;
  int r = -1;

  if (vd_backend_start (a) == -1 ||
      check_flags (a, "block_status", flags, VD_FLAG_REQ_ONE) == -1 ||
      check_range (a, "block_status", count, offset, EINVAL) == -1)
    return -1;
  if (count == 0)
    return 0;

  e = vd_extents_new (offset, count, flags);
  if (e == NULL)
    return -1;
  if (vd_backend_block_status (a, count, offset, flags, e) == -1)
    goto out;
  for (size_t i = 0; i < vd_extents_count (e); ++i) {
    uint64_t eo, el;
    uint32_t es;
    vd_extents_get (e, i, &eo, &el, &es);
    if (fn (user_data, eo, el, es) == -1) {
      if (vd_get_error () == NULL)
        vd_error_msg (ECANCELED, "%s: block_status: stopped by the caller",
                      a->name);
      goto out;
    }
  }
  r = 0;
 out:
  vd_extents_free (e);
  return r;
}

/* Child calls for layered backends. */

int
vd_backend_pread (struct vd_attachment *a, void *buf, size_t count,
                  uint64_t offset, uint32_t flags)
{
  return a->ops->pread (a, buf, count, offset, flags);
}

int
vd_backend_pwrite (struct vd_attachment *a, const void *buf, size_t count,
                   uint64_t offset, uint32_t flags)
{
  return a->ops->pwrite (a, buf, count, offset, flags);
}

int
vd_backend_preadv (struct vd_attachment *a, const struct iovec *iov,
                   int iovcnt, size_t count, uint64_t offset, uint32_t flags)
{
  return rw_vector (a, iov, iovcnt, count, offset, flags, false);
}

int
vd_backend_pwritev (struct vd_attachment *a, const struct iovec *iov,
                    int iovcnt, size_t count, uint64_t offset,
                    uint32_t flags)
{
  return rw_vector (a, iov, iovcnt, count, offset, flags, true);
}

int
vd_backend_flush (struct vd_attachment *a, uint32_t flags)
{
  return a->ops->flush ? a->ops->flush (a, flags) : 0;
}

int
vd_backend_discard (struct vd_attachment *a, uint64_t count, uint64_t offset,
                    uint32_t flags)
{
  return a->ops->discard (a, count, offset, flags);
}

int
vd_backend_write_zeroes (struct vd_attachment *a, uint64_t count,
                         uint64_t offset, uint32_t flags)
{
  return a->ops->write_zeroes (a, count, offset, flags);
}

/* Backends without extents information report everything as data. */
int
vd_backend_block_status (struct vd_attachment *a, uint64_t count,
                         uint64_t offset, uint32_t flags,
                         struct vd_extents *e)
{
  if (!(a->caps & VD_CAP_EXTENTS) || a->ops->block_status == NULL)
    return vd_extents_add (e, offset, count, 0);
  if (a->ops->block_status (a, count, offset, flags, e) == -1)
    return -1;
  if (vd_extents_count (e) == 0) {
    vd_error_msg (EIO, "%s: block_status: the backend reported no extents",
                  a->name);
    return -1;
  }
  return 0;
}

int
vd_backend_resize (struct vd_attachment *a, uint64_t new_size)
{
  if (!(a->caps & VD_CAP_RESIZE) || a->ops->resize == NULL) {
    vd_error_msg (EOPNOTSUPP, "%s: resize is not supported by this %s "
                  "attachment", a->name, a->ops->format);
    return -1;
  }
  if (a->ops->resize (a, new_size) == -1)
    return -1;
  atomic_store (&a->size, new_size);
  return 0;
}

int64_t
vd_backend_allocated_size (struct vd_attachment *a)
{
  return a->ops->allocated_size ? a->ops->allocated_size (a) : -1;
}

/* Getters. */

VD_API int64_t
vd_attachment_get_size (struct vd_attachment *a)
{
  if (vd_backend_start (a) == -1)
    return -1;
  return (int64_t) vd_backend_size (a);
}

VD_API uint32_t
vd_attachment_get_block_size (struct vd_attachment *a)
{
  return vd_backend_start (a) == -1 ? 0 : a->block_size;
}

VD_API uint32_t
vd_attachment_get_preferred_block_size (struct vd_attachment *a)
{
  return vd_backend_start (a) == -1 ? 0 : a->pref_block_size;
}

VD_API uint32_t
vd_attachment_get_max_request (struct vd_attachment *a)
{
  return vd_backend_start (a) == -1 ? 0 : a->max_request;
}

static int
has_cap (struct vd_attachment *a, uint32_t cap)
{
  if (vd_backend_start (a) == -1)
    return -1;
  return (a->caps & cap) != 0;
}

VD_API int
vd_attachment_is_read_only (struct vd_attachment *a)
{
  int r = has_cap (a, VD_CAP_WRITE);
  return r == -1 ? -1 : !r;
}

VD_API int vd_attachment_can_write (struct vd_attachment *a)
{ return has_cap (a, VD_CAP_WRITE); }
VD_API int vd_attachment_can_flush (struct vd_attachment *a)
{ return has_cap (a, VD_CAP_FLUSH); }
VD_API int vd_attachment_can_fua (struct vd_attachment *a)
{ return has_cap (a, VD_CAP_FUA); }
VD_API int vd_attachment_can_discard (struct vd_attachment *a)
{ return has_cap (a, VD_CAP_DISCARD); }
VD_API int vd_attachment_can_zero (struct vd_attachment *a)
{ return has_cap (a, VD_CAP_ZERO); }
VD_API int vd_attachment_can_fast_zero (struct vd_attachment *a)
{ return has_cap (a, VD_CAP_FAST_ZERO); }
VD_API int vd_attachment_can_extents (struct vd_attachment *a)
{ return has_cap (a, VD_CAP_EXTENTS); }
VD_API int vd_attachment_can_cache (struct vd_attachment *a)
{ return has_cap (a, VD_CAP_CACHE); }
VD_API int vd_attachment_can_multi_conn (struct vd_attachment *a)
{ return has_cap (a, VD_CAP_MULTI_CONN); }

VD_API const char *
vd_attachment_get_format (struct vd_attachment *a)
{
  return a->ops->format;
}

VD_API const char *
vd_attachment_get_name (struct vd_attachment *a)
{
  return a->name;
}

VD_API int
vd_attachment_get_caching_mode (struct vd_attachment *a)
{
  return a->caching_mode;
}

VD_API int
vd_attachment_get_sync_mode (struct vd_attachment *a)
{
  return a->sync_mode;
}

VD_API int
vd_attachment_get_properties (struct vd_attachment *a, vd_property_fn fn,
                              void *ud)
{
  int64_t alloc;

  if (vd_backend_start (a) == -1)
    return -1;
  alloc = vd_backend_allocated_size (a);
  if (fn (ud, "format", VD_PROP_STRING, a->ops->format, 0) == -1 ||
      fn (ud, "virtual-size", VD_PROP_UINT, NULL, vd_backend_size (a)) == -1 ||
      (alloc >= 0 &&
       fn (ud, "allocated-size", VD_PROP_UINT, NULL, alloc) == -1) ||
      fn (ud, "block-size", VD_PROP_UINT, NULL, a->block_size) == -1 ||
      fn (ud, "preferred-block-size", VD_PROP_UINT, NULL,
          a->pref_block_size) == -1 ||
      fn (ud, "read-only", VD_PROP_BOOL, NULL, !(a->caps & VD_CAP_WRITE)) == -1 ||
      fn (ud, "caching-mode", VD_PROP_STRING,
          vd_caching_mode_name (a->caching_mode), 0) == -1 ||
      fn (ud, "sync-mode", VD_PROP_STRING,
          vd_sync_mode_name (a->sync_mode), 0) == -1 ||
      fn (ud, "can-discard", VD_PROP_BOOL, NULL,
          (a->caps & VD_CAP_DISCARD) != 0) == -1 ||
      fn (ud, "can-zero", VD_PROP_BOOL, NULL,
          (a->caps & VD_CAP_ZERO) != 0) == -1 ||
      fn (ud, "can-extents", VD_PROP_BOOL, NULL,
          (a->caps & VD_CAP_EXTENTS) != 0) == -1)
    return -1;
  if (a->ops->properties)
    return a->ops->properties (a, fn, ud);
  return 0;
}

/* Enum names. */

VD_API const char *
vd_caching_mode_name (int mode)
{
  switch (mode) {
  case VD_CACHING_AUTOMATIC: return "automatic";
  case VD_CACHING_UNCACHED: return "uncached";
  case VD_CACHING_CACHED: return "cached";
  default: return "unknown";
  }
}

VD_API const char *
vd_sync_mode_name (int mode)
{
  switch (mode) {
  case VD_SYNC_FULL: return "full";
  case VD_SYNC_FSYNC: return "fsync";
  case VD_SYNC_NONE: return "none";
  default: return "unknown";
  }
}

VD_API int
vd_caching_mode_from_name (const char *name)
{
  if (strcasecmp (name, "automatic") == 0 || strcasecmp (name, "auto") == 0)
    return VD_CACHING_AUTOMATIC;
  if (strcasecmp (name, "uncached") == 0)
    return VD_CACHING_UNCACHED;
  if (strcasecmp (name, "cached") == 0)
    return VD_CACHING_CACHED;
  vd_error_msg (EINVAL, "unknown caching mode '%s' (expected automatic, "
                "uncached or cached)", name);
  return -1;
}

VD_API int
vd_sync_mode_from_name (const char *name)
{
  if (strcasecmp (name, "full") == 0)
    return VD_SYNC_FULL;
  if (strcasecmp (name, "fsync") == 0)
    return VD_SYNC_FSYNC;
  if (strcasecmp (name, "none") == 0)
    return VD_SYNC_NONE;
  vd_error_msg (EINVAL, "unknown sync mode '%s' (expected full, fsync or "
                "none)", name);
  return -1;
}
