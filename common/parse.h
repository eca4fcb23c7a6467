/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Strict number parsing (instead of atoi/strtoul, which accept junk,
 * negative numbers and overflow silently).  Each returns 0, or -1 with
 * errno EINVAL (not a number, junk after it, empty) or ERANGE.
 */
#ifndef VD_PARSE_H
#define VD_PARSE_H

#include <stdint.h>

int vd_parse_uint64 (const char *s, uint64_t *out);
int vd_parse_uint32 (const char *s, uint32_t *out);
int vd_parse_int (const char *s, int min, int max, int *out);
/* A non-negative decimal number of seconds ("2", "0.5"). */
int vd_parse_seconds (const char *s, double *out);

#endif
