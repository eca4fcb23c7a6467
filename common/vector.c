/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "checked-overflow.h"
#include "vector.h"

int
vd_generic_vector_reserve (struct vd_generic_vector *v, size_t n,
                           size_t itemsize)
{
  size_t want, newcap, bytes;
  void *p;

  if (ADD_OVERFLOW (v->len, n, &want)) {
    errno = EOVERFLOW;
    return -1;
  }
  if (want <= v->cap)
    return 0;
  newcap = v->cap ? v->cap : 8;
  while (newcap < want) {
    if (MUL_OVERFLOW (newcap, (size_t) 2, &newcap)) {
      errno = EOVERFLOW;
      return -1;
    }
  }
  if (MUL_OVERFLOW (newcap, itemsize, &bytes)) {
    errno = EOVERFLOW;
    return -1;
  }
  p = realloc (v->ptr, bytes);
  if (p == NULL)
    return -1;
  v->ptr = p;
  v->cap = newcap;
  return 0;
}
