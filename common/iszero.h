/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * is_zero: true if a buffer is all zero bytes.  Checks a small prefix
 * byte by byte, then compares the buffer with itself shifted by 16 bytes,
 * which lets memcmp run at full speed (the trick nbdkit and QEMU use).
 */
#ifndef VD_ISZERO_H
#define VD_ISZERO_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static inline bool
is_zero (const void *buf, size_t size)
{
  const char *p = buf;
  const size_t limit = size < 16 ? size : 16;
  size_t i;

  for (i = 0; i < limit; ++i)
    if (p[i])
      return false;
  if (i < size)
    return memcmp (p, p + i, size - i) == 0;
  return true;
}

#endif
