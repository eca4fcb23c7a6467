/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "parse.h"

int
vd_parse_uint64 (const char *s, uint64_t *out)
{
  char *end;
  unsigned long long v;

  /* strtoull skips spaces and accepts a sign; we accept neither. */
  if (s == NULL || !isdigit ((unsigned char) s[0])) {
    errno = EINVAL;
    return -1;
  }
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno == ERANGE)
    return -1;
  if (*end != '\0') {
    errno = EINVAL;
    return -1;
  }
  *out = v;
  return 0;
}

int
vd_parse_uint32 (const char *s, uint32_t *out)
{
  uint64_t v;

  if (vd_parse_uint64 (s, &v) == -1)
    return -1;
  if (v > UINT32_MAX) {
    errno = ERANGE;
    return -1;
  }
  *out = v;
  return 0;
}

int
vd_parse_int (const char *s, int min, int max, int *out)
{
  char *end;
  long v;

  if (s == NULL || !(isdigit ((unsigned char) s[0]) ||
                     (s[0] == '-' && isdigit ((unsigned char) s[1])))) {
    errno = EINVAL;
    return -1;
  }
  errno = 0;
  v = strtol (s, &end, 10);
  if (errno == ERANGE)
    return -1;
  if (*end != '\0') {
    errno = EINVAL;
    return -1;
  }
  if (v < min || v > max) {
    errno = ERANGE;
    return -1;
  }
  *out = v;
  return 0;
}

int
vd_parse_seconds (const char *s, double *out)
{
  char *end;
  double v;

  if (s == NULL || !(isdigit ((unsigned char) s[0]) || s[0] == '.')) {
    errno = EINVAL;
    return -1;
  }
  errno = 0;
  v = strtod (s, &end);
  if (errno == ERANGE)
    return -1;
  if (*end != '\0' || !isfinite (v) || v < 0) {
    errno = EINVAL;
    return -1;
  }
  *out = v;
  return 0;
}
