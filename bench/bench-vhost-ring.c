/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The vhost-user-blk export without a guest: a test front end
 * (tests/vhost/vu-frontend.c) keeps QD requests in flight on one queue
 * and counts completions, so the backend's own cost per request (ring
 * handling, thread hand-offs, attachment call, interrupt) is measured
 * without TCG in the way.  Used to tune the export; bench-vhost.sh is
 * the end-to-end comparison.
 *
 *   [WORKERS=N] bench-vhost-ring IMAGE read|write BLOCK_SIZE QD SECONDS
 *                                [uncached]
 */
#include "config.h"

#include <sys/eventfd.h>
#include <time.h>

#include "test.h"
#include "vhost.h"
#include "vhost-user-protocol.h"
#include "vu-frontend.h"

static double
now (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int
main (int argc, char **argv)
{
  struct vhost_export_options o = { .num_queues = 1 };
  struct vd_open_options oo;
  struct vd_attachment *a;
  struct vhost_export *e;
  struct vu vu;
  char sock[300];
  uint32_t bs, qd;
  double secs, t0, t;
  bool write;
  uint64_t done = 0, kicks = 0, nsect, hdrs, sts, data;
  uint16_t heads[256];
  int slot_of[1024];

  if (argc < 6) {
    fprintf (stderr, "usage: bench-vhost-ring IMAGE read|write BS QD SECONDS "
             "[uncached]\n");
    return 2;
  }
  write = strcmp (argv[2], "write") == 0;
  bs = strtoul (argv[3], NULL, 0);
  qd = strtoul (argv[4], NULL, 0);
  secs = strtod (argv[5], NULL);
  CHECK (qd >= 1 && qd <= 64 && bs >= 512 && bs % 512 == 0 && bs <= (1 << 20));
  vd_open_options_init (&oo);
  if (argc > 6 && strcmp (argv[6], "uncached") == 0)
    oo.caching_mode = VD_CACHING_UNCACHED;
  a = vd_attachment_open (argv[1], &oo);
  CHECK (a != NULL);
  nsect = vd_attachment_get_size (a) / bs;
  snprintf (sock, sizeof sock, "%s.sock", argv[1]);
  o.socket_path = sock;
  if (getenv ("WORKERS"))
    o.workers = strtoul (getenv ("WORKERS"), NULL, 10);
  e = vhost_export_start (a, &o);
  CHECK (e != NULL);

  vu_connect (&vu, sock, ~UINT64_C (0), ~UINT64_C (0));
  vu_queue_start (&vu, 0, 256);
  hdrs = vu_alloc_a (&vu, 16 * qd, 16);
  sts = vu_alloc_a (&vu, qd, 1);
  data = vu_alloc_b (&vu, (size_t) bs * qd, 4096);
  srandom (1);

  for (uint32_t i = 0; i < qd; ++i) {
    struct vu_seg s[3] = {
      { hdrs + 16 * i, 16, false },
      { data + (uint64_t) bs * i, bs, !write },
      { sts + i, 1, true },
    };
    uint8_t *h = vu_ptr (&vu, hdrs + 16 * i);
    uint32_t type = htole32 (write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN);
    uint64_t sector = htole64 ((random () % nsect) * (bs / 512));
    memcpy (h, &type, 4);
    memcpy (h + 8, &sector, 8);
    heads[i] = vu_add (&vu, 0, s, 3, false);
    slot_of[heads[i]] = i;
  }
  vu_kick (&vu, 0);
  t0 = now ();
  for (;;) {
    uint16_t head;
    uint32_t len;
    int i;

    CHECK (vu_wait_used (&vu, 0, &head, &len, 10000) == 1);
    i = slot_of[head];
    CHECK (*vu_ptr (&vu, sts + i) == 0);
    done++;
    t = now ();
    if (t - t0 >= secs)
      break;
    /* Resubmit the same chain at a new random offset. */
    {
      uint8_t *h = vu_ptr (&vu, hdrs + 16 * i);
      uint64_t sector = htole64 ((random () % nsect) * (bs / 512));
      uint16_t old = vu.q[0].avail_idx;
      memcpy (h + 8, &sector, 8);
      vu_publish (&vu, 0, head);
      if (vu_kick_needed (&vu, 0, old)) {
        vu_kick (&vu, 0);
        kicks++;
      }
    }
  }
  printf ("%s bs=%u qd=%u: %.0f IOPS, %.1f MiB/s, %.3f kicks per request\n",
          argv[2], bs, qd, done / (t - t0),
          done * (double) bs / (t - t0) / 1048576, kicks / (double) done);
  vu_close (&vu);
  CHECK (vhost_export_stop (e) == 0);
  CHECK (vd_attachment_close (a) == 0);
  return 0;
}
