/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Fuzz target: everything that parses ASIF bytes.  The first input byte
 * selects what the rest is:
 *
 *   0  a header block          -> asif_decode_header
 *   1  a property list         -> asif_parse_plist
 *   2  a metadata chunk prefix -> asif_decode_meta
 *   3  patches over a valid blank image of 8 chunks (4 MiB blank layout
 *      plus 4 zero chunks): repeated [u32 BE offset][u8 length][bytes].
 *      The patched image is put in a memfd and opened as an attachment
 *      ("fd:N"): it must open or fail with a clear error, and a failed
 *      open must not have changed a byte.  An image that opens is read,
 *      block_status'ed, written to and flushed, then checked
 *      (vd_image_check, with and without repair) - none of which may
 *      crash, hang or trip a sanitizer.
 *
 * Seeds: fuzz/corpus/asif/ (made by fuzz/gen-asif-corpus.py).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vdisk/vdisk.h"
#include "asif/asif-format.h"
#include "asif/asif-internal.h"
#include "byte-order.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define MiB (1024u * 1024)
#define IMG (8 * MiB)

static uint8_t *blank;

static void
make_blank (void)
{
  static const uint8_t guid[16] = { 1, 2, 3, 4, 5, 6, 0x47, 8, 0x89, 10 };
  struct asif_blank b;
  uint8_t seq1[8];

  blank = calloc (1, IMG);
  if (blank == NULL || asif_blank_layout ("fuzz", 64 * (uint64_t) MiB + 512,
                                          guid,
                                          "01234567-89ab-4cde-8f01-23456789abcd",
                                          &b) == -1)
    abort ();
  memcpy (blank, b.header, sizeof b.header);
  memcpy (blank + b.geom.dir_off[0] + b.dir_sector_off, b.dir_sector, 512);
  memcpy (blank + b.geom.dir_off[1] + b.dir_sector_off, b.dir_sector, 512);
  store_be64 (seq1, 1);
  memcpy (blank + b.geom.dir_off[1], seq1, 8);
  memcpy (blank + b.table_entry_off, b.table_entries, 8);
  memcpy (blank + b.bitmap_entry_off, b.table_entries + 8, 8);
  memcpy (blank + b.meta_off, b.meta, sizeof b.meta);
  blank[b.bitmap_byte_off] = b.bitmap_byte;
}

static int
ignore_extent (void *ud, uint64_t off, uint64_t len, uint32_t state)
{
  return 0;
}

static void
fuzz_image (const uint8_t *data, size_t size)
{
  uint8_t *img = malloc (IMG), *after = NULL;
  char spec[32], path[64];
  struct vd_attachment *a;
  struct vd_check_result res = { .struct_size = sizeof res };
  int fd;

  if (img == NULL)
    abort ();
  memcpy (img, blank, IMG);
  while (size >= 5) {
    uint32_t off = load_be32 (data) % IMG;
    size_t len = data[4];
    data += 5;
    size -= 5;
    if (len > size)
      len = size;
    if (len > IMG - off)
      len = IMG - off;
    memcpy (img + off, data, len);
    data += len;
    size -= len;
  }

  fd = memfd_create ("fuzz-asif", MFD_CLOEXEC);
  if (fd == -1 || pwrite (fd, img, IMG, 0) != IMG)
    abort ();
  snprintf (spec, sizeof spec, "fd:%d", fd);
  snprintf (path, sizeof path, "/proc/self/fd/%d", fd);

  a = vd_attachment_open (spec, NULL);
  if (a == NULL) {
    /* A refused image must be untouched, and the error must say why. */
    after = malloc (IMG);
    if (after == NULL || pread (fd, after, IMG, 0) != IMG ||
        memcmp (after, img, IMG) != 0 || vd_get_error () == NULL)
      abort ();
  }
  else {
    char buf[8192];
    int64_t sz = vd_attachment_get_size (a);
    if (sz > 0) {
      uint64_t s = (uint64_t) sz;
      vd_attachment_pread (a, buf, sizeof buf < s ? sizeof buf : s, 0, 0);
      vd_attachment_pread (a, buf, 1000 < s ? 1000 : s,
                           s > 5000 ? s - 5000 : 0, 0);
      vd_attachment_block_status (a, s, 0, 0, ignore_extent, NULL);
      if (vd_attachment_can_write (a) == 1) {
        memset (buf, 0xab, sizeof buf);
        vd_attachment_pwrite (a, buf, sizeof buf < s ? sizeof buf : s, 0, 0);
        if (s > 3 * MiB)
          vd_attachment_pwrite (a, buf, 700, 2 * MiB + 100, 0);
        vd_attachment_discard (a, s < MiB ? s : MiB, 0, 0);
        vd_attachment_flush (a, 0);
      }
    }
    vd_attachment_close (a);
  }
  vd_image_check (path, 0, &res, NULL, NULL);
  vd_image_check (path, VD_CHECK_REPAIR_ALL | VD_CHECK_REPAIR_LEAKS, &res,
                  NULL, NULL);
  close (fd);
  free (img);
  free (after);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct asif_geom g;
  struct asif_meta m;

  if (size < 1)
    return 0;
  if (blank == NULL)
    make_blank ();
  switch (data[0]) {
  case 0:
    if (asif_decode_header ("fuzz", data + 1, size - 1, &g) == 0) {
      /* Accepted geometry must be self-consistent. */
      if (g.c == 0 || g.e * 8 > g.table_bytes || g.table_bytes > g.chunk_size ||
          g.dir_off[0] + g.dir_slot > g.chunk_size ||
          g.dir_off[1] + g.dir_slot > g.chunk_size ||
          g.metadata_chunk >= g.virtual_chunks)
        abort ();
    }
    else if (vd_get_error () == NULL)
      abort ();
    break;
  case 1:
    if (asif_parse_plist ("fuzz", (const char *) data + 1, size - 1, &m) == 0
        && m.stable_uuid[0] == '\0')
      abort ();
    break;
  case 2:
    asif_decode_meta ("fuzz", data + 1, size - 1, &m);
    break;
  case 3:
    fuzz_image (data + 1, size - 1);
    break;
  default:
    break;
  }
  return 0;
}
