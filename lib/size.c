/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Sizes as `diskutil image create blank --size` takes them: decimal
 * units for k/m/g/t/p (with or without "B"), binary for KiB/MiB/...
 * (diskutil, unlike hdiutil, reads "G" as 10^9).  A pure function over a
 * string: fuzzed by fuzz/fuzz-size.c.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "vdisk/image.h"
#include "errors.h"

struct unit {
  const char *name;
  uint64_t mult;
};

static const struct unit units[] = {
  { "", 1 }, { "b", 1 },
  { "k", UINT64_C (1000) }, { "kb", UINT64_C (1000) },
  { "m", UINT64_C (1000000) }, { "mb", UINT64_C (1000000) },
  { "g", UINT64_C (1000000000) }, { "gb", UINT64_C (1000000000) },
  { "t", UINT64_C (1000000000000) }, { "tb", UINT64_C (1000000000000) },
  { "p", UINT64_C (1000000000000000) }, { "pb", UINT64_C (1000000000000000) },
  { "kib", UINT64_C (1) << 10 }, { "mib", UINT64_C (1) << 20 },
  { "gib", UINT64_C (1) << 30 }, { "tib", UINT64_C (1) << 40 },
  { "pib", UINT64_C (1) << 50 },
};

VD_API int
vd_parse_size (const char *str, uint64_t *size_out)
{
  const char *p = str;
  uint64_t whole = 0, frac = 0, frac_scale = 1, mult = 0, v, f;
  bool digits = false, have_frac = false;
  size_t i;

  if (str == NULL) {
    vd_error_msg (EINVAL, "missing size");
    return -1;
  }
  while (isdigit ((unsigned char) *p)) {
    if (__builtin_mul_overflow (whole, 10, &whole) ||
        __builtin_add_overflow (whole, (uint64_t) (*p - '0'), &whole))
      goto range;
    digits = true;
    p++;
  }
  if (*p == '.') {
    have_frac = true;
    p++;
    while (isdigit ((unsigned char) *p)) {
      if (frac_scale >= UINT64_C (1000000000000000000)) {
        vd_error_msg (EINVAL, "size '%s': too many decimal places", str);
        return -1;
      }
      frac = frac * 10 + (*p - '0');
      frac_scale *= 10;
      digits = true;
      p++;
    }
  }
  if (!digits) {
    vd_error_msg (EINVAL, "size '%s' is not a number (examples: 10GB, "
                  "512MiB, 1073741824)", str);
    return -1;
  }
  for (i = 0; i < sizeof units / sizeof units[0]; ++i)
    if (strcasecmp (p, units[i].name) == 0) {
      mult = units[i].mult;
      break;
    }
  if (mult == 0) {
    vd_error_msg (EINVAL, "size '%s': unknown unit '%s' (use b, k/KB, m/MB, "
                  "g/GB, t/TB, p/PB for powers of 1000, or KiB, MiB, GiB, "
                  "TiB, PiB for powers of 1024)", str, p);
    return -1;
  }
  if (__builtin_mul_overflow (whole, mult, &v))
    goto range;
  if (have_frac && frac > 0) {
    /* frac / frac_scale * mult must be a whole number of bytes. */
    if (__builtin_mul_overflow (frac, mult, &f))
      goto range;
    if (f % frac_scale != 0) {
      vd_error_msg (EINVAL, "size '%s' is not a whole number of bytes", str);
      return -1;
    }
    if (__builtin_add_overflow (v, f / frac_scale, &v))
      goto range;
  }
  *size_out = v;
  return 0;

 range:
  vd_error_msg (ERANGE, "size '%s' is too large", str);
  return -1;
}
