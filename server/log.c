/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Server logs: one line per event on stderr, written with a single
 * write(2) so lines from different threads never interleave.  Lines about
 * a connection name it ("client #3 127.0.0.1:40112"), so a rejected
 * request can be traced to its client.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static void
emit (const char *prefix, const char *fmt, va_list args)
{
  char line[1024];
  size_t n;
  int r;

  r = snprintf (line, sizeof line, "vdisk serve: %s", prefix);
  n = r < 0 ? 0 : (size_t) r;
  if (n < sizeof line) {
    r = vsnprintf (line + n, sizeof line - n, fmt, args);
    n = r < 0 ? n : n + (size_t) r;
  }
  if (n >= sizeof line - 1) {
    n = sizeof line - 1;
    memcpy (line + n - 3, "...", 3);
  }
  line[n++] = '\n';
  /* stderr is unbuffered; a single write keeps the line whole. */
  if (write (STDERR_FILENO, line, n) == -1) {
    /* Nowhere left to report it. */
  }
}

void
srv_log (struct server *s, const char *fmt, ...)
{
  va_list args;

  if (s->cfg.verbose < 0)
    return;
  va_start (args, fmt);
  emit ("", fmt, args);
  va_end (args);
}

void
conn_log (struct conn *c, const char *fmt, ...)
{
  char prefix[160];
  va_list args;

  if (c->s->cfg.verbose < 0)
    return;                     /* silenced (fuzzing) */
  snprintf (prefix, sizeof prefix, "client #%llu %s: ",
            (unsigned long long) c->id, c->peer ? c->peer : "?");
  va_start (args, fmt);
  emit (prefix, fmt, args);
  va_end (args);
}
