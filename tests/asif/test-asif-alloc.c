/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Allocating writes run concurrently.  The container is made slow for
 * writes with the fault decorator (every pwrite waits write_delay_ms
 * outside its lock), and several threads write into chunks never written
 * before, at the same moment: whole chunks, partial chunks, two threads
 * into the same new chunk (one of them waits for the other's allocation,
 * then writes into its chunk), and a resize in the middle (it waits for
 * the allocations in flight).  With the data written under the image's
 * exclusive lock, as before, the decorator would never see two writes at
 * once; the test requires it to, and then requires every byte to read
 * back, before and after a reopen, and the image to check clean.
 *
 * Then a failed allocating write: it fails with the injected error, the
 * chunk it had reserved is never used again (it is left leaked, not
 * referenced), and the next write to the same place allocates afresh and
 * reads back.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asif-test-util.h"

#define MiB (UINT64_C (1) << 20)
#define DISK (256 * MiB)
#define WRITERS 6
#define DELAY_MS 150

static struct vd_attachment *img;
static uint64_t K;
static pthread_barrier_t start;

/* What writer i writes: [off, off + len), pattern seed 100 + i. */
struct piece {
  uint64_t off, len;
};
static struct piece pieces[WRITERS];

static void *
writer (void *vp)
{
  int i = (int) (intptr_t) vp;
  char *buf = malloc (pieces[i].len);

  CHECK (buf != NULL);
  tu_pattern (buf, pieces[i].len, 100 + i);
  pthread_barrier_wait (&start);
  CHECK (vd_attachment_pwrite (img, buf, pieces[i].len, pieces[i].off,
                               0) == 0);
  free (buf);
  return NULL;
}

static void *
resizer (void *vp)
{
  (void) vp;
  pthread_barrier_wait (&start);
  /* Let the allocations get under way first. */
  usleep (DELAY_MS * 1000 / 3);
  CHECK (vd_backend_resize (img, DISK + 64 * MiB) == 0);
  return NULL;
}

static void
expect_all (struct vd_attachment *a)
{
  for (int i = 0; i < WRITERS; ++i)
    tu_expect (a, pieces[i].off, pieces[i].len, 100 + i);
  /* Around the two partial writes into one chunk: zeros. */
  tu_expect (a, 40 * K + 4096, 64 * 1024 - 4096, 0);
}

int
main (void)
{
  char path[256];
  pthread_t t[WRITERS + 1];
  struct vd_attachment *f;
  struct vd_check_result r;
  unsigned peak;

  test_tmpname (path, sizeof path, "alloc-asif");
  CHECK (vd_image_create (path, VD_FORMAT_ASIF, DISK, 0) == 0);
  {
    struct vd_fault_config cfg = { .write_delay_ms = DELAY_MS };
    img = tu_open_faulty (path, &cfg, VD_SYNC_FULL, &f);
  }
  K = img->pref_block_size;     /* the chunk size */
  CHECK (K >= 64 * 1024 && DISK / K > 64);

  /* Whole chunks, partial chunks (one far from the others, in the
   * middle of the disk), and two writers into one new chunk.
   */
  pieces[0] = (struct piece) { 10 * K, K };
  pieces[1] = (struct piece) { 11 * K, K };
  pieces[2] = (struct piece) { 20 * K + 512, 4096 };
  pieces[3] = (struct piece) { DISK / 2 + 3 * K + 1000, 10000 };
  pieces[4] = (struct piece) { 40 * K, 4096 };
  pieces[5] = (struct piece) { 40 * K + 64 * 1024, 8192 };

  CHECK (pthread_barrier_init (&start, NULL, WRITERS + 1) == 0);
  for (int i = 0; i < WRITERS; ++i)
    CHECK (pthread_create (&t[i], NULL, writer, (void *) (intptr_t) i) == 0);
  CHECK (pthread_create (&t[WRITERS], NULL, resizer, NULL) == 0);
  for (int i = 0; i <= WRITERS; ++i)
    pthread_join (t[i], NULL);
  pthread_barrier_destroy (&start);

  peak = vd_faults_peak_writes (f);
  fprintf (stderr, "test-asif-alloc: %u allocating writes were in the "
           "container at once (of %d)\n", peak, WRITERS);
  CHECK (peak >= 2);
  CHECK (vd_attachment_get_size (img) == (int64_t) (DISK + 64 * MiB));
  expect_all (img);
  CHECK (vd_attachment_flush (img, 0) == 0);
  CHECK (vd_attachment_close (img) == 0);

  r = tu_check (path, 0);
  CHECK (r.corruptions == 0 && r.leaks == 0);
  img = vd_attachment_open (path, NULL);
  CHECK (img != NULL);
  expect_all (img);
  CHECK (vd_attachment_close (img) == 0);

  /* A failed allocating write (the first write after opening is its
   * data write).  Whole chunk and partial chunk.
   */
  for (int partial = 0; partial <= 1; ++partial) {
    struct vd_fault_config cfg = {
      .fail_ops = VD_FAULT_OP_WRITE, .fail_at = 1, .fail_errno = EIO,
    };
    uint64_t off = (50 + partial) * K + (partial ? 4096 : 0);
    size_t len = partial ? 4096 : K;
    char *buf = malloc (len);

    CHECK (buf != NULL);
    img = tu_open_faulty (path, &cfg, VD_SYNC_FULL, &f);
    tu_pattern (buf, len, 200 + partial);
    CHECK_FAILS (vd_attachment_pwrite (img, buf, len, off, 0), EIO, NULL);
    CHECK (vd_faults_failed (f));
    tu_expect (img, off, len, 0);
    CHECK (vd_attachment_pwrite (img, buf, len, off, 0) == 0);
    tu_expect (img, off, len, 200 + partial);
    CHECK (vd_attachment_close (img) == 0);
    free (buf);
    r = tu_check (path, 0);
    CHECK (r.corruptions == 0);
    fprintf (stderr, "test-asif-alloc: after a failed %s write: %" PRIu64
             " leaked chunks\n", partial ? "partial" : "whole-chunk",
             r.leaks);
    CHECK (r.leaks == (uint64_t) partial + 1);
  }
  img = vd_attachment_open (path, NULL);
  CHECK (img != NULL);
  expect_all (img);
  tu_expect (img, 50 * K, K, 200);
  tu_expect (img, 51 * K + 4096, 4096, 201);
  CHECK (vd_attachment_close (img) == 0);

  unlink (path);
  return 0;
}
