/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Scatter/gather helpers for the vectored I/O calls
 * (vd_attachment_preadv/pwritev): the fallback through a buffer for
 * backends without native vectored I/O, and for O_DIRECT requests whose
 * segments are not aligned.
 */
#ifndef VD_LIB_IOV_H
#define VD_LIB_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Copy n bytes from buf into the segments, starting skip bytes into
 * them (scatter).  The segments must hold skip + n bytes.
 */
void vd_iov_from_buf (const struct iovec *iov, int iovcnt, size_t skip,
                      const void *buf, size_t n);

/* Copy n bytes out of the segments, starting skip bytes into them, to
 * buf (gather).
 */
void vd_iov_to_buf (const struct iovec *iov, int iovcnt, size_t skip,
                    void *buf, size_t n);

/* A position in a vector of segments, for cutting it into consecutive
 * pieces without copying.
 */
struct vd_iov_cursor {
  const struct iovec *iov;
  int iovcnt;
  int i;                        /* current segment */
  size_t off;                   /* bytes of it already taken */
};

void vd_iov_cursor_init (struct vd_iov_cursor *c, const struct iovec *iov,
                         int iovcnt);

/* Point sub (room for c->iovcnt entries) at the next n bytes and move
 * past them; the number of entries (0 for n = 0).  The segments must
 * hold n more bytes.  Empty segments are left out.
 */
int vd_iov_cursor_take (struct vd_iov_cursor *c, size_t n,
                        struct iovec *sub);

/* Fill the n bytes of the segments with zeros. */
void vd_iov_zero (const struct iovec *iov, int iovcnt, size_t n);

/* One piece of a bounced transfer: n bytes at offset, between buf and
 * the storage (write: buf holds the data).  0 or -1 (raised).
 */
typedef int (*vd_iov_piece_fn) (void *opaque, void *buf, size_t n,
                                uint64_t offset, bool write);

/* A vectored transfer of count bytes at offset done by a callee that
 * takes one buffer: through a buffer aligned to align (a power of two),
 * at most max bytes at a time, gathering before each
 * piece written and scattering after each piece read.  name is for the
 * allocation error.  0 or -1 (raised).
 */
int vd_iov_bounce (const struct iovec *iov, int iovcnt, size_t count,
                   uint64_t offset, bool write, size_t align, size_t max,
                   vd_iov_piece_fn piece, void *opaque, const char *name);

#endif
