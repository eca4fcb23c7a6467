/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * bench-nbd-client: read or write a whole NBD export through the vdisk
 * NBD attachment, the way nbdcopy does, and print the throughput.
 *
 *   bench-nbd-client [-C CONNS] [-T THREADS] [-r REQSIZE] read URI
 *       read the whole export, throwing the data away (nbdcopy URI null:)
 *   bench-nbd-client [-C CONNS] [-T THREADS] [-r REQSIZE] write URI FILE
 *       copy FILE over the start of the export, then flush every
 *       connection (nbdcopy --flush FILE URI)
 *
 * CONNS attachments (one connection each) share the work; THREADS
 * threads in all (default max(4, 2 x CONNS)) each keep one request of
 * REQSIZE bytes (default 1 MiB) in flight, so THREADS is the queue depth.
 * The attachment API is synchronous: a caller gets bandwidth from a few
 * threads with large requests.  16 threads of 256 KiB per connection (the
 * old default, nbdcopy's request size) spent the two CPUs of the test
 * machine on context switches: 0.89-0.93x nbdcopy against nbdkit where
 * these defaults measured 1.0-1.2x (docs/benchmarks.md).
 * The time covers connecting, the transfer and the final flush.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vdisk/vdisk.h"

static struct vd_attachment *att[64];
static int nconns = 1, nthreads = 0;
static uint64_t reqsize = 1024 * 1024, total;
static atomic_uint_fast64_t next;
static bool writing;
static int src_fd = -1;

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void __attribute__ ((noreturn))
fail (const char *what)
{
  fprintf (stderr, "bench-nbd-client: %s: %s\n", what,
           vd_get_error () ? vd_get_error () : strerror (errno));
  exit (1);
}

static void *
worker (void *arg)
{
  struct vd_attachment *a = att[(intptr_t) arg % nconns];
  char *buf = aligned_alloc (4096, reqsize);

  if (buf == NULL)
    fail ("aligned_alloc");
  memset (buf, 0x5a, reqsize);
  for (;;) {
    uint64_t off = atomic_fetch_add (&next, reqsize), len;
    if (off >= total)
      break;
    len = total - off < reqsize ? total - off : reqsize;
    if (writing) {
      if (src_fd >= 0 && pread (src_fd, buf, len, off) != (ssize_t) len)
        fail ("reading the source");
      if (vd_attachment_pwrite (a, buf, len, off, 0) == -1)
        fail ("pwrite");
    }
    else if (vd_attachment_pread (a, buf, len, off, 0) == -1)
      fail ("pread");
  }
  free (buf);
  return NULL;
}

int
main (int argc, char **argv)
{
  pthread_t t[1024];
  struct vd_open_options o;
  const char *uri;
  double t0, t1;
  int c;

  while ((c = getopt (argc, argv, "C:T:r:")) != -1) {
    switch (c) {
    case 'C': nconns = (int) strtol (optarg, NULL, 10); break;
    case 'T': nthreads = (int) strtol (optarg, NULL, 10); break;
    case 'r': reqsize = strtoull (optarg, NULL, 0); break;
    default: return 2;
    }
  }
  if (optind + 2 > argc || nconns < 1 || nconns > 64 || reqsize == 0) {
    fprintf (stderr, "usage: bench-nbd-client [-C N] [-T N] [-r SIZE] "
             "read URI | write URI FILE\n");
    return 2;
  }
  if (nthreads <= 0)
    nthreads = nconns > 2 ? 2 * nconns : 4;
  if (nthreads > 1024)
    nthreads = 1024;
  writing = strcmp (argv[optind], "write") == 0;
  uri = argv[optind + 1];

  t0 = now ();
  vd_open_options_init (&o);
  o.format = "nbd";
  for (int i = 0; i < nconns; ++i) {
    att[i] = vd_attachment_open (uri, &o);
    if (att[i] == NULL || vd_attachment_start (att[i]) == -1)
      fail ("open");
  }
  total = vd_attachment_get_size (att[0]);
  if (writing) {
    struct stat st;
    if (optind + 2 >= argc)
      fail ("write needs a source file");
    src_fd = open (argv[optind + 2], O_RDONLY);
    if (src_fd == -1 || fstat (src_fd, &st) == -1)
      fail (argv[optind + 2]);
    if ((uint64_t) st.st_size < total)
      total = st.st_size;
  }
  for (int i = 0; i < nthreads; ++i)
    if (pthread_create (&t[i], NULL, worker, (void *) (intptr_t) i) != 0)
      fail ("pthread_create");
  for (int i = 0; i < nthreads; ++i)
    pthread_join (t[i], NULL);
  for (int i = 0; i < nconns; ++i) {
    if (writing && vd_attachment_flush (att[i], 0) == -1)
      fail ("flush");
    if (vd_attachment_close (att[i]) == -1)
      fail ("close");
  }
  t1 = now ();
  printf ("%s %" PRIu64 " %.3f %.1f\n", writing ? "write" : "read", total,
          t1 - t0, total / (t1 - t0) / 1048576.0);
  return 0;
}
