/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Property test: thousands of random mixed operations (full-chunk,
 * partial and sub-block writes, FUA writes, discards, write_zeroes with
 * and without trimming, flushes, reopens) on an ASIF image and on a RAW
 * image side by side.  Both must always read the same bytes, block
 * status of the ASIF image must never call data a hole, and the image
 * must check free of corruption after every reopen.  Compaction and
 * resizing (shrink then grow) at the end must keep the contents.
 *
 * The disk is large and sparse (300 GiB) but the operations fall into
 * windows that straddle the interesting boundaries: chunk group 0/1
 * (2 GiB), the first table (126 GiB) and the disk's last, partial chunk.
 *
 * Usage: test-asif-ops [OPS [SEED]]   (defaults 3000, 1)
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asif-test-util.h"

#define MiB (UINT64_C (1) << 20)
#define GiB (UINT64_C (1) << 30)
#define DISK (300 * GiB + 3 * 512)   /* not chunk-aligned */
#define WIN (6 * MiB)

static const uint64_t win_start[] = {
  0,
  2 * GiB - 3 * MiB,
  126 * GiB - 3 * MiB,
  DISK - WIN,
};
#define NWIN (sizeof win_start / sizeof win_start[0])

static char asif_path[256], raw_path[256];

static struct vd_attachment *
open_img (const char *path)
{
  struct vd_attachment *a = vd_attachment_open (path, NULL);
  CHECK (a != NULL);
  return a;
}

static bool
all_same (struct vd_attachment *x, struct vd_attachment *y)
{
  for (size_t w = 0; w < NWIN; ++w)
    if (!tu_same (x, y, win_start[w], WIN))
      return false;
  return true;
}

struct bs_ctx {
  struct vd_attachment *raw;
  bool ok;
};

static int
verify_extent (void *ud, uint64_t off, uint64_t len, uint32_t state)
{
  struct bs_ctx *c = ud;
  char *buf;

  if (!(state & VD_STATE_HOLE))
    return 0;
  /* A hole must read as zeros (in the model too). */
  buf = malloc (len);
  CHECK (buf != NULL);
  CHECK (vd_attachment_pread (c->raw, buf, len, off, 0) == 0);
  for (uint64_t i = 0; i < len; ++i)
    if (buf[i]) {
      fprintf (stderr, "block_status: hole at %" PRIu64 "+%" PRIu64
               " but data at %" PRIu64 "\n", off, len, off + i);
      c->ok = false;
      break;
    }
  free (buf);
  return 0;
}

int
main (int argc, char **argv)
{
  uint64_t ops = argc > 1 ? strtoull (argv[1], NULL, 10) : 3000;
  uint64_t st = argc > 2 ? strtoull (argv[2], NULL, 10) : 1;
  struct vd_attachment *A, *R;
  char *buf = malloc (4 * MiB);
  uint64_t n_write = 0, n_discard = 0, n_zero = 0, n_flush = 0, n_reopen = 0;

  CHECK (buf != NULL);
  test_tmpname (asif_path, sizeof asif_path, "ops-asif");
  test_tmpname (raw_path, sizeof raw_path, "ops-raw");
  CHECK (vd_image_create (asif_path, VD_FORMAT_ASIF, DISK, 0) == 0);
  CHECK (vd_image_create (raw_path, VD_FORMAT_RAW, DISK, 0) == 0);
  A = open_img (asif_path);
  R = open_img (raw_path);
  CHECK (vd_attachment_get_size (A) == (int64_t) DISK);

  for (uint64_t i = 0; i < ops; ++i) {
    uint64_t w = tu_rnd (&st) % NWIN, kind = tu_rnd (&st) % 100;
    uint64_t off, len;
    uint32_t flags = 0;

    /* Length: a whole chunk, a few blocks, a few bytes, or up to 3 MiB. */
    switch (tu_rnd (&st) % 4) {
    case 0: len = MiB; break;
    case 1: len = 512 * (1 + tu_rnd (&st) % 16); break;
    case 2: len = 1 + tu_rnd (&st) % 700; break;
    default: len = 1 + tu_rnd (&st) % (3 * MiB); break;
    }
    off = win_start[w] + tu_rnd (&st) % (WIN - len);
    if (tu_rnd (&st) % 3 == 0)
      off = off / 512 * 512;
    if (tu_rnd (&st) % 4 == 0)
      off = off / MiB * MiB;
    if (off + len > win_start[w] + WIN)
      off = win_start[w] + WIN - len;

    if (kind < 55) {
      tu_fill (&st, buf, len);
      if (tu_rnd (&st) % 10 == 0)
        flags = VD_FLAG_FUA;
      CHECK (vd_attachment_pwrite (A, buf, len, off, flags) == 0);
      CHECK (vd_attachment_pwrite (R, buf, len, off, 0) == 0);
      n_write++;
    }
    else if (kind < 67) {
      CHECK (vd_attachment_discard (A, len, off, 0) == 0);
      CHECK (vd_attachment_write_zeroes (R, len, off, 0) == 0);
      n_discard++;
    }
    else if (kind < 77) {
      flags = tu_rnd (&st) % 2 ? VD_FLAG_MAY_TRIM : 0;
      CHECK (vd_attachment_write_zeroes (A, len, off, flags) == 0);
      CHECK (vd_attachment_write_zeroes (R, len, off, 0) == 0);
      n_zero++;
    }
    else if (kind < 82) {
      CHECK (vd_attachment_flush (A, 0) == 0);
      n_flush++;
    }
    else if (kind < 84) {
      struct vd_check_result r;
      CHECK (vd_attachment_close (A) == 0);
      r = tu_check (asif_path, 0);
      if (r.corruptions) {
        fprintf (stderr, "after op %" PRIu64 ": %" PRIu64 " corruptions\n",
                 i, r.corruptions);
        exit (1);
      }
      A = open_img (asif_path);
      n_reopen++;
    }
    else if (kind < 90) {
      struct bs_ctx c = { R, true };
      CHECK (vd_attachment_block_status (A, len, off, 0, verify_extent,
                                         &c) == 0);
      CHECK (c.ok);
    }
    else {
      /* Read and compare a random range. */
      if (!tu_same (A, R, off, len)) {
        fprintf (stderr, "after op %" PRIu64 " (seed %s)\n", i,
                 argc > 2 ? argv[2] : "1");
        exit (1);
      }
    }
  }
  CHECK (all_same (A, R));
  printf ("%" PRIu64 " ops: %" PRIu64 " writes, %" PRIu64 " discards, %"
          PRIu64 " write_zeroes, %" PRIu64 " flushes, %" PRIu64 " reopens\n",
          ops, n_write, n_discard, n_zero, n_flush, n_reopen);

  /* Compact: contents unchanged, no leaks left, file not larger. */
  {
    struct vd_check_result r;
    uint64_t freed;
    CHECK (vd_attachment_close (A) == 0);
    r = tu_check (asif_path, 0);
    CHECK (r.corruptions == 0);
    CHECK (vd_image_compact (asif_path, &freed) == 0);
    r = tu_check (asif_path, 0);
    CHECK (r.corruptions == 0 && r.leaks == 0);
    printf ("compact: %" PRIu64 " bytes freed, %" PRIu64 " chunks left\n",
            freed, r.total_chunks);
    A = open_img (asif_path);
    CHECK (all_same (A, R));
  }

  /* Shrink into the last window, then grow back: the cut part reads as
   * zeros (RAW does the same with ftruncate).
   */
  {
    uint64_t cut = win_start[NWIN - 1] + WIN / 2 + 512;
    struct vd_check_result r;
    CHECK (vd_attachment_close (A) == 0);
    CHECK (vd_attachment_close (R) == 0);
    CHECK (vd_image_resize (asif_path, cut) == 0);
    CHECK (vd_image_resize (raw_path, cut) == 0);
    r = tu_check (asif_path, 0);
    CHECK (r.corruptions == 0);
    CHECK (vd_image_resize (asif_path, DISK) == 0);
    CHECK (vd_image_resize (raw_path, DISK) == 0);
    r = tu_check (asif_path, 0);
    CHECK (r.corruptions == 0);
    A = open_img (asif_path);
    R = open_img (raw_path);
    CHECK (vd_attachment_get_size (A) == (int64_t) DISK);
    CHECK (all_same (A, R));
  }

  CHECK (vd_attachment_close (A) == 0);
  CHECK (vd_attachment_close (R) == 0);
  unlink (asif_path);
  unlink (raw_path);
  free (buf);
  return 0;
}
