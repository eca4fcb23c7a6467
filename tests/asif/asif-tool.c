/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Helper for the shell tests: I/O on an image through libvdisk.
 *   asif-tool write PATH OFF LEN SEED        pseudo-random bytes
 *   asif-tool discard PATH OFF LEN
 *   asif-tool verify PATH OFF LEN SEED [SKIP] the bytes SKIP..SKIP+LEN of
 *                                            what "write ... SEED" wrote
 *   asif-tool verify-zero PATH OFF LEN
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asif-test-util.h"

int
main (int argc, char **argv)
{
  struct vd_attachment *a;
  uint64_t off, len, seed = 0, skip = 0;
  char *want, *got;

  if (argc < 5) {
    fprintf (stderr, "usage: asif-tool write|discard|verify|verify-zero "
             "PATH OFF LEN [SEED [SKIP]]\n");
    return 2;
  }
  off = strtoull (argv[3], NULL, 10);
  len = strtoull (argv[4], NULL, 10);
  if (argc > 5)
    seed = strtoull (argv[5], NULL, 10);
  if (argc > 6)
    skip = strtoull (argv[6], NULL, 10);
  want = calloc (1, skip + len);
  got = malloc (len);
  CHECK (want && got);
  if (strcmp (argv[1], "write") == 0 || strcmp (argv[1], "verify") == 0)
    tu_fill (&seed, want, skip + len);

  a = vd_attachment_open (argv[2], NULL);
  CHECK (a != NULL);
  if (strcmp (argv[1], "write") == 0)
    CHECK (vd_attachment_pwrite (a, want, len, off, 0) == 0);
  else if (strcmp (argv[1], "discard") == 0)
    CHECK (vd_attachment_discard (a, len, off, 0) == 0);
  else {
    CHECK (vd_attachment_pread (a, got, len, off, 0) == 0);
    if (memcmp (got, want + skip, len) != 0) {
      fprintf (stderr, "asif-tool: %s: data at %" PRIu64 " differs\n",
               argv[2], off);
      return 1;
    }
  }
  CHECK (vd_attachment_close (a) == 0);
  free (want);
  free (got);
  return 0;
}
