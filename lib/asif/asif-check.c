/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vd_image_check: validate (and optionally repair) an ASIF image.
 *
 * Method:
 *   The check reads the container directly (a RAW attachment on the file)
 *   and decodes every structure with asif-decode.c, independently of the
 *   ASIF attachment's own code paths, so that a bug in the attachment is
 *   not hidden by the same bug in the check.
 *
 *   1. header (asif_decode_header); a header that does not decode stops
 *      the check (one corruption).
 *   2. both directories: no tie between the sequence numbers, and every
 *      entry of both slots a plain chunk number inside the file.  Only
 *      the active one's tables are followed: the inactive slot is an
 *      older copy (possibly torn by a crash) that no reader uses.
 *   3. every table of the active directory: every entry state, every
 *      chunk number inside the file, a bitmap chunk for every group with
 *      a partial chunk, valid 2-bit states in the slices of partial
 *      chunks, and data past the end of the disk.
 *   4. the metadata chunk and its property list.
 *   5. every chunk is referenced at most once (a bitmap over the file's
 *      chunks); the unreferenced ones are leaks.
 *
 *   Repairs are collected during the pass and applied afterwards in a
 *   crash-safe order (table entries, flush, directories, flush, leaks);
 *   a second pass then counts what is left.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdisk/image.h"
#include "backend.h"
#include "asif-format.h"
#include "asif-internal.h"
#include "byte-order.h"
#include "checked-overflow.h"
#include "iszero.h"
#include "minmax.h"
#include "rounding.h"

#define CHECK_MAX_MESSAGES 200

struct fix {
  uint64_t off;                 /* file offset of an 8-byte entry */
  uint64_t val;
};

struct ck {
  const char *name;
  struct vd_attachment *f;
  struct asif_geom g;
  uint64_t file_size;
  uint64_t nchunks;             /* whole chunks in the file */
  uint8_t *refs;                /* one bit per chunk */
  uint64_t max_ref;
  uint64_t corruptions, leaks, data_chunks;
  vd_check_fn fn;
  void *ud;
  unsigned messages;
  bool collect;                 /* collect repairs */
  bool repair_all;
  struct fix *fixes;
  size_t nfix, capfix;
  uint64_t leak_data_fixes;     /* fixes that turn data past the end into
                                   leaks (repaired as leaks) */
  int active;
  uint64_t seq[2];
  uint64_t *dir[2];
  bool fix_inactive, fix_active;
  uint8_t *buf;                 /* one chunk */
  uint8_t *bmbuf;               /* one chunk (a group's bitmap) */
};

static void
report (struct ck *c, int kind, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

static void
report (struct ck *c, int kind, const char *fmt, ...)
{
  char msg[512];
  va_list ap;

  if (kind == VD_CHECK_CORRUPTION)
    c->corruptions++;
  if (c->fn == NULL)
    return;
  if (c->messages == CHECK_MAX_MESSAGES) {
    c->messages++;
    c->fn (c->ud, kind, "(more problems: not reported one by one)");
    return;
  }
  if (c->messages > CHECK_MAX_MESSAGES)
    return;
  c->messages++;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  c->fn (c->ud, kind, msg);
}

static int
add_fix (struct ck *c, uint64_t off, uint64_t val)
{
  if (!c->collect)
    return 0;
  if (c->nfix == c->capfix) {
    size_t cap = c->capfix ? 2 * c->capfix : 64;
    struct fix *p = realloc (c->fixes, cap * sizeof *p);
    if (p == NULL) {
      vd_error (errno, "%s", c->name);
      return -1;
    }
    c->fixes = p;
    c->capfix = cap;
  }
  c->fixes[c->nfix++] = (struct fix) { off, val };
  return 0;
}

/* Mark chunk p referenced by what; a second reference is corruption. */
static void
ref (struct ck *c, uint64_t p, const char *what, uint64_t a, uint64_t b)
{
  if (p == 0 || p >= c->nchunks)
    return;                     /* reported by the caller */
  if ((c->refs[p / 8] >> (p % 8)) & 1) {
    report (c, VD_CHECK_CORRUPTION, "chunk %" PRIu64 " is referenced twice "
            "(again by %s %" PRIu64 "/%" PRIu64 ")", p, what, a, b);
    return;
  }
  c->refs[p / 8] |= (uint8_t) (1u << (p % 8));
  if (p > c->max_ref)
    c->max_ref = p;
}

static int
check_directories (struct ck *c)
{
  const struct asif_geom *g = &c->g;

  for (int i = 0; i < 2; ++i) {
    c->dir[i] = malloc (g->t * sizeof (uint64_t));
    if (c->dir[i] == NULL) {
      vd_error (errno, "%s", c->name);
      return -1;
    }
    if (vd_backend_pread (c->f, c->buf, g->dir_bytes, g->dir_off[i], 0) == -1)
      return -1;
    asif_decode_directory (g, c->buf, &c->seq[i], c->dir[i]);
  }
  c->active = c->seq[1] > c->seq[0] ? 1 : 0;
  if (c->seq[0] == c->seq[1]) {
    report (c, VD_CHECK_CORRUPTION, "both directories have sequence number %"
            PRIu64 " (a writer must never produce a tie)", c->seq[0]);
    c->fix_inactive = true;
  }
  for (uint64_t t = 0; t < g->t; ++t) {
    uint64_t e = c->dir[c->active][t], x = c->dir[1 - c->active][t];
    const char *why = asif_check_dir_entry (e, c->nchunks);
    if (why) {
      report (c, VD_CHECK_CORRUPTION, "active directory (slot %d) entry %"
              PRIu64 ": %s (%#" PRIx64 ")", c->active, t, why, e);
      c->dir[c->active][t] = 0;
      c->fix_active = true;
      continue;
    }
    /* The inactive slot is an older (possibly torn) copy that no reader
     * uses while its sequence is lower; its pointers must still be sane.
     */
    why = asif_check_dir_entry (x, c->nchunks);
    if (why) {
      report (c, VD_CHECK_CORRUPTION, "inactive directory (slot %d) entry %"
              PRIu64 ": %s (%#" PRIx64 ")", 1 - c->active, t, why, x);
      c->fix_inactive = true;
    }
    if (e)
      ref (c, e, "directory entry", (uint64_t) c->active, t);
  }
  return 0;
}

/* Check one group's bitmap slices for the partial chunks of the group. */
static int
check_group (struct ck *c, uint64_t t, uint64_t tbl, uint64_t grp,
             const uint8_t *tb)
{
  const struct asif_geom *g = &c->g;
  uint64_t base = grp * (g->n + 1);
  uint64_t bm = load_be64 (tb + 8 * (base + g->n));
  uint64_t user_chunks = DIV_ROUND_UP (g->size, (uint64_t) g->chunk_size);
  const char *why = asif_check_bitmap_entry (bm, c->nchunks);
  bool bm_ok = why == NULL, bm_loaded = false;

  if (why)
    report (c, VD_CHECK_CORRUPTION, "table %" PRIu64 " group %" PRIu64
            ": %s (%#" PRIx64 ")", t, grp, why, bm);
  else if (bm)
    ref (c, bm, "bitmap of table/group", t, grp);

  for (uint64_t k = 0; k < g->n; ++k) {
    uint64_t idx = base + k;
    uint64_t e = load_be64 (tb + 8 * idx);
    uint64_t v = t * g->chunks_per_table + grp * g->n + k;
    uint64_t eoff = tbl * g->chunk_size + 8 * idx;
    unsigned st = asif_entry_status (e);

    if (e == 0)
      continue;
    why = asif_check_data_entry (e, c->nchunks);
    if (why) {
      report (c, VD_CHECK_CORRUPTION, "table %" PRIu64 " entry %" PRIu64
              " (virtual chunk %" PRIu64 "): %s (%#" PRIx64 ")", t, idx, v,
              why, e);
      /* Unreadable anyway: make it read as zeros (repair all).  Reserved
       * bits are left alone: their meaning is unknown.
       */
      if (c->repair_all && !(e & ASIF_RESERVED_MASK) &&
          add_fix (c, eoff, asif_entry_make (ASIF_ST_UNMAPPED, 0)) == -1)
        return -1;
      continue;
    }
    if (st != ASIF_ST_FULL && st != ASIF_ST_PARTIAL)
      continue;
    ref (c, asif_entry_index (e), "table/entry", t, idx);
    if (v >= user_chunks && v != g->metadata_chunk) {
      report (c, VD_CHECK_LEAK, "chunk %" PRIu64 " holds data past the end "
              "of the disk (virtual chunk %" PRIu64 ")", asif_entry_index (e),
              v);
      c->leaks++;
      c->leak_data_fixes++;
      if (add_fix (c, eoff, asif_entry_make (ASIF_ST_UNMAPPED, 0)) == -1)
        return -1;
      continue;
    }
    if (v != g->metadata_chunk)
      c->data_chunks++;
    if (st != ASIF_ST_PARTIAL)
      continue;
    if (!bm_ok || bm == 0) {
      report (c, VD_CHECK_CORRUPTION, "table %" PRIu64 " entry %" PRIu64
              " (virtual chunk %" PRIu64 "): partial chunk without a valid "
              "bitmap chunk", t, idx, v);
      if (c->repair_all &&
          add_fix (c, eoff, asif_entry_make (ASIF_ST_UNMAPPED, 0)) == -1)
        return -1;
      continue;
    }
    if (!bm_loaded) {
      if (vd_backend_pread (c->f, c->bmbuf, g->chunk_size,
                            bm * g->chunk_size, 0) == -1)
        return -1;
      bm_loaded = true;
    }
    {
      const uint8_t *slice = c->bmbuf + k * g->slice_bytes;
      for (uint64_t b = 0; b < g->blocks_per_chunk; ++b) {
        unsigned s = asif_bm_get (slice, b);
        if (s > ASIF_BM_DATA) {
          report (c, VD_CHECK_CORRUPTION, "virtual chunk %" PRIu64 " block %"
                  PRIu64 ": bitmap state %u (only 00 and 01 are known)", v, b,
                  s);
          break;
        }
      }
    }
  }
  return 0;
}

static int
check_tables (struct ck *c)
{
  const struct asif_geom *g = &c->g;
  const uint64_t *dir = c->dir[c->active];

  for (uint64_t t = 0; t < g->t; ++t) {
    uint64_t p = dir[t];
    if (p == 0)
      continue;
    if (vd_backend_pread (c->f, c->buf, g->table_bytes, p * g->chunk_size,
                          0) == -1)
      return -1;
    for (uint64_t grp = 0; grp < g->c; ++grp)
      if (check_group (c, t, p, grp, c->buf) == -1)
        return -1;
    if (!is_zero (c->buf + 8 * g->e, g->table_bytes - 8 * g->e))
      report (c, VD_CHECK_CORRUPTION, "table %" PRIu64 " (chunk %" PRIu64
              ") has non-zero bytes after its last chunk group", t, p);
  }
  return 0;
}

static int
check_metadata (struct ck *c)
{
  const struct asif_geom *g = &c->g;
  struct asif_pos pos;
  struct asif_meta m;
  uint64_t tbl, e, bm, phys;
  size_t len = MIN ((uint32_t) 64 * 1024, g->chunk_size);
  uint8_t be[8];

  asif_locate (g, g->metadata_chunk, &pos);
  tbl = c->dir[c->active][pos.t];
  if (tbl == 0) {
    report (c, VD_CHECK_CORRUPTION, "the metadata chunk is missing (no "
            "table for it)");
    return 0;
  }
  if (vd_backend_pread (c->f, be, 8, tbl * g->chunk_size + 8 * pos.entry,
                        0) == -1)
    return -1;
  e = load_be64 (be);
  if (asif_check_data_entry (e, c->nchunks) ||
      (asif_entry_status (e) != ASIF_ST_FULL &&
       asif_entry_status (e) != ASIF_ST_PARTIAL)) {
    report (c, VD_CHECK_CORRUPTION, "the metadata chunk is missing or "
            "invalid (entry %#" PRIx64 ")", e);
    return 0;
  }
  phys = asif_entry_index (e);
  if (vd_backend_pread (c->f, c->buf, len, phys * g->chunk_size, 0) == -1)
    return -1;
  if (asif_entry_status (e) == ASIF_ST_PARTIAL) {
    /* Blocks not marked written read as zeros. */
    if (vd_backend_pread (c->f, be, 8,
                          tbl * g->chunk_size + 8 * pos.bitmap_entry,
                          0) == -1)
      return -1;
    bm = load_be64 (be);
    if (bm == 0 || asif_check_bitmap_entry (bm, c->nchunks))
      return 0;                 /* reported by check_group */
    if (vd_backend_pread (c->f, c->bmbuf, g->slice_bytes,
                          bm * g->chunk_size + pos.slot * g->slice_bytes,
                          0) == -1)
      return -1;
    for (uint64_t b = 0; b * g->block_size < len; ++b)
      if (asif_bm_get (c->bmbuf, b) != ASIF_BM_DATA)
        memset (c->buf + b * g->block_size, 0, g->block_size);
  }
  if (asif_decode_meta (c->name, c->buf, len, &m) == -1)
    report (c, VD_CHECK_CORRUPTION, "%s", vd_get_error ());
  return 0;
}

static void
check_leaks (struct ck *c)
{
  uint64_t p = 1;

  while (p < c->nchunks) {
    uint64_t q;
    if ((c->refs[p / 8] >> (p % 8)) & 1) {
      p++;
      continue;
    }
    q = p;
    while (q < c->nchunks && !((c->refs[q / 8] >> (q % 8)) & 1))
      q++;
    c->leaks += q - p;
    if (q - p == 1)
      report (c, VD_CHECK_LEAK, "chunk %" PRIu64 " is not referenced "
              "(leaked)", p);
    else
      report (c, VD_CHECK_LEAK, "chunks %" PRIu64 "-%" PRIu64 " are not "
              "referenced (leaked)", p, q - 1);
    p = q;
  }
  if (c->file_size % c->g.chunk_size) {
    c->leaks++;
    report (c, VD_CHECK_LEAK, "the file ends with a partial chunk (%" PRIu64
            " bytes)", c->file_size % c->g.chunk_size);
  }
}

static void
ck_free (struct ck *c)
{
  free (c->refs);
  free (c->fixes);
  free (c->dir[0]);
  free (c->dir[1]);
  free (c->buf);
  free (c->bmbuf);
  c->refs = NULL;
  c->fixes = NULL;
  c->dir[0] = c->dir[1] = NULL;
  c->buf = c->bmbuf = NULL;
}

/* One pass.  Returns 0 (check complete), 1 (header does not decode:
 * one corruption, stop), -1 (error).
 */
static int
check_pass (struct ck *c)
{
  uint8_t hdr[ASIF_HEADER_SIZE];

  c->corruptions = c->leaks = c->data_chunks = 0;
  c->max_ref = 0;
  c->nfix = 0;
  c->leak_data_fixes = 0;
  c->fix_inactive = c->fix_active = false;
  c->file_size = vd_backend_size (c->f);
  if (vd_backend_pread (c->f, hdr, sizeof hdr, 0, 0) == -1)
    return -1;
  if (asif_decode_header (c->name, hdr, sizeof hdr, &c->g) == -1) {
    if (vd_error_errno () != EIO)
      return -1;
    report (c, VD_CHECK_CORRUPTION, "%s", vd_get_error ());
    return 1;
  }
  if (c->g.unknown_flags) {
    /* Perhaps a newer variant (macOS 27 layers?): not ours to judge. */
    vd_error_msg (ENOTSUP, "%s: the ASIF header has non-zero flag words or "
                  "unknown fields; vdisk cannot check this variant (it opens "
                  "it read-only)", c->name);
    return -1;
  }
  c->nchunks = c->file_size / c->g.chunk_size;
  if (c->file_size < MAX (c->g.dir_off[0], c->g.dir_off[1]) + c->g.dir_slot) {
    report (c, VD_CHECK_CORRUPTION, "the file (%" PRIu64 " bytes) ends "
            "inside the directories", c->file_size);
    return 1;
  }
  ck_free (c);
  c->refs = calloc (1, c->nchunks / 8 + 1);
  c->buf = malloc (c->g.chunk_size);
  c->bmbuf = malloc (c->g.chunk_size);
  if (c->refs == NULL || c->buf == NULL || c->bmbuf == NULL) {
    vd_error (errno, "%s", c->name);
    return -1;
  }
  c->refs[0] |= 1;              /* chunk 0: header and directories */
  if (check_directories (c) == -1 || check_tables (c) == -1 ||
      check_metadata (c) == -1)
    return -1;
  check_leaks (c);
  return 0;
}

static int
write_dir_slot (struct ck *c, int slot, uint64_t seq, const uint64_t *dir)
{
  uint64_t off = c->g.dir_off[slot];

  asif_encode_directory (&c->g, seq, dir, c->buf);
  return vd_backend_pwrite (c->f, c->buf + 8, c->g.dir_slot - 8, off + 8,
                            0) == -1 ||
    vd_backend_flush (c->f, 0) == -1 ||
    vd_backend_pwrite (c->f, c->buf, 8, off, 0) == -1 ||
    vd_backend_flush (c->f, 0) == -1 ? -1 : 0;
}

/* Apply the entry and directory repairs the pass collected. */
static int
apply_fixes (struct ck *c, bool all)
{
  int64_t n = 0;

  /* 1. table entries (8-byte writes: atomic), then flush. */
  for (size_t i = 0; i < c->nfix; ++i) {
    uint8_t be[8];
    store_be64 (be, c->fixes[i].val);
    if (vd_backend_pwrite (c->f, be, 8, c->fixes[i].off, 0) == -1)
      return -1;
    n++;
  }
  if (c->nfix) {
    if (c->fn)
      c->fn (c->ud, VD_CHECK_REPAIRED, "rewrote invalid or out-of-range "
             "table entries as discarded");
    if (vd_backend_flush (c->f, 0) == -1)
      return -1;
  }
  /* 2. directories: a corrected active directory is published through
   * the inactive slot first (it becomes active), then copied into the
   * other slot with a lower sequence number.
   */
  if (all && (c->fix_active || c->fix_inactive)) {
    int a = c->active;
    uint64_t seq = c->seq[a];
    if (c->fix_active || c->seq[0] == c->seq[1]) {
      if (write_dir_slot (c, 1 - a, seq + 1, c->dir[a]) == -1 ||
          write_dir_slot (c, a, seq, c->dir[a]) == -1)
        return -1;
    }
    else if (write_dir_slot (c, 1 - a, c->seq[1 - a], c->dir[a]) == -1)
      return -1;
    if (c->fn)
      c->fn (c->ud, VD_CHECK_REPAIRED, "rewrote the directories");
    n++;
  }
  return n > 0 ? 1 : 0;
}

/* Release the leaked chunks the pass found.  On an image without
 * corruption: compact it (crash-safe; the leaks disappear from the file).
 * Otherwise (repair all, some corruption left): truncate the tail and
 * punch holes in the rest, which frees the space but leaves them.
 */
static int
release_leaks (struct ck *c)
{
  uint64_t K = c->g.chunk_size;

  if (c->corruptions == 0) {
    uint64_t freed;
    if (asif_compact_file (c->name, c->f, &freed) == -1)
      return -1;
    if (c->fn)
      c->fn (c->ud, VD_CHECK_REPAIRED, "released the leaked chunks "
             "(compacted the image)");
    return 0;
  }
  {
    uint64_t end = (c->max_ref + 1) * K;
    bool did = false;
    for (uint64_t p = 1; p <= c->max_ref; ++p)
      if (!((c->refs[p / 8] >> (p % 8)) & 1)) {
        if (vd_backend_discard (c->f, K, p * K, 0) == -1)
          return -1;
        did = true;
      }
    if (c->file_size != end) {
      if (vd_backend_resize (c->f, end) == -1)
        return -1;
      did = true;
    }
    if (did) {
      if (vd_backend_flush (c->f, 0) == -1)
        return -1;
      if (c->fn)
        c->fn (c->ud, VD_CHECK_REPAIRED, "released the leaked chunks");
    }
  }
  return 0;
}

int
asif_check_file (const char *path, struct vd_attachment *f, uint32_t flags,
            struct vd_check_result *res, vd_check_fn fn, void *ud)
{
  struct ck c = { .name = path, .f = f, .fn = fn, .ud = ud };
  bool leaks = flags & (VD_CHECK_REPAIR_LEAKS | VD_CHECK_REPAIR_ALL);
  bool all = flags & VD_CHECK_REPAIR_ALL;
  int r;

  c.collect = leaks;
  c.repair_all = all;
  r = check_pass (&c);
  if (r == -1)
    goto fail;
  res->corruptions = res->corruptions_left = c.corruptions;
  res->leaks = res->leaks_left = c.leaks;
  res->allocated_chunks = c.data_chunks;
  res->total_chunks = c.nchunks;
  res->image_end_offset = c.file_size;
  if (r == 1 || !leaks || (c.corruptions == 0 && c.leaks == 0)) {
    ck_free (&c);
    return 0;
  }
  /* Only repair leaks on an image whose structure is otherwise sound, or
   * when asked to repair everything: releasing a chunk that a corrupt
   * pointer should have referenced would make things worse.
   */
  if (c.corruptions > 0 && !all) {
    ck_free (&c);
    return 0;
  }
  {
    vd_check_fn user_fn = c.fn;
    int fixed = apply_fixes (&c, all);
    if (fixed == -1)
      goto fail;
    /* Entry repairs can leak more chunks: look again before releasing. */
    c.fn = NULL;
    c.collect = false;
    if (fixed && check_pass (&c) == -1)
      goto fail;
    if (c.corruptions == 0 || all) {
      c.fn = user_fn;
      if (release_leaks (&c) == -1)
        goto fail;
      c.fn = NULL;
    }
  }
  /* Last pass: what is left. */
  c.messages = 0;
  if (check_pass (&c) == -1)
    goto fail;
  res->corruptions_left = c.corruptions;
  res->leaks_left = c.leaks;
  res->corruptions_fixed = res->corruptions > c.corruptions ?
    res->corruptions - c.corruptions : 0;
  res->leaks_fixed = res->leaks > c.leaks ? res->leaks - c.leaks : 0;
  res->allocated_chunks = c.data_chunks;
  res->total_chunks = c.nchunks;
  res->image_end_offset = c.file_size;
  ck_free (&c);
  return 0;
 fail:
  ck_free (&c);
  return -1;
}

VD_API int
vd_image_check (const char *path, uint32_t flags,
                struct vd_check_result *res_out, vd_check_fn fn, void *ud)
{
  struct vd_check_result res;
  struct vd_open_options o;
  struct vd_attachment *f;
  char magic[4] = { 0 };
  int r;

  memset (&res, 0, sizeof res);
  if (flags & ~(VD_CHECK_REPAIR_LEAKS | VD_CHECK_REPAIR_ALL |
                VD_CHECK_FORCE_SHARE)) {
    vd_error_msg (EINVAL, "%s: invalid check flags 0x%" PRIx32, path, flags);
    return -1;
  }
  /* Repairing an image someone else is writing would race its metadata
   * write-back: both would publish directories through the same slots.
   */
  if ((flags & VD_CHECK_FORCE_SHARE) &&
      (flags & (VD_CHECK_REPAIR_LEAKS | VD_CHECK_REPAIR_ALL))) {
    vd_error_msg (EINVAL, "%s: an image checked without its lock "
                  "(force-share) cannot be repaired", path);
    return -1;
  }
  vd_open_options_init (&o);
  if (flags & VD_CHECK_FORCE_SHARE)
    o.flags |= VD_OPEN_NO_LOCK;
  flags &= ~VD_CHECK_FORCE_SHARE;
  if (!flags)
    o.flags |= VD_OPEN_READ_ONLY;
  f = vd_raw_open (path, -1, &o);
  if (f == NULL)
    return -1;
  res.image_end_offset = vd_backend_size (f);
  if (vd_backend_size (f) >= 4 &&
      vd_backend_pread (f, magic, 4, 0, 0) == -1) {
    vd_attachment_close (f);
    return -1;
  }
  if (memcmp (magic, ASIF_MAGIC, 4) != 0)
    r = 0;                      /* RAW: nothing can be inconsistent */
  else
    r = asif_check_file (path, f, flags, &res, fn, ud);
  if (vd_attachment_close (f) == -1)
    r = -1;
  if (res_out) {
    size_t n = res_out->struct_size && res_out->struct_size < sizeof res ?
      res_out->struct_size : sizeof res;
    res.struct_size = n;
    memcpy (res_out, &res, n);
  }
  return r;
}
