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

#include <stddef.h>
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

#endif
