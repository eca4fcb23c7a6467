/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * A fixed amount of I/O through libvdisk with the offset sequence of
 * `qemu-img bench`, so bench/bench-asif.sh can compare ASIF, RAW and
 * qcow2 (through qemu-img bench) on exactly the same requests:
 *
 *   bench-asif --rw read|write --bs BYTES --count N [--step BYTES]
 *              [--offset BYTES] [--flush] [--direct 0|1] SPEC
 *
 * Request i goes to (offset + i * step) mod size (step defaults to bs):
 * sequential with the default step, scattered with a large odd multiple
 * of bs.  One synchronous request at a time (qemu-img bench -d 1).  With
 * --flush a final flush is part of the measured time (first-touch writes
 * must be made durable to count).  Prints one JSON line:
 * {"rw":..,"bs":..,"count":..,"seconds":..,"MiBps":..,"iops":..}
 */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vdisk/vdisk.h"

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t
arg_size (const char *opt, const char *v)
{
  uint64_t x;
  if (v == NULL || vd_parse_size (v, &x) == -1) {
    fprintf (stderr, "bench-asif: %s: bad size\n", opt);
    exit (2);
  }
  return x;
}

int
main (int argc, char **argv)
{
  struct vd_open_options o;
  struct vd_attachment *a;
  const char *spec = NULL, *rw = "read";
  uint64_t bs = 4096, count = 0, step = 0, offset = 0, size;
  bool flush = false, write;
  double t0, secs;
  void *buf;

  vd_open_options_init (&o);
  o.caching_mode = VD_CACHING_CACHED;
  for (int i = 1; i < argc; ++i) {
    const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp (s, "--rw") == 0 && v) { rw = v; i++; }
    else if (strcmp (s, "--bs") == 0) { bs = arg_size (s, v); i++; }
    else if (strcmp (s, "--count") == 0) { count = arg_size (s, v); i++; }
    else if (strcmp (s, "--step") == 0) { step = arg_size (s, v); i++; }
    else if (strcmp (s, "--offset") == 0) { offset = arg_size (s, v); i++; }
    else if (strcmp (s, "--flush") == 0) flush = true;
    else if (strcmp (s, "--direct") == 0 && v) {
      o.caching_mode = strcmp (v, "1") == 0 ? VD_CACHING_UNCACHED
                                            : VD_CACHING_CACHED;
      i++;
    }
    else if (s[0] != '-') spec = s;
    else {
      fprintf (stderr, "bench-asif: unknown option %s\n", s);
      return 2;
    }
  }
  if (spec == NULL || count == 0 || bs == 0 ||
      (strcmp (rw, "read") != 0 && strcmp (rw, "write") != 0)) {
    fprintf (stderr, "usage: bench-asif --rw read|write --bs BS --count N "
             "[--step S] [--offset O] [--flush] [--direct 0|1] SPEC\n");
    return 2;
  }
  if (step == 0)
    step = bs;
  write = strcmp (rw, "write") == 0;
  a = vd_attachment_open (spec, &o);
  if (a == NULL) {
    fprintf (stderr, "bench-asif: %s\n", vd_get_error ());
    return 1;
  }
  size = (uint64_t) vd_attachment_get_size (a);
  if (posix_memalign (&buf, 4096, bs) != 0)
    abort ();
  memset (buf, 0xa5, bs);

  t0 = now ();
  for (uint64_t i = 0, off = offset % size; i < count; ++i) {
    int r = write ? vd_attachment_pwrite (a, buf, bs, off, 0)
                  : vd_attachment_pread (a, buf, bs, off, 0);
    if (r == -1) {
      fprintf (stderr, "bench-asif: %s\n", vd_get_error ());
      return 1;
    }
    off = (off + step) % size;
    if (off + bs > size)
      off = 0;
  }
  if (flush && vd_attachment_flush (a, 0) == -1) {
    fprintf (stderr, "bench-asif: %s\n", vd_get_error ());
    return 1;
  }
  secs = now () - t0;
  if (vd_attachment_close (a) == -1) {
    fprintf (stderr, "bench-asif: %s\n", vd_get_error ());
    return 1;
  }
  free (buf);
  printf ("{\"rw\":\"%s\",\"bs\":%" PRIu64 ",\"count\":%" PRIu64
          ",\"seconds\":%.4f,\"MiBps\":%.1f,\"iops\":%.0f}\n", rw, bs, count,
          secs, count * bs / secs / 1048576.0, count / secs);
  return 0;
}
