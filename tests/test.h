/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Minimal helpers for C tests (they link the internal library, so they
 * can reach lib/ internals).  A failed check prints the file, line,
 * expression and the library's last error, and exits 1.  Skip with
 * exit (SKIP).  Each negative check verifies both that the call failed
 * and that it raised the expected errno with a useful message, as
 * nbdkit's test-public.c does.
 */
#ifndef VD_TEST_H
#define VD_TEST_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdbool.h>

#include "vdisk/vdisk.h"
#include "errors.h"

#define SKIP 77

#define CHECK(expr) do {                                                \
    if (!(expr)) {                                                      \
      const char *_e = vd_get_error ();                                 \
      fprintf (stderr, "%s:%d: check failed: %s\n  last error: %s "    \
               "(errno %d)\n", __FILE__, __LINE__, #expr,               \
               _e ? _e : "(none)", vd_get_errno ());                    \
      exit (1);                                                         \
    }                                                                   \
  } while (0)

static inline void
test_check_error (const char *file, int line, const char *what, bool failed,
                  int err, const char *substr)
{
  const char *e = vd_get_error ();

  if (!failed) {
    fprintf (stderr, "%s:%d: %s succeeded, expected errno %d (%s)\n",
             file, line, what, err, strerror (err));
    exit (1);
  }
  if (vd_get_errno () != err || e == NULL ||
      (substr && strstr (e, substr) == NULL)) {
    fprintf (stderr, "%s:%d: %s: expected errno %d with \"%s\", got errno "
             "%d with \"%s\"\n", file, line, what, err, substr ? substr : "",
             vd_get_errno (), e ? e : "(none)");
    exit (1);
  }
}

/* An int-returning call must return -1 with errno err. */
#define CHECK_FAILS(expr, err, substr) do {                             \
    vd_error_clear ();                                                  \
    int _r = (expr);                                                    \
    test_check_error (__FILE__, __LINE__, #expr, _r == -1, (err),       \
                      (substr));                                        \
  } while (0)

/* A pointer-returning call must return NULL with errno err. */
#define CHECK_NULL(expr, err, substr) do {                              \
    vd_error_clear ();                                                  \
    const void *_p = (expr);                                            \
    test_check_error (__FILE__, __LINE__, #expr, _p == NULL, (err),     \
                      (substr));                                        \
  } while (0)

/* A directory for temporary files on a real file system (O_DIRECT does
 * not work on tmpfs): $VD_TEST_TMPDIR, else the build directory's tmp/.
 * The caller removes what it creates.
 */
static inline const char *
test_tmpdir (void)
{
  const char *d = getenv ("VD_TEST_TMPDIR");
  return d && *d ? d : ".";
}

/* "<tmpdir>/<prefix>-<pid>-<n>" into buf. */
static inline char *
test_tmpname (char *buf, size_t len, const char *prefix)
{
  static int n;
  snprintf (buf, len, "%s/%s-%d-%d", test_tmpdir (), prefix, (int) getpid (),
            n++);
  return buf;
}

#endif
