/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vd_parse_size: diskutil's units, table-driven (nbdkit test-public.c
 * style): every row checks the value or the error and its message.
 */
#include "config.h"

#include <inttypes.h>

#include "test.h"

static const struct {
  const char *in;
  uint64_t want;                /* if err == 0 */
  int err;
  const char *msg;
} cases[] = {
  { "0", 0, 0, NULL },
  { "1", 1, 0, NULL },
  { "512", 512, 0, NULL },
  { "512b", 512, 0, NULL },
  { "512B", 512, 0, NULL },
  { "1k", 1000, 0, NULL },
  { "1K", 1000, 0, NULL },
  { "1KB", 1000, 0, NULL },
  { "1kb", 1000, 0, NULL },
  { "1KiB", 1024, 0, NULL },
  { "1kib", 1024, 0, NULL },
  { "10m", 10000000, 0, NULL },
  { "10MB", 10000000, 0, NULL },
  { "10MiB", 10485760, 0, NULL },
  { "100G", UINT64_C (100000000000), 0, NULL },
  { "100GB", UINT64_C (100000000000), 0, NULL },
  { "100g", UINT64_C (100000000000), 0, NULL },
  { "100GiB", UINT64_C (107374182400), 0, NULL },
  { "10TB", UINT64_C (10000000000000), 0, NULL },
  { "10t", UINT64_C (10000000000000), 0, NULL },
  { "2TiB", UINT64_C (2199023255552), 0, NULL },
  { "4PB", UINT64_C (4000000000000000), 0, NULL },
  { "1PiB", UINT64_C (1125899906842624), 0, NULL },
  { "1.5GB", UINT64_C (1500000000), 0, NULL },
  { "1.5GiB", UINT64_C (1610612736), 0, NULL },
  { "0.5k", 500, 0, NULL },
  { ".5MB", 500000, 0, NULL },
  { "1073741824", UINT64_C (1073741824), 0, NULL },
  { "18446744073709551615", UINT64_MAX, 0, NULL },
  /* Errors. */
  { "", 0, EINVAL, "not a number" },
  { "GB", 0, EINVAL, "not a number" },
  { "-1", 0, EINVAL, "not a number" },
  { " 1", 0, EINVAL, "not a number" },
  { "+5", 0, EINVAL, "not a number" },
  { "1 GB", 0, EINVAL, "unknown unit" },
  { "1GBB", 0, EINVAL, "unknown unit" },
  { "1x", 0, EINVAL, "unknown unit" },
  { "1e9", 0, EINVAL, "unknown unit" },
  { "0x10", 0, EINVAL, "unknown unit" },
  { "1..5G", 0, EINVAL, "unknown unit" },
  { "0.1b", 0, EINVAL, "whole number" },
  { "1.0001k", 0, EINVAL, "whole number" },
  { "18446744073709551616", 0, ERANGE, "too large" },   /* UINT64_MAX + 1 */
  { "18446744073709551615k", 0, ERANGE, "too large" },
  { "20000PB", 0, ERANGE, "too large" },
  { "99999999999999999999999", 0, ERANGE, "too large" },
};

int
main (void)
{
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    uint64_t v = 12345;
    vd_error_clear ();
    int r = vd_parse_size (cases[i].in, &v);
    if (cases[i].err == 0) {
      if (r != 0 || v != cases[i].want) {
        fprintf (stderr, "\"%s\": got r=%d v=%" PRIu64 " (%s), want %" PRIu64
                 "\n", cases[i].in, r, v, vd_get_error (), cases[i].want);
        return 1;
      }
    }
    else {
      const char *e = vd_get_error ();
      if (r != -1 || vd_get_errno () != cases[i].err || e == NULL ||
          strstr (e, cases[i].msg) == NULL || strstr (e, "size") == NULL ||
          v != 12345) {
        fprintf (stderr, "\"%s\": got r=%d errno=%d \"%s\", want errno %d "
                 "\"%s\"\n", cases[i].in, r, vd_get_errno (), e ? e : "",
                 cases[i].err, cases[i].msg);
        return 1;
      }
    }
  }
  CHECK_FAILS (vd_parse_size (NULL, &(uint64_t) { 0 }), EINVAL, "missing");
  printf ("test-size: %zu cases OK\n", sizeof cases / sizeof cases[0]);
  return 0;
}
