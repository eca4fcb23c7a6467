/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vd_copy: sparse-aware parallel copy between attachments.
 *
 * Method:
 *   The source is cut into segments (64 MiB, fewer for small disks so
 *   every worker gets some).  N worker threads take segments from an
 *   atomic counter; each has one request in flight at a time, so N is the
 *   queue depth, spread over the given attachments (NBD connections).
 *   For a segment, a worker asks the source for its extents:
 *     - zero and hole extents are "zero ranges";
 *     - data extents are read in request-size pieces (aligned to the
 *       request size, so chunked targets see whole chunks), and each piece
 *       is scanned in units of the target's preferred block size: runs of
 *       units that hold data are written, runs that read as zeros become
 *       zero ranges.
 *   A zero range is skipped when the target already reads as zeros there
 *   (VD_COPY_TARGET_IS_ZERO, or the target's own block_status says so,
 *   asked once per segment), and otherwise written with write_zeroes
 *   allowing trim (zero buffers if the target cannot).  With
 *   VD_COPY_NO_SPARSE every range is written as data.
 *   The calling thread reports progress and waits; the first error stops
 *   every worker and is re-raised in the calling thread.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vdisk/copy.h"
#include "backend.h"
#include "iszero.h"
#include "minmax.h"
#include "rounding.h"
#include "vector.h"

#define SEGMENT_MAX (64u * 1024 * 1024)
#define DEFAULT_REQUESTS 8
#define DEFAULT_REQUEST_SIZE (2u * 1024 * 1024)
#define ZERO_PIECE (1024ull * 1024 * 1024) /* write_zeroes per call */
#define MAX_WORKERS 256

struct ext {
  uint64_t offset, length;
  uint32_t state;
};
DEFINE_VECTOR_TYPE (ext_vector, struct ext);

struct copy {
  struct vd_attachment *const *src;
  size_t nsrc;
  struct vd_attachment *const *dst;
  size_t ndst;
  uint64_t size;
  uint64_t segment;
  uint32_t flags;
  uint32_t reqsize;
  uint32_t gran;                /* zero-detection unit */
  bool dst_extents;             /* ask the target for its zeros */

  _Atomic uint64_t next_segment;
  _Atomic uint64_t done;
  _Atomic uint64_t written, zeroed, skipped;
  atomic_bool stop;

  pthread_mutex_t lock;
  pthread_cond_t cond;
  unsigned running;
  bool have_error;
  int error_errno;
  char error_msg[1024];
};

struct worker {
  struct copy *c;
  unsigned id;
  struct vd_attachment *src, *dst;
  char *buf;
  char *zero_buf;               /* reqsize zero bytes, for no-sparse */
  struct ext_vector src_ext;
  struct ext_vector dst_ext;    /* zero extents of the target segment */
};

VD_API void
vd_copy_options_init (struct vd_copy_options *opts)
{
  memset (opts, 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
}

static void
record_error (struct copy *c)
{
  pthread_mutex_lock (&c->lock);
  if (!c->have_error) {
    const char *e = vd_get_error ();
    c->have_error = true;
    c->error_errno = vd_get_errno ();
    snprintf (c->error_msg, sizeof c->error_msg, "%s", e ? e : "copy failed");
  }
  pthread_mutex_unlock (&c->lock);
  atomic_store (&c->stop, true);
}

static int
collect (void *ud, uint64_t offset, uint64_t length, uint32_t state)
{
  struct ext_vector *v = ud;
  struct ext e = { offset, length, state };

  if (ext_vector_append (v, e) == -1) {
    vd_error (errno, "copy: allocating extents");
    return -1;
  }
  return 0;
}

/* Extents of [off, end) of a, all of them (block_status may stop early). */
static int
get_extents (struct vd_attachment *a, uint64_t off, uint64_t end,
             struct ext_vector *v)
{
  uint64_t pos = off;

  v->len = 0;
  while (pos < end) {
    size_t before = v->len;
    if (vd_attachment_block_status (a, end - pos, pos, 0, collect, v) == -1)
      return -1;
    if (v->len == before)
      break;                    /* cannot happen: at least one extent */
    pos = v->ptr[v->len - 1].offset + v->ptr[v->len - 1].length;
  }
  return 0;
}

/* Whether the target reads as zeros over [off, off+len) (per the extents
 * fetched for this segment).
 */
static bool
dst_is_zero (struct worker *w, uint64_t off, uint64_t len)
{
  uint64_t end = off + len;

  if (w->c->flags & VD_COPY_TARGET_IS_ZERO)
    return true;
  for (size_t i = 0; i < w->dst_ext.len && off < end; ++i) {
    const struct ext *e = &w->dst_ext.ptr[i];
    if (e->offset + e->length <= off)
      continue;
    if (e->offset > off || !(e->state & VD_STATE_ZERO))
      return false;
    off = e->offset + e->length;
  }
  return off >= end;
}

static int
write_data (struct worker *w, const char *buf, uint64_t len, uint64_t off)
{
  if (vd_attachment_pwrite (w->dst, buf, len, off, 0) == -1)
    return -1;
  atomic_fetch_add (&w->c->written, len);
  return 0;
}

static int
zero_range (struct worker *w, uint64_t off, uint64_t len)
{
  struct copy *c = w->c;

  if (len == 0)
    return 0;
  if (c->flags & VD_COPY_NO_SPARSE) {
    while (len > 0) {
      uint64_t n = MIN (len, (uint64_t) c->reqsize);
      if (write_data (w, w->zero_buf, n, off) == -1)
        return -1;
      off += n;
      len -= n;
    }
    return 0;
  }
  if (dst_is_zero (w, off, len)) {
    atomic_fetch_add (&c->skipped, len);
    return 0;
  }
  while (len > 0) {
    uint64_t n = MIN (len, ZERO_PIECE);
    if (vd_attachment_write_zeroes (w->dst, n, off, VD_FLAG_MAY_TRIM) == -1) {
      if (vd_get_errno () != EOPNOTSUPP)
        return -1;
      /* No zeroing command: write zero buffers instead. */
      for (uint64_t p = 0; p < n;) {
        uint64_t k = MIN (n - p, (uint64_t) c->reqsize);
        if (w->zero_buf == NULL) {
          w->zero_buf = calloc (1, c->reqsize);
          if (w->zero_buf == NULL) {
            vd_error (errno, "copy: allocating a buffer");
            return -1;
          }
        }
        if (vd_attachment_pwrite (w->dst, w->zero_buf, k, off + p, 0) == -1)
          return -1;
        p += k;
      }
    }
    atomic_fetch_add (&c->zeroed, n);
    off += n;
    len -= n;
  }
  return 0;
}

/* Copy one data extent: read pieces, write the units that hold data. */
static int
copy_data (struct worker *w, uint64_t off, uint64_t len)
{
  struct copy *c = w->c;
  uint64_t end = off + len;

  while (off < end && !atomic_load (&c->stop)) {
    /* Pieces end on request-size boundaries: targets with chunks (ASIF)
     * then see whole chunks.
     */
    uint64_t piece_end = MIN (end, ROUND_DOWN (off, (uint64_t) c->reqsize) +
                              c->reqsize);
    uint64_t n = piece_end - off;
    if (vd_attachment_pread (w->src, w->buf, n, off, 0) == -1)
      return -1;
    if (c->flags & VD_COPY_NO_SPARSE) {
      if (write_data (w, w->buf, n, off) == -1)
        return -1;
    }
    else {
      /* Scan in units aligned to gran (absolute offsets). */
      uint64_t run_start = off;
      bool run_zero = false;
      uint64_t pos = off;
      while (pos < piece_end) {
        uint64_t u_end = MIN (piece_end, ROUND_DOWN (pos, (uint64_t) c->gran) +
                              c->gran);
        bool z = is_zero (w->buf + (pos - off), u_end - pos);
        if (pos == off)
          run_zero = z;
        else if (z != run_zero) {
          int r = run_zero ? zero_range (w, run_start, pos - run_start)
            : write_data (w, w->buf + (run_start - off), pos - run_start,
                          run_start);
          if (r == -1)
            return -1;
          run_start = pos;
          run_zero = z;
        }
        pos = u_end;
      }
      if (run_zero ? zero_range (w, run_start, piece_end - run_start) == -1
          : write_data (w, w->buf + (run_start - off), piece_end - run_start,
                        run_start) == -1)
        return -1;
    }
    atomic_fetch_add (&c->done, n);
    off = piece_end;
  }
  return 0;
}

/* Round data extents out to whole units of gran (the target's preferred
 * block: an ASIF chunk, a file system block), shrinking the zero extents
 * around them.  A unit that holds any data is then written whole, so a
 * chunked target allocates full chunks (no partial-chunk bitmaps) and no
 * unit is written twice.  The segment [off, end) is gran-aligned except
 * at the end of the disk.
 */
static void
widen_data_extents (struct worker *w, uint64_t off, uint64_t end)
{
  struct ext_vector *v = &w->src_ext;
  uint64_t gran = w->c->gran;
  size_t out = 0;

  for (size_t i = 0; i < v->len; ++i) {
    struct ext e = v->ptr[i];
    uint64_t e_end = e.offset + e.length;

    if (!(e.state & VD_STATE_ZERO)) {
      e.offset = MAX (off, ROUND_DOWN (e.offset, gran));
      e_end = MIN (end, ROUND_UP (e_end, gran));
      /* Eat into (or swallow) the zero extents before it; merge with a
       * data extent it reaches.
       */
      while (out > 0) {
        struct ext *prev = &v->ptr[out - 1];
        uint64_t prev_end = prev->offset + prev->length;
        if (!(prev->state & VD_STATE_ZERO)) {
          if (e.offset <= prev_end) {
            prev->length = MAX (prev_end, e_end) - prev->offset;
            goto next;
          }
          break;
        }
        if (e.offset >= prev_end)
          break;
        if (e.offset <= prev->offset) {
          out--;
          continue;
        }
        prev->length = e.offset - prev->offset;
        break;
      }
    }
    else if (out > 0 && !(v->ptr[out - 1].state & VD_STATE_ZERO))
      /* A zero extent starts where the (widened) data before it ends. */
      e.offset = MAX (e.offset, v->ptr[out - 1].offset +
                      v->ptr[out - 1].length);
    if (e_end <= e.offset)
      continue;
    e.length = e_end - e.offset;
    v->ptr[out++] = e;
  next:;
  }
  v->len = out;
}

static int
copy_segment (struct worker *w, uint64_t off, uint64_t end)
{
  struct copy *c = w->c;

  w->dst_ext.len = 0;
  if (c->dst_extents && !(c->flags & (VD_COPY_TARGET_IS_ZERO |
                                      VD_COPY_NO_SPARSE))) {
    if (get_extents (w->dst, off, end, &w->dst_ext) == -1)
      return -1;
  }
  if (get_extents (w->src, off, end, &w->src_ext) == -1)
    return -1;
  widen_data_extents (w, off, end);
  for (size_t i = 0; i < w->src_ext.len && !atomic_load (&c->stop); ++i) {
    const struct ext e = w->src_ext.ptr[i];
    if (e.state & VD_STATE_ZERO) {
      if (zero_range (w, e.offset, e.length) == -1)
        return -1;
      atomic_fetch_add (&c->done, e.length);
    }
    else if (copy_data (w, e.offset, e.length) == -1)
      return -1;
  }
  return 0;
}

static void *
worker_run (void *vp)
{
  struct worker *w = vp;
  struct copy *c = w->c;

  while (!atomic_load (&c->stop)) {
    uint64_t seg = atomic_fetch_add (&c->next_segment, 1);
    uint64_t off, end;
    if (seg >= DIV_ROUND_UP (c->size, c->segment))
      break;
    off = seg * c->segment;
    end = MIN (off + c->segment, c->size);
    if (copy_segment (w, off, end) == -1) {
      record_error (c);
      break;
    }
  }
  pthread_mutex_lock (&c->lock);
  c->running--;
  pthread_cond_signal (&c->cond);
  pthread_mutex_unlock (&c->lock);
  return NULL;
}

VD_API int
vd_copy (struct vd_attachment *const *src, size_t nsrc,
         struct vd_attachment *const *dst, size_t ndst, uint64_t size,
         struct vd_copy_options *opts)
{
  struct vd_copy_options o;
  struct copy c;
  struct worker *w = NULL;
  pthread_t *threads = NULL;
  unsigned n, started = 0;
  bool cancelled = false;
  int r = -1;

  vd_copy_options_init (&o);
  if (opts && opts->struct_size > sizeof (size_t))
    memcpy ((char *) &o + sizeof (size_t), (char *) opts + sizeof (size_t),
            MIN (opts->struct_size, sizeof o) - sizeof (size_t));
  if (src == NULL || dst == NULL || nsrc == 0 || ndst == 0) {
    vd_error_msg (EINVAL, "copy: no source or target");
    return -1;
  }
  for (size_t i = 0; i < nsrc; ++i) {
    int64_t s = vd_attachment_get_size (src[i]);
    if (s == -1)
      return -1;
    if ((uint64_t) s < size) {
      vd_error_msg (EINVAL, "copy: the source %s is %" PRIi64 " bytes, "
                    "less than the %" PRIu64 " to copy",
                    vd_attachment_get_name (src[i]), s, size);
      return -1;
    }
  }
  for (size_t i = 0; i < ndst; ++i) {
    int64_t s = vd_attachment_get_size (dst[i]);
    if (s == -1)
      return -1;
    if ((uint64_t) s < size) {
      vd_error_msg (ENOSPC, "%s: the target is %" PRIi64 " bytes, smaller "
                    "than the source (%" PRIu64 " bytes)",
                    vd_attachment_get_name (dst[i]), s, size);
      return -1;
    }
    if (vd_attachment_can_write (dst[i]) != 1) {
      vd_error_msg (EROFS, "%s: the target is read-only",
                    vd_attachment_get_name (dst[i]));
      return -1;
    }
  }

  memset (&c, 0, sizeof c);
  c.src = src;
  c.nsrc = nsrc;
  c.dst = dst;
  c.ndst = ndst;
  c.size = size;
  c.flags = o.flags;
  c.gran = vd_attachment_get_preferred_block_size (dst[0]);
  if (c.gran < 4096 || !is_power_of_2 (c.gran))
    c.gran = 4096;
  if (c.gran > DEFAULT_REQUEST_SIZE)
    c.gran = DEFAULT_REQUEST_SIZE;
  c.reqsize = o.request_size ? o.request_size : DEFAULT_REQUEST_SIZE;
  c.reqsize = ROUND_UP (MAX (c.reqsize, c.gran), c.gran);
  c.reqsize = MIN (c.reqsize, vd_attachment_get_max_request (src[0]));
  c.reqsize = MIN (c.reqsize, vd_attachment_get_max_request (dst[0]));
  if (c.reqsize < c.gran || !is_power_of_2 (c.reqsize)) {
    /* Odd limits: fall back to something every attachment takes. */
    c.gran = 4096;
    c.reqsize = 1024 * 1024;
  }
  c.dst_extents = vd_attachment_can_extents (dst[0]) == 1;
  n = o.requests ? o.requests : DEFAULT_REQUESTS;
  if (n > MAX_WORKERS)
    n = MAX_WORKERS;
  /* Segments: big enough to amortise block_status, small enough that
   * every worker has work.
   */
  c.segment = SEGMENT_MAX;
  while (c.segment > c.reqsize && DIV_ROUND_UP (size, c.segment) < 4 * n)
    c.segment /= 2;
  c.segment = MAX (c.segment, (uint64_t) c.reqsize);
  pthread_mutex_init (&c.lock, NULL);
  pthread_cond_init (&c.cond, NULL);

  w = calloc (n, sizeof *w);
  threads = calloc (n, sizeof *threads);
  if (w == NULL || threads == NULL) {
    vd_error (errno, "copy: allocating workers");
    goto out;
  }
  for (unsigned i = 0; i < n; ++i) {
    w[i].c = &c;
    w[i].id = i;
    w[i].src = src[i % nsrc];
    w[i].dst = dst[i % ndst];
    if (posix_memalign ((void **) &w[i].buf, 4096, c.reqsize) != 0 ||
        ((c.flags & VD_COPY_NO_SPARSE) &&
         (w[i].zero_buf = calloc (1, c.reqsize)) == NULL)) {
      vd_error (ENOMEM, "copy: allocating buffers");
      goto out;
    }
  }

  c.running = n;
  for (unsigned i = 0; i < n; ++i) {
    int err = pthread_create (&threads[i], NULL, worker_run, &w[i]);
    if (err) {
      vd_error (err, "copy: starting a thread");
      atomic_store (&c.stop, true);
      pthread_mutex_lock (&c.lock);
      c.running -= n - i;
      pthread_mutex_unlock (&c.lock);
      break;
    }
    started++;
  }

  /* Report progress while the workers run. */
  pthread_mutex_lock (&c.lock);
  while (c.running > 0) {
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait (&c.cond, &c.lock, &ts);
    if (o.progress && !cancelled) {
      pthread_mutex_unlock (&c.lock);
      if (o.progress (o.progress_user_data, atomic_load (&c.done), size) == -1) {
        cancelled = true;
        atomic_store (&c.stop, true);
      }
      pthread_mutex_lock (&c.lock);
    }
  }
  pthread_mutex_unlock (&c.lock);
  for (unsigned i = 0; i < started; ++i)
    pthread_join (threads[i], NULL);

  if (c.have_error) {
    vd_error_msg (c.error_errno, "%s", c.error_msg);
    goto out;
  }
  if (started < n)
    goto out;                   /* raised above */
  if (cancelled) {
    vd_error_msg (ECANCELED, "copy cancelled after %" PRIu64 " of %" PRIu64
                  " bytes", atomic_load (&c.done), size);
    goto out;
  }
  for (size_t i = 0; i < ndst; ++i)
    if (vd_attachment_flush (dst[i], 0) == -1)
      goto out;
  if (o.progress)
    o.progress (o.progress_user_data, size, size);
  r = 0;

 out:
  if (opts) {
    opts->bytes_written = atomic_load (&c.written);
    opts->bytes_zeroed = atomic_load (&c.zeroed);
    opts->bytes_skipped = atomic_load (&c.skipped);
  }
  if (w) {
    for (unsigned i = 0; i < n; ++i) {
      free (w[i].buf);
      free (w[i].zero_buf);
      free (w[i].src_ext.ptr);
      free (w[i].dst_ext.ptr);
    }
  }
  free (w);
  free (threads);
  pthread_mutex_destroy (&c.lock);
  pthread_cond_destroy (&c.cond);
  return r;
}
