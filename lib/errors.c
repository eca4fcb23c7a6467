/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Thread-local last error.  The message lives in a fixed per-thread
 * buffer: no allocation, so raising an error can never fail and nothing
 * needs freeing at thread exit.  Messages longer than the buffer are
 * truncated with "...".
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vdisk/error.h"
#include "errors.h"

#define ERRBUF_SIZE 2048

static __thread char errbuf[ERRBUF_SIZE];
static __thread bool have_error;
static __thread int last_errno;

static void
truncated (size_t n)
{
  if (n >= ERRBUF_SIZE)
    memcpy (errbuf + ERRBUF_SIZE - 4, "...", 4);
}

void
vd_verror (int errnum, const char *fmt, va_list args)
{
  int saved = errno;
  int n;
  char tmp[ERRBUF_SIZE];

  /* Format into a temporary first: fmt's arguments may point into
   * errbuf (vd_get_error () passed back in as context).
   */
  n = vsnprintf (tmp, sizeof tmp, fmt, args);
  if (n < 0)
    n = 0;
  if (errnum != 0 && (size_t) n < sizeof tmp) {
    char ebuf[128];
    const char *e = strerror_r (errnum, ebuf, sizeof ebuf);
    n += snprintf (tmp + n, sizeof tmp - n, ": %s", e);
  }
  memcpy (errbuf, tmp, sizeof errbuf);
  truncated (n);
  have_error = true;
  last_errno = errnum;
  errno = saved;
}

void
vd_error (int errnum, const char *fmt, ...)
{
  va_list args;

  va_start (args, fmt);
  vd_verror (errnum, fmt, args);
  va_end (args);
}

void
vd_error_msg (int errnum, const char *fmt, ...)
{
  va_list args;
  int saved = errno;
  int n;
  char tmp[ERRBUF_SIZE];

  va_start (args, fmt);
  n = vsnprintf (tmp, sizeof tmp, fmt, args);
  va_end (args);
  memcpy (errbuf, tmp, sizeof errbuf);
  truncated (n < 0 ? 0 : (size_t) n);
  have_error = true;
  last_errno = errnum;
  errno = saved;
}

void
vd_error_prefix (const char *fmt, ...)
{
  va_list args;
  int saved = errno;
  char tmp[ERRBUF_SIZE];
  int n;

  va_start (args, fmt);
  n = vsnprintf (tmp, sizeof tmp, fmt, args);
  va_end (args);
  if (n < 0)
    n = 0;
  if ((size_t) n < sizeof tmp)
    n += snprintf (tmp + n, sizeof tmp - n, ": %s",
                   have_error ? errbuf : "unknown error");
  memcpy (errbuf, tmp, sizeof errbuf);
  truncated (n);
  have_error = true;
  errno = saved;
}

void
vd_error_clear (void)
{
  have_error = false;
  last_errno = 0;
  errbuf[0] = '\0';
}

int
vd_error_errno (void)
{
  return last_errno;
}

VD_API const char *
vd_get_error (void)
{
  return have_error ? errbuf : NULL;
}

VD_API int
vd_get_errno (void)
{
  return last_errno;
}

void
vd_warning (const char *fmt, ...)
{
  va_list args;
  char tmp[ERRBUF_SIZE];

  va_start (args, fmt);
  vsnprintf (tmp, sizeof tmp, fmt, args);
  va_end (args);
  fprintf (stderr, "vdisk: warning: %s\n", tmp);
}
