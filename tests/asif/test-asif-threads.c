/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Concurrency: several threads write into the same chunks and the same
 * 512-byte blocks at once, each owning an interleaved set of 64-byte
 * stripes, with sub-block writes (which allocate chunks, allocate bitmap
 * chunks, and pad not-yet-written blocks), while other threads read,
 * query block status and flush.  Every byte written must be there at the
 * end (a padded write must never wipe a neighbour's bytes), reads during
 * the run must only ever see zeros or a thread's own bytes in its own
 * stripes, and the image must check clean after close.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asif-test-util.h"

#define MiB (UINT64_C (1) << 20)
#define DISK (12 * MiB + 1536)
#define STRIPE 64
#define WRITERS 4
#define ROUNDS 1500

static struct vd_attachment *img;
static unsigned char *expect;   /* final contents */
static char path[256];

struct job {
  int id;
  uint64_t seed;
};

static unsigned char
byte_for (int id, uint64_t off)
{
  return (unsigned char) (0x11 * (id + 1) + off * 7);
}

static void *
writer (void *vp)
{
  struct job *j = vp;
  unsigned char buf[STRIPE * 4];

  for (int r = 0; r < ROUNDS; ++r) {
    /* A random stripe of ours; write 1..STRIPE bytes inside it, or
     * several of our stripes' worth (only our bytes change: others'
     * stripes are skipped by writing each stripe separately).
     */
    uint64_t nstripes = DISK / STRIPE;
    uint64_t s = tu_rnd (&j->seed) % nstripes;
    uint64_t off, len;
    s -= s % WRITERS;
    s += j->id;
    if (s >= nstripes)
      continue;
    off = s * STRIPE + tu_rnd (&j->seed) % STRIPE;
    len = 1 + tu_rnd (&j->seed) % (s * STRIPE + STRIPE - off);
    if (off + len > DISK)
      len = DISK - off;
    for (uint64_t i = 0; i < len; ++i)
      buf[i] = byte_for (j->id, off + i);
    CHECK (vd_attachment_pwrite (img, buf, len, off,
                                 r % 97 == 0 ? VD_FLAG_FUA : 0) == 0);
    for (uint64_t i = 0; i < len; ++i)
      expect[off + i] = buf[i];
  }
  return NULL;
}

static int
ignore (void *ud, uint64_t off, uint64_t len, uint32_t st)
{
  return 0;
}

static void *
reader (void *vp)
{
  struct job *j = vp;
  static __thread unsigned char buf[65536];

  for (int r = 0; r < ROUNDS; ++r) {
    uint64_t off = tu_rnd (&j->seed) % (DISK - sizeof buf);
    size_t len = 1 + tu_rnd (&j->seed) % sizeof buf;
    CHECK (vd_attachment_pread (img, buf, len, off, 0) == 0);
    for (size_t i = 0; i < len; ++i) {
      uint64_t o = off + i;
      int owner = (int) (o / STRIPE % WRITERS);
      if (buf[i] != 0 && buf[i] != byte_for (owner, o)) {
        fprintf (stderr, "reader saw %02x at %" PRIu64 "\n", buf[i], o);
        exit (1);
      }
    }
    if (r % 50 == 0)
      CHECK (vd_attachment_flush (img, 0) == 0);
    if (r % 20 == 0)
      CHECK (vd_attachment_block_status (img, DISK, 0, 0, ignore,
                                         NULL) == 0);
  }
  return NULL;
}

int
main (void)
{
  pthread_t t[WRITERS + 2];
  struct job jobs[WRITERS + 2];
  unsigned char *got;
  struct vd_check_result r;

  expect = calloc (1, DISK);
  got = malloc (DISK);
  CHECK (expect && got);
  test_tmpname (path, sizeof path, "threads-asif");
  CHECK (vd_image_create (path, VD_FORMAT_ASIF, DISK, 0) == 0);
  img = vd_attachment_open (path, NULL);
  CHECK (img != NULL);

  for (int i = 0; i < WRITERS + 2; ++i) {
    jobs[i] = (struct job) { .id = i, .seed = 1000 + i };
    CHECK (pthread_create (&t[i], NULL, i < WRITERS ? writer : reader,
                           &jobs[i]) == 0);
  }
  for (int i = 0; i < WRITERS + 2; ++i)
    pthread_join (t[i], NULL);

  CHECK (vd_attachment_pread (img, got, DISK, 0, 0) == 0);
  for (uint64_t i = 0; i < DISK; ++i)
    if (got[i] != expect[i]) {
      fprintf (stderr, "byte %" PRIu64 ": %02x, expected %02x\n", i, got[i],
               expect[i]);
      exit (1);
    }
  CHECK (vd_attachment_close (img) == 0);
  r = tu_check (path, 0);
  CHECK (r.corruptions == 0 && r.leaks == 0);
  img = vd_attachment_open (path, NULL);
  CHECK (img != NULL);
  CHECK (vd_attachment_pread (img, got, DISK, 0, 0) == 0);
  CHECK (memcmp (got, expect, DISK) == 0);
  CHECK (vd_attachment_close (img) == 0);
  unlink (path);
  free (expect);
  free (got);
  return 0;
}
