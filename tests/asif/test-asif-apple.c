/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The real macOS-made blank images (../shared/fixtures/asif-apple,
 * decompressed by test-asif-apple.sh into a scratch copy):
 *  - vdisk creates the same file byte for byte, except the header UUID
 *    and the stable uuid (and the size field for another size);
 *  - the image opens, has the right size, reads as zeros (everywhere
 *    block_status looks, and at sampled offsets up to the last byte) and
 *    block_status reports one hole;
 *  - after writing a pattern with vdisk (full chunks, partial chunks,
 *    sub-block writes, the disk's last partial chunk, a chunk group
 *    boundary), the image checks clean and reads the pattern back after
 *    a reopen, and the untouched space still reads as zeros.
 *
 * Usage: test-asif-apple COPY-OF-FIXTURE EXPECTED-SIZE
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asif-test-util.h"

#define MiB (UINT64_C (1) << 20)
#define FILE_SIZE (4 * MiB)
#define GUID_OFF 0x20
#define SIZE_OFF 0x30
#define STABLE_OFF 0x2002f4

static char *
slurp (const char *path)
{
  char *b = malloc (FILE_SIZE + 1);
  int fd = open (path, O_RDONLY);
  struct stat st;
  CHECK (b && fd >= 0);
  CHECK (fstat (fd, &st) == 0 && st.st_size == FILE_SIZE);
  CHECK (pread (fd, b, FILE_SIZE, 0) == FILE_SIZE);
  close (fd);
  return b;
}

static void
compare_blank (const char *fixture, uint64_t size, uint64_t other_size)
{
  char made[256];
  char *a, *b;
  size_t diffs = 0;

  test_tmpname (made, sizeof made, "apple-blank");
  CHECK (vd_image_create (made, VD_FORMAT_ASIF, other_size, 0) == 0);
  a = slurp (fixture);
  b = slurp (made);
  for (size_t i = 0; i < FILE_SIZE; ++i) {
    bool uuid = (i >= GUID_OFF && i < GUID_OFF + 16) ||
      (i >= STABLE_OFF && i < STABLE_OFF + 36);
    bool sizef = i >= SIZE_OFF && i < SIZE_OFF + 8 && size != other_size;
    if (a[i] != b[i] && !uuid && !sizef) {
      fprintf (stderr, "blank image differs from %s at offset %#zx: %02x "
               "vs %02x\n", fixture, i, (unsigned char) a[i],
               (unsigned char) b[i]);
      diffs++;
    }
  }
  CHECK (diffs == 0);
  /* The UUIDs must be fresh, not copied. */
  CHECK (memcmp (a + GUID_OFF, b + GUID_OFF, 16) != 0);
  CHECK (memcmp (a + STABLE_OFF, b + STABLE_OFF, 36) != 0);
  free (a);
  free (b);
  unlink (made);
}

static int
count_extent (void *ud, uint64_t off, uint64_t len, uint32_t state)
{
  uint64_t *n = ud;
  CHECK (state == (VD_STATE_HOLE | VD_STATE_ZERO));
  (*n)++;
  return 0;
}

static void
expect_zeros (struct vd_attachment *a, uint64_t off, size_t len)
{
  char *buf = malloc (len);
  CHECK (buf != NULL);
  CHECK (vd_attachment_pread (a, buf, len, off, 0) == 0);
  for (size_t i = 0; i < len; ++i)
    if (buf[i]) {
      fprintf (stderr, "offset %" PRIu64 " is not zero\n", off + i);
      exit (1);
    }
  free (buf);
}

struct pat {
  uint64_t off;
  size_t len;
};

int
main (int argc, char **argv)
{
  const char *path;
  uint64_t size, n = 0, st = 42, end;
  struct vd_attachment *a;
  struct vd_check_result r;
  char *buf;

  if (argc != 3) {
    fprintf (stderr, "usage: %s IMAGE SIZE\n", argv[0]);
    return 1;
  }
  path = argv[1];
  size = strtoull (argv[2], NULL, 10);

  compare_blank (path, size, size);
  compare_blank (path, size, size + 512 * 2048 * 3);

  r = tu_check (path, 0);
  CHECK (r.corruptions == 0 && r.leaks == 0);

  /* Opens, right size, reads as zeros. */
  a = vd_attachment_open (path, NULL);
  CHECK (a != NULL);
  CHECK (strcmp (vd_attachment_get_format (a), "asif") == 0);
  CHECK (vd_attachment_get_size (a) == (int64_t) size);
  CHECK (vd_attachment_get_block_size (a) == 512);
  CHECK (vd_attachment_block_status (a, size, 0, 0, count_extent, &n) == 0);
  CHECK (n >= 1);
  expect_zeros (a, 0, 4 * MiB);
  expect_zeros (a, size - 3 * MiB, 3 * MiB);
  for (int i = 0; i < 64; ++i) {
    uint64_t off = tu_rnd (&st) % (size - 65536);
    expect_zeros (a, off, 65536);
  }

  /* Write a pattern: full chunks, partial, sub-block, group boundary
   * (2 GiB), the last (partial) chunk of the disk.
   */
  {
    const struct pat pats[] = {
      { 0, MiB },
      { 3 * MiB, 2 * MiB },
      { 7 * MiB + 4096, 8192 },
      { 9 * MiB + 100, 37 },
      { 2048 * MiB - 4096, 3 * 4096 },
      { size - 1000, 1000 },
      { size / 2 / 512 * 512, 512 },
    };
    size_t np = sizeof pats / sizeof pats[0];
    uint64_t seed = 7;
    buf = malloc (2 * MiB);
    CHECK (buf != NULL);
    for (size_t i = 0; i < np; ++i) {
      tu_fill (&seed, buf, pats[i].len);
      CHECK (vd_attachment_pwrite (a, buf, pats[i].len, pats[i].off, 0) == 0);
    }
    CHECK (vd_attachment_close (a) == 0);

    r = tu_check (path, 0);
    CHECK (r.corruptions == 0 && r.leaks == 0);
    printf ("%s: %" PRIu64 " data chunks after writing the pattern\n",
            path, r.allocated_chunks);

    a = vd_attachment_open (path, NULL);
    CHECK (a != NULL);
    seed = 7;
    for (size_t i = 0; i < np; ++i) {
      char *got = malloc (pats[i].len);
      CHECK (got != NULL);
      tu_fill (&seed, buf, pats[i].len);
      CHECK (vd_attachment_pread (a, got, pats[i].len, pats[i].off, 0) == 0);
      CHECK (memcmp (got, buf, pats[i].len) == 0);
      free (got);
    }
    /* Neighbours of the pattern are still zeros. */
    expect_zeros (a, MiB, 2 * MiB);
    expect_zeros (a, 7 * MiB, 4096);
    expect_zeros (a, 7 * MiB + 4096 + 8192, MiB - 4096 - 8192);
    expect_zeros (a, 9 * MiB, 100);
    expect_zeros (a, 9 * MiB + 137, 4096);
    end = size - 1000;
    expect_zeros (a, end - 4096, 4096);
    CHECK (vd_attachment_close (a) == 0);
    free (buf);
  }
  return 0;
}
