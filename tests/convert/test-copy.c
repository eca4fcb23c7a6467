/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vd_copy: sparse copy of a patterned image (holes, zero data, data),
 * byte-identical and sparse; errors from the target stop the copy and
 * reach the caller; cancellation; size and read-only checks; several
 * attachments per side.
 */
#include "config.h"

#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "backend.h"
#include "faults.h"

#define SIZE (48u << 20)

static char spath[256], dpath[256];

static void
make_source (void)
{
  struct vd_attachment *a;
  char *buf = malloc (1 << 20);

  CHECK (buf != NULL);
  CHECK (vd_image_create (spath, VD_FORMAT_RAW, SIZE, VD_CREATE_OVERWRITE) == 0);
  a = vd_attachment_open (spath, NULL);
  CHECK (a != NULL);
  /* data at 1 MiB (whole), partial 4 KiB pieces at 10 MiB + 12 KiB, an
   * allocated run of zeros at 20 MiB, data in the last block.
   */
  for (int i = 0; i < (1 << 20); ++i)
    buf[i] = (char) (i * 7 + 1);
  CHECK (vd_attachment_pwrite (a, buf, 1 << 20, 1 << 20, 0) == 0);
  CHECK (vd_attachment_pwrite (a, buf, 4096, (10 << 20) + 12288, 0) == 0);
  memset (buf, 0, 1 << 20);
  CHECK (vd_attachment_pwrite (a, buf, 1 << 20, 20 << 20, 0) == 0);
  CHECK (vd_attachment_pwrite (a, "end", 3, SIZE - 3, 0) == 0);
  CHECK (vd_attachment_close (a) == 0);
  free (buf);
}

static void
same (const char *x, const char *y)
{
  struct vd_open_options ro;
  vd_open_options_init (&ro);
  ro.flags = VD_OPEN_READ_ONLY;
  struct vd_attachment *a = vd_attachment_open (x, &ro);
  struct vd_attachment *b = vd_attachment_open (y, &ro);
  char *ba = malloc (1 << 20), *bb = malloc (1 << 20);
  CHECK (a && b && ba && bb);
  for (uint64_t off = 0; off < SIZE; off += 1 << 20) {
    CHECK (vd_attachment_pread (a, ba, 1 << 20, off, 0) == 0);
    CHECK (vd_attachment_pread (b, bb, 1 << 20, off, 0) == 0);
    CHECK (memcmp (ba, bb, 1 << 20) == 0);
  }
  vd_attachment_close (a);
  vd_attachment_close (b);
  free (ba);
  free (bb);
}

static int cancel_after;
static int
progress (void *ud, uint64_t done, uint64_t total)
{
  int *calls = ud;
  (*calls)++;
  CHECK (done <= total && total == SIZE);
  return cancel_after && *calls >= cancel_after ? -1 : 0;
}

int
main (void)
{
  struct vd_attachment *s, *d, *ds[3];
  struct vd_copy_options o;
  struct vd_open_options ro;
  struct stat st;
  int calls = 0;

  test_tmpname (spath, sizeof spath, "copy-src");
  test_tmpname (dpath, sizeof dpath, "copy-dst");
  make_source ();
  vd_open_options_init (&ro);
  ro.flags = VD_OPEN_READ_ONLY;

  /* Fresh target: sparse, identical. */
  CHECK (vd_image_create (dpath, VD_FORMAT_RAW, SIZE, VD_CREATE_OVERWRITE) == 0);
  s = vd_attachment_open (spath, &ro);
  d = vd_attachment_open (dpath, NULL);
  CHECK (s && d);
  vd_copy_options_init (&o);
  o.flags = VD_COPY_TARGET_IS_ZERO;
  o.progress = progress;
  o.progress_user_data = &calls;
  CHECK (vd_copy (&s, 1, &d, 1, SIZE, &o) == 0);
  CHECK (calls >= 1);
  CHECK (o.bytes_written >= (1 << 20) + 4096 + 3);
  CHECK (o.bytes_written <= (1 << 20) + 3 * 4096);   /* zeros not written */
  CHECK (vd_attachment_close (d) == 0);
  same (spath, dpath);
  CHECK (stat (dpath, &st) == 0);
  CHECK (st.st_blocks * 512 <= (1 << 20) + 4 * 4096);

  /* Existing target full of junk, several attachments: zeros must be
   * written (the target does not read as zero).
   */
  {
    struct vd_attachment *j = vd_attachment_open (dpath, NULL);
    char *junk = malloc (1 << 20);
    CHECK (j && junk);
    memset (junk, 0xee, 1 << 20);
    for (uint64_t off = 0; off < SIZE; off += 1 << 20)
      CHECK (vd_attachment_pwrite (j, junk, 1 << 20, off, 0) == 0);
    CHECK (vd_attachment_close (j) == 0);
    free (junk);
  }
  {
    struct vd_open_options ns;
    vd_open_options_init (&ns);
    ns.flags = VD_OPEN_NO_LOCK;
    for (int i = 0; i < 3; ++i) {
      ds[i] = vd_attachment_open (dpath, &ns);
      CHECK (ds[i] != NULL);
    }
  }
  vd_copy_options_init (&o);
  o.requests = 5;
  o.request_size = 65536;
  CHECK (vd_copy (&s, 1, ds, 3, SIZE, &o) == 0);
  CHECK (o.bytes_zeroed > 0);
  for (int i = 0; i < 3; ++i)
    CHECK (vd_attachment_close (ds[i]) == 0);
  same (spath, dpath);

  /* --no-sparse: everything written, the file fully allocated. */
  CHECK (vd_image_create (dpath, VD_FORMAT_RAW, SIZE, VD_CREATE_OVERWRITE) == 0);
  d = vd_attachment_open (dpath, NULL);
  vd_copy_options_init (&o);
  o.flags = VD_COPY_NO_SPARSE;
  CHECK (vd_copy (&s, 1, &d, 1, SIZE, &o) == 0);
  CHECK (o.bytes_written == SIZE);
  CHECK (vd_attachment_close (d) == 0);
  same (spath, dpath);
  CHECK (stat (dpath, &st) == 0 && st.st_blocks * 512 >= SIZE);

  /* A target that fails its 3rd write: the copy stops with that error. */
  CHECK (vd_image_create (dpath, VD_FORMAT_RAW, SIZE, VD_CREATE_OVERWRITE) == 0);
  {
    struct vd_fault_config fc = { .fail_ops = VD_FAULT_OP_WRITE, .fail_at = 3,
                                  .fail_errno = ENOSPC };
    struct vd_attachment *raw = vd_raw_open (dpath, -1, NULL);
    CHECK (raw != NULL);
    d = vd_faults_wrap (raw, &fc);
    CHECK (d != NULL);
    vd_copy_options_init (&o);
    o.flags = VD_COPY_TARGET_IS_ZERO;
    o.request_size = 4096;
    CHECK_FAILS (vd_copy (&s, 1, &d, 1, SIZE, &o), ENOSPC,
                 "injected failure");
    vd_attachment_close (d);
  }

  /* Cancelled by the progress callback. */
  CHECK (vd_image_create (dpath, VD_FORMAT_RAW, SIZE, VD_CREATE_OVERWRITE) == 0);
  d = vd_attachment_open (dpath, NULL);
  vd_copy_options_init (&o);
  o.flags = VD_COPY_NO_SPARSE;
  o.requests = 1;
  o.request_size = 4096;
  o.progress = progress;
  o.progress_user_data = &calls;
  calls = 0;
  cancel_after = 1;
  CHECK_FAILS (vd_copy (&s, 1, &d, 1, SIZE, &o), ECANCELED, "cancelled");
  cancel_after = 0;
  CHECK (vd_attachment_close (d) == 0);

  /* Checks before anything is written. */
  CHECK (vd_image_create (dpath, VD_FORMAT_RAW, SIZE / 2, VD_CREATE_OVERWRITE)
         == 0);
  d = vd_attachment_open (dpath, NULL);
  CHECK_FAILS (vd_copy (&s, 1, &d, 1, SIZE, NULL), ENOSPC,
               "smaller than the source");
  CHECK (vd_attachment_close (d) == 0);
  CHECK (stat (dpath, &st) == 0 && st.st_blocks == 0);
  d = vd_attachment_open (dpath, &ro);
  CHECK_FAILS (vd_copy (&s, 1, &d, 1, SIZE / 2, NULL), EROFS, "read-only");
  CHECK (vd_attachment_close (d) == 0);
  CHECK_FAILS (vd_copy (&s, 1, &s, 1, SIZE * 2, NULL), EINVAL, "less than");
  CHECK_FAILS (vd_copy (NULL, 0, &s, 1, 1, NULL), EINVAL, "no source");

  CHECK (vd_attachment_close (s) == 0);
  unlink (spath);
  unlink (dpath);
  printf ("test-copy: OK\n");
  return 0;
}
