/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vd_image_compact (offline compaction of ASIF images) and
 * vd_image_resize (RAW and ASIF).
 *
 * Method (compact):
 *   The image must check clean of corruption first (leaks are what
 *   compaction is for).  Every live chunk (tables, data, bitmaps, the
 *   metadata chunk and its bitmap) is recorded with where its pointer
 *   lives.  The holes (unreferenced chunks) are paired, lowest first,
 *   with the live chunks at the top of the file, highest first, while the
 *   hole is below the chunk.  Then, with a flush between the phases:
 *
 *     1. copy every moved data and bitmap chunk to its hole, and write
 *        every moved table, with its entries already pointing at the new
 *        places, to its hole (nothing references a hole: safe);
 *     2. rewrite, in the tables that stay, the entries of moved chunks
 *        (8-byte writes: each atomic, each pointing at a durable copy);
 *     3. publish the new directory through the inactive slot (entries,
 *        flush, sequence + 1, flush), then copy it to the other slot;
 *     4. truncate the file after the last live chunk.
 *
 *   A crash leaves every pointer at either the old chunk (still intact:
 *   nothing is overwritten or truncated before step 4) or its durable
 *   copy; the chunks left behind are leaks, which a new compact or
 *   check --repair reclaims.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vdisk/image.h"
#include "backend.h"
#include "asif-format.h"
#include "asif-internal.h"
#include "byte-order.h"
#include "minmax.h"

enum owner_kind { O_NONE = 0, O_HEADER, O_TABLE, O_ENTRY };

struct owner {
  uint8_t kind;
  uint64_t t;                   /* O_TABLE: dir index; O_ENTRY: table's
                                   dir index */
  uint64_t idx;                 /* O_ENTRY: entry index in the table */
};

struct compact {
  const char *name;
  struct vd_attachment *f;
  struct asif_geom g;
  uint64_t nchunks;
  uint64_t seq[2];
  int active;
  uint64_t *dir;
  struct owner *own;
  uint64_t *dest;               /* new chunk number per chunk (0 = stays) */
  uint8_t *buf;
};

static int
load_layout (struct compact *c)
{
  const struct asif_geom *g = &c->g;
  uint8_t hdr[ASIF_HEADER_SIZE];
  uint64_t *other = NULL;
  int r = -1;

  if (vd_backend_pread (c->f, hdr, sizeof hdr, 0, 0) == -1 ||
      asif_decode_header (c->name, hdr, sizeof hdr, &c->g) == -1)
    return -1;
  if (c->g.unknown_flags) {
    vd_error_msg (EROFS, "%s: the ASIF header has flags vdisk does not know; "
                  "not compacting it", c->name);
    return -1;
  }
  c->nchunks = vd_backend_size (c->f) / g->chunk_size;
  c->dir = malloc (g->t * sizeof (uint64_t));
  other = malloc (g->t * sizeof (uint64_t));
  c->own = calloc (c->nchunks, sizeof *c->own);
  c->dest = calloc (c->nchunks, sizeof *c->dest);
  c->buf = malloc (g->chunk_size);
  if (!c->dir || !other || !c->own || !c->dest || !c->buf) {
    vd_error (errno, "%s", c->name);
    goto out;
  }
  for (int i = 0; i < 2; ++i) {
    if (vd_backend_pread (c->f, c->buf, g->dir_bytes, g->dir_off[i], 0) == -1)
      goto out;
    asif_decode_directory (g, c->buf, &c->seq[i], i == 0 ? c->dir : other);
  }
  c->active = c->seq[1] > c->seq[0] ? 1 : 0;
  if (c->active == 1)
    memcpy (c->dir, other, g->t * sizeof (uint64_t));
  c->own[0].kind = O_HEADER;
  for (uint64_t t = 0; t < g->t; ++t) {
    uint64_t p = c->dir[t];
    if (p == 0)
      continue;
    c->own[p] = (struct owner) { O_TABLE, t, 0 };
    if (vd_backend_pread (c->f, c->buf, g->table_bytes, p * g->chunk_size,
                          0) == -1)
      goto out;
    for (uint64_t i = 0; i < g->e; ++i) {
      uint64_t e = load_be64 (c->buf + 8 * i);
      uint64_t q = asif_entry_index (e);
      bool bitmap = i % (g->n + 1) == g->n;
      unsigned st = asif_entry_status (e);
      if (q == 0 || (!bitmap && st != ASIF_ST_FULL && st != ASIF_ST_PARTIAL))
        continue;
      c->own[q] = (struct owner) { O_ENTRY, t, i };
    }
  }
  r = 0;
 out:
  free (other);
  return r;
}

static uint64_t
moved (const struct compact *c, uint64_t p)
{
  return p < c->nchunks && c->dest[p] ? c->dest[p] : p;
}

/* Table entry value after the move. */
static uint64_t
relocate_entry (const struct compact *c, uint64_t i, uint64_t e)
{
  bool bitmap = i % (c->g.n + 1) == c->g.n;
  unsigned st = asif_entry_status (e);

  if (bitmap)
    return e ? moved (c, e) : 0;
  if (st != ASIF_ST_FULL && st != ASIF_ST_PARTIAL)
    return e;
  return (e & ~ASIF_INDEX_MASK) | moved (c, asif_entry_index (e));
}

static int
write_slot (struct compact *c, int slot, uint64_t seq)
{
  uint64_t off = c->g.dir_off[slot];

  asif_encode_directory (&c->g, seq, c->dir, c->buf);
  if (vd_backend_pwrite (c->f, c->buf + 8, c->g.dir_slot - 8, off + 8,
                         0) == -1 ||
      vd_backend_flush (c->f, 0) == -1 ||
      vd_backend_pwrite (c->f, c->buf, 8, off, 0) == -1 ||
      vd_backend_flush (c->f, 0) == -1)
    return -1;
  return 0;
}

static int
do_compact (struct compact *c, uint64_t *freed)
{
  const struct asif_geom *g = &c->g;
  uint64_t K = g->chunk_size, lo = 1, hi = c->nchunks, last = 0, nmoves = 0;
  uint64_t old_size = vd_backend_size (c->f);
  bool tables_moved = false;

  /* Pair holes (ascending) with live chunks (descending). */
  for (;;) {
    while (lo < c->nchunks && c->own[lo].kind != O_NONE)
      lo++;
    while (hi > 1 && c->own[hi - 1].kind == O_NONE)
      hi--;
    if (hi == 0 || lo >= hi - 1)
      break;
    c->dest[hi - 1] = lo;
    c->own[lo].kind = O_HEADER;  /* taken (kind only matters for holes) */
    nmoves++;
    hi--;
    lo++;
  }
  /* The new end: the highest chunk that is live after the moves. */
  for (uint64_t p = 1; p < c->nchunks; ++p)
    if (c->own[p].kind != O_NONE && c->dest[p] == 0 && p > last)
      last = p;
  for (uint64_t p = 1; p < c->nchunks; ++p)
    if (c->dest[p] && c->dest[p] > last)
      last = c->dest[p];

  /* 1. Copy moved chunks; moved tables get their relocated entries. */
  for (uint64_t p = 1; p < c->nchunks; ++p) {
    if (c->dest[p] == 0)
      continue;
    if (vd_backend_pread (c->f, c->buf, K, p * K, 0) == -1)
      return -1;
    if (c->own[p].kind == O_TABLE) {
      for (uint64_t i = 0; i < g->e; ++i)
        store_be64 (c->buf + 8 * i,
                    relocate_entry (c, i, load_be64 (c->buf + 8 * i)));
      tables_moved = true;
    }
    if (vd_backend_pwrite (c->f, c->buf, K, c->dest[p] * K, 0) == -1)
      return -1;
  }
  if (nmoves && vd_backend_flush (c->f, 0) == -1)
    return -1;

  /* 2. Entries in the tables that stay. */
  for (uint64_t p = 1; p < c->nchunks; ++p) {
    const struct owner *o = &c->own[p];
    uint64_t tp, off, e;
    uint8_t be[8];
    if (c->dest[p] == 0 || o->kind != O_ENTRY)
      continue;
    tp = c->dir[o->t];
    if (c->dest[tp])
      continue;                 /* written whole in step 1 */
    off = tp * K + 8 * o->idx;
    if (vd_backend_pread (c->f, be, 8, off, 0) == -1)
      return -1;
    e = relocate_entry (c, o->idx, load_be64 (be));
    store_be64 (be, e);
    if (vd_backend_pwrite (c->f, be, 8, off, 0) == -1)
      return -1;
  }
  if (nmoves && vd_backend_flush (c->f, 0) == -1)
    return -1;

  /* 3. Directory. */
  if (tables_moved) {
    uint64_t seq = c->seq[c->active];
    for (uint64_t t = 0; t < g->t; ++t)
      c->dir[t] = c->dir[t] ? moved (c, c->dir[t]) : 0;
    if (write_slot (c, 1 - c->active, seq + 1) == -1 ||
        write_slot (c, c->active, seq) == -1)
      return -1;
  }

  /* 4. Truncate. */
  if ((last + 1) * K < old_size) {
    if (vd_backend_resize (c->f, (last + 1) * K) == -1 ||
        vd_backend_flush (c->f, 0) == -1)
      return -1;
  }
  if (freed)
    *freed = old_size - vd_backend_size (c->f);
  return 0;
}

int
asif_compact_file (const char *path, struct vd_attachment *f,
                   uint64_t *freed)
{
  struct compact c = { .name = path, .f = f };
  int r = -1;

  if (load_layout (&c) == 0 && do_compact (&c, freed) == 0)
    r = 0;
  free (c.dir);
  free (c.own);
  free (c.dest);
  free (c.buf);
  return r;
}

VD_API int
vd_image_compact (const char *path, uint64_t *freed)
{
  struct vd_open_options o;
  struct vd_attachment *f;
  struct vd_check_result res = { .struct_size = sizeof res };
  char magic[4] = { 0 };
  int r = -1;

  if (freed)
    *freed = 0;
  vd_open_options_init (&o);
  f = vd_raw_open (path, -1, &o);
  if (f == NULL)
    return -1;
  if (vd_backend_size (f) >= 4 && vd_backend_pread (f, magic, 4, 0, 0) == -1)
    goto out;
  if (memcmp (magic, ASIF_MAGIC, 4) != 0) {
    vd_error_msg (EOPNOTSUPP, "%s: not an ASIF image; compact works on ASIF "
                  "images (a RAW image is already as sparse as its file "
                  "system allows)", path);
    goto out;
  }
  if (asif_check_file (path, f, 0, &res, NULL, NULL) == -1)
    goto out;
  if (res.corruptions) {
    vd_error_msg (EIO, "%s: the image has %" PRIu64 " corruption(s); run "
                  "'vdisk image check' and repair it before compacting",
                  path, res.corruptions);
    goto out;
  }
  if (asif_compact_file (path, f, freed) == -1)
    goto out;
  r = 0;
 out:
  if (vd_attachment_close (f) == -1)
    r = -1;
  return r;
}

VD_API int
vd_image_resize (const char *path, uint64_t new_size)
{
  struct vd_open_options o;
  struct vd_attachment *a;
  const char *fmt;
  int r;

  if (new_size == 0) {
    vd_error_msg (EINVAL, "%s: the size must be greater than zero", path);
    return -1;
  }
  if (new_size > INT64_MAX) {
    vd_error_msg (EFBIG, "%s: size %" PRIu64 " is too large", path, new_size);
    return -1;
  }
  vd_open_options_init (&o);
  a = vd_attachment_open (path, &o);
  if (a == NULL)
    return -1;
  fmt = vd_attachment_get_format (a);
  if (strcmp (fmt, "raw") != 0 && strcmp (fmt, "asif") != 0) {
    vd_error_msg (EOPNOTSUPP, "%s: only RAW and ASIF image files can be "
                  "resized (this is a %s attachment)", path, fmt);
    vd_attachment_close (a);
    return -1;
  }
  if (vd_attachment_is_read_only (a) == 1) {
    vd_error_msg (EROFS, "%s: the image can only be opened read-only; not "
                  "resizing it", path);
    vd_attachment_close (a);
    return -1;
  }
  r = vd_backend_resize (a, new_size);
  if (r == 0 && vd_backend_flush (a, 0) == -1)
    r = -1;
  if (vd_attachment_close (a) == -1)
    r = -1;
  return r;
}
