/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The fault-injection decorator itself: failing the N-th operation, the
 * write cache (reads see cached writes, flush applies them), crashes
 * dropping unflushed writes and tearing the one in flight.
 */
#include "config.h"

#include <unistd.h>

#include "test.h"
#include "backend.h"
#include "faults.h"

static char path[256];

static struct vd_attachment *
wrap (const struct vd_fault_config *c)
{
  struct vd_attachment *raw = vd_raw_open (path, -1, NULL);
  CHECK (raw != NULL);
  struct vd_attachment *f = vd_faults_wrap (raw, c);
  CHECK (f != NULL);
  return f;
}

/* Read the file behind the decorator's back (no lock: it is open). */
static void
read_file (uint64_t off, void *buf, size_t n)
{
  struct vd_open_options o;
  vd_open_options_init (&o);
  o.flags = VD_OPEN_READ_ONLY | VD_OPEN_NO_LOCK;
  struct vd_attachment *raw = vd_raw_open (path, -1, &o);
  CHECK (raw != NULL);
  CHECK (vd_attachment_pread (raw, buf, n, off, 0) == 0);
  CHECK (vd_attachment_close (raw) == 0);
}

int
main (void)
{
  struct vd_fault_config c;
  struct vd_attachment *f;
  char a[4096], b[4096], got[4096];

  test_tmpname (path, sizeof path, "faults");
  CHECK (vd_image_create (path, VD_FORMAT_RAW, 1 << 20, 0) == 0);
  memset (a, 'a', sizeof a);
  memset (b, 'b', sizeof b);

  /* Fail the 3rd write, once; then writes work again. */
  c = (struct vd_fault_config) { .fail_ops = VD_FAULT_OP_WRITE, .fail_at = 3,
                                 .fail_errno = ENOSPC };
  f = wrap (&c);
  CHECK (vd_attachment_pwrite (f, a, 512, 0, 0) == 0);
  CHECK (vd_attachment_pwrite (f, a, 512, 512, 0) == 0);
  CHECK_FAILS (vd_attachment_pwrite (f, a, 512, 1024, 0), ENOSPC,
               "injected failure of operation 3");
  CHECK (vd_faults_failed (f));
  CHECK (vd_attachment_pwrite (f, a, 512, 1024, 0) == 0);
  CHECK (vd_faults_count (f, VD_FAULT_OP_WRITE) == 4);
  CHECK (vd_attachment_close (f) == 0);

  /* Sticky: every counted op fails after the first. */
  c = (struct vd_fault_config) { .fail_ops = VD_FAULT_OP_ALL, .fail_at = 2,
                                 .fail_sticky = true };
  f = wrap (&c);
  CHECK (vd_attachment_pread (f, got, 512, 0, 0) == 0);
  CHECK_FAILS (vd_attachment_pread (f, got, 512, 0, 0), EIO, "injected");
  CHECK_FAILS (vd_attachment_flush (f, 0), EIO, "injected");
  CHECK (vd_attachment_close (f) == -1);        /* the final flush fails */

  /* Write cache: reads see the write, the file does not until flush. */
  c = (struct vd_fault_config) { .write_cache = true };
  f = wrap (&c);
  CHECK (vd_attachment_pwrite (f, b, 4096, 8192, 0) == 0);
  CHECK (vd_attachment_pread (f, got, 4096, 8192, 0) == 0);
  CHECK (memcmp (got, b, 4096) == 0);
  read_file (8192, got, 4096);
  CHECK (got[0] == 0);
  CHECK (vd_attachment_write_zeroes (f, 100, 8192 + 10, 0) == 0);
  CHECK (vd_attachment_pread (f, got, 4096, 8192, 0) == 0);
  CHECK (got[9] == 'b' && got[10] == 0 && got[109] == 0 && got[110] == 'b');
  CHECK (vd_attachment_flush (f, 0) == 0);
  read_file (8192, got, 4096);
  CHECK (got[9] == 'b' && got[10] == 0 && got[110] == 'b');
  /* Resize is cached too: reads past the old end see zeros, then data. */
  CHECK (vd_attachment_pwrite (f, a, 4096, 0, 0) == 0);
  CHECK (vd_backend_resize (f, 2 << 20) == 0);
  CHECK (vd_attachment_get_size (f) == 2 << 20);
  CHECK (vd_attachment_pwrite (f, b, 4096, (1 << 20) + 4096, 0) == 0);
  CHECK (vd_attachment_pread (f, got, 4096, (1 << 20) + 4096, 0) == 0);
  CHECK (memcmp (got, b, 4096) == 0);
  CHECK (vd_attachment_close (f) == 0);         /* close flushes */
  read_file ((1 << 20) + 4096, got, 4096);
  CHECK (memcmp (got, b, 4096) == 0);

  /* Crash, drop all: unflushed writes vanish, flushed ones stay, and
   * the attachment is dead afterwards.
   */
  CHECK (vd_image_create (path, VD_FORMAT_RAW, 1 << 20, VD_CREATE_OVERWRITE)
         == 0);
  c = (struct vd_fault_config) { .write_cache = true, .crash_at = 3,
                                 .crash_mode = VD_CRASH_DROP_ALL, .seed = 1 };
  f = wrap (&c);
  CHECK (vd_attachment_pwrite (f, a, 4096, 0, 0) == 0);        /* 1 */
  CHECK (vd_attachment_flush (f, 0) == 0);
  CHECK (vd_attachment_pwrite (f, b, 4096, 4096, 0) == 0);     /* 2 */
  CHECK_FAILS (vd_attachment_pwrite (f, b, 4096, 65536, 0), EIO,
               "simulated crash");                             /* 3: torn */
  CHECK (vd_faults_crashed (f));
  CHECK_FAILS (vd_attachment_pread (f, got, 512, 0, 0), EIO, "crash");
  CHECK (vd_attachment_close (f) == -1);
  read_file (0, got, 4096);
  CHECK (memcmp (got, a, 4096) == 0);
  read_file (4096, got, 4096);
  CHECK (got[0] == 0 && got[4095] == 0);        /* dropped */
  {
    /* The torn write: each 512-byte sector is all old or all new. */
    read_file (65536, got, 4096);
    for (int s = 0; s < 8; ++s) {
      bool old = got[s * 512] == 0;
      for (int i = 0; i < 512; ++i)
        CHECK (got[s * 512 + i] == (old ? 0 : 'b'));
    }
  }

  /* Crash, random: over many seeds both outcomes happen for an
   * unflushed write, and flushed data always survives.
   */
  {
    int kept = 0, lost = 0;
    for (uint64_t seed = 1; seed <= 40; ++seed) {
      CHECK (vd_image_create (path, VD_FORMAT_RAW, 1 << 20,
                              VD_CREATE_OVERWRITE) == 0);
      c = (struct vd_fault_config) { .write_cache = true,
                                     .crash_mode = VD_CRASH_RANDOM,
                                     .seed = seed };
      f = wrap (&c);
      CHECK (vd_attachment_pwrite (f, a, 512, 0, 0) == 0);
      CHECK (vd_attachment_flush (f, 0) == 0);
      CHECK (vd_attachment_pwrite (f, b, 512, 512, 0) == 0);
      CHECK (vd_faults_crash (f) == 0);
      vd_attachment_close (f);
      read_file (0, got, 1024);
      CHECK (memcmp (got, a, 512) == 0);
      if (got[512] == 'b')
        kept++;
      else
        lost++;
    }
    CHECK (kept > 0 && lost > 0);
  }

  unlink (path);
  printf ("test-faults: OK\n");
  return 0;
}
