/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "uuid.h"

int
vd_uuid_generate (uint8_t u[16])
{
  size_t got = 0;

  while (got < 16) {
    ssize_t r = getrandom (u + got, 16 - got, 0);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    got += r;
  }
  u[6] = (u[6] & 0x0f) | 0x40;  /* version 4 */
  u[8] = (u[8] & 0x3f) | 0x80;  /* variant 10 (RFC 4122) */
  return 0;
}

void
vd_uuid_format (const uint8_t u[16], char out[VD_UUID_STRLEN + 1])
{
  static const char hex[] = "0123456789abcdef";
  size_t i, j = 0;

  for (i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[j++] = '-';
    out[j++] = hex[u[i] >> 4];
    out[j++] = hex[u[i] & 15];
  }
  out[j] = '\0';
}

static int
hexval (char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int
vd_uuid_parse (const char *s, uint8_t u[16])
{
  size_t i, j = 0;

  if (strlen (s) != VD_UUID_STRLEN)
    return -1;
  for (i = 0; i < 16; ++i) {
    int hi, lo;
    if (j == 8 || j == 13 || j == 18 || j == 23) {
      if (s[j] != '-')
        return -1;
      j++;
    }
    hi = hexval (s[j]);
    lo = hexval (s[j + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    u[i] = hi << 4 | lo;
    j += 2;
  }
  return 0;
}
