/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * nbd-io: drive an NBD attachment from shell tests (the vdisk CLI has no
 * data commands yet).  Uses the public libvdisk API only, from several
 * threads at once, like the NBD server and convert do.
 *
 *   nbd-io [OPTIONS] info URI
 *   nbd-io [OPTIONS] write URI FILE      copy FILE to the export (offset 0)
 *   nbd-io [OPTIONS] read URI FILE       copy the whole export to FILE
 *   nbd-io [OPTIONS] verify URI FILE     read the export, compare with FILE
 *   nbd-io [OPTIONS] map URI             block status as JSON lines
 *   nbd-io [OPTIONS] zero URI OFF LEN [trim|fast|fua]
 *   nbd-io [OPTIONS] trim URI OFF LEN
 *   nbd-io [OPTIONS] unaligned URI FILE  random unaligned writes of FILE's
 *                                        bytes, then read back unaligned
 *   nbd-io [OPTIONS] torture URI         rounds: overwrite every block with
 *                                        the round's pattern, flush, verify
 *   nbd-io pattern ROUND SIZE FILE       write the torture pattern to FILE
 *
 * Options: -t SECS timeout, -j N threads, -r SIZE request size,
 * --sync full|none, --read-only, --events FILE (one line per event),
 * --rounds N, --until FILE (torture: keep going until FILE exists),
 * --min-rounds N, --seed N, --expect-fail ERRNO (the command must fail
 * with this errno; prints the message).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vdisk/vdisk.h"

static double timeout = 0;
static int nthreads = 4;
static uint64_t reqsize = 256 * 1024;
static int sync_mode = VD_SYNC_FULL;
static bool read_only;
static FILE *events_fp;
static int rounds = 3;
static int min_rounds = 1;
static const char *until_file;
static uint64_t seed = 1;
static int expect_errno;

static void __attribute__ ((noreturn, format (printf, 1, 2)))
die (const char *fmt, ...)
{
  va_list args;

  fprintf (stderr, "nbd-io: ");
  va_start (args, fmt);
  vfprintf (stderr, fmt, args);
  va_end (args);
  fprintf (stderr, "\n");
  exit (1);
}

static struct vd_attachment *current_att;

/* Close the attachment before exiting on an error, from the main thread
 * with no I/O running: pending events are delivered by close.
 */
static void
close_current (void)
{
  if (current_att) {
    vd_attachment_close (current_att);
    current_att = NULL;
  }
  if (events_fp)
    fflush (events_fp);
}

/* A library call failed: with --expect-fail, that may be the point. */
static void __attribute__ ((noreturn))
lib_failed (const char *what)
{
  char e[4096];
  const char *le = vd_get_error ();
  int en = vd_get_errno ();

  snprintf (e, sizeof e, "%s", le ? le : "(no message)");
  close_current ();
  if (expect_errno) {
    if (en == expect_errno) {
      printf ("expected failure: %s\n", e);
      fflush (stdout);
      _exit (0);
    }
    fprintf (stderr, "nbd-io: %s failed with errno %d, expected %d: %s\n",
             what, en, expect_errno, e);
    _exit (1);
  }
  fprintf (stderr, "nbd-io: %s: %s (errno %d)\n", what, e, en);
  _exit (1);
}

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int nr_connected, nr_failed;

static void
on_event (void *ud, struct vd_attachment *a, int event, int err,
          const char *msg)
{
  if (event == VD_EVENT_CONNECTED)
    atomic_fetch_add (&nr_connected, 1);
  else
    atomic_fetch_add (&nr_failed, 1);
  if (events_fp) {
    pthread_mutex_lock (&ev_lock);
    if (event == VD_EVENT_CONNECTED)
      fprintf (events_fp, "%.3f connected\n", now_s ());
    else
      fprintf (events_fp, "%.3f failed %d %s\n", now_s (), err,
               msg ? msg : "");
    fflush (events_fp);
    pthread_mutex_unlock (&ev_lock);
  }
}

static struct vd_attachment *
open_uri (const char *uri)
{
  struct vd_open_options o;
  struct vd_attachment *a;

  vd_open_options_init (&o);
  o.format = "nbd";
  if (timeout > 0)
    o.timeout = timeout;
  o.sync_mode = sync_mode;
  if (read_only)
    o.flags |= VD_OPEN_READ_ONLY;
  o.events.callback = on_event;
  a = vd_attachment_open (uri, &o);
  if (a == NULL)
    lib_failed ("open");
  current_att = a;
  if (vd_attachment_start (a) == -1)
    lib_failed ("start");
  return a;
}

static void
close_att (struct vd_attachment *a)
{
  current_att = NULL;
  if (vd_attachment_close (a) == -1)
    lib_failed ("close");
}

/* ---- Parallel work over [0, size) in reqsize pieces ------------------- */

struct job {
  struct vd_attachment *a;
  uint64_t size;
  atomic_uint_fast64_t next;    /* next piece */
  int (*fn) (struct job *j, uint64_t off, uint64_t len, char *buf);
  void *ud;
  atomic_bool failed;
  char err[1024];
  int errnum;
  pthread_mutex_t lock;
};

static void *
worker (void *arg)
{
  struct job *j = arg;
  char *buf = malloc (reqsize);

  if (buf == NULL)
    die ("malloc");
  while (!atomic_load (&j->failed)) {
    uint64_t i = atomic_fetch_add (&j->next, 1);
    uint64_t off = i * reqsize, len;
    if (off >= j->size)
      break;
    len = j->size - off < reqsize ? j->size - off : reqsize;
    if (j->fn (j, off, len, buf) == -1) {
      pthread_mutex_lock (&j->lock);
      if (!atomic_load (&j->failed)) {
        const char *e = vd_get_error ();
        snprintf (j->err, sizeof j->err, "%s", e ? e : "failed");
        j->errnum = vd_get_errno ();
        atomic_store (&j->failed, true);
      }
      pthread_mutex_unlock (&j->lock);
    }
  }
  free (buf);
  return NULL;
}

static int
run_job (struct job *j)
{
  pthread_t t[256];
  int n = nthreads > 256 ? 256 : nthreads;

  atomic_init (&j->next, 0);
  atomic_init (&j->failed, false);
  pthread_mutex_init (&j->lock, NULL);
  for (int i = 0; i < n; ++i)
    if (pthread_create (&t[i], NULL, worker, j) != 0)
      die ("pthread_create");
  for (int i = 0; i < n; ++i)
    pthread_join (t[i], NULL);
  pthread_mutex_destroy (&j->lock);
  return atomic_load (&j->failed) ? -1 : 0;
}

static void
job_failed (struct job *j, const char *what)
{
  close_current ();             /* every worker has been joined */
  if (expect_errno && j->errnum == expect_errno) {
    printf ("expected failure: %s\n", j->err);
    fflush (stdout);
    _exit (0);
  }
  die ("%s: %s (errno %d)", what, j->err, j->errnum);
}

/* ---- Commands ------------------------------------------------------ */

static int
prop (void *ud, const char *key, int type, const char *str, uint64_t u)
{
  if (type == VD_PROP_STRING)
    printf ("%s: %s\n", key, str);
  else if (type == VD_PROP_BOOL)
    printf ("%s: %s\n", key, u ? "yes" : "no");
  else
    printf ("%s: %" PRIu64 "\n", key, u);
  return 0;
}

static int
cmd_info (const char *uri)
{
  struct vd_attachment *a = open_uri (uri);

  if (vd_attachment_get_properties (a, prop, NULL) == -1)
    lib_failed ("properties");
  printf ("can-flush: %d\ncan-fua: %d\ncan-multi-conn: %d\ncan-cache: %d\n"
          "can-fast-zero: %d\nmax-request: %" PRIu32 "\n",
          vd_attachment_can_flush (a), vd_attachment_can_fua (a),
          vd_attachment_can_multi_conn (a), vd_attachment_can_cache (a),
          vd_attachment_can_fast_zero (a), vd_attachment_get_max_request (a));
  close_att (a);
  return 0;
}

struct file_ud {
  int fd;
};

static int
write_piece (struct job *j, uint64_t off, uint64_t len, char *buf)
{
  struct file_ud *f = j->ud;

  if (pread (f->fd, buf, len, off) != (ssize_t) len)
    die ("reading the source file at %" PRIu64 ": %m", off);
  return vd_attachment_pwrite (j->a, buf, len, off, 0);
}

static int
read_piece (struct job *j, uint64_t off, uint64_t len, char *buf)
{
  struct file_ud *f = j->ud;

  if (vd_attachment_pread (j->a, buf, len, off, 0) == -1)
    return -1;
  if (pwrite (f->fd, buf, len, off) != (ssize_t) len)
    die ("writing the output file at %" PRIu64 ": %m", off);
  return 0;
}

static int
verify_piece (struct job *j, uint64_t off, uint64_t len, char *buf)
{
  struct file_ud *f = j->ud;
  char *want = malloc (len);

  if (want == NULL)
    die ("malloc");
  if (pread (f->fd, want, len, off) != (ssize_t) len)
    die ("reading the reference file at %" PRIu64 ": %m", off);
  if (vd_attachment_pread (j->a, buf, len, off, 0) == -1) {
    free (want);
    return -1;
  }
  for (uint64_t i = 0; i < len; ++i)
    if (buf[i] != want[i])
      die ("data differs at offset %" PRIu64, off + i);
  free (want);
  return 0;
}

static int
cmd_copy (const char *uri, const char *file, int dir)
{
  struct vd_attachment *a = open_uri (uri);
  struct file_ud f;
  struct job j = { .a = a, .ud = &f };
  struct stat st;
  int64_t size = vd_attachment_get_size (a);

  if (size < 0)
    lib_failed ("get_size");
  if (dir == 0) {               /* write */
    f.fd = open (file, O_RDONLY);
    if (f.fd == -1 || fstat (f.fd, &st) == -1)
      die ("%s: %m", file);
    if (st.st_size > size)
      die ("%s is larger than the export", file);
    j.size = st.st_size;
    j.fn = write_piece;
  }
  else if (dir == 1) {          /* read */
    f.fd = open (file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (f.fd == -1 || ftruncate (f.fd, size) == -1)
      die ("%s: %m", file);
    j.size = size;
    j.fn = read_piece;
  }
  else {                        /* verify */
    f.fd = open (file, O_RDONLY);
    if (f.fd == -1 || fstat (f.fd, &st) == -1)
      die ("%s: %m", file);
    j.size = st.st_size < size ? st.st_size : size;
    j.fn = verify_piece;
  }
  if (run_job (&j) == -1)
    job_failed (&j, dir == 0 ? "write" : dir == 1 ? "read" : "verify");
  if (dir == 0 && vd_attachment_flush (a, 0) == -1)
    lib_failed ("flush");
  close (f.fd);
  close_att (a);
  return 0;
}

struct map_state {
  uint64_t start, len;
  uint32_t state;
  bool have;
};

static void
map_emit (struct map_state *m)
{
  if (m->have)
    printf ("{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"data\": %s,"
            " \"zero\": %s }\n", m->start, m->len,
            (m->state & VD_STATE_HOLE) ? "false" : "true",
            (m->state & VD_STATE_ZERO) ? "true" : "false");
}

static int
map_extent (void *ud, uint64_t off, uint64_t len, uint32_t state)
{
  struct map_state *m = ud;

  if (m->have && m->state == state && m->start + m->len == off) {
    m->len += len;
    return 0;
  }
  map_emit (m);
  m->start = off;
  m->len = len;
  m->state = state;
  m->have = true;
  return 0;
}

static int
cmd_map (const char *uri)
{
  struct vd_attachment *a = open_uri (uri);
  int64_t size = vd_attachment_get_size (a);
  struct map_state m = { 0 };
  uint64_t off = 0;

  if (size < 0)
    lib_failed ("get_size");
  while (off < (uint64_t) size) {
    uint64_t before = m.have ? m.start + m.len : 0;
    if (vd_attachment_block_status (a, size - off, off, 0, map_extent,
                                    &m) == -1)
      lib_failed ("block_status");
    if (!m.have || m.start + m.len <= before)
      die ("block_status made no progress at %" PRIu64, off);
    off = m.start + m.len;
  }
  map_emit (&m);
  close_att (a);
  return 0;
}

static uint64_t
parse_u64 (const char *s)
{
  char *end;
  unsigned long long v;

  errno = 0;
  v = strtoull (s, &end, 0);
  if (errno || *end || s[0] == '-' || s[0] == '\0')
    die ("not a number: %s", s);
  return v;
}

static int
cmd_zero_trim (const char *uri, int argc, char **argv, bool trim)
{
  struct vd_attachment *a;
  uint64_t off, len;
  uint32_t flags = 0;

  if (argc < 2)
    die ("usage: zero|trim URI OFF LEN [flags]");
  off = parse_u64 (argv[0]);
  len = parse_u64 (argv[1]);
  for (int i = 2; i < argc; ++i) {
    if (strcmp (argv[i], "trim") == 0)
      flags |= VD_FLAG_MAY_TRIM;
    else if (strcmp (argv[i], "fast") == 0)
      flags |= VD_FLAG_FAST_ZERO;
    else if (strcmp (argv[i], "fua") == 0)
      flags |= VD_FLAG_FUA;
    else
      die ("unknown flag %s", argv[i]);
  }
  a = open_uri (uri);
  if (trim ? vd_attachment_discard (a, len, off, flags)
      : vd_attachment_write_zeroes (a, len, off, flags))
    lib_failed (trim ? "discard" : "write_zeroes");
  if (vd_attachment_flush (a, 0) == -1)
    lib_failed ("flush");
  close_att (a);
  return 0;
}

/* Deterministic pseudo-random numbers (splitmix64). */
static uint64_t
next_rand (uint64_t *s)
{
  uint64_t z = (*s += UINT64_C (0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C (0x94d049bb133111eb);
  return z ^ (z >> 31);
}

struct unaligned_ud {
  const char *data;             /* the whole file in memory */
};

static int
cmd_unaligned (const char *uri, const char *file)
{
  struct vd_attachment *a = open_uri (uri);
  int fd = open (file, O_RDONLY);
  struct stat st;
  char *data, *back;
  uint64_t s = seed, off = 0;

  if (fd == -1 || fstat (fd, &st) == -1)
    die ("%s: %m", file);
  data = malloc (st.st_size);
  back = malloc (st.st_size);
  if (!data || !back || pread (fd, data, st.st_size, 0) != st.st_size)
    die ("reading %s", file);
  close (fd);
  if ((uint64_t) st.st_size > (uint64_t) vd_attachment_get_size (a))
    die ("%s is larger than the export", file);
  /* Write it in pieces of random odd sizes, last to first (so each
   * piece's neighbours are already written: read-modify-write must not
   * clobber them).
   */
  {
    uint64_t *offs = NULL;
    size_t n = 0, cap = 0;
    while (off < (uint64_t) st.st_size) {
      uint64_t len = 1 + next_rand (&s) % 9000;
      if (len > (uint64_t) st.st_size - off)
        len = st.st_size - off;
      if (n + 2 > cap) {
        cap = cap ? cap * 2 : 256;
        offs = realloc (offs, cap * sizeof *offs);
        if (!offs)
          die ("realloc");
      }
      offs[n++] = off;
      off += len;
    }
    for (size_t i = n; i-- > 0;) {
      uint64_t end = i + 1 < n ? offs[i + 1] : (uint64_t) st.st_size;
      if (vd_attachment_pwrite (a, data + offs[i], end - offs[i], offs[i],
                                (i % 7 == 0) ? VD_FLAG_FUA : 0) == -1)
        lib_failed ("pwrite");
    }
    free (offs);
  }
  /* Read back in other random pieces. */
  off = 0;
  while (off < (uint64_t) st.st_size) {
    uint64_t len = 1 + next_rand (&s) % 7000;
    if (len > (uint64_t) st.st_size - off)
      len = st.st_size - off;
    if (vd_attachment_pread (a, back + off, len, off, 0) == -1)
      lib_failed ("pread");
    off += len;
  }
  if (memcmp (data, back, st.st_size) != 0)
    die ("unaligned read back differs");
  if (vd_attachment_flush (a, 0) == -1)
    lib_failed ("flush");
  free (data);
  free (back);
  close_att (a);
  return 0;
}

/* Torture: the pattern of round r at byte offset o is a function of
 * both, so a block left from an older round (a lost or reordered write)
 * is detected wherever it is.
 */
static void
fill_pattern (char *buf, uint64_t off, uint64_t len, uint64_t round)
{
  for (uint64_t i = 0; i < len; i += 8) {
    uint64_t v = ((off + i) / 8) * UINT64_C (0x9e3779b97f4a7c15) ^
      (round * UINT64_C (0xff51afd7ed558ccd));
    uint64_t n = len - i < 8 ? len - i : 8;
    memcpy (buf + i, &v, n);
  }
}

struct torture_ud {
  uint64_t round;
  bool check;
};

static int
torture_piece (struct job *j, uint64_t off, uint64_t len, char *buf)
{
  struct torture_ud *t = j->ud;

  if (!t->check) {
    fill_pattern (buf, off, len, t->round);
    return vd_attachment_pwrite (j->a, buf, len, off,
                                 ((off / reqsize) % 13 == 0) ? VD_FLAG_FUA : 0);
  }
  else {
    char *want = malloc (len);
    if (want == NULL)
      die ("malloc");
    if (vd_attachment_pread (j->a, buf, len, off, 0) == -1) {
      free (want);
      return -1;
    }
    fill_pattern (want, off, len, t->round);
    if (memcmp (buf, want, len) != 0)
      die ("round %" PRIu64 ": data at offset %" PRIu64 " is not what was "
           "written and flushed (a lost or reordered write)", t->round, off);
    free (want);
    return 0;
  }
}

static int
cmd_torture (const char *uri)
{
  struct vd_attachment *a = open_uri (uri);
  int64_t size = vd_attachment_get_size (a);
  struct torture_ud t = { 0 };
  struct job j = { .a = a, .ud = &t, .fn = torture_piece };
  int done = 0;
  double start = now_s ();

  if (size < 0)
    lib_failed ("get_size");
  j.size = size;
  for (uint64_t r = 1;; ++r) {
    t.round = r;
    t.check = false;
    if (run_job (&j) == -1)
      job_failed (&j, "torture write");
    if (vd_attachment_flush (a, 0) == -1)
      lib_failed ("flush");
    t.check = true;
    if (run_job (&j) == -1)
      job_failed (&j, "torture verify");
    done = r;
    if (until_file) {
      if (r >= (uint64_t) min_rounds && access (until_file, F_OK) == 0)
        break;
    }
    else if (r >= (uint64_t) rounds)
      break;
  }
  close_att (a);                /* delivers any pending event */
  printf ("rounds: %d\nconnections: %d\nseconds: %.1f\n", done,
          atomic_load (&nr_connected), now_s () - start);
  return 0;
}

static int
cmd_pattern (int argc, char **argv)
{
  uint64_t round, size, off = 0;
  char *buf = malloc (1 << 20);
  FILE *fp;

  if (argc != 3 || buf == NULL)
    die ("usage: pattern ROUND SIZE FILE");
  round = parse_u64 (argv[0]);
  size = parse_u64 (argv[1]);
  fp = fopen (argv[2], "w");
  if (fp == NULL)
    die ("%s: %m", argv[2]);
  while (off < size) {
    uint64_t n = size - off < (1 << 20) ? size - off : (1 << 20);
    fill_pattern (buf, off, n, round);
    if (fwrite (buf, 1, n, fp) != n)
      die ("%s: write", argv[2]);
    off += n;
  }
  if (fclose (fp) != 0)
    die ("%s: %m", argv[2]);
  free (buf);
  return 0;
}

int
main (int argc, char **argv)
{
  enum { OPT_SYNC = 256, OPT_RO, OPT_EVENTS, OPT_ROUNDS, OPT_UNTIL,
         OPT_MIN_ROUNDS, OPT_SEED, OPT_EXPECT };
  static const struct option longopts[] = {
    { "timeout", required_argument, NULL, 't' },
    { "threads", required_argument, NULL, 'j' },
    { "request", required_argument, NULL, 'r' },
    { "sync", required_argument, NULL, OPT_SYNC },
    { "read-only", no_argument, NULL, OPT_RO },
    { "events", required_argument, NULL, OPT_EVENTS },
    { "rounds", required_argument, NULL, OPT_ROUNDS },
    { "until", required_argument, NULL, OPT_UNTIL },
    { "min-rounds", required_argument, NULL, OPT_MIN_ROUNDS },
    { "seed", required_argument, NULL, OPT_SEED },
    { "expect-fail", required_argument, NULL, OPT_EXPECT },
    { NULL }
  };
  int c, r;
  const char *cmd, *uri;

  while ((c = getopt_long (argc, argv, "t:j:r:", longopts, NULL)) != -1) {
    switch (c) {
    case 't': timeout = strtod (optarg, NULL); break;
    case 'j': nthreads = (int) parse_u64 (optarg); break;
    case 'r': reqsize = parse_u64 (optarg); break;
    case OPT_SYNC:
      sync_mode = strcmp (optarg, "none") == 0 ? VD_SYNC_NONE : VD_SYNC_FULL;
      break;
    case OPT_RO: read_only = true; break;
    case OPT_EVENTS:
      events_fp = fopen (optarg, "a");
      if (events_fp == NULL)
        die ("%s: %m", optarg);
      break;
    case OPT_ROUNDS: rounds = (int) parse_u64 (optarg); break;
    case OPT_UNTIL: until_file = optarg; break;
    case OPT_MIN_ROUNDS: min_rounds = (int) parse_u64 (optarg); break;
    case OPT_SEED: seed = parse_u64 (optarg); break;
    case OPT_EXPECT: expect_errno = (int) parse_u64 (optarg); break;
    default: die ("bad option");
    }
  }
  if (nthreads < 1 || reqsize == 0)
    die ("bad -j or -r");
  if (optind >= argc)
    die ("missing command");
  cmd = argv[optind++];
  if (strcmp (cmd, "pattern") == 0)
    return cmd_pattern (argc - optind, argv + optind);
  if (optind >= argc)
    die ("missing URI");
  uri = argv[optind++];
  if (strcmp (cmd, "info") == 0)
    r = cmd_info (uri);
  else if (strcmp (cmd, "write") == 0 && optind < argc)
    r = cmd_copy (uri, argv[optind], 0);
  else if (strcmp (cmd, "read") == 0 && optind < argc)
    r = cmd_copy (uri, argv[optind], 1);
  else if (strcmp (cmd, "verify") == 0 && optind < argc)
    r = cmd_copy (uri, argv[optind], 2);
  else if (strcmp (cmd, "map") == 0)
    r = cmd_map (uri);
  else if (strcmp (cmd, "zero") == 0)
    r = cmd_zero_trim (uri, argc - optind, argv + optind, false);
  else if (strcmp (cmd, "trim") == 0)
    r = cmd_zero_trim (uri, argc - optind, argv + optind, true);
  else if (strcmp (cmd, "unaligned") == 0 && optind < argc)
    r = cmd_unaligned (uri, argv[optind]);
  else if (strcmp (cmd, "torture") == 0)
    r = cmd_torture (uri);
  else
    die ("unknown command or missing argument: %s", cmd);
  if (expect_errno)
    die ("%s succeeded, expected errno %d", cmd, expect_errno);
  if (events_fp)
    fclose (events_fp);
  return r;
}
