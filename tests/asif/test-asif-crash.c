/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Crash test: ASIF over the fault-injection decorator (volatile write
 * cache) over RAW.  For each crash point a fresh image runs a random
 * workload (full-chunk, partial and sub-block writes, discards,
 * write_zeroes, flushes) until the decorator "loses power" at the N-th
 * modifying operation of the container: unflushed writes are dropped
 * (all, or a random subset, some torn) and the write in flight is torn.
 * Then the image is reopened and must:
 *   - check free of corruption (leaked chunks are allowed: a crash can
 *     leave appended chunks that nothing references yet);
 *   - hold exactly what the model held at the last completed flush in
 *     every 512-byte sector not touched since then, and for sectors
 *     touched once since then, the old or the new bytes, nothing else;
 *   - keep working: more random operations and a flush, compared with
 *     the model, and a clean check again.
 *
 * Usage: test-asif-crash [POINTS [FIRST_SEED]]   (defaults 1000, 1)
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asif-test-util.h"
#include "faults.h"
#include "backend.h"
#include "rounding.h"

#define MiB (UINT64_C (1) << 20)
#define DISK (8 * MiB + 1024)
#define SECTORS (DISK / 512)

static char path[256];
static unsigned char *durable, *current, *wcount, *image, *buf;
static char *noise;
#define NOISE (4 * MiB)

/* One random operation on img; updates the model.  Returns 0, or -1 if
 * the operation failed (the crash).
 */
static int
random_op (struct vd_attachment *img, uint64_t *st, bool *flushed)
{
  uint64_t kind = tu_rnd (st) % 100, off, len;
  int r;

  *flushed = false;
  switch (tu_rnd (st) % 4) {
  case 0: len = MiB; break;
  case 1: len = 512 * (1 + tu_rnd (st) % 8); break;
  case 2: len = 1 + tu_rnd (st) % 600; break;
  default: len = 1 + tu_rnd (st) % (3 * MiB / 4); break;
  }
  off = tu_rnd (st) % (DISK - len);
  if (tu_rnd (st) % 2)
    off = off / 512 * 512;
  if (tu_rnd (st) % 3 == 0)
    off = off / MiB * MiB;
  if (off + len > DISK)
    off = DISK - len;

  if (getenv ("VD_CRASH_TRACE"))
    fprintf (stderr, "op kind %" PRIu64 " off %" PRIu64 " len %" PRIu64
             "\n", kind, off, len);
  if (kind < 12) {
    r = vd_attachment_flush (img, 0);
    if (r == 0) {
      for (uint64_t s = 0; s <= SECTORS; ++s)
        if (wcount[s]) {
          uint64_t lo = s * 512, n = lo + 512 > DISK ? DISK - lo : 512;
          memcpy (durable + lo, current + lo, n);
          wcount[s] = 0;
        }
      *flushed = true;
    }
    return r;
  }
  /* Whatever happens, these sectors may now differ from durable. */
  for (uint64_t s = off / 512; s <= (off + len - 1) / 512; ++s)
    if (wcount[s] < 255)
      wcount[s]++;
  if (kind < 70) {
    bool fua = tu_rnd (st) % 8 == 0;
    /* Random bytes, cheaply: a random window of a noise buffer. */
    memcpy (buf, noise + tu_rnd (st) % (NOISE - len), len);
    r = vd_attachment_pwrite (img, buf, len, off, fua ? VD_FLAG_FUA : 0);
    memcpy (current + off, buf, len);
    if (getenv ("VD_CRASH_TRACE"))
      fprintf (stderr, "  write fua=%d r=%d\n", fua, r);
    if (r == 0 && fua) {
      /* Durable now: the sectors it covers whole must survive a crash. */
      memcpy (durable + off, buf, len);
      for (uint64_t s = DIV_ROUND_UP (off, 512); (s + 1) * 512 <= off + len;
           ++s)
        wcount[s] = 0;
    }
    if (r == 0 && tu_rnd (st) % 8 == 0) {
      CHECK (vd_attachment_pread (img, buf, len, off, 0) == 0);
      CHECK (memcmp (buf, current + off, len) == 0);
    }
  }
  else if (kind < 85) {
    r = vd_attachment_discard (img, len, off, 0);
    memset (current + off, 0, len);
  }
  else {
    r = vd_attachment_write_zeroes (img, len, off,
                                    tu_rnd (st) % 2 ? VD_FLAG_MAY_TRIM : 0);
    memset (current + off, 0, len);
  }
  return r;
}

static uint64_t leaks_seen, corruption_free;
static char template_path[256];
static char *template_data;
static size_t template_len;

/* A fresh image for each point: a copy of one blank made at start (no
 * fsync per point, unlike vd_image_create).
 */
static void
copy_template (void)
{
  int fd;

  if (template_data == NULL) {
    test_tmpname (template_path, sizeof template_path, "crash-template");
    CHECK (vd_image_create (template_path, VD_FORMAT_ASIF, DISK, 0) == 0);
    fd = open (template_path, O_RDONLY);
    CHECK (fd >= 0);
    template_len = 4 * MiB;
    template_data = malloc (template_len);
    CHECK (template_data != NULL);
    CHECK (pread (fd, template_data, template_len, 0) ==
           (ssize_t) template_len);
    close (fd);
    unlink (template_path);
  }
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK (fd >= 0);
  CHECK (pwrite (fd, template_data, template_len, 0) ==
         (ssize_t) template_len);
  close (fd);
}

static void
one_point (uint64_t seed, uint64_t crash_at, int mode)
{
  struct vd_fault_config cfg = {
    .write_cache = true, .crash_at = crash_at, .crash_mode = mode,
    .seed = seed,
  };
  struct vd_open_options o;
  struct vd_attachment *f, *img;
  struct vd_check_result cr;
  uint64_t st = seed * 7919 + 1;
  bool crashed = false, flushed;
  int ops = 0;

  copy_template ();
  memset (durable, 0, DISK);
  memset (current, 0, DISK);
  memset (wcount, 0, SECTORS + 1);

  /* Durability is what the decorator simulates; real fsyncs would only
   * make the test slow.
   */
  vd_open_options_init (&o);
  o.sync_mode = VD_SYNC_NONE;
  img = tu_open_faulty (path, &cfg, VD_SYNC_NONE, &f);

  while (ops++ < 400) {
    if (random_op (img, &st, &flushed) == -1) {
      CHECK (vd_faults_crashed (f));
      crashed = true;
      break;
    }
  }
  if (!crashed)
    CHECK (vd_faults_crash (f) == 0);
  /* Closing writes nothing more: the "disk" is gone. */
  vd_attachment_close (img);

  cr = tu_check (path, 0);
  if (cr.corruptions) {
    fprintf (stderr, "seed %" PRIu64 " crash_at %" PRIu64 " mode %d: %"
             PRIu64 " corruptions after the crash\n", seed, crash_at, mode,
             cr.corruptions);
    exit (1);
  }
  corruption_free++;
  if (cr.leaks)
    leaks_seen++;

  img = vd_attachment_open (path, &o);
  CHECK (img != NULL);
  CHECK (vd_attachment_pread (img, image, DISK, 0, 0) == 0);
  for (uint64_t s = 0; s < SECTORS + (DISK % 512 != 0); ++s) {
    uint64_t lo = s * 512, hi = lo + 512 > DISK ? DISK : lo + 512;
    if (wcount[s] == 0 && memcmp (image + lo, durable + lo, hi - lo) == 0)
      continue;
    for (uint64_t i = lo; i < hi; ++i) {
      bool ok = wcount[s] == 0 ? image[i] == durable[i]
        : wcount[s] > 1 || image[i] == durable[i] || image[i] == current[i];
      if (!ok) {
        fprintf (stderr, "seed %" PRIu64 " crash_at %" PRIu64 " mode %d: "
                 "byte %" PRIu64 " is %02x, durable %02x, latest %02x "
                 "(written %u times since the last flush)\n", seed,
                 crash_at, mode, i, image[i], durable[i], current[i],
                 wcount[s]);
        exit (1);
      }
    }
  }

  /* The image keeps working from its post-crash state. */
  memcpy (durable, image, DISK);
  memcpy (current, image, DISK);
  memset (wcount, 0, SECTORS + 1);
  for (int i = 0; i < 10; ++i)
    CHECK (random_op (img, &st, &flushed) == 0);
  CHECK (vd_attachment_flush (img, 0) == 0);
  CHECK (vd_attachment_pread (img, image, DISK, 0, 0) == 0);
  if (memcmp (image, current, DISK) != 0) {
    fprintf (stderr, "seed %" PRIu64 " crash_at %" PRIu64 ": wrong data "
             "after continuing from the crash\n", seed, crash_at);
    exit (1);
  }
  CHECK (vd_attachment_close (img) == 0);
  cr = tu_check (path, 0);
  CHECK (cr.corruptions == 0);
}

int
main (int argc, char **argv)
{
  uint64_t points = argc > 1 ? strtoull (argv[1], NULL, 10) : 1000;
  uint64_t seed0 = argc > 2 ? strtoull (argv[2], NULL, 10) : 1;
  uint64_t st = seed0;

  durable = malloc (DISK);
  current = malloc (DISK);
  image = malloc (DISK);
  buf = malloc (2 * MiB);
  wcount = malloc (SECTORS + 1);
  noise = malloc (NOISE);
  CHECK (durable && current && image && buf && wcount && noise);
  {
    uint64_t ns = 12345;
    tu_fill (&ns, noise, NOISE);
  }
  test_tmpname (path, sizeof path, "crash-asif");
  /* Replay one failing point: VD_CRASH_ONE=SEED:CRASH_AT:MODE */
  if (getenv ("VD_CRASH_ONE")) {
    uint64_t s, c;
    int m;
    CHECK (sscanf (getenv ("VD_CRASH_ONE"), "%" SCNu64 ":%" SCNu64 ":%d",
                   &s, &c, &m) == 3);
    one_point (s, c, m);
    printf ("crash point %" PRIu64 ":%" PRIu64 ":%d passes\n", s, c, m);
    unlink (path);
    return 0;
  }

  for (uint64_t i = 0; i < points; ++i) {
    uint64_t seed = seed0 + i;
    /* Workloads make a few hundred modifying container operations;
     * spread the crash over them (past the end: crash at the end).
     */
    uint64_t crash_at = 1 + tu_rnd (&st) % 700;
    one_point (seed, crash_at, (int) (i % 2));
  }
  printf ("%" PRIu64 " crash points: all checked free of corruption with "
          "every flushed write present; %" PRIu64 " left leaked chunks\n",
          corruption_free, leaks_seen);
  unlink (path);
  free (durable);
  free (current);
  free (image);
  free (buf);
  free (wcount);
  free (noise);
  free (template_data);
  return 0;
}
