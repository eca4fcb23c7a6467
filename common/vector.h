/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * A typed growable array (the idea of nbdkit's DEFINE_VECTOR_TYPE):
 *
 *   DEFINE_VECTOR_TYPE (int_vector, int);
 *   struct int_vector v = empty_vector;
 *   if (int_vector_append (&v, 42) == -1) ... errno is ENOMEM
 *   ... v.ptr[i], v.len ...
 *   free (v.ptr);
 *
 * Growth is geometric; append and reserve return -1 with errno = ENOMEM
 * (or EOVERFLOW) and leave the vector unchanged on failure.
 */
#ifndef VD_VECTOR_H
#define VD_VECTOR_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct vd_generic_vector {
  void *ptr;
  size_t len;
  size_t cap;
};

/* Make room for n more elements of size itemsize.  0 or -1 (errno). */
int vd_generic_vector_reserve (struct vd_generic_vector *v, size_t n,
                               size_t itemsize);

#define DEFINE_VECTOR_TYPE(name, type)                                  \
  struct name {                                                         \
    type *ptr;                                                          \
    size_t len;                                                         \
    size_t cap;                                                         \
  };                                                                    \
  static inline int __attribute__ ((__unused__))                        \
  name##_reserve (struct name *v, size_t n)                                    \
  {                                                                     \
    return vd_generic_vector_reserve ((struct vd_generic_vector *) v,   \
                                      n, sizeof (type));                \
  }                                                                     \
  static inline int __attribute__ ((__unused__))                        \
  name##_append (struct name *v, type elem)                                    \
  {                                                                     \
    if (v->len >= v->cap && name##_reserve (v, 1) == -1)                \
      return -1;                                                        \
    v->ptr[v->len++] = elem;                                            \
    return 0;                                                           \
  }                                                                     \
  static inline void __attribute__ ((__unused__))                       \
  name##_reset (struct name *v)                                                \
  {                                                                     \
    free (v->ptr);                                                      \
    v->ptr = NULL;                                                      \
    v->len = v->cap = 0;                                                \
  }

#define empty_vector { .ptr = NULL, .len = 0, .cap = 0 }

#endif
