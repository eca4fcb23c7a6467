/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The block_status accumulator: merging, clipping, REQ_ONE, gaps.
 */
#include "config.h"

#include "test.h"
#include "backend.h"

static void
expect (struct vd_extents *e, size_t i, uint64_t off, uint64_t len,
        uint32_t state)
{
  uint64_t o, l;
  uint32_t s;

  CHECK (i < vd_extents_count (e));
  vd_extents_get (e, i, &o, &l, &s);
  if (o != off || l != len || s != state) {
    fprintf (stderr, "extent %zu: got %lu+%lu/%u, want %lu+%lu/%u\n", i,
             (unsigned long) o, (unsigned long) l, s, (unsigned long) off,
             (unsigned long) len, state);
    exit (1);
  }
}

int
main (void)
{
  struct vd_extents *e;

  /* Merge equal neighbours, clip the end, full when covered. */
  e = vd_extents_new (100, 1000, 0);
  CHECK (e != NULL);
  CHECK (!vd_extents_full (e));
  CHECK (vd_extents_add (e, 0, 150, 3) == 0);        /* starts before: clipped */
  CHECK (vd_extents_add (e, 150, 50, 3) == 0);       /* merged */
  CHECK (vd_extents_add (e, 200, 0, 0) == 0);        /* empty: ignored */
  CHECK (vd_extents_add (e, 200, 300, 0) == 0);
  CHECK (vd_extents_add (e, 500, 10000, 2) == 0);    /* clipped at 1100 */
  CHECK (vd_extents_full (e));
  CHECK (vd_extents_add (e, 1100, 10, 0) == 0);      /* ignored when full */
  CHECK (vd_extents_count (e) == 3);
  expect (e, 0, 100, 100, 3);
  expect (e, 1, 200, 300, 0);
  expect (e, 2, 500, 600, 2);
  CHECK (vd_extents_next (e) == 1100);
  vd_extents_free (e);

  /* Unknown state bits are dropped. */
  e = vd_extents_new (0, 10, 0);
  CHECK (vd_extents_add (e, 0, 10, 0xff) == 0);
  expect (e, 0, 0, 10, 3);
  vd_extents_free (e);

  /* A gap is a backend bug, reported as EIO. */
  e = vd_extents_new (0, 100, 0);
  CHECK (vd_extents_add (e, 0, 10, 0) == 0);
  CHECK_FAILS (vd_extents_add (e, 20, 10, 0), EIO, "not contiguous");
  vd_extents_free (e);

  /* REQ_ONE: full after the first extent, but it may still grow by
   * merging equal states.
   */
  e = vd_extents_new (0, 100, VD_FLAG_REQ_ONE);
  CHECK (vd_extents_add (e, 0, 10, 1) == 0);
  CHECK (vd_extents_full (e));
  CHECK (vd_extents_add (e, 10, 10, 2) == 0);
  CHECK (vd_extents_count (e) == 1);
  vd_extents_free (e);

  /* Overflowing length is clipped, not wrapped. */
  e = vd_extents_new (UINT64_MAX - 10, 10, 0);
  CHECK (vd_extents_add (e, UINT64_MAX - 10, UINT64_MAX, 0) == 0);
  expect (e, 0, UINT64_MAX - 10, 10, 0);
  vd_extents_free (e);
  vd_extents_free (NULL);

  printf ("test-extents: OK\n");
  return 0;
}
