/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Copying one attachment into another (what `vdisk image convert` does),
 * sparse-aware and parallel.
 */
#ifndef VDISK_COPY_H
#define VDISK_COPY_H

#include <stddef.h>
#include <stdint.h>

#include <vdisk/attachment.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Copy flags. */
#define VD_COPY_NO_SPARSE      (1u << 0) /* write every byte, zeros too, so
                                            the target ends fully allocated */
#define VD_COPY_TARGET_IS_ZERO (1u << 1) /* the target reads as zeros already
                                            (freshly created): zero ranges
                                            are skipped, not written */

/* Called on the thread that called vd_copy, about ten times a second and
 * once at the end: done and total are bytes of the source covered so far
 * and in all.  Return -1 to cancel the copy (vd_copy then fails with
 * ECANCELED once the requests in flight have finished).
 */
typedef int (*vd_copy_progress_fn) (void *user_data, uint64_t done,
                                    uint64_t total);

struct vd_copy_options {
  size_t struct_size;           /* sizeof (struct vd_copy_options) */
  uint32_t flags;               /* VD_COPY_* */
  unsigned requests;            /* requests in flight (worker threads);
                                   0: 8 */
  uint32_t request_size;        /* bytes per read; 0: 2 MiB, rounded to the
                                   target's preferred block size */
  vd_copy_progress_fn progress; /* may be NULL */
  void *progress_user_data;
  uint64_t bytes_written;       /* out: data bytes written to the target */
  uint64_t bytes_zeroed;        /* out: bytes made zero with write_zeroes */
  uint64_t bytes_skipped;       /* out: zero bytes skipped (target already
                                   zero there) */
};

/* Defaults: sparse, 8 requests in flight, 2 MiB requests, no progress. */
VD_API void vd_copy_options_init (struct vd_copy_options *opts);

/* Copy the first size bytes of the source into the target.
 *
 * src and dst are arrays of attachments to the same source and the same
 * target (nsrc, ndst >= 1): give several NBD attachments (connections) to
 * spread the requests over them; a single attachment is shared by all
 * requests (attachments are thread-safe).  Each must be at least size
 * bytes; the targets must be writable.
 *
 * The source's block_status drives the copy: holes and zero ranges are
 * never written as data; with VD_COPY_TARGET_IS_ZERO (or where the target
 * itself reports zeros) they are skipped, else made zero with
 * write_zeroes (allowing trim).  Data that reads as zeros is treated the
 * same, in units of the target's preferred block size, so a RAW target
 * stays sparse and an ASIF target allocates only chunks that hold data.
 * The targets are flushed at the end.
 *
 * Returns 0, or -1 with the first error (ECANCELED if cancelled).  On
 * failure the target holds a partial copy.  Blocks until done; starts and
 * joins its own threads.
 */
VD_API int vd_copy (struct vd_attachment *const *src, size_t nsrc,
                    struct vd_attachment *const *dst, size_t ndst,
                    uint64_t size, struct vd_copy_options *opts);

#ifdef __cplusplus
}
#endif

#endif /* VDISK_COPY_H */
