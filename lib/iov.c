/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Scatter/gather helpers (iov.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aligned-alloc.h"
#include "errors.h"
#include "iov.h"

/* Copy n bytes between buf and the segments, from byte skip of the
 * segments (to_iov: buf to segments, else segments to buf).
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

void
vd_iov_cursor_init (struct vd_iov_cursor *c, const struct iovec *iov,
                    int iovcnt)
{
  *c = (struct vd_iov_cursor) { .iov = iov, .iovcnt = iovcnt };
}

int
vd_iov_cursor_take (struct vd_iov_cursor *c, size_t n, struct iovec *sub)
{
  int k = 0;

  while (n > 0 && c->i < c->iovcnt) {
    size_t left = c->iov[c->i].iov_len - c->off;
    size_t m = left < n ? left : n;

    if (m > 0) {
      sub[k].iov_base = (unsigned char *) c->iov[c->i].iov_base + c->off;
      sub[k].iov_len = m;
      k++;
    }
    n -= m;
    c->off += m;
    if (c->off == c->iov[c->i].iov_len) {
      c->i++;
      c->off = 0;
    }
  }
  return k;
}

void
vd_iov_zero (const struct iovec *iov, int iovcnt, size_t n)
{
  for (int i = 0; i < iovcnt && n > 0; ++i) {
    size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
    memset (iov[i].iov_base, 0, k);
    n -= k;
  }
}

int
vd_iov_bounce (const struct iovec *iov, int iovcnt, size_t count,
               uint64_t offset, bool write, size_t align, size_t max,
               vd_iov_piece_fn piece, void *opaque, const char *name)
{
  size_t bsize = count < max ? count : max;
  char *buf = vd_aligned_alloc (align, bsize);
  int r = 0;

  if (buf == NULL) {
    vd_error (errno, "%s: allocating a %zu byte I/O buffer", name, bsize);
    return -1;
  }
  for (size_t done = 0; done < count && r == 0; ) {
    size_t n = count - done < bsize ? count - done : bsize;
    if (write)
      vd_iov_to_buf (iov, iovcnt, done, buf, n);
    r = piece (opaque, buf, n, offset + done, write);
    if (r == 0 && !write)
      vd_iov_from_buf (iov, iovcnt, done, buf, n);
    done += n;
  }
  vd_aligned_free (buf);
  return r;
}
