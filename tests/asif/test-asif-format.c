/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Malformed and unusual ASIF images: each one gets a clear error (the
 * right errno, a message naming the problem) or opens read-only with the
 * reason recorded, and none is ever modified.  Also: the geometry of the
 * blank image, sizes at the limits, and the attachment's capabilities.
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
#include "asif/asif-format.h"
#include "byte-order.h"

#define MiB (UINT64_C (1) << 20)

static char path[256];

static void
create (uint64_t size)
{
  unlink (path);
  CHECK (vd_image_create (path, VD_FORMAT_ASIF, size, 0) == 0);
}

static void
patch (uint64_t off, const void *data, size_t len)
{
  int fd = open (path, O_WRONLY);
  CHECK (fd >= 0);
  CHECK (pwrite (fd, data, len, off) == (ssize_t) len);
  close (fd);
}

static void
patch_be32 (uint64_t off, uint32_t v)
{
  uint8_t b[4];
  store_be32 (b, v);
  patch (off, b, 4);
}

static void
patch_be64 (uint64_t off, uint64_t v)
{
  uint8_t b[8];
  store_be64 (b, v);
  patch (off, b, 8);
}

static char *
slurp (size_t *len)
{
  struct stat st;
  int fd = open (path, O_RDONLY);
  char *b;
  CHECK (fd >= 0 && fstat (fd, &st) == 0);
  b = malloc (st.st_size + 1);
  CHECK (b && pread (fd, b, st.st_size, 0) == st.st_size);
  close (fd);
  *len = st.st_size;
  return b;
}

/* Opening must fail with err and a message containing substr, and leave
 * the file byte for byte as it was.
 */
static void
expect_refused (int err, const char *substr)
{
  size_t n1, n2;
  char *before = slurp (&n1), *after;
  CHECK_NULL (vd_attachment_open (path, NULL), err, substr);
  after = slurp (&n2);
  CHECK (n1 == n2 && memcmp (before, after, n1) == 0);
  free (before);
  free (after);
}

/* Opening succeeds read-only (even when asked for writing), writes are
 * refused with EROFS, and the file is unchanged.
 */
static void
expect_read_only (const char *reason_substr)
{
  struct vd_attachment *a;
  size_t n1, n2;
  char *before = slurp (&n1), *after, buf[512] = { 1 };

  a = vd_attachment_open (path, NULL);
  CHECK (a != NULL);
  CHECK (vd_attachment_is_read_only (a) == 1);
  CHECK_FAILS (vd_attachment_pwrite (a, buf, 512, 0, 0), EROFS, "read-only");
  CHECK (vd_attachment_pread (a, buf, 512, 0, 0) == 0);
  CHECK (vd_attachment_close (a) == 0);
  after = slurp (&n2);
  CHECK (n1 == n2 && memcmp (before, after, n1) == 0);
  free (before);
  free (after);
  (void) reason_substr;
}

static int
count_prop (void *ud, const char *key, int type, const char *str, uint64_t u)
{
  if (strcmp (key, "asif.read-only-reason") == 0)
    snprintf ((char *) ud, 160, "%s", str);
  return 0;
}

int
main (void)
{
  struct vd_attachment *a;
  char reason[160];
  struct asif_geom g;

  test_tmpname (path, sizeof path, "format-asif");

  /* Geometry of a blank image (format notes §3). */
  CHECK (asif_geom_apple ("x", 100 * (UINT64_C (1) << 30), &g) == 0);
  CHECK (g.n == 2048 && g.c == 63 && g.e == 129087);
  CHECK (g.table_bytes == 1032704 && g.d == UINT64_C (135291469824));
  CHECK (g.t == 33289 && g.dir_slot == 0x41200);
  CHECK (g.dir_off[0] == 0x200 && g.dir_off[1] == 0x41400);
  CHECK (g.metadata_chunk == 0xFFFFFFFF);

  /* Sizes at the limits. */
  unlink (path);
  CHECK_FAILS (vd_image_create (path, VD_FORMAT_ASIF, 1000, 0), EINVAL,
               "multiple of 512");
  CHECK_FAILS (vd_image_create (path, VD_FORMAT_ASIF, VD_ASIF_MAX_SIZE + 512,
                                0), EFBIG, "4 PiB");
  create (VD_ASIF_MAX_SIZE);
  a = vd_attachment_open (path, NULL);
  CHECK (a != NULL);
  CHECK (vd_attachment_get_size (a) == (int64_t) VD_ASIF_MAX_SIZE);
  {
    /* The last bytes of a 4 PiB disk are writable and read back. */
    char w[4096], r[4096];
    memset (w, 0x5a, sizeof w);
    CHECK (vd_attachment_pwrite (a, w, sizeof w,
                                 VD_ASIF_MAX_SIZE - sizeof w, 0) == 0);
    CHECK (vd_attachment_pread (a, r, sizeof r,
                                VD_ASIF_MAX_SIZE - sizeof r, 0) == 0);
    CHECK (memcmp (w, r, sizeof w) == 0);
    CHECK_FAILS (vd_attachment_pwrite (a, w, 512, VD_ASIF_MAX_SIZE, 0),
                 ENOSPC, "beyond the end");
  }
  CHECK (vd_attachment_get_preferred_block_size (a) == MiB);
  CHECK (vd_attachment_can_discard (a) == 1);
  CHECK (vd_attachment_can_zero (a) == 1);
  CHECK (vd_attachment_can_extents (a) == 1);
  CHECK (vd_attachment_close (a) == 0);
  CHECK (tu_check (path, 0).corruptions == 0);
  CHECK_FAILS (vd_image_resize (path, VD_ASIF_MAX_SIZE + 512), EFBIG,
               "larger than");
  CHECK_FAILS (vd_image_resize (path, 1000), EINVAL, "multiple");

  /* Refused: unknown version, segments, bad magic in the middle of
   * fields, geometry problems.
   */
  create (10 * MiB);
  patch_be32 (ASIF_H_VERSION, 2);
  expect_refused (ENOTSUP, "version 2");
  create (10 * MiB);
  {
    uint8_t seg[2] = { 0, 1 };
    patch (ASIF_H_SEGMENTS, seg, 2);
  }
  expect_refused (ENOTSUP, "segments");
  create (10 * MiB);
  patch_be32 (ASIF_H_CHUNK_SIZE, 3 * 512 * 1024);
  expect_refused (ENOTSUP, "chunk size");
  create (10 * MiB);
  patch_be64 (ASIF_H_DIR1, 0x400);
  expect_refused (EIO, "overlap");
  create (10 * MiB);
  patch_be64 (ASIF_H_SECTOR_COUNT, (UINT64_C (1) << 43) + 1);
  expect_refused (EIO, "larger than the maximum");
  create (10 * MiB);
  patch_be64 (ASIF_H_SECTOR_COUNT, (UINT64_C (1) << 43));
  expect_refused (EIO, "overlaps the metadata");
  /* Directory entry past the end of the file. */
  create (10 * MiB);
  patch_be64 (0x41400 + 8, 77);
  expect_refused (EIO, "past the end of the file");
  /* Truncated inside the directories. */
  create (10 * MiB);
  CHECK (truncate (path, 4096) == 0);
  expect_refused (EIO, "ends inside the directories");
  /* Forced format asif on a non-ASIF file. */
  unlink (path);
  CHECK (vd_image_create (path, VD_FORMAT_RAW, MiB, 0) == 0);
  {
    struct vd_open_options o;
    vd_open_options_init (&o);
    o.format = "asif";
    CHECK_NULL (vd_attachment_open (path, &o), EINVAL, "not an ASIF image");
  }

  /* Read-only with a warning: flag words, unknown fields, bad metadata. */
  create (10 * MiB);
  patch_be32 (ASIF_H_FLAGS, 1);
  expect_read_only ("flag");
  a = vd_attachment_open (path, NULL);
  CHECK (a != NULL);
  reason[0] = '\0';
  CHECK (vd_attachment_get_properties (a, count_prop, reason) == 0);
  CHECK (strstr (reason, "flag") != NULL);
  vd_attachment_close (a);
  CHECK_FAILS (vd_image_resize (path, 20 * MiB), EROFS, "read-only");
  CHECK_FAILS (vd_image_compact (path, NULL), ENOTSUP, "flag words");
  {
    struct vd_check_result r = { .struct_size = sizeof r };
    CHECK_FAILS (vd_image_check (path, 0, &r, NULL, NULL), ENOTSUP,
                 "cannot check");
  }
  create (10 * MiB);
  patch_be32 (ASIF_H_META_RO_FLAGS, 0x10);
  expect_read_only ("flag");
  create (10 * MiB);
  patch (0x200000, "mexa", 4);
  expect_read_only ("meta");
  create (10 * MiB);
  patch (0x200200, "<plist><dict>", 13);
  expect_read_only ("property list");

  /* Corrupt entries found while in use: EIO naming the entry; the image
   * is not written.  Table 0 is created by a first write.
   */
  create (10 * MiB);
  a = vd_attachment_open (path, NULL);
  CHECK (a != NULL);
  {
    char buf[4096];
    memset (buf, 7, sizeof buf);
    CHECK (vd_attachment_pwrite (a, buf, sizeof buf, 0, 0) == 0);
    CHECK (vd_attachment_close (a) == 0);
    /* Table 0 is chunk 4; entry of virtual chunk 0 -> chunk 1 (a table):
     * reading is allowed (it is just bytes), writing must be refused.
     */
    patch_be64 (4 * MiB, asif_entry_make (ASIF_ST_FULL, 1));
    a = vd_attachment_open (path, NULL);
    CHECK (a != NULL);
    CHECK (vd_attachment_pread (a, buf, sizeof buf, 0, 0) == 0);
    CHECK_FAILS (vd_attachment_pwrite (a, buf, sizeof buf, 0, 0), EIO,
                 "holds metadata");
    CHECK (vd_attachment_close (a) == 0);
    CHECK (tu_check (path, 0).corruptions > 0);
    /* Status 01 with an index past the end of the file. */
    patch_be64 (4 * MiB, asif_entry_make (ASIF_ST_FULL, 999));
    a = vd_attachment_open (path, NULL);
    CHECK (a != NULL);
    CHECK_FAILS (vd_attachment_pread (a, buf, 512, 0, 0), EIO,
                 "past the end of the file");
    CHECK (vd_attachment_close (a) == 0);
    /* Reserved bits. */
    patch_be64 (4 * MiB, UINT64_C (0x4080000000000005));
    a = vd_attachment_open (path, NULL);
    CHECK (a != NULL);
    CHECK_FAILS (vd_attachment_pread (a, buf, 512, 0, 0), EIO,
                 "reserved bits");
    CHECK (vd_attachment_close (a) == 0);
    /* Repair turns the unreadable entry (past EOF) into a discarded one;
     * reserved bits are not repaired.
     */
    patch_be64 (4 * MiB, asif_entry_make (ASIF_ST_FULL, 999));
    {
      struct vd_check_result r = tu_check (path, VD_CHECK_REPAIR_ALL |
                                           VD_CHECK_REPAIR_LEAKS);
      CHECK (r.corruptions == 1 && r.corruptions_left == 0);
      CHECK (r.leaks_left == 0);
    }
    a = vd_attachment_open (path, NULL);
    CHECK (a != NULL);
    CHECK (vd_attachment_pread (a, buf, 512, 0, 0) == 0);
    CHECK (buf[0] == 0 && buf[511] == 0);
    CHECK (vd_attachment_close (a) == 0);
  }

  /* Bitmap state 11 in a partial chunk: reads fail, check reports it. */
  create (10 * MiB);
  a = vd_attachment_open (path, NULL);
  CHECK (a != NULL);
  {
    char buf[512];
    memset (buf, 9, sizeof buf);
    CHECK (vd_attachment_pwrite (a, buf, 512, 512, 0) == 0);
    CHECK (vd_attachment_close (a) == 0);
    /* table at chunk 4, bitmap chunk 5: block 0 of chunk 0 -> state 11. */
    patch (5 * MiB, "\x07", 1);
    a = vd_attachment_open (path, NULL);
    CHECK (a != NULL);
    CHECK_FAILS (vd_attachment_pread (a, buf, 512, 0, 0), EIO,
                 "bitmap state 3");
    CHECK (vd_attachment_pread (a, buf, 512, 512, 0) == 0);
    CHECK (buf[0] == 9);
    CHECK (vd_attachment_close (a) == 0);
    CHECK (tu_check (path, 0).corruptions == 1);
  }

  unlink (path);
  return 0;
}
