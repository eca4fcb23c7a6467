/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vd_image_create for RAW: sparse, exact size, refuses to overwrite,
 * leaves nothing behind on failure.
 */
#include "config.h"

#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

int
main (void)
{
  char path[256], big[256];
  struct stat st;

  test_tmpname (path, sizeof path, "create");
  test_tmpname (big, sizeof big, "big");

  CHECK (vd_image_create (path, VD_FORMAT_RAW, UINT64_C (10000000000), 0)
         == 0);
  CHECK (stat (path, &st) == 0);
  CHECK (st.st_size == INT64_C (10000000000));
  CHECK (st.st_blocks == 0);                     /* sparse */
  CHECK_FAILS (vd_image_create (path, VD_FORMAT_RAW, 4096, 0), EEXIST,
               "refusing to overwrite");
  CHECK (stat (path, &st) == 0 && st.st_size == INT64_C (10000000000));
  CHECK (vd_image_create (path, VD_FORMAT_RAW, 4096, VD_CREATE_OVERWRITE)
         == 0);
  CHECK (stat (path, &st) == 0 && st.st_size == 4096);
  /* Odd sizes are fine for RAW. */
  CHECK (vd_image_create (path, VD_FORMAT_RAW, 1001, VD_CREATE_OVERWRITE)
         == 0);
  CHECK (stat (path, &st) == 0 && st.st_size == 1001);

  CHECK_FAILS (vd_image_create (big, VD_FORMAT_RAW, 0, 0), EINVAL,
               "greater than zero");
  CHECK_FAILS (vd_image_create (big, 99, 4096, 0), EINVAL, "format");
  CHECK_FAILS (vd_image_create (big, VD_FORMAT_RAW, 4096, 0x80), EINVAL,
               "flags");
  CHECK_FAILS (vd_image_create (big, VD_FORMAT_RAW, UINT64_MAX, 0), EFBIG,
               "too large");
  CHECK_FAILS (vd_image_create ("/nonexistent-dir/x.img", VD_FORMAT_RAW,
                                4096, 0), ENOENT, "/nonexistent-dir/x.img");
  /* A size the file system refuses: nothing is left behind. */
  if (vd_image_create (big, VD_FORMAT_RAW, INT64_MAX, 0) == -1) {
    CHECK (vd_get_errno () == EFBIG || vd_get_errno () == EINVAL);
    CHECK (stat (big, &st) == -1 && errno == ENOENT);
  }
  else
    unlink (big);
  /* ASIF size rules are checked before anything is created. */
  CHECK_FAILS (vd_image_create (big, VD_FORMAT_ASIF, 1000, 0), EINVAL,
               "multiple of 512");
  CHECK_FAILS (vd_image_create (big, VD_FORMAT_ASIF, UINT64_C (1) << 52, 0),
               EFBIG, "4 PiB");
  CHECK (stat (big, &st) == -1 && errno == ENOENT);

  /* Format names. */
  CHECK (vd_image_format_from_name ("RAW") == VD_FORMAT_RAW);
  CHECK (vd_image_format_from_name ("asif") == VD_FORMAT_ASIF);
  CHECK_FAILS (vd_image_format_from_name ("qcow2"), EINVAL, "qcow2");
  CHECK (strcmp (vd_image_format_name (VD_FORMAT_ASIF), "asif") == 0);
  CHECK (vd_caching_mode_from_name ("uncached") == VD_CACHING_UNCACHED);
  CHECK_FAILS (vd_caching_mode_from_name ("writeback"), EINVAL, "writeback");
  CHECK (vd_sync_mode_from_name ("fsync") == VD_SYNC_FSYNC);
  CHECK_FAILS (vd_sync_mode_from_name ("unsafe"), EINVAL, "unsafe");
  CHECK (strcmp (vd_sync_mode_name (VD_SYNC_NONE), "none") == 0);
  CHECK (strcmp (vd_caching_mode_name (VD_CACHING_CACHED), "cached") == 0);
  CHECK (strcmp (vd_version (), VD_VERSION_STRING) == 0);

  unlink (path);
  printf ("test-create: OK\n");
  return 0;
}
