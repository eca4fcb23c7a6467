/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * ASIF decode/encode: header, geometry, directory, entries, metadata
 * chunk and its XML property list.  Pure functions over buffers (no
 * I/O), shared by the attachment, create, check and compact, and fuzzed
 * by fuzz/fuzz-asif.c.
 *
 * Method (plist): the metadata plist is tiny and its shape is fixed, but
 * it is untrusted input, so it is parsed by a small recursive-descent
 * reader of the XML property list grammar (dict, array, key, string,
 * integer, real, date, data, true, false) with a depth limit, instead of
 * by searching for substrings.  Entities are decoded in keys and strings;
 * anything outside the grammar is an error naming the offset.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "asif-format.h"
#include "byte-order.h"
#include "checked-overflow.h"
#include "errors.h"
#include "iszero.h"
#include "minmax.h"
#include "rounding.h"
#include "uuid.h"

int
asif_geom_derive (const char *name, struct asif_geom *g)
{
  uint64_t b = g->block_size, k = g->chunk_size, s, x;

  if (b == 0 || b % 512 != 0) {
    vd_error_msg (EIO, "%s: invalid ASIF header: block size %" PRIu64
                  " is not a non-zero multiple of 512", name, b);
    return -1;
  }
  if (b != 512 && b != 4096) {
    vd_error_msg (ENOTSUP, "%s: ASIF block size %" PRIu64 " is not "
                  "supported (only 512 and 4096)", name, b);
    return -1;
  }
  if (k == 0 || k % b != 0) {
    vd_error_msg (EIO, "%s: invalid ASIF header: chunk size %" PRIu64
                  " is not a non-zero multiple of the block size %" PRIu64,
                  name, k, b);
    return -1;
  }
  if (!is_power_of_2 (k) || k < 64 * 1024 || k > 64 * 1024 * 1024 ||
      k < 8 * (4 * b + 1)) {
    vd_error_msg (ENOTSUP, "%s: ASIF chunk size %" PRIu64 " is not "
                  "supported (a power of two from 64 KiB to 64 MiB that "
                  "holds at least one chunk group)", name, k);
    return -1;
  }
  if (g->max_sector_count == 0 ||
      MUL_OVERFLOW (g->max_sector_count, b, &g->max_size) ||
      g->max_size > (UINT64_C (1) << 62)) {
    vd_error_msg (EIO, "%s: invalid ASIF header: maximum sector count %"
                  PRIu64 " is out of range", name, g->max_sector_count);
    return -1;
  }
  if (g->max_size % k != 0) {
    vd_error_msg (ENOTSUP, "%s: ASIF maximum size %" PRIu64 " is not a "
                  "multiple of the chunk size; not supported", name,
                  g->max_size);
    return -1;
  }
  if (g->sector_count > g->max_sector_count) {
    vd_error_msg (EIO, "%s: invalid ASIF header: sector count %" PRIu64
                  " is larger than the maximum %" PRIu64, name,
                  g->sector_count, g->max_sector_count);
    return -1;
  }
  g->size = g->sector_count * b;          /* <= max_size: no overflow */
  g->virtual_chunks = g->max_size / k;
  if (g->metadata_chunk >= g->virtual_chunks) {
    vd_error_msg (EIO, "%s: invalid ASIF header: metadata chunk %" PRIu64
                  " is outside the %" PRIu64 " chunks of the address space",
                  name, g->metadata_chunk, g->virtual_chunks);
    return -1;
  }
  if (DIV_ROUND_UP (g->size, k) > g->metadata_chunk) {
    vd_error_msg (EIO, "%s: invalid ASIF header: the disk (%" PRIu64
                  " bytes) overlaps the metadata chunk %" PRIu64, name,
                  g->size, g->metadata_chunk);
    return -1;
  }

  g->blocks_per_chunk = (uint32_t) (k / b);
  g->slice_bytes = g->blocks_per_chunk / 4;
  g->n = 4 * b;
  s = 8 * (g->n + 1);
  g->c = k / s;
  g->e = g->c * (g->n + 1);
  g->table_bytes = ROUND_UP (8 * g->e, b);
  g->chunks_per_table = g->c * g->n;
  g->d = g->chunks_per_table * k;
  g->t = DIV_ROUND_UP (g->max_size, g->d);
  g->dir_bytes = 8 + 8 * g->t;
  g->dir_slot = ROUND_UP (g->dir_bytes, b);

  /* Both directories must lie in chunk 0, after the header, without
   * overlapping: chunk 0 is never allocated to anything else.
   */
  for (int i = 0; i < 2; ++i) {
    if (g->dir_off[i] < g->header_size || g->dir_off[i] % 512 != 0 ||
        ADD_OVERFLOW (g->dir_off[i], g->dir_slot, &x) || x > k) {
      vd_error_msg (EIO, "%s: invalid ASIF header: directory %d at offset %"
                    PRIu64 " (%" PRIu64 " bytes) is not inside the first "
                    "chunk after the header", name, i, g->dir_off[i],
                    g->dir_slot);
      return -1;
    }
  }
  if (g->dir_off[0] < g->dir_off[1] + g->dir_slot &&
      g->dir_off[1] < g->dir_off[0] + g->dir_slot) {
    vd_error_msg (EIO, "%s: invalid ASIF header: the two directories (at %"
                  PRIu64 " and %" PRIu64 ") overlap", name, g->dir_off[0],
                  g->dir_off[1]);
    return -1;
  }
  return 0;
}

int
asif_decode_header (const char *name, const uint8_t *buf, size_t len,
                    struct asif_geom *g)
{
  memset (g, 0, sizeof *g);
  if (len < ASIF_HEADER_SIZE) {
    vd_error_msg (EIO, "%s: not an ASIF image: the file is shorter than the "
                  "%u-byte header", name, ASIF_HEADER_SIZE);
    return -1;
  }
  if (memcmp (buf, ASIF_MAGIC, 4) != 0) {
    vd_error_msg (EIO, "%s: not an ASIF image (no \"shdw\" magic)", name);
    return -1;
  }
  g->version = load_be32 (buf + ASIF_H_VERSION);
  if (g->version != ASIF_VERSION) {
    vd_error_msg (ENOTSUP, "%s: ASIF header version %" PRIu32 " is not "
                  "supported (only version 1)", name, g->version);
    return -1;
  }
  g->header_size = load_be32 (buf + ASIF_H_HEADER_SIZE);
  g->flags = load_be32 (buf + ASIF_H_FLAGS);
  g->dir_off[0] = load_be64 (buf + ASIF_H_DIR0);
  g->dir_off[1] = load_be64 (buf + ASIF_H_DIR1);
  memcpy (g->guid, buf + ASIF_H_GUID, 16);
  g->sector_count = load_be64 (buf + ASIF_H_SECTOR_COUNT);
  g->max_sector_count = load_be64 (buf + ASIF_H_MAX_SECTORS);
  g->chunk_size = load_be32 (buf + ASIF_H_CHUNK_SIZE);
  g->block_size = load_be16 (buf + ASIF_H_BLOCK_SIZE);
  g->total_segments = load_be16 (buf + ASIF_H_SEGMENTS);
  g->metadata_chunk = load_be64 (buf + ASIF_H_META_CHUNK);
  memcpy (g->unk50, buf + ASIF_H_UNK50, 16);
  g->ro_flags = load_be32 (buf + ASIF_H_RO_FLAGS);
  g->meta_flags = load_be32 (buf + ASIF_H_META_FLAGS);
  g->meta_ro_flags = load_be32 (buf + ASIF_H_META_RO_FLAGS);

  if (g->total_segments != 0) {
    vd_error_msg (ENOTSUP, "%s: ASIF images with segments (total_segments "
                  "= %u) are not supported", name, g->total_segments);
    return -1;
  }
  if (g->header_size < ASIF_HEADER_SIZE || g->header_size % 512 != 0 ||
      g->header_size > 64 * 1024 * 1024) {
    vd_error_msg (EIO, "%s: invalid ASIF header: header size %" PRIu32
                  " (expected a multiple of 512, at least 512)", name,
                  g->header_size);
    return -1;
  }
  if (g->header_size >= g->chunk_size && g->chunk_size != 0) {
    vd_error_msg (EIO, "%s: invalid ASIF header: header size %" PRIu32
                  " does not fit in the first chunk", name, g->header_size);
    return -1;
  }
  g->unknown_flags = g->flags != 0 || g->ro_flags != 0 ||
    g->meta_flags != 0 || g->meta_ro_flags != 0 || !is_zero (g->unk50, 16) ||
    !is_zero (buf + ASIF_H_END, ASIF_HEADER_SIZE - ASIF_H_END);
  return asif_geom_derive (name, g);
}

void
asif_encode_header (const struct asif_geom *g, uint8_t *buf)
{
  memset (buf, 0, ASIF_HEADER_SIZE);
  memcpy (buf + ASIF_H_MAGIC, ASIF_MAGIC, 4);
  store_be32 (buf + ASIF_H_VERSION, g->version);
  store_be32 (buf + ASIF_H_HEADER_SIZE, g->header_size);
  store_be32 (buf + ASIF_H_FLAGS, g->flags);
  store_be64 (buf + ASIF_H_DIR0, g->dir_off[0]);
  store_be64 (buf + ASIF_H_DIR1, g->dir_off[1]);
  memcpy (buf + ASIF_H_GUID, g->guid, 16);
  store_be64 (buf + ASIF_H_SECTOR_COUNT, g->sector_count);
  store_be64 (buf + ASIF_H_MAX_SECTORS, g->max_sector_count);
  store_be32 (buf + ASIF_H_CHUNK_SIZE, g->chunk_size);
  store_be16 (buf + ASIF_H_BLOCK_SIZE, (uint16_t) g->block_size);
  store_be16 (buf + ASIF_H_SEGMENTS, g->total_segments);
  store_be64 (buf + ASIF_H_META_CHUNK, g->metadata_chunk);
  memcpy (buf + ASIF_H_UNK50, g->unk50, 16);
  store_be32 (buf + ASIF_H_RO_FLAGS, g->ro_flags);
  store_be32 (buf + ASIF_H_META_FLAGS, g->meta_flags);
  store_be32 (buf + ASIF_H_META_RO_FLAGS, g->meta_ro_flags);
}

int
asif_geom_apple (const char *name, uint64_t size, struct asif_geom *g)
{
  memset (g, 0, sizeof *g);
  g->version = ASIF_VERSION;
  g->header_size = ASIF_HEADER_SIZE;
  g->block_size = ASIF_APPLE_BLOCK_SIZE;
  g->chunk_size = ASIF_APPLE_CHUNK_SIZE;
  g->max_sector_count = ASIF_APPLE_MAX_SECTORS;
  g->sector_count = size / ASIF_APPLE_BLOCK_SIZE;
  g->metadata_chunk = ASIF_APPLE_MAX_SECTORS * ASIF_APPLE_BLOCK_SIZE /
    ASIF_APPLE_CHUNK_SIZE - 1;
  /* The directory offsets follow from the geometry; derive once with a
   * provisional layout to learn the slot size.
   */
  g->dir_off[0] = ASIF_HEADER_SIZE;
  g->dir_off[1] = ASIF_HEADER_SIZE + 0x41200;
  if (asif_geom_derive (name, g) == -1)
    return -1;
  g->dir_off[1] = ASIF_HEADER_SIZE + g->dir_slot;
  return asif_geom_derive (name, g);
}

const char *
asif_check_data_entry (uint64_t e, uint64_t nchunks)
{
  uint64_t idx = asif_entry_index (e);

  if (e & ASIF_RESERVED_MASK)
    return "reserved bits 61-55 are set";
  switch (asif_entry_status (e)) {
  case ASIF_ST_EMPTY:
    return idx ? "status 00 (empty) with a chunk number" : NULL;
  case ASIF_ST_UNMAPPED:
    return idx ? "status 10 (discarded) with a chunk number" : NULL;
  default:
    if (idx == 0)
      return "allocated status without a chunk number";
    if (idx >= nchunks)
      return "chunk number past the end of the file";
    return NULL;
  }
}

const char *
asif_check_bitmap_entry (uint64_t e, uint64_t nchunks)
{
  if (e & ~ASIF_INDEX_MASK)
    return "bitmap entry has status or reserved bits set";
  if (e >= nchunks)
    return "bitmap chunk number past the end of the file";
  return NULL;
}

const char *
asif_check_dir_entry (uint64_t e, uint64_t nchunks)
{
  if (e & ~ASIF_INDEX_MASK)
    return "directory entry has flag bits set";
  if (e >= nchunks)
    return "table chunk number past the end of the file";
  return NULL;
}

void
asif_decode_directory (const struct asif_geom *g, const uint8_t *buf,
                       uint64_t *seq, uint64_t *entries)
{
  *seq = load_be64 (buf);
  for (uint64_t i = 0; i < g->t; ++i)
    entries[i] = load_be64 (buf + 8 + 8 * i);
}

void
asif_encode_directory (const struct asif_geom *g, uint64_t seq,
                       const uint64_t *entries, uint8_t *buf)
{
  memset (buf, 0, g->dir_slot);
  store_be64 (buf, seq);
  for (uint64_t i = 0; i < g->t; ++i)
    store_be64 (buf + 8 + 8 * i, entries[i]);
}

/* Metadata. */

/* The property list macOS writes, byte for byte, around the UUID. */
static const char plist_head[] =
  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
  "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
  "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
  "<plist version=\"1.0\">\n"
  "<dict>\n"
  "\t<key>internal metadata</key>\n"
  "\t<dict>\n"
  "\t\t<key>stable uuid</key>\n"
  "\t\t<string>";
static const char plist_tail[] =
  "</string>\n"
  "\t</dict>\n"
  "\t<key>user metadata</key>\n"
  "\t<dict/>\n"
  "</dict>\n"
  "</plist>\n";

void
asif_encode_meta (const char *stable_uuid, uint8_t *buf)
{
  size_t n = 0;

  memset (buf, 0, 2 * ASIF_META_HEADER_SIZE);
  memcpy (buf, ASIF_META_MAGIC, 4);
  store_be32 (buf + 4, 1);
  store_be32 (buf + 8, ASIF_META_HEADER_SIZE);
  store_be64 (buf + 12, ASIF_META_HEADER_SIZE);
  memcpy (buf + ASIF_META_HEADER_SIZE, plist_head, sizeof plist_head - 1);
  n = sizeof plist_head - 1;
  memcpy (buf + ASIF_META_HEADER_SIZE + n, stable_uuid, VD_UUID_STRLEN);
  n += VD_UUID_STRLEN;
  memcpy (buf + ASIF_META_HEADER_SIZE + n, plist_tail, sizeof plist_tail - 1);
}

/* A cursor over the plist text. */
struct px {
  const char *name;
  const char *s;
  size_t len, pos;
  int depth;
};

#define PLIST_MAX_DEPTH 32
#define PLIST_TEXT_MAX 256

static int
px_error (struct px *p, const char *what)
{
  vd_error_msg (EIO, "%s: ASIF metadata property list: %s at offset %zu",
                p->name, what, p->pos);
  return -1;
}

static void
px_skip_space (struct px *p)
{
  while (p->pos < p->len &&
         (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
          p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
    p->pos++;
}

static bool
px_starts (struct px *p, const char *lit)
{
  size_t n = strlen (lit);
  return p->len - p->pos >= n && memcmp (p->s + p->pos, lit, n) == 0;
}

/* Skip "<?...?>", "<!-- ... -->" and "<!...>" and whitespace. */
static int
px_skip_misc (struct px *p)
{
  for (;;) {
    const char *end;
    size_t skip;
    px_skip_space (p);
    if (px_starts (p, "<?")) {
      end = memmem (p->s + p->pos, p->len - p->pos, "?>", 2);
      skip = 2;
    }
    else if (px_starts (p, "<!--")) {
      end = memmem (p->s + p->pos + 4, p->len - p->pos - 4, "-->", 3);
      skip = 3;
    }
    else if (px_starts (p, "<!")) {
      end = memchr (p->s + p->pos, '>', p->len - p->pos);
      skip = 1;
    }
    else
      return 0;
    if (end == NULL)
      return px_error (p, "unterminated declaration");
    p->pos = (size_t) (end - p->s) + skip;
  }
}

/* Read a tag "<name attrs>" or "<name/>" or "</name>".  name gets the
 * element name (truncated to namelen - 1), *closing for "</", *empty for
 * "/>".
 */
static int
px_tag (struct px *p, char *name, size_t namelen, bool *closing, bool *empty)
{
  size_t n = 0;

  if (px_skip_misc (p) == -1)
    return -1;
  if (p->pos >= p->len || p->s[p->pos] != '<')
    return px_error (p, "expected an element");
  p->pos++;
  *closing = false;
  *empty = false;
  if (p->pos < p->len && p->s[p->pos] == '/') {
    *closing = true;
    p->pos++;
  }
  while (p->pos < p->len) {
    char c = p->s[p->pos];
    if (c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\n' ||
        c == '\r')
      break;
    if (n + 1 < namelen)
      name[n++] = c;
    p->pos++;
  }
  name[n] = '\0';
  if (n == 0)
    return px_error (p, "empty element name");
  /* Attributes: skip to '>' (attribute values cannot contain '>' in a
   * plist; the version attribute is the only one used).
   */
  while (p->pos < p->len && p->s[p->pos] != '>')
    p->pos++;
  if (p->pos >= p->len)
    return px_error (p, "unterminated element");
  if (p->s[p->pos - 1] == '/') {
    if (*closing)
      return px_error (p, "malformed closing element");
    *empty = true;
  }
  p->pos++;
  return 0;
}

/* Character data up to the next '<', entities decoded, into out
 * (truncated to outlen - 1; *truncated set).
 */
static int
px_text (struct px *p, char *out, size_t outlen, bool *truncated)
{
  size_t n = 0;

  *truncated = false;
  while (p->pos < p->len && p->s[p->pos] != '<') {
    char c = p->s[p->pos];
    if (c == '&') {
      static const struct { const char *ent; char c; } ents[] = {
        { "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' },
        { "&quot;", '"' }, { "&apos;", '\'' },
      };
      size_t i;
      for (i = 0; i < sizeof ents / sizeof ents[0]; ++i)
        if (px_starts (p, ents[i].ent))
          break;
      if (i == sizeof ents / sizeof ents[0]) {
        if (px_starts (p, "&#")) {
          const char *semi = memchr (p->s + p->pos, ';',
                                     MIN (p->len - p->pos, (size_t) 12));
          if (semi == NULL)
            return px_error (p, "malformed character reference");
          p->pos = (size_t) (semi - p->s) + 1;
          c = '?';
        }
        else
          return px_error (p, "unknown entity");
      }
      else {
        p->pos += strlen (ents[i].ent);
        c = ents[i].c;
      }
    }
    else
      p->pos++;
    if (n + 1 < outlen)
      out[n++] = c;
    else
      *truncated = true;
  }
  out[n] = '\0';
  if (p->pos >= p->len)
    return px_error (p, "unterminated text");
  return 0;
}

static int
px_expect_close (struct px *p, const char *name)
{
  char tag[32];
  bool closing, empty;

  if (px_tag (p, tag, sizeof tag, &closing, &empty) == -1)
    return -1;
  if (!closing || strcmp (tag, name) != 0) {
    char msg[96];
    snprintf (msg, sizeof msg, "expected </%s>", name);
    return px_error (p, msg);
  }
  return 0;
}

/* What the caller wants to learn from a value. */
enum px_want { PX_NONE, PX_INTERNAL, PX_USER, PX_UUID };

static int px_value (struct px *p, enum px_want want, struct asif_meta *m);

/* The contents of a <dict> after its opening tag, up to </dict>. */
static int
px_dict (struct px *p, enum px_want want, struct asif_meta *m)
{
  char tag[32], key[PLIST_TEXT_MAX];
  bool closing, empty, trunc;

  for (;;) {
    enum px_want sub = PX_NONE;
    if (px_tag (p, tag, sizeof tag, &closing, &empty) == -1)
      return -1;
    if (closing) {
      if (strcmp (tag, "dict") != 0)
        return px_error (p, "expected </dict>");
      return 0;
    }
    if (strcmp (tag, "key") != 0)
      return px_error (p, "expected <key> in a <dict>");
    if (empty)
      key[0] = '\0';
    else if (px_text (p, key, sizeof key, &trunc) == -1 ||
             px_expect_close (p, "key") == -1)
      return -1;
    if (want == PX_USER)
      m->user_keys++;
    if (want == PX_NONE && p->depth == 2) {
      /* The top-level dict. */
      if (strcmp (key, "internal metadata") == 0)
        sub = PX_INTERNAL;
      else if (strcmp (key, "user metadata") == 0)
        sub = PX_USER;
    }
    else if (want == PX_INTERNAL && strcmp (key, "stable uuid") == 0)
      sub = PX_UUID;
    if (px_value (p, sub, m) == -1)
      return -1;
  }
}

static int
px_value (struct px *p, enum px_want want, struct asif_meta *m)
{
  char tag[32], text[PLIST_TEXT_MAX];
  bool closing, empty, trunc;
  int r = 0;

  if (px_tag (p, tag, sizeof tag, &closing, &empty) == -1)
    return -1;
  if (closing)
    return px_error (p, "expected a value, found a closing element");
  if (++p->depth > PLIST_MAX_DEPTH)
    return px_error (p, "nested too deeply");

  if (strcmp (tag, "dict") == 0) {
    if (want == PX_INTERNAL)
      m->has_internal = true;
    else if (want == PX_USER)
      m->has_user = true;
    else if (want == PX_UUID)
      return px_error (p, "\"stable uuid\" is not a string");
    if (!empty)
      r = px_dict (p, want == PX_INTERNAL || want == PX_USER ? want : PX_NONE,
                   m);
  }
  else if (strcmp (tag, "array") == 0) {
    if (want != PX_NONE)
      return px_error (p, "unexpected <array> for a metadata key");
    if (!empty) {
      for (;;) {
        size_t save = p->pos;
        bool c2, e2;
        char t2[32];
        if (px_tag (p, t2, sizeof t2, &c2, &e2) == -1)
          return -1;
        if (c2) {
          if (strcmp (t2, "array") != 0)
            return px_error (p, "expected </array>");
          break;
        }
        p->pos = save;
        if (px_value (p, PX_NONE, m) == -1)
          return -1;
      }
    }
  }
  else if (strcmp (tag, "true") == 0 || strcmp (tag, "false") == 0) {
    if (!empty)
      r = px_expect_close (p, tag);
    if (want != PX_NONE)
      return px_error (p, "unexpected boolean for a metadata key");
  }
  else if (strcmp (tag, "string") == 0 || strcmp (tag, "integer") == 0 ||
           strcmp (tag, "real") == 0 || strcmp (tag, "date") == 0 ||
           strcmp (tag, "data") == 0) {
    if (want == PX_INTERNAL || want == PX_USER)
      return px_error (p, "metadata group is not a <dict>");
    text[0] = '\0';
    if (!empty && (px_text (p, text, sizeof text, &trunc) == -1 ||
                   px_expect_close (p, tag) == -1))
      return -1;
    if (want == PX_UUID) {
      uint8_t u[16];
      if (strcmp (tag, "string") != 0)
        return px_error (p, "\"stable uuid\" is not a string");
      if (vd_uuid_parse (text, u) == -1)
        return px_error (p, "\"stable uuid\" is not a UUID");
      vd_uuid_format (u, m->stable_uuid);
    }
  }
  else
    return px_error (p, "unknown property list element");
  p->depth--;
  return r;
}

int
asif_parse_plist (const char *name, const char *xml, size_t len,
                  struct asif_meta *m)
{
  struct px p = { .name = name, .s = xml, .len = len };
  char tag[32];
  bool closing, empty;

  m->stable_uuid[0] = '\0';
  m->user_keys = 0;
  m->has_internal = m->has_user = false;
  if (px_tag (&p, tag, sizeof tag, &closing, &empty) == -1)
    return -1;
  if (closing || empty || strcmp (tag, "plist") != 0)
    return px_error (&p, "expected <plist>");
  p.depth = 1;
  {
    size_t save = p.pos;
    char t2[32];
    bool c2, e2;
    if (px_tag (&p, t2, sizeof t2, &c2, &e2) == -1)
      return -1;
    if (c2 || strcmp (t2, "dict") != 0)
      return px_error (&p, "the property list is not a <dict>");
    p.pos = save;
  }
  if (px_value (&p, PX_NONE, m) == -1 || px_expect_close (&p, "plist") == -1)
    return -1;
  if (px_skip_misc (&p) == -1)
    return -1;
  if (p.pos != p.len)
    return px_error (&p, "junk after </plist>");
  if (!m->has_internal)
    return px_error (&p, "no \"internal metadata\" dictionary");
  if (m->stable_uuid[0] == '\0')
    return px_error (&p, "no \"stable uuid\"");
  return 0;
}

int
asif_decode_meta (const char *name, const uint8_t *buf, size_t len,
                  struct asif_meta *m)
{
  uint64_t end;
  size_t n;

  memset (m, 0, sizeof *m);
  if (len < 0x20 || memcmp (buf, ASIF_META_MAGIC, 4) != 0) {
    vd_error_msg (EIO, "%s: ASIF metadata chunk has no \"meta\" signature",
                  name);
    return -1;
  }
  m->version = load_be32 (buf + 4);
  m->header_size = load_be32 (buf + 8);
  m->data_size = load_be64 (buf + 12);
  if (m->version != 1) {
    vd_error_msg (EIO, "%s: ASIF metadata version %" PRIu32 " is not "
                  "supported", name, m->version);
    return -1;
  }
  if (m->header_size < 0x20 ||
      ADD_OVERFLOW ((uint64_t) m->header_size, m->data_size, &end) ||
      end > len || m->data_size == 0) {
    vd_error_msg (EIO, "%s: ASIF metadata: property list area (offset %"
                  PRIu32 ", %" PRIu64 " bytes) is outside the metadata "
                  "chunk", name, m->header_size, m->data_size);
    return -1;
  }
  /* The plist is NUL-terminated inside its area. */
  n = (size_t) m->data_size;
  {
    const uint8_t *plist = buf + m->header_size;
    const uint8_t *nul = memchr (plist, '\0', n);
    if (nul)
      n = (size_t) (nul - plist);
    return asif_parse_plist (name, (const char *) plist, n, m);
  }
}
