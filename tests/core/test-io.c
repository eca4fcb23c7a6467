/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The attachment conformance test: every API call (vectored I/O too) and
 * its error paths, run against any writable attachment of at least 16 MiB.
 *
 *   test-io SPEC [--caching MODE] [--sync MODE] [--discard-zeroes]
 *           [--threads N]
 *
 * The same program runs on a RAW file (cached and uncached), on a loop
 * block device (tests/core/test-blockdev.sh), and later on ASIF images
 * and NBD exports.  --discard-zeroes asserts that discarded ranges read
 * as zeros (true for RAW and ASIF, not promised by block devices).
 * The attachment is overwritten.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/uio.h>

#include "test.h"

static const char *spec;
static struct vd_open_options opts;
static bool discard_zeroes;
static int nr_threads = 8;
static uint64_t size;

static uint64_t rng_state = 0x123456789abcdefULL;
static uint64_t
rnd (void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void
fill (char *buf, size_t n, uint64_t seed)
{
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    buf[i] = (char) (seed >> 56);
  }
}

static bool
all_zero (const char *buf, size_t n)
{
  for (size_t i = 0; i < n; ++i)
    if (buf[i])
      return false;
  return true;
}

/* Read [off, off+n) and compare with expect. */
static void
expect_bytes (struct vd_attachment *a, uint64_t off, const char *expect,
              size_t n, int line)
{
  char *got = malloc (n);
  CHECK (got != NULL);
  if (vd_attachment_pread (a, got, n, off, 0) == -1) {
    fprintf (stderr, "line %d: pread %" PRIu64 "+%zu: %s\n", line, off, n,
             vd_get_error ());
    exit (1);
  }
  if (memcmp (got, expect, n) != 0) {
    size_t i = 0;
    while (got[i] == expect[i])
      i++;
    fprintf (stderr, "line %d: data mismatch at offset %" PRIu64 "\n", line,
             off + i);
    exit (1);
  }
  free (got);
}

struct extent_check {
  uint64_t next;
  int n;
  struct vd_attachment *a;
};

static int
check_extent (void *ud, uint64_t offset, uint64_t length, uint32_t state)
{
  struct extent_check *c = ud;

  CHECK (offset == c->next);
  CHECK (length > 0);
  CHECK ((state & ~(VD_STATE_HOLE | VD_STATE_ZERO)) == 0);
  /* A hole always reads as zeros (for the backends we ship). */
  if (state & VD_STATE_ZERO) {
    uint64_t n = length < 1024 * 1024 ? length : 1024 * 1024;
    char *buf = malloc (n);
    CHECK (buf != NULL);
    CHECK (vd_attachment_pread (c->a, buf, n, offset, 0) == 0);
    CHECK (all_zero (buf, n));
    free (buf);
  }
  c->next = offset + length;
  c->n++;
  return 0;
}

static void
test_block_status (struct vd_attachment *a)
{
  struct extent_check c = { .next = 0, .a = a };
  uint64_t covered = 0;

  /* Walk the whole disk; each call may stop early but never at 0. */
  while (covered < size) {
    c.next = covered;
    c.n = 0;
    CHECK (vd_attachment_block_status (a, size - covered, covered, 0,
                                       check_extent, &c) == 0);
    CHECK (c.n > 0);
    CHECK (c.next > covered && c.next <= size);
    covered = c.next;
  }
  /* REQ_ONE gives exactly one extent, inside the request. */
  c.next = 4096;
  c.n = 0;
  CHECK (vd_attachment_block_status (a, 1024 * 1024, 4096, VD_FLAG_REQ_ONE,
                                     check_extent, &c) == 0);
  CHECK (c.n == 1);
  CHECK (c.next <= 4096 + 1024 * 1024);
  /* Range errors. */
  CHECK_FAILS (vd_attachment_block_status (a, 1, size, 0, check_extent, &c),
               EINVAL, "beyond the end");
  CHECK_FAILS (vd_attachment_block_status (a, 1, 0, 0x100, check_extent, &c),
               EINVAL, "invalid flags");
}

static int
stop_extent (void *ud, uint64_t offset, uint64_t length, uint32_t state)
{
  return -1;
}

static void
test_rw (struct vd_attachment *a)
{
  const size_t n = 256 * 1024;
  char *buf = malloc (n + 4096), *zero = calloc (1, n);
  CHECK (buf && zero);

  /* Aligned, unaligned offset, unaligned buffer, tiny, crossing 1 MiB. */
  struct { uint64_t off; size_t len; size_t bufoff; } cases[] = {
    { 0, 4096, 0 },
    { 1024 * 1024, n, 0 },
    { 3 * 1024 * 1024 + 7, 1000, 0 },
    { 4 * 1024 * 1024 - 100, 300, 3 },     /* crosses a MiB boundary */
    { 5 * 1024 * 1024 + 511, 1, 1 },
    { 6 * 1024 * 1024, 512, 17 },           /* aligned range, odd buffer */
    { size - 4096, 4096, 0 },               /* last block */
    { size - 1, 1, 0 },                     /* last byte */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    char *p = buf + cases[i].bufoff;
    fill (p, cases[i].len, i + 1);
    CHECK (vd_attachment_pwrite (a, p, cases[i].len, cases[i].off,
                                 i % 2 ? VD_FLAG_FUA : 0) == 0);
    expect_bytes (a, cases[i].off, p, cases[i].len, __LINE__);
  }
  /* Neighbours of the unaligned writes are untouched (RMW correctness). */
  {
    char want[2048];
    /* 3 MiB + 7 + 1000 .. : was never written: zeros. */
    memset (want, 0, sizeof want);
    expect_bytes (a, 3 * 1024 * 1024 + 1007, want, 1000, __LINE__);
    expect_bytes (a, 3 * 1024 * 1024, want, 7, __LINE__);
  }
  CHECK (vd_attachment_flush (a, 0) == 0);

  /* write_zeroes (no trim, may trim), unaligned. */
  fill (buf, n, 99);
  CHECK (vd_attachment_pwrite (a, buf, n, 8 * 1024 * 1024, 0) == 0);
  CHECK (vd_attachment_write_zeroes (a, 10000, 8 * 1024 * 1024 + 333, 0) == 0);
  CHECK (vd_attachment_write_zeroes (a, 65536, 8 * 1024 * 1024 + 131072,
                                     VD_FLAG_MAY_TRIM | VD_FLAG_FUA) == 0);
  memset (buf + 333, 0, 10000);
  memset (buf + 131072, 0, 65536);
  expect_bytes (a, 8 * 1024 * 1024, buf, n, __LINE__);
  (void) zero;

  /* Fast zero: either works or fails with ENOTSUP, never anything else. */
  if (vd_attachment_can_fast_zero (a) == 1) {
    int r = vd_attachment_write_zeroes (a, 4096, 9 * 1024 * 1024,
                                        VD_FLAG_FAST_ZERO);
    CHECK (r == 0 || vd_get_errno () == ENOTSUP);
  }
  else
    CHECK_FAILS (vd_attachment_write_zeroes (a, 4096, 9 * 1024 * 1024,
                                             VD_FLAG_FAST_ZERO),
                 ENOTSUP, "fast");

  /* Discard. */
  if (vd_attachment_can_discard (a) == 1) {
    fill (buf, n, 7);
    CHECK (vd_attachment_pwrite (a, buf, n, 10 * 1024 * 1024, 0) == 0);
    CHECK (vd_attachment_discard (a, 131072, 10 * 1024 * 1024 + 4096, 0) == 0);
    CHECK (vd_attachment_discard (a, 100, 10 * 1024 * 1024 + 200000,
                                  VD_FLAG_FUA) == 0);
    if (discard_zeroes) {
      memset (buf + 4096, 0, 131072);
      memset (buf + 200000, 0, 100);
      expect_bytes (a, 10 * 1024 * 1024, buf, n, __LINE__);
    }
  }
  else
    CHECK_FAILS (vd_attachment_discard (a, 4096, 0, 0), EOPNOTSUPP,
                 "not supported");

  /* Cache is a hint: succeeds. */
  CHECK (vd_attachment_cache (a, 1024 * 1024, 0, 0) == 0);
  free (buf);
  free (zero);
}

static void
test_errors (struct vd_attachment *a)
{
  char buf[4096] = { 0 };

  /* Out of range: reads EINVAL, writes ENOSPC, with the numbers. */
  CHECK_FAILS (vd_attachment_pread (a, buf, 1, size, 0), EINVAL,
               "beyond the end");
  CHECK_FAILS (vd_attachment_pread (a, buf, 4096, size - 4095, 0), EINVAL,
               "beyond the end");
  CHECK_FAILS (vd_attachment_pwrite (a, buf, 1, size, 0), ENOSPC,
               "beyond the end");
  CHECK_FAILS (vd_attachment_write_zeroes (a, 2, size - 1, 0), ENOSPC,
               "beyond the end");
  CHECK_FAILS (vd_attachment_discard (a, 4096, size, 0), EINVAL,
               "beyond the end");
  CHECK_FAILS (vd_attachment_cache (a, 1, size, 0), EINVAL, "beyond the end");
  /* offset + count overflows 64 bits. */
  CHECK_FAILS (vd_attachment_pread (a, buf, 4096, UINT64_MAX - 100, 0), EINVAL,
               "beyond the end");
  CHECK_FAILS (vd_attachment_write_zeroes (a, UINT64_MAX, 1, 0), ENOSPC,
               "beyond the end");
  /* Bad flags. */
  CHECK_FAILS (vd_attachment_pread (a, buf, 1, 0, VD_FLAG_FUA), EINVAL,
               "invalid flags");
  CHECK_FAILS (vd_attachment_pwrite (a, buf, 1, 0, VD_FLAG_MAY_TRIM), EINVAL,
               "invalid flags");
  CHECK_FAILS (vd_attachment_flush (a, 1u << 20), EINVAL, "invalid flags");
  /* Larger than the maximum request. */
  CHECK_FAILS (vd_attachment_pread (a, buf,
                                    (size_t) vd_attachment_get_max_request (a)
                                    + 1, 0, 0),
               EINVAL, "maximum request size");
  /* A block_status callback that stops. */
  CHECK_FAILS (vd_attachment_block_status (a, 4096, 0, 0, stop_extent, NULL),
               ECANCELED, "stopped");
  /* Zero-length requests are no-ops, even at the end. */
  CHECK (vd_attachment_pread (a, buf, 0, size, 0) == 0);
  CHECK (vd_attachment_pwrite (a, buf, 0, size, 0) == 0);
}

/* Gather the segments into one buffer (what they should read as). */
static char *
gather (const struct iovec *iov, int n, size_t *total)
{
  size_t t = 0, k = 0;
  char *buf;

  for (int i = 0; i < n; ++i)
    t += iov[i].iov_len;
  buf = malloc (t ? t : 1);
  CHECK (buf != NULL);
  for (int i = 0; i < n; ++i) {
    memcpy (buf + k, iov[i].iov_base, iov[i].iov_len);
    k += iov[i].iov_len;
  }
  *total = t;
  return buf;
}

/* pwritev the segments (filled with seed) at off, check with pread; then
 * preadv them back into the same layout, cleared first, and compare.
 */
static void
vector_round_trip (struct vd_attachment *a, struct iovec *iov, int n,
                   uint64_t off, uint32_t flags, uint64_t seed, int line)
{
  size_t total;
  char *want;

  for (int i = 0; i < n; ++i)
    fill (iov[i].iov_base, iov[i].iov_len, seed + i);
  want = gather (iov, n, &total);
  if (vd_attachment_pwritev (a, iov, n, off, flags) == -1) {
    fprintf (stderr, "line %d: pwritev: %s\n", line, vd_get_error ());
    exit (1);
  }
  expect_bytes (a, off, want, total, line);
  for (int i = 0; i < n; ++i)
    memset (iov[i].iov_base, 0xee, iov[i].iov_len);
  if (vd_attachment_preadv (a, iov, n, off, 0) == -1) {
    fprintf (stderr, "line %d: preadv: %s\n", line, vd_get_error ());
    exit (1);
  }
  {
    size_t t2;
    char *got = gather (iov, n, &t2);
    CHECK (t2 == total && memcmp (got, want, total) == 0);
    free (got);
  }
  free (want);
}

static void
test_vectored (struct vd_attachment *a)
{
  const size_t arena_size = 8u << 20;
  /* The last 11 MiB (of at least 16), on a MiB boundary. */
  const uint64_t base = (size - (11u << 20)) & ~(uint64_t) ((1u << 20) - 1);
  uint32_t max = vd_attachment_get_max_request (a);
  struct iovec *iov = calloc (IOV_MAX + 1, sizeof *iov);
  char *arena = NULL, one[16];
  int n;

  CHECK (iov != NULL);
  CHECK (posix_memalign ((void **) &arena, 4096, arena_size) == 0);

  /* Scattered pages, as a guest's buffers come: O_DIRECT takes them. */
  for (n = 0; n < 64; ++n)
    iov[n] = (struct iovec) { arena + (size_t) n * 8192, 4096 };
  vector_round_trip (a, iov, 64, base, 0, 1, __LINE__);

  /* Odd sizes at odd addresses, empty segments, an unaligned offset. */
  {
    static const size_t lens[] = { 1, 511, 0, 513, 4096, 0, 3000, 7, 65536 };
    char *p = arena + 3;
    n = 0;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; ++i) {
      iov[n++] = (struct iovec) { p, lens[i] };
      p += lens[i] + 17;
    }
    vector_round_trip (a, iov, n, base + (1u << 20) + 5, VD_FLAG_FUA, 2,
                       __LINE__);
  }

  /* One non-empty segment among empty ones. */
  iov[0] = (struct iovec) { arena, 0 };
  iov[1] = (struct iovec) { arena + 4096, 12288 };
  iov[2] = (struct iovec) { arena, 0 };
  vector_round_trip (a, iov, 3, base + (2u << 20), 0, 3, __LINE__);

  /* IOV_MAX segments of 512 bytes. */
  for (n = 0; n < IOV_MAX; ++n)
    iov[n] = (struct iovec) { arena + (size_t) n * 1024, 512 };
  vector_round_trip (a, iov, IOV_MAX, base + (3u << 20), 0, 4, __LINE__);

  /* Larger than a bounce buffer (4 MiB), the middle segment unaligned. */
  if (max >= (6u << 20)) {
    iov[0] = (struct iovec) { arena, 2u << 20 };
    iov[1] = (struct iovec) { arena + (2u << 20) + 4096 + 1, (2u << 20) - 1 };
    iov[2] = (struct iovec) { arena + (5u << 20), (2u << 20) + 1 };
    vector_round_trip (a, iov, 3, base + (4u << 20), 0, 5, __LINE__);
  }

  /* Data and holes in one vector: small unaligned writes into space
   * never written (ASIF: a partial chunk whose written and unwritten
   * runs alternate), read back in segments that cross the runs.  The
   * result must be what pread gives.
   */
  {
    const size_t span = 1u << 20;
    uint64_t at = base + (10u << 20);
    char *want = malloc (span), *got;
    size_t total = 0, t2;

    CHECK (want != NULL);
    for (int k = 0; k < 16; ++k) {
      fill (one, sizeof one, 100 + k);
      CHECK (vd_attachment_pwrite (a, one, sizeof one,
                                   at + (uint64_t) k * 65536 + k * 37,
                                   0) == 0);
    }
    CHECK (vd_attachment_pread (a, want, span, at, 0) == 0);
    for (n = 0; total < span; ++n) {
      size_t len = 3000 + (size_t) (n % 7) * 4093;
      if (len > span - total)
        len = span - total;
      iov[n] = (struct iovec) { arena + total + (size_t) n * 16, len };
      memset (iov[n].iov_base, 0xee, len);
      total += len;
    }
    CHECK (vd_attachment_preadv (a, iov, n, at, 0) == 0);
    got = gather (iov, n, &t2);
    CHECK (t2 == span && memcmp (got, want, span) == 0);
    free (got);
    free (want);
  }

  /* Nothing at all, even at the end. */
  CHECK (vd_attachment_preadv (a, NULL, 0, size, 0) == 0);
  CHECK (vd_attachment_pwritev (a, iov, 0, size, 0) == 0);

  /* Errors, each before any data moves. */
  CHECK_FAILS (vd_attachment_preadv (a, iov, -1, 0, 0), EINVAL, "segments");
  for (n = 0; n <= IOV_MAX; ++n)
    iov[n] = (struct iovec) { one, 1 };
  CHECK_FAILS (vd_attachment_preadv (a, iov, IOV_MAX + 1, 0, 0), EINVAL,
               "segments");
  CHECK_FAILS (vd_attachment_pwritev (a, iov, IOV_MAX + 1, 0, 0), EINVAL,
               "segments");
  CHECK_FAILS (vd_attachment_preadv (a, NULL, 1, 0, 0), EINVAL, "segments");
  iov[0] = (struct iovec) { one, SIZE_MAX / 2 + 1 };
  iov[1] = (struct iovec) { one, SIZE_MAX / 2 + 1 };
  CHECK_FAILS (vd_attachment_preadv (a, iov, 2, 0, 0), EINVAL, "SIZE_MAX");
  iov[0] = (struct iovec) { arena, max };
  iov[1] = (struct iovec) { one, 1 };
  CHECK_FAILS (vd_attachment_pwritev (a, iov, 2, 0, 0), EINVAL,
               "maximum request size");
  iov[0] = (struct iovec) { one, 8 };
  iov[1] = (struct iovec) { one + 8, 8 };
  CHECK_FAILS (vd_attachment_preadv (a, iov, 2, size - 15, 0), EINVAL,
               "beyond the end");
  CHECK_FAILS (vd_attachment_pwritev (a, iov, 2, size - 15, 0), ENOSPC,
               "beyond the end");
  CHECK_FAILS (vd_attachment_preadv (a, iov, 2, 0, VD_FLAG_FUA), EINVAL,
               "invalid flags");
  CHECK_FAILS (vd_attachment_pwritev (a, iov, 2, 0, VD_FLAG_MAY_TRIM), EINVAL,
               "invalid flags");
  free (arena);
  free (iov);
}

struct worker {
  struct vd_attachment *a;
  int id;
  int iterations;
};

/* Each thread owns an interleaved set of 64 KiB slots and writes, reads
 * and checks them repeatedly, with unaligned sizes mixed in.
 */
static void *
worker (void *vp)
{
  struct worker *w = vp;
  const size_t slot = 65536;
  uint64_t nslots = (size / 2) / slot;
  char *buf = malloc (slot), *got = malloc (slot);
  uint64_t seed = w->id * 1000003;

  if (!buf || !got)
    abort ();
  for (int it = 0; it < w->iterations; ++it) {
    uint64_t s = ((seed = seed * 6364136223846793005ULL + 1) >> 33) %
      (nslots / nr_threads);
    uint64_t off = (s * nr_threads + w->id) * slot + size / 2;
    size_t len = slot - (it % 3) * 777;
    fill (buf, len, seed);
    if (vd_attachment_pwrite (w->a, buf, len, off, 0) == -1 ||
        vd_attachment_pread (w->a, got, len, off, 0) == -1) {
      fprintf (stderr, "thread %d: %s\n", w->id, vd_get_error ());
      abort ();
    }
    if (memcmp (buf, got, len) != 0) {
      fprintf (stderr, "thread %d: mismatch at %" PRIu64 "\n", w->id, off);
      abort ();
    }
  }
  free (buf);
  free (got);
  return NULL;
}

static void
test_threads (struct vd_attachment *a)
{
  pthread_t t[64];
  struct worker w[64];

  for (int i = 0; i < nr_threads; ++i) {
    w[i] = (struct worker) { .a = a, .id = i, .iterations = 200 };
    CHECK (pthread_create (&t[i], NULL, worker, &w[i]) == 0);
  }
  for (int i = 0; i < nr_threads; ++i)
    pthread_join (t[i], NULL);
  CHECK (vd_attachment_flush (a, 0) == 0);
}

static void
test_getters (struct vd_attachment *a)
{
  uint32_t bs = vd_attachment_get_block_size (a);
  uint32_t pbs = vd_attachment_get_preferred_block_size (a);

  CHECK (bs == 512 || bs == 4096);
  CHECK (pbs >= bs && (pbs & (pbs - 1)) == 0);
  CHECK (vd_attachment_get_max_request (a) >= 1024 * 1024);
  CHECK (vd_attachment_can_write (a) == 1);
  CHECK (vd_attachment_is_read_only (a) == 0);
  CHECK (vd_attachment_can_flush (a) == 1);
  CHECK (vd_attachment_can_fua (a) == 1);
  CHECK (vd_attachment_can_zero (a) == 1);
  CHECK (vd_attachment_can_extents (a) >= 0);
  CHECK (vd_attachment_can_cache (a) >= 0);
  CHECK (vd_attachment_can_multi_conn (a) >= 0);
  CHECK (vd_attachment_can_discard (a) >= 0);
  CHECK (vd_attachment_get_format (a) != NULL);
  CHECK (strcmp (vd_attachment_get_name (a), spec) == 0);
  CHECK (vd_attachment_get_caching_mode (a) != VD_CACHING_AUTOMATIC);
  CHECK (vd_attachment_get_sync_mode (a) == opts.sync_mode);
  CHECK (vd_attachment_start (a) == 0);
}

/* Read-only: every write fails with EROFS; reads work. */
static void
test_read_only (void)
{
  struct vd_open_options ro = opts;
  struct vd_attachment *a;
  char buf[4096];

  ro.flags |= VD_OPEN_READ_ONLY;
  a = vd_attachment_open (spec, &ro);
  CHECK (a != NULL);
  CHECK (vd_attachment_is_read_only (a) == 1);
  CHECK (vd_attachment_can_write (a) == 0);
  CHECK (vd_attachment_pread (a, buf, sizeof buf, 0, 0) == 0);
  CHECK_FAILS (vd_attachment_pwrite (a, buf, sizeof buf, 0, 0), EROFS,
               "read-only");
  {
    struct iovec v[2] = { { buf, 512 }, { buf + 1024, 512 } };
    CHECK (vd_attachment_preadv (a, v, 2, 0, 0) == 0);
    CHECK_FAILS (vd_attachment_pwritev (a, v, 2, 0, 0), EROFS, "read-only");
  }
  CHECK_FAILS (vd_attachment_write_zeroes (a, 4096, 0, 0), EROFS,
               "read-only");
  CHECK_FAILS (vd_attachment_discard (a, 4096, 0, 0), EROFS, "read-only");
  CHECK (vd_attachment_flush (a, 0) == 0);      /* nothing to flush */
  CHECK (vd_attachment_close (a) == 0);
}

int
main (int argc, char **argv)
{
  struct vd_attachment *a;

  if (argc < 2) {
    fprintf (stderr, "usage: %s SPEC [OPTIONS]\n", argv[0]);
    return 2;
  }
  spec = argv[1];
  vd_open_options_init (&opts);
  for (int i = 2; i < argc; ++i) {
    if (strcmp (argv[i], "--caching") == 0 && i + 1 < argc)
      opts.caching_mode = vd_caching_mode_from_name (argv[++i]);
    else if (strcmp (argv[i], "--sync") == 0 && i + 1 < argc)
      opts.sync_mode = vd_sync_mode_from_name (argv[++i]);
    else if (strcmp (argv[i], "--discard-zeroes") == 0)
      discard_zeroes = true;
    else if (strcmp (argv[i], "--threads") == 0 && i + 1 < argc)
      nr_threads = (int) strtol (argv[++i], NULL, 10);
    else {
      fprintf (stderr, "%s: unknown option %s\n", argv[0], argv[i]);
      return 2;
    }
  }
  CHECK (opts.caching_mode >= 0 && opts.sync_mode >= 0);
  if (nr_threads < 1 || nr_threads > 64)
    nr_threads = 8;

  a = vd_attachment_open (spec, &opts);
  CHECK (a != NULL);
  CHECK (vd_attachment_get_size (a) >= 16 * 1024 * 1024);
  size = vd_attachment_get_size (a);
  (void) rnd;

  test_getters (a);
  test_rw (a);
  test_errors (a);
  test_vectored (a);
  test_block_status (a);
  test_threads (a);
  CHECK (vd_attachment_close (a) == 0);
  test_read_only ();
  printf ("test-io %s: OK\n", spec);
  return 0;
}
