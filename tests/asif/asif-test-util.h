/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Helpers shared by the ASIF tests: a seeded PRNG, a RAW "model" disk
 * next to an ASIF image, byte-for-byte comparison and a check wrapper.
 */
#ifndef VD_ASIF_TEST_UTIL_H
#define VD_ASIF_TEST_UTIL_H

#include <inttypes.h>

#include "test.h"
#include "backend.h"
#include "faults.h"

static inline uint64_t
tu_rnd (uint64_t *st)
{
  uint64_t z = (*st += UINT64_C (0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C (0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static inline void
tu_fill (uint64_t *st, char *buf, size_t n)
{
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x = tu_rnd (st);
    memcpy (buf + i, &x, 8);
  }
  for (; i < n; ++i)
    buf[i] = (char) tu_rnd (st);
}

/* Fill buf with the pattern of seed (the same bytes for the same seed). */
static inline void
tu_pattern (char *buf, size_t n, uint64_t seed)
{
  uint64_t st = seed;
  tu_fill (&st, buf, n);
}

/* [off, off + n) of a must hold the pattern of seed, or zeros for seed
 * 0; exits naming the range otherwise.
 */
static inline void
tu_expect (struct vd_attachment *a, uint64_t off, size_t n, uint64_t seed)
{
  char *want = malloc (n), *got = malloc (n);

  CHECK (want && got);
  if (seed)
    tu_pattern (want, n, seed);
  else
    memset (want, 0, n);
  CHECK (vd_attachment_pread (a, got, n, off, 0) == 0);
  if (memcmp (want, got, n) != 0) {
    fprintf (stderr, "wrong bytes at %" PRIu64 "+%zu\n", off, n);
    exit (1);
  }
  free (want);
  free (got);
}

/* The ASIF image at path over the fault decorator (cfg) over its RAW
 * file, with the given sync mode; *faults gets the decorator (for its
 * counters and crashes).
 */
static inline struct vd_attachment *
tu_open_faulty (const char *path, const struct vd_fault_config *cfg,
                int sync_mode, struct vd_attachment **faults)
{
  struct vd_open_options o;
  struct vd_attachment *file, *img;

  vd_open_options_init (&o);
  o.sync_mode = sync_mode;
  file = vd_raw_open (path, -1, &o);
  CHECK (file != NULL);
  *faults = vd_faults_wrap (file, cfg);
  CHECK (*faults != NULL);
  img = vd_asif_open (*faults, &o);
  CHECK (img != NULL);
  return img;
}

/* Compare [off, off + n) of two attachments; report the first mismatch. */
static inline bool
tu_same (struct vd_attachment *x, struct vd_attachment *y, uint64_t off,
         uint64_t n)
{
  static char *bx, *by;
  const size_t step = 4u << 20;

  if (bx == NULL) {
    bx = malloc (step);
    by = malloc (step);
    CHECK (bx && by);
  }
  while (n > 0) {
    size_t k = n < step ? n : step;
    CHECK (vd_attachment_pread (x, bx, k, off, 0) == 0);
    CHECK (vd_attachment_pread (y, by, k, off, 0) == 0);
    if (memcmp (bx, by, k) != 0) {
      for (size_t i = 0; i < k; ++i)
        if (bx[i] != by[i]) {
          fprintf (stderr, "mismatch at offset %" PRIu64 ": %02x vs %02x\n",
                   off + i, (unsigned char) bx[i], (unsigned char) by[i]);
          break;
        }
      return false;
    }
    off += k;
    n -= k;
  }
  return true;
}

static inline void
tu_print_problem (void *ud, int kind, const char *msg)
{
  if (kind == VD_CHECK_CORRUPTION || ud != NULL)
    fprintf (stderr, "check: %s: %s\n",
             kind == VD_CHECK_CORRUPTION ? "corruption" :
             kind == VD_CHECK_LEAK ? "leak" : "repaired", msg);
}

/* Check path; returns the result (fails the test if the check fails). */
static inline struct vd_check_result
tu_check (const char *path, uint32_t flags)
{
  struct vd_check_result r = { .struct_size = sizeof r };
  CHECK (vd_image_check (path, flags, &r, tu_print_problem, NULL) == 0);
  return r;
}

#endif
