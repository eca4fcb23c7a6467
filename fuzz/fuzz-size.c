/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Fuzz target: the diskutil-style size parser (vd_parse_size), which
 * reads argv.  Checks that it never crashes, and that a value it accepts
 * prints back to a string it parses to the same value.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdisk/image.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *s = malloc (size + 1);
  uint64_t v, v2;
  char back[32];

  if (s == NULL)
    return 0;
  memcpy (s, data, size);
  s[size] = '\0';
  if (vd_parse_size (s, &v) == 0) {
    snprintf (back, sizeof back, "%" PRIu64, v);
    if (vd_parse_size (back, &v2) != 0 || v2 != v)
      abort ();
  }
  free (s);
  return 0;
}
