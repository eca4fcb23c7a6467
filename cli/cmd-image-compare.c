/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vdisk image compare [-s] A B
 *
 * Like `qemu-img compare`: exit 0 if the contents are the same, 1 if they
 * differ (naming the first differing offset), 2 on error.  Without
 * --strict, images of different sizes are the same if the longer one
 * reads as zeros past the end of the shorter one.  Ranges both sides
 * report as zero are not read.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "iszero.h"
#include "vector.h"

#define CMP_SEGMENT (64ull * 1024 * 1024)
#define CMP_PIECE (2u * 1024 * 1024)
#define EXIT_DIFFERENT 1
#define EXIT_CMP_ERROR 2

static const struct cli_option options[] = {
  { "strict", 's', no_argument, NULL,
    "images of different sizes are different" },
  { "image-format", 'f', required_argument, "FORMAT",
    "format of the first image (default: detect)" },
  { "other-format", 'F', required_argument, "FORMAT",
    "format of the second image (default: detect)" },
  { "force-share", 'U', no_argument, NULL, "do not lock the images" },
  { "quiet", 'q', no_argument, NULL, "print nothing; only the exit status" },
  { NULL }
};

struct ext { uint64_t off, len; uint32_t st; };
DEFINE_VECTOR_TYPE (ext_vector, struct ext);

static int
collect (void *ud, uint64_t off, uint64_t len, uint32_t st)
{
  struct ext_vector *v = ud;
  return ext_vector_append (v, (struct ext) { off, len, st });
}

static int
extents (struct vd_attachment *a, uint64_t off, uint64_t end,
         struct ext_vector *v)
{
  v->len = 0;
  while (off < end) {
    size_t before = v->len;
    if (vd_attachment_block_status (a, end - off, off, 0, collect, v) == -1)
      return -1;
    if (v->len == before)
      return -1;
    off = v->ptr[v->len - 1].off + v->ptr[v->len - 1].len;
  }
  return 0;
}

/* Is [off, end) zero according to the extents? */
static bool
zero_in (const struct ext_vector *v, uint64_t off, uint64_t end)
{
  for (size_t i = 0; i < v->len && off < end; ++i) {
    const struct ext *e = &v->ptr[i];
    if (e->off + e->len <= off)
      continue;
    if (e->off > off || !(e->st & VD_STATE_ZERO))
      return false;
    off = e->off + e->len;
  }
  return off >= end;
}

/* First non-zero byte of a in [off, end), or end. -1 on error. */
static int
first_nonzero (struct vd_attachment *a, char *buf, uint64_t off, uint64_t end,
               uint64_t *where)
{
  while (off < end) {
    uint64_t n = end - off < CMP_PIECE ? end - off : CMP_PIECE;
    if (vd_attachment_pread (a, buf, n, off, 0) == -1)
      return -1;
    if (!is_zero (buf, n)) {
      for (uint64_t i = 0; i < n; ++i)
        if (buf[i]) {
          *where = off + i;
          return 0;
        }
    }
    off += n;
  }
  *where = end;
  return 0;
}

static struct vd_attachment *
open_one (const struct cli_command *cmd, const char *spec, const char *fmt,
          bool share)
{
  struct cli_open_opts co;

  cli_open_opts_init (&co);
  co.o.flags = VD_OPEN_READ_ONLY | (share ? VD_OPEN_NO_LOCK : 0);
  if (fmt && cli_open_opts_apply (&co, cmd, "format", fmt) == -1)
    return NULL;
  return vd_attachment_open (spec, &co.o);
}

static int
run (const struct cli_command *cmd, int argc, char **argv)
{
  const char *arg, *fa = NULL, *fb = NULL;
  bool strict = false, share = false, quiet = false;
  struct vd_attachment *a = NULL, *b = NULL;
  struct ext_vector ea = empty_vector, eb = empty_vector;
  char *ba = NULL, *bb = NULL;
  uint64_t sa, sb, common, off, diff = UINT64_MAX;
  int i, status = EXIT_CMP_ERROR;

  while ((i = cli_getopt (cmd, argc, argv, &arg)) != -1) {
    if (i == -2)
      return EXIT_CMP_ERROR;
    const char *name = options[i].name;
    if (strcmp (name, "strict") == 0) strict = true;
    else if (strcmp (name, "image-format") == 0) fa = arg;
    else if (strcmp (name, "other-format") == 0) fb = arg;
    else if (strcmp (name, "force-share") == 0) share = true;
    else if (strcmp (name, "quiet") == 0) quiet = true;
  }
  if (argc - optind != 2) {
    cli_usage_error (cmd, "expected two images");
    return EXIT_CMP_ERROR;
  }
  a = open_one (cmd, argv[optind], fa, share);
  if (a == NULL)
    goto error;
  b = open_one (cmd, argv[optind + 1], fb, share);
  if (b == NULL)
    goto error;
  if (vd_attachment_get_size (a) == -1 || vd_attachment_get_size (b) == -1)
    goto error;
  sa = vd_attachment_get_size (a);
  sb = vd_attachment_get_size (b);
  if (strict && sa != sb) {
    if (!quiet)
      printf ("Strict mode: Image size mismatch!\n");
    status = EXIT_DIFFERENT;
    goto out;
  }
  if ((ba = malloc (CMP_PIECE)) == NULL || (bb = malloc (CMP_PIECE)) == NULL) {
    cli_error ("out of memory");
    goto out;
  }

  common = sa < sb ? sa : sb;
  for (off = 0; off < common && diff == UINT64_MAX; off += CMP_SEGMENT) {
    uint64_t end = off + CMP_SEGMENT < common ? off + CMP_SEGMENT : common;
    if (extents (a, off, end, &ea) == -1 || extents (b, off, end, &eb) == -1)
      goto error;
    for (uint64_t p = off; p < end && diff == UINT64_MAX;) {
      uint64_t n = end - p < CMP_PIECE ? end - p : CMP_PIECE;
      bool za = zero_in (&ea, p, p + n), zb = zero_in (&eb, p, p + n);
      if (za && zb) {
        p += n;
        continue;
      }
      if (vd_attachment_pread (a, ba, n, p, 0) == -1 ||
          vd_attachment_pread (b, bb, n, p, 0) == -1)
        goto error;
      if (memcmp (ba, bb, n) != 0) {
        uint64_t k = 0;
        while (ba[k] == bb[k])
          k++;
        diff = p + k;
      }
      p += n;
    }
  }
  /* Past the shorter image, the longer one must read as zeros. */
  if (diff == UINT64_MAX && sa != sb) {
    struct vd_attachment *longer = sa > sb ? a : b;
    uint64_t where;
    if (first_nonzero (longer, ba, common, sa > sb ? sa : sb, &where) == -1)
      goto error;
    if (where < (sa > sb ? sa : sb))
      diff = where;
  }
  if (diff != UINT64_MAX) {
    if (!quiet)
      printf ("Content mismatch at offset %" PRIu64 "!\n", diff);
    status = EXIT_DIFFERENT;
    goto out;
  }
  if (!quiet)
    printf ("Images are identical.\n");
  status = EXIT_OK;
  goto out;

 error:
  cli_lib_error ();
  status = EXIT_CMP_ERROR;
 out:
  free (ba);
  free (bb);
  free (ea.ptr);
  free (eb.ptr);
  vd_attachment_close (a);
  vd_attachment_close (b);
  return status;
}

const struct cli_command cmd_image_compare = {
  .name = "image compare",
  .synopsis = "[-s] [-f FMT] [-F FMT] [-U] [-q] A B",
  .summary = "Compare the contents of two images (exit 0 same, 1 different, "
             "2 error)",
  .options = options,
  .run = run,
};
