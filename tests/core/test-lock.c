/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Image locking: one writer or many readers, across processes and within
 * one process; the error names the process holding the lock; force-share
 * (VD_OPEN_NO_LOCK) bypasses it; the lock goes away with the holder.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static struct vd_attachment *
open_img (const char *path, uint32_t flags)
{
  struct vd_open_options o;
  vd_open_options_init (&o);
  o.flags = flags;
  return vd_attachment_open (path, &o);
}

int
main (void)
{
  char path[256], pidstr[64];
  struct vd_attachment *w, *r1, *r2, *x;
  int pipefd[2];
  pid_t child;
  char c;

  test_tmpname (path, sizeof path, "lock");
  CHECK (vd_image_create (path, VD_FORMAT_RAW, 1 << 20, 0) == 0);

  /* Writer excludes a second writer and readers (same process). */
  w = open_img (path, 0);
  CHECK (w != NULL);
  snprintf (pidstr, sizeof pidstr, "process %d", (int) getpid ());
  CHECK_NULL (open_img (path, 0), EBUSY, pidstr);
  CHECK_NULL (open_img (path, 0), EBUSY, "open for writing");
  CHECK_NULL (open_img (path, VD_OPEN_READ_ONLY), EBUSY, "in use");
  /* Force-share opens anyway. */
  x = open_img (path, VD_OPEN_READ_ONLY | VD_OPEN_NO_LOCK);
  CHECK (x != NULL);
  CHECK (vd_attachment_close (x) == 0);
  CHECK (vd_attachment_close (w) == 0);

  /* Readers share; a writer is refused while any reader is open. */
  r1 = open_img (path, VD_OPEN_READ_ONLY);
  r2 = open_img (path, VD_OPEN_READ_ONLY);
  CHECK (r1 != NULL && r2 != NULL);
  CHECK_NULL (open_img (path, 0), EBUSY, "open for reading");
  CHECK (vd_attachment_close (r1) == 0);
  CHECK_NULL (open_img (path, 0), EBUSY, "in use");
  CHECK (vd_attachment_close (r2) == 0);
  w = open_img (path, 0);
  CHECK (w != NULL);
  CHECK (vd_attachment_close (w) == 0);

  /* Another process holds the writer lock: the message names its PID. */
  CHECK (pipe (pipefd) == 0);
  child = fork ();
  CHECK (child >= 0);
  if (child == 0) {
    struct vd_attachment *cw = open_img (path, 0);
    if (cw == NULL)
      _exit (1);
    if (write (pipefd[1], "x", 1) != 1)
      _exit (1);
    pause ();
    _exit (0);
  }
  CHECK (read (pipefd[0], &c, 1) == 1);
  snprintf (pidstr, sizeof pidstr, "process %d", (int) child);
  CHECK_NULL (open_img (path, 0), EBUSY, pidstr);
  CHECK_NULL (open_img (path, VD_OPEN_READ_ONLY), EBUSY, pidstr);
  /* vd_image_create refuses to overwrite an image in use. */
  CHECK_FAILS (vd_image_create (path, VD_FORMAT_RAW, 4096,
                                VD_CREATE_OVERWRITE), EBUSY, pidstr);
  /* kill -9: the lock dies with the process. */
  kill (child, SIGKILL);
  waitpid (child, NULL, 0);
  w = open_img (path, 0);
  CHECK (w != NULL);
  CHECK (vd_attachment_get_size (w) == 1 << 20);
  CHECK (vd_attachment_close (w) == 0);

  unlink (path);
  printf ("test-lock: OK\n");
  return 0;
}
