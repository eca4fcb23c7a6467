/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Creating a blank ASIF image exactly as macOS's `diskutil image create
 * blank --format ASIF` does (format notes §10): 4 chunks of 1 MiB, the
 * header and both directories in chunk 0, the metadata table in chunk 1,
 * the metadata chunk in chunk 2 and its bitmap in chunk 3.  Only the
 * header GUID, the stable uuid and the sector count differ from Apple's
 * files.  O(1): the file is sized with ftruncate and only the few
 * non-zero sectors are written (the result reads byte for byte like
 * Apple's dense file, and occupies a few KiB on the host).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "asif-format.h"
#include "asif-internal.h"
#include "byte-order.h"
#include "uuid.h"

static int
write_at (int fd, const char *path, const void *buf, size_t count,
          uint64_t offset)
{
  const char *p = buf;

  while (count > 0) {
    ssize_t r = pwrite (fd, p, count, offset);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      vd_error (errno, "%s: write at offset %" PRIu64, path, offset);
      return -1;
    }
    p += r;
    count -= r;
    offset += r;
  }
  return 0;
}

int
asif_blank_layout (const char *path, uint64_t size, const uint8_t guid[16],
                   const char *stable_uuid, struct asif_blank *b)
{
  struct asif_geom *g = &b->geom;
  struct asif_pos pos;
  uint64_t dir_entry_off;

  if (asif_geom_apple (path, size, g) == -1)
    return -1;
  memcpy (g->guid, guid, 16);
  asif_encode_header (g, b->header);

  /* Directory entry T-1 (the table of the metadata chunk) = chunk 1. */
  asif_locate (g, g->metadata_chunk, &pos);
  dir_entry_off = 8 + 8 * pos.t;
  b->dir_sector_off = dir_entry_off / 512 * 512;
  memset (b->dir_sector, 0, sizeof b->dir_sector);
  store_be64 (b->dir_sector + dir_entry_off % 512, 1);

  /* Table chunk 1: the metadata data entry (partial, chunk 2) and its
   * group's bitmap entry (chunk 3); adjacent, as slot N-1 precedes the
   * bitmap entry.
   */
  b->table_entry_off = (uint64_t) g->chunk_size + 8 * pos.entry;
  store_be64 (b->table_entries, asif_entry_make (ASIF_ST_PARTIAL, 2));
  store_be64 (b->table_entries + 8, 3);
  b->bitmap_entry_is_next = pos.bitmap_entry == pos.entry + 1;
  b->bitmap_entry_off = (uint64_t) g->chunk_size + 8 * pos.bitmap_entry;

  asif_encode_meta (stable_uuid, b->meta);
  b->meta_off = 2 * (uint64_t) g->chunk_size;

  /* Bitmap chunk 3: blocks 0 and 1 of the metadata chunk written. */
  b->bitmap_byte_off = 3 * (uint64_t) g->chunk_size +
    pos.slot * g->slice_bytes;
  b->bitmap_byte = (uint8_t) (ASIF_BM_DATA | ASIF_BM_DATA << 2);
  b->file_size = 4 * (uint64_t) g->chunk_size;
  return 0;
}

int
vd_asif_create_fd (int fd, const char *path, uint64_t size)
{
  struct asif_blank *b;
  uint8_t guid[16], su[16];
  char stable[VD_UUID_STRLEN + 1];
  uint8_t seq1[8];
  int r = -1;

  if (vd_uuid_generate (guid) == -1 || vd_uuid_generate (su) == -1) {
    vd_error (errno, "%s: generating a UUID", path);
    return -1;
  }
  vd_uuid_format (su, stable);
  b = calloc (1, sizeof *b);
  if (b == NULL) {
    vd_error (errno, "%s", path);
    return -1;
  }
  if (asif_blank_layout (path, size, guid, stable, b) == -1)
    goto out;
  if (ftruncate (fd, b->file_size) == -1) {
    vd_error (errno, "%s: setting the size", path);
    goto out;
  }
  store_be64 (seq1, 1);
  if (write_at (fd, path, b->header, sizeof b->header, 0) == -1 ||
      write_at (fd, path, b->dir_sector, sizeof b->dir_sector,
                b->geom.dir_off[0] + b->dir_sector_off) == -1 ||
      write_at (fd, path, b->dir_sector, sizeof b->dir_sector,
                b->geom.dir_off[1] + b->dir_sector_off) == -1 ||
      write_at (fd, path, seq1, sizeof seq1, b->geom.dir_off[1]) == -1 ||
      write_at (fd, path, b->table_entries, 8, b->table_entry_off) == -1 ||
      write_at (fd, path, b->table_entries + 8, 8,
                b->bitmap_entry_off) == -1 ||
      write_at (fd, path, b->meta, sizeof b->meta, b->meta_off) == -1 ||
      write_at (fd, path, &b->bitmap_byte, 1, b->bitmap_byte_off) == -1)
    goto out;
  r = 0;
 out:
  free (b);
  return r;
}
