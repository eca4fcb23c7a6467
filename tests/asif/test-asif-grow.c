/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Growing the ASIF file ahead of use (docs/internals/asif.md): the file
 * is extended by up to ASIF_GROW_AHEAD chunks at a time and trimmed back
 * to the chunks in use at a clean close.  Growing ahead is only an
 * optimisation, so when the file system refuses the extra space the
 * write must still succeed by growing just as far as it needs; and when
 * the file cannot grow at all, the write fails with the file system's
 * error and nothing written before is lost.  The refusals come from the
 * fault decorator (resize fails with ENOSPC), which is how a nearly full
 * file system or one without sparse files answers.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asif-test-util.h"
#include "faults.h"
#include "backend.h"

#define MiB (UINT64_C (1) << 20)
#define DISK (1024 * MiB)
#define FULL_CHUNKS 32

static char path[256];
static uint64_t K;

static uint64_t
file_size (void)
{
  struct stat st;
  CHECK (stat (path, &st) == 0);
  return (uint64_t) st.st_size;
}

static void
check_clean (void)
{
  struct vd_check_result r = tu_check (path, 0);
  if (r.corruptions || r.leaks) {
    fprintf (stderr, "check: %" PRIu64 " corruptions, %" PRIu64 " leaks\n",
             r.corruptions, r.leaks);
    exit (1);
  }
}

int
main (void)
{
  struct vd_attachment *a, *f;
  char *buf = malloc (MiB);
  uint64_t used;

  CHECK (buf != NULL);
  test_tmpname (path, sizeof path, "grow-asif");
  CHECK (vd_image_create (path, VD_FORMAT_ASIF, DISK, 0) == 0);
  /* A blank image is four chunks (see asif-create.c). */
  K = file_size () / 4;
  CHECK (K >= 64 * 1024 && (K & (K - 1)) == 0);

  /* 1. Whole chunks, no faults: the file holds exactly what is in use
   * after a clean close.
   */
  a = vd_attachment_open (path, NULL);
  CHECK (a != NULL);
  for (uint64_t c = 0; c < FULL_CHUNKS; ++c) {
    tu_pattern (buf, K, 1 + c);
    CHECK (vd_attachment_pwrite (a, buf, K, c * K, 0) == 0);
  }
  CHECK (vd_attachment_close (a) == 0);
  /* No chunk grown ahead is left: check calls unreferenced chunks
   * leaks.
   */
  CHECK (file_size () % K == 0);
  used = file_size () / K;
  CHECK (used > FULL_CHUNKS + 4 - 1 && used <= FULL_CHUNKS + 4 + 1);
  check_clean ();

  /* 2. The first resize (growing ahead) is refused, later ones are not:
   * a partial write into a new chunk, which needs a bitmap chunk and a
   * data chunk, still succeeds.
   */
  {
    struct vd_fault_config cfg = {
      .fail_ops = VD_FAULT_OP_RESIZE, .fail_at = 1, .fail_errno = ENOSPC,
    };
    a = tu_open_faulty (path, &cfg, VD_SYNC_FULL, &f);
    tu_pattern (buf, 4096, 1000);
    CHECK (vd_attachment_pwrite (a, buf, 4096, 100 * K + 8192, 0) == 0);
    CHECK (vd_faults_failed (f));
    /* The refused growth was retried for what the write needed only. */
    CHECK (vd_faults_count (f, VD_FAULT_OP_RESIZE) >= 2);
    CHECK (vd_attachment_flush (a, 0) == 0);
    tu_expect (a, 100 * K + 8192, 4096, 1000);
    tu_expect (a, 100 * K, 8192, 0);
    CHECK (vd_attachment_close (a) == 0);
  }
  CHECK (file_size () == (used + 2) * K);
  check_clean ();

  /* 3. The file cannot grow at all: the allocating write fails with the
   * file system's error and a message; a write into a chunk already
   * allocated still works; everything written before reads back.
   */
  {
    struct vd_fault_config cfg = {
      .fail_ops = VD_FAULT_OP_RESIZE, .fail_at = 1, .fail_errno = ENOSPC,
      .fail_sticky = true,
    };
    a = tu_open_faulty (path, &cfg, VD_SYNC_FULL, &f);
    tu_pattern (buf, 4096, 2000);
    CHECK_FAILS (vd_attachment_pwrite (a, buf, 4096, 200 * K, 0), ENOSPC,
                 NULL);
    CHECK (vd_get_error () != NULL && vd_get_error ()[0] != '\0');
    tu_pattern (buf, 4096, 3000);
    CHECK (vd_attachment_pwrite (a, buf, 4096, 100 * K + 16384, 0) == 0);
    CHECK (vd_attachment_flush (a, 0) == 0);
    tu_expect (a, 200 * K, 4096, 0);
    /* Closing cannot trim a file that was never grown: nothing to do. */
    CHECK (vd_attachment_close (a) == 0);
  }
  check_clean ();

  a = vd_attachment_open (path, NULL);
  CHECK (a != NULL);
  for (uint64_t c = 0; c < FULL_CHUNKS; ++c)
    tu_expect (a, c * K, K, 1 + c);
  tu_expect (a, 100 * K + 8192, 4096, 1000);
  tu_expect (a, 100 * K + 16384, 4096, 3000);
  tu_expect (a, 200 * K, 4096, 0);
  CHECK (vd_attachment_close (a) == 0);

  unlink (path);
  free (buf);
  printf ("PASS\n");
  return 0;
}
