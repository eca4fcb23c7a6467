/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The smallest useful libvdisk program: open an image (RAW or ASIF,
 * detected), write a message at an offset with FUA, flush, read it back,
 * print the allocation map.  Build against an installed libvdisk with
 *   cc hello-attachment.c $(pkg-config --cflags --libs libvdisk)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vdisk/vdisk.h>

static int
print_extent (void *ud, uint64_t offset, uint64_t length, uint32_t state)
{
  printf ("  %12" PRIu64 " %12" PRIu64 "  %s\n", offset, length,
          (state & VD_STATE_HOLE) ? "hole" :
          (state & VD_STATE_ZERO) ? "zero" : "data");
  return 0;
}

int
main (int argc, char **argv)
{
  struct vd_open_options opts;
  struct vd_attachment *a;
  const char *msg = argc > 3 ? argv[3] : "hello from libvdisk";
  uint64_t offset;
  char buf[512];
  int64_t size;

  if (argc < 3) {
    fprintf (stderr, "usage: %s IMAGE OFFSET [MESSAGE]\n", argv[0]);
    return 2;
  }
  offset = strtoull (argv[2], NULL, 0);

  vd_open_options_init (&opts);
  opts.sync_mode = VD_SYNC_FULL;
  a = vd_attachment_open (argv[1], &opts);
  if (a == NULL) {
    fprintf (stderr, "%s: %s\n", argv[0], vd_get_error ());
    return 1;
  }
  size = vd_attachment_get_size (a);
  printf ("%s: %s, %" PRIi64 " bytes\n", argv[1],
          vd_attachment_get_format (a), size);

  memset (buf, 0, sizeof buf);
  strncpy (buf, msg, sizeof buf - 1);
  if (vd_attachment_pwrite (a, buf, sizeof buf, offset, VD_FLAG_FUA) == -1 ||
      vd_attachment_flush (a, 0) == -1) {
    fprintf (stderr, "%s: %s\n", argv[0], vd_get_error ());
    vd_attachment_close (a);
    return 1;
  }
  memset (buf, 0, sizeof buf);
  if (vd_attachment_pread (a, buf, sizeof buf, offset, 0) == -1) {
    fprintf (stderr, "%s: %s\n", argv[0], vd_get_error ());
    vd_attachment_close (a);
    return 1;
  }
  printf ("read back at %" PRIu64 ": \"%s\"\n", offset, buf);
  printf ("allocation map:\n");
  if (vd_attachment_block_status (a, (uint64_t) size, 0, 0, print_extent,
                                  NULL) == -1)
    fprintf (stderr, "%s: %s\n", argv[0], vd_get_error ());
  if (vd_attachment_close (a) == -1) {
    fprintf (stderr, "%s: %s\n", argv[0], vd_get_error ());
    return 1;
  }
  return strcmp (buf, msg) == 0 ? 0 : 1;
}
