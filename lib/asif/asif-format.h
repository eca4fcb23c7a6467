/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * ASIF on-disk format: pure decode/encode functions over buffers, no I/O.
 * Everything that reads bytes from an image goes through here first, so
 * this is what the fuzz target (fuzz/fuzz-asif.c) exercises.  The layout
 * is described in ../shared/docs/asif-format.md; docs/internals/asif.md
 * says how vdisk uses it.
 *
 * Vocabulary (as the format notes): block = virtual sector (block_size),
 * chunk = allocation unit of the file (chunk_size), a table maps C chunk
 * groups of N data chunks + 1 bitmap chunk, the directory maps tables.
 *
 * Every function that decodes untrusted bytes validates them with checked
 * arithmetic and returns -1 with an error raised (vd_error_msg, errno EIO
 * for a malformed image, ENOTSUP for a well-formed image using a feature
 * vdisk does not implement), naming the image and the field.
 */
#ifndef VD_ASIF_FORMAT_H
#define VD_ASIF_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ASIF_MAGIC "shdw"
#define ASIF_META_MAGIC "meta"
#define ASIF_VERSION 1
#define ASIF_HEADER_SIZE 0x200u          /* one 512-byte block */

/* What macOS writes (verified on real images). */
#define ASIF_APPLE_BLOCK_SIZE 512u
#define ASIF_APPLE_CHUNK_SIZE (1024u * 1024)
#define ASIF_APPLE_MAX_SECTORS (UINT64_C (1) << 43)

/* Header field offsets. */
#define ASIF_H_MAGIC          0x00
#define ASIF_H_VERSION        0x04
#define ASIF_H_HEADER_SIZE    0x08
#define ASIF_H_FLAGS          0x0C
#define ASIF_H_DIR0           0x10
#define ASIF_H_DIR1           0x18
#define ASIF_H_GUID           0x20
#define ASIF_H_SECTOR_COUNT   0x30
#define ASIF_H_MAX_SECTORS    0x38
#define ASIF_H_CHUNK_SIZE     0x40
#define ASIF_H_BLOCK_SIZE     0x44
#define ASIF_H_SEGMENTS       0x46
#define ASIF_H_META_CHUNK     0x48
#define ASIF_H_UNK50          0x50  /* 16 bytes, zero */
#define ASIF_H_RO_FLAGS       0x60
#define ASIF_H_META_FLAGS     0x64
#define ASIF_H_META_RO_FLAGS  0x68
#define ASIF_H_END            0x6C  /* everything after this is zero */

/* Table entries (64-bit big-endian). */
#define ASIF_STATUS_MASK   UINT64_C (0xC000000000000000)
#define ASIF_RESERVED_MASK UINT64_C (0x3F80000000000000)
#define ASIF_INDEX_MASK    UINT64_C (0x007FFFFFFFFFFFFF)
#define ASIF_STATUS_SHIFT  62

enum asif_status {
  ASIF_ST_EMPTY = 0,            /* 00: never written, zeros */
  ASIF_ST_FULL = 1,             /* 01: whole chunk valid */
  ASIF_ST_UNMAPPED = 2,         /* 10: discarded, zeros, index 0 */
  ASIF_ST_PARTIAL = 3,          /* 11: per-block state in the bitmap */
};

static inline unsigned
asif_entry_status (uint64_t e)
{
  return (unsigned) (e >> ASIF_STATUS_SHIFT);
}

static inline uint64_t
asif_entry_index (uint64_t e)
{
  return e & ASIF_INDEX_MASK;
}

static inline uint64_t
asif_entry_make (unsigned status, uint64_t index)
{
  return ((uint64_t) status << ASIF_STATUS_SHIFT) | (index & ASIF_INDEX_MASK);
}

/* Bitmap states (2 bits per block, least significant pair = lowest). */
#define ASIF_BM_ZERO    0u            /* not written: zeros */
#define ASIF_BM_DATA    1u            /* written: read the data chunk */

/* Decoded header plus the geometry derived from it (format notes §3). */
struct asif_geom {
  uint32_t version;
  uint32_t header_size;
  uint32_t flags;                     /* 0x0C */
  uint64_t dir_off[2];
  uint8_t guid[16];
  uint64_t sector_count;
  uint64_t max_sector_count;
  uint32_t chunk_size;                /* K */
  uint32_t block_size;                /* B */
  uint16_t total_segments;
  uint64_t metadata_chunk;            /* virtual chunk number */
  uint8_t unk50[16];
  uint32_t ro_flags, meta_flags, meta_ro_flags;

  /* Derived. */
  uint64_t size;                      /* sector_count * B (virtual bytes) */
  uint64_t max_size;                  /* max_sector_count * B */
  uint32_t blocks_per_chunk;          /* K / B */
  uint32_t slice_bytes;               /* bitmap bytes per data chunk: K/B/4 */
  uint64_t n;                         /* data chunks per group: 4 B */
  uint64_t c;                         /* groups per table */
  uint64_t e;                         /* entries per table: C (N+1) */
  uint64_t table_bytes;               /* roundup (8 E, B) */
  uint64_t chunks_per_table;          /* C N */
  uint64_t d;                         /* virtual bytes per table: C N K */
  uint64_t t;                         /* directory entries */
  uint64_t dir_bytes;                 /* 8 + 8 T */
  uint64_t dir_slot;                  /* roundup (dir_bytes, B) */
  uint64_t virtual_chunks;            /* max_size / K */
  bool unknown_flags;                 /* some flag word / unknown area set */
};

/* Decode and validate the header block (buf holds at least
 * ASIF_HEADER_SIZE bytes).  name is for messages.  Refuses (ENOTSUP)
 * versions other than 1, total_segments != 0 and geometries vdisk does
 * not support; refuses (EIO) inconsistent values.  Non-zero flag words
 * and unknown areas are accepted with g->unknown_flags set: the caller
 * must then never write.  0 or -1 (raised).
 */
int asif_decode_header (const char *name, const uint8_t *buf, size_t len,
                        struct asif_geom *g);

/* Compute the derived geometry for the given header fields (used by
 * asif_decode_header and by image creation).  0 or -1 (raised).
 */
int asif_geom_derive (const char *name, struct asif_geom *g);

/* Encode the header block (ASIF_HEADER_SIZE bytes, zero-filled). */
void asif_encode_header (const struct asif_geom *g, uint8_t *buf);

/* Position of virtual chunk v (0 <= v < virtual_chunks): directory index,
 * table-relative entry index of its data entry and of its group's bitmap
 * entry, and its slot in the group (for the bitmap).
 */
struct asif_pos {
  uint64_t t;                         /* directory entry */
  uint64_t k;                         /* table-relative chunk */
  uint64_t g;                         /* group in the table */
  uint64_t slot;                      /* slot in the group (0..N-1) */
  uint64_t entry;                     /* index of the data entry */
  uint64_t bitmap_entry;              /* index of the group's bitmap entry */
};

static inline void
asif_locate (const struct asif_geom *g, uint64_t v, struct asif_pos *p)
{
  p->t = v / g->chunks_per_table;
  p->k = v % g->chunks_per_table;
  p->g = p->k / g->n;
  p->slot = p->k % g->n;
  p->entry = p->g * (g->n + 1) + p->slot;
  p->bitmap_entry = p->g * (g->n + 1) + g->n;
}

/* Validate one data entry against the rules of §6: known state/index
 * combination, reserved bits clear, index within [1, nchunks).
 * Returns NULL if valid, else a static description of the problem.
 */
const char *asif_check_data_entry (uint64_t e, uint64_t nchunks);
/* Same for a bitmap entry (plain chunk number, 0 = none). */
const char *asif_check_bitmap_entry (uint64_t e, uint64_t nchunks);
/* Same for a directory entry (plain chunk number, 0 = none). */
const char *asif_check_dir_entry (uint64_t e, uint64_t nchunks);

/* Decode a directory slot (g->dir_bytes bytes at buf) into seq and
 * entries[g->t] (host order).  No validation of the values.
 */
void asif_decode_directory (const struct asif_geom *g, const uint8_t *buf,
                            uint64_t *seq, uint64_t *entries);
/* Encode a directory slot into buf (g->dir_slot bytes, zero-filled). */
void asif_encode_directory (const struct asif_geom *g, uint64_t seq,
                            const uint64_t *entries, uint8_t *buf);

/* Bitmap slice access: 2 bits per block, slice for one data chunk. */
static inline unsigned
asif_bm_get (const uint8_t *slice, uint64_t block)
{
  return (slice[block / 4] >> (2 * (block % 4))) & 3u;
}

static inline void
asif_bm_set (uint8_t *slice, uint64_t block, unsigned state)
{
  uint8_t *p = &slice[block / 4];
  unsigned sh = 2 * (block % 4);
  *p = (uint8_t) ((*p & ~(3u << sh)) | (state << sh));
}

/* Metadata chunk (§8). */
#define ASIF_META_HEADER_SIZE 0x200u
#define ASIF_META_PLIST_MAX   (ASIF_META_HEADER_SIZE - 1)

struct asif_meta {
  uint32_t version;
  uint32_t header_size;
  uint64_t data_size;                 /* field 0x0C */
  char stable_uuid[37];               /* "" if absent */
  unsigned user_keys;                 /* keys in "user metadata" */
  bool has_internal;                  /* "internal metadata" dict found */
  bool has_user;                      /* "user metadata" dict found */
};

/* Decode the metadata chunk: buf holds the first len bytes of it (at
 * least the header and the plist area).  Validates the "meta" header and
 * parses the XML property list.  0 or -1 (raised, EIO).
 */
int asif_decode_meta (const char *name, const uint8_t *buf, size_t len,
                      struct asif_meta *m);

/* Parse an XML property list (the plist area, NULs stripped) and fill
 * the plist part of m.  0 or -1 (raised, EIO).  Exposed for the fuzzer.
 */
int asif_parse_plist (const char *name, const char *xml, size_t len,
                      struct asif_meta *m);

/* Encode the metadata chunk's first 0x400 bytes exactly as macOS does
 * (header + plist with the stable uuid + NUL padding) into buf, which
 * must hold 2 * ASIF_META_HEADER_SIZE bytes.
 */
void asif_encode_meta (const char *stable_uuid, uint8_t *buf);

/* Geometry of a new image as macOS makes it (1 MiB chunks, 512-byte
 * blocks, 4 PiB maximum) for size bytes (a multiple of 512, at most
 * VD_ASIF_MAX_SIZE).  0 or -1 (raised).
 */
int asif_geom_apple (const char *name, uint64_t size, struct asif_geom *g);

#endif
