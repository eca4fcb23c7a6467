/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Scatter/gather helpers (iov.h).
 */
#include "config.h"

#include <string.h>

#include "iov.h"

/* Walk the segments from byte skip, calling copy on each piece of the n
 * bytes (to_iov: buf to segment, else segment to buf).
 */
static void
walk (const struct iovec *iov, int iovcnt, size_t skip, unsigned char *buf,
      size_t n, int to_iov)
{
  for (int i = 0; i < iovcnt && n > 0; ++i) {
    size_t len = iov[i].iov_len, k;
    unsigned char *base = iov[i].iov_base;

    if (skip >= len) {
      skip -= len;
      continue;
    }
    k = len - skip < n ? len - skip : n;
    if (to_iov)
      memcpy (base + skip, buf, k);
    else
      memcpy (buf, base + skip, k);
    skip = 0;
    buf += k;
    n -= k;
  }
}

void
vd_iov_from_buf (const struct iovec *iov, int iovcnt, size_t skip,
                 const void *buf, size_t n)
{
  walk (iov, iovcnt, skip, (unsigned char *) buf, n, 1);
}

void
vd_iov_to_buf (const struct iovec *iov, int iovcnt, size_t skip, void *buf,
               size_t n)
{
  walk (iov, iovcnt, skip, buf, n, 0);
}
