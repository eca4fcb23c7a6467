/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * A flush must not hold up the other requests of an ASIF image while the
 * container flushes (an fdatasync takes milliseconds on a real disk, and
 * a guest with several requests in flight would see every one of them
 * wait for it).  The disk is made slow with the fault decorator (every
 * flush waits DELAY_MS first); while one thread flushes, reads and writes
 * of allocated chunks from another must complete.  Then the same with
 * metadata to write back (a new chunk), which must still be durable and
 * consistent afterwards.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "asif-test-util.h"
#include "faults.h"
#include "backend.h"

#define MiB (UINT64_C (1) << 20)
#define DISK (64 * MiB)
#define DELAY_MS 500

static char path[256];
static struct vd_attachment *img;
static atomic_bool flush_done;

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *
flusher (void *vp)
{
  (void) vp;
  CHECK (vd_attachment_flush (img, 0) == 0);
  atomic_store (&flush_done, true);
  return NULL;
}

static struct vd_attachment *
open_slow (void)
{
  struct vd_fault_config cfg = { .flush_delay_ms = DELAY_MS };
  struct vd_attachment *f;

  return tu_open_faulty (path, &cfg, VD_SYNC_FULL, &f);
}

int
main (void)
{
  char *buf = malloc (MiB);
  pthread_t t;
  double t0, t1;
  uint64_t K;
  struct vd_check_result r;

  CHECK (buf != NULL);
  test_tmpname (path, sizeof path, "flush-asif");
  CHECK (vd_image_create (path, VD_FORMAT_ASIF, DISK, 0) == 0);

  /* A full chunk and a partial one, written and closed at full speed. */
  img = vd_attachment_open (path, NULL);
  CHECK (img != NULL);
  K = vd_attachment_get_preferred_block_size (img);
  CHECK (K >= 64 * 1024 && K <= MiB);
  tu_pattern (buf, K, 1);
  CHECK (vd_attachment_pwrite (img, buf, K, 0, 0) == 0);
  tu_pattern (buf, 8192, 2);
  CHECK (vd_attachment_pwrite (img, buf, 8192, K + 4096, 0) == 0);
  CHECK (vd_attachment_close (img) == 0);

  /* 1. Nothing to write back: the flush is the container's alone, and
   * requests on allocated chunks go on during it.
   */
  img = open_slow ();
  atomic_store (&flush_done, false);
  CHECK (pthread_create (&t, NULL, flusher, NULL) == 0);
  usleep (100 * 1000);
  t0 = now ();
  tu_expect (img, 0, K, 1);
  tu_expect (img, K + 4096, 8192, 2);
  tu_pattern (buf, 4096, 3);
  CHECK (vd_attachment_pwrite (img, buf, 4096, 65536, 0) == 0);
  tu_pattern (buf, 8192, 4);
  CHECK (vd_attachment_pwrite (img, buf, 8192, K + 4096, 0) == 0);
  t1 = now ();
  if (atomic_load (&flush_done)) {
    fprintf (stderr, "reads and writes waited for the flush (%.0f ms)\n",
             (t1 - t0) * 1000);
    exit (1);
  }
  CHECK (pthread_join (t, NULL) == 0);
  tu_expect (img, 65536, 4096, 3);
  tu_expect (img, K + 4096, 8192, 4);

  /* 2. A new chunk to publish: the flush writes the table back (steps
   * A-D) and leaves only its last container flush outside the lock; what
   * it covered is there after a reopen and the image checks clean.
   */
  tu_pattern (buf, K, 5);
  CHECK (vd_attachment_pwrite (img, buf, K, 5 * K, 0) == 0);
  tu_pattern (buf, 4096, 6);
  CHECK (vd_attachment_pwrite (img, buf, 4096, 9 * K + 512, 0) == 0);
  atomic_store (&flush_done, false);
  CHECK (pthread_create (&t, NULL, flusher, NULL) == 0);
  CHECK (pthread_join (t, NULL) == 0);
  CHECK (atomic_load (&flush_done));
  CHECK (vd_attachment_close (img) == 0);

  r = tu_check (path, 0);
  if (r.corruptions || r.leaks) {
    fprintf (stderr, "check: %" PRIu64 " corruptions, %" PRIu64 " leaks\n",
             r.corruptions, r.leaks);
    exit (1);
  }
  img = vd_attachment_open (path, NULL);
  CHECK (img != NULL);
  tu_expect (img, 5 * K, K, 5);
  tu_expect (img, 9 * K + 512, 4096, 6);
  tu_expect (img, 65536, 4096, 3);
  CHECK (vd_attachment_close (img) == 0);

  unlink (path);
  free (buf);
  printf ("PASS\n");
  return 0;
}
