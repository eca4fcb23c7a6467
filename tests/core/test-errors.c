/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The thread-local error: per thread, errno kept, strerror appended only
 * when asked, long messages truncated, prefixes keep the errno.
 */
#include "config.h"

#include <pthread.h>

#include "test.h"

static void *
other_thread (void *arg)
{
  /* A fresh thread has no error... */
  if (vd_get_error () != NULL || vd_get_errno () != 0)
    return (void *) 1;
  vd_error (EPERM, "thread %d", 2);
  if (strcmp (vd_get_error (), "thread 2: Operation not permitted") != 0)
    return (void *) 1;
  return NULL;
}

int
main (void)
{
  pthread_t t;
  void *ret;
  char big[5000];

  vd_error (EIO, "disk.img: read at offset %d", 512);
  CHECK (strcmp (vd_get_error (), "disk.img: read at offset 512: "
                 "Input/output error") == 0);
  CHECK (vd_get_errno () == EIO);
  /* ...and this thread's error is not changed by another thread. */
  CHECK (pthread_create (&t, NULL, other_thread, NULL) == 0);
  CHECK (pthread_join (t, &ret) == 0 && ret == NULL);
  CHECK (vd_get_errno () == EIO);
  CHECK (strstr (vd_get_error (), "offset 512") != NULL);

  vd_error_msg (EBUSY, "x: in use");
  CHECK (strcmp (vd_get_error (), "x: in use") == 0 && vd_get_errno () == EBUSY);
  vd_error_prefix ("layer %s", "asif");
  CHECK (strcmp (vd_get_error (), "layer asif: x: in use") == 0);
  CHECK (vd_get_errno () == EBUSY);
  /* The message may be passed back in as an argument. */
  vd_error_msg (EINVAL, "again: %s", vd_get_error ());
  CHECK (strcmp (vd_get_error (), "again: layer asif: x: in use") == 0);

  /* errno survives raising an error. */
  errno = ENOENT;
  vd_error (EIO, "y");
  CHECK (errno == ENOENT);

  memset (big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  vd_error (ENOSPC, "%s", big);
  CHECK (strlen (vd_get_error ()) < sizeof big);
  CHECK (strcmp (vd_get_error () + strlen (vd_get_error ()) - 3, "...") == 0);
  CHECK (vd_get_errno () == ENOSPC);

  vd_error_clear ();
  CHECK (vd_get_error () == NULL && vd_get_errno () == 0);
  printf ("test-errors: OK\n");
  return 0;
}
