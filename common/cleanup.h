/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Scope-bound cleanup for internal code (gcc and clang only; never in
 * public headers).
 */
#ifndef VD_CLEANUP_H
#define VD_CLEANUP_H

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static inline void
cleanup_free (void *ptr)
{
  free (*(void **) ptr);
}
#define CLEANUP_FREE __attribute__ ((cleanup (cleanup_free)))

static inline void
cleanup_close (int *fd)
{
  if (*fd >= 0)
    close (*fd);
}
#define CLEANUP_CLOSE __attribute__ ((cleanup (cleanup_close)))

static inline void
cleanup_mutex_unlock (pthread_mutex_t **ptr)
{
  pthread_mutex_unlock (*ptr);
}
#define VD_CONCAT_(a, b) a##b
#define VD_CONCAT(a, b) VD_CONCAT_ (a, b)
#define ACQUIRE_LOCK_FOR_CURRENT_SCOPE(mutex)                           \
  pthread_mutex_t *VD_CONCAT (_lock_, __LINE__)                         \
    __attribute__ ((cleanup (cleanup_mutex_unlock), unused)) = (mutex); \
  pthread_mutex_lock (VD_CONCAT (_lock_, __LINE__))

#endif
