/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The ASIF attachment: Apple's sparse image format as a layer over a file
 * attachment (the container, usually RAW; the fault-injection decorator
 * can sit in between).  Reads, writes, flush, discard, write_zeroes,
 * block_status, resize and properties.
 *
 * Method (full version with the crash-safety argument in
 * docs/internals/asif.md):
 *
 *   Metadata is write-back.  A write into an unallocated chunk appends a
 *   chunk to the file (ftruncate: fresh chunks read as zeros), writes the
 *   data there and changes the table entry (and for a partial chunk the
 *   group's bitmap) in memory only.  Flush writes the metadata back in an
 *   order that keeps the file consistent at every point, with a flush of
 *   the file between the steps that depend on each other:
 *
 *     bitmap slices of chunks whose entries are not yet on disk
 *     A  flush: data, new chunks (file size) and those slices durable
 *     new bitmap entries (8-byte writes), slices of published chunks
 *     B  flush (only if bitmap entries were written)
 *     new tables (whole), changed table sectors
 *     C  flush
 *     inactive directory slot without its sequence word, flush,
 *     D  sequence word = active + 1, flush
 *
 *   A torn write never exposes garbage: a table entry (8 bytes) is never
 *   written before what it points to is durable, and only whole 512-byte
 *   sectors of values that are safe at that moment are ever written.
 *
 *   Memory is bounded: ASIF_TABLE_CACHE tables and ASIF_SLICE_CACHE bitmap
 *   slices; evicting something dirty first runs the flush above.  The
 *   directory (T entries, 260 KiB for Apple's geometry) stays in memory.
 *
 *   Locking: one rwlock over the metadata.  Reads and writes of chunks
 *   that are already allocated (and blocks already marked written) take
 *   it shared for the lookup only and do their data I/O without it.  A
 *   write into a new chunk reserves the chunk under the exclusive lock,
 *   writes its data without the lock and takes the lock again to make
 *   the entry visible (so a flush, which is exclusive, never publishes an
 *   entry before its data); other writes into that new chunk wait for it.
 *   Bitmap changes in an allocated chunk (with their data write, so a
 *   sub-block write never pads over a concurrent one), discard and flush
 *   take it exclusive.  Chunks are never reused while the image is open,
 *   so a reader holding a stale chunk number reads stale data, never
 *   another chunk's.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "asif-format.h"
#include "asif-internal.h"
#include "byte-order.h"
#include "checked-overflow.h"
#include "iov.h"
#include "minmax.h"
#include "rounding.h"
#include "uuid.h"

/* Chunks examined by one block_status call at most. */
#define ASIF_STATUS_BUDGET 4096

/* Child I/O. */

static int
cpread (struct asif *s, void *buf, size_t n, uint64_t off)
{
  return vd_backend_pread (s->file, buf, n, off, 0);
}

static int
cpwrite (struct asif *s, const void *buf, size_t n, uint64_t off,
         uint32_t flags)
{
  return vd_backend_pwrite (s->file, buf, n, off, flags);
}

static int
cpreadv (struct asif *s, const struct iovec *iov, int cnt, size_t n,
         uint64_t off)
{
  return vd_backend_preadv (s->file, iov, cnt, n, off, 0);
}

static int
cpwritev (struct asif *s, const struct iovec *iov, int cnt, size_t n,
          uint64_t off, uint32_t flags)
{
  return vd_backend_pwritev (s->file, iov, cnt, n, off, flags);
}

/* The caller's bytes for one chunk: n bytes in cnt segments (pointing
 * into the caller's own), and room for cnt more to cut them into runs.
 * A guest's request arrives as scattered pages; they go to the file as
 * they are, in one vectored call per run.
 */
struct asif_data {
  const struct iovec *iov;
  int cnt;
  size_t n;
  struct iovec *scratch;
};

static int
cflush (struct asif *s)
{
  return vd_backend_flush (s->file, 0);
}

static int
czero (struct asif *s, uint64_t n, uint64_t off, uint32_t flags)
{
  if (s->file->caps & VD_CAP_ZERO) {
    if (vd_backend_write_zeroes (s->file, n, off, flags) == 0)
      return 0;
    if ((flags & VD_FLAG_FAST_ZERO) || vd_error_errno () != EOPNOTSUPP)
      return -1;
  }
  else if (flags & VD_FLAG_FAST_ZERO) {
    vd_error_msg (ENOTSUP, "%s: write_zeroes: the container cannot zero "
                  "quickly", s->a.name);
    return -1;
  }
  {
    size_t bs = MIN (n, (uint64_t) 1024 * 1024);
    char *z = calloc (1, bs);
    int r = 0;
    if (z == NULL) {
      vd_error (errno, "%s: allocating a zero buffer", s->a.name);
      return -1;
    }
    while (n > 0 && r == 0) {
      size_t k = MIN (n, (uint64_t) bs);
      r = cpwrite (s, z, k, off, 0);
      n -= k;
      off += k;
    }
    free (z);
    return r;
  }
}

static uint64_t
chunk_off (const struct asif *s, uint64_t phys)
{
  return phys * s->g.chunk_size;
}

static int
corrupt (struct asif *s, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

static int
corrupt (struct asif *s, const char *fmt, ...)
{
  char msg[256];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  vd_error_msg (EIO, "%s: corrupt ASIF image: %s (run 'vdisk image check')",
                s->a.name, msg);
  return -1;
}

/* Make the file hold at least `need` chunks.  It grows by more than one
 * chunk at a time (an eighth of what is in use, at most ASIF_GROW_AHEAD
 * chunks): one ftruncate per scattered 4 KiB first write cost as much as
 * the write itself.  The chunks past next_chunk are referenced by nothing,
 * so a crash leaves them as leaked space at the end of the file (check
 * reports it, --repair=leaks cuts it off); a clean close trims them.
 * Lock exclusive.
 */
static int
grow_file (struct asif *s, uint64_t need)
{
  uint64_t K = s->g.chunk_size, target, end;

  if (need <= s->file_chunks)
    return 0;
  target = need + MIN (s->next_chunk / 8, (uint64_t) ASIF_GROW_AHEAD);
  if (target - 1 > ASIF_INDEX_MASK || MUL_OVERFLOW (target, K, &end) ||
      end > INT64_MAX)
    target = need;
  /* Growing ahead is an optimisation: where the file system cannot hold
   * the extra (no sparse files, nearly full), grow by what is needed.
   */
  if (vd_backend_resize (s->file, target * K) == -1) {
    if (target == need || vd_backend_resize (s->file, need * K) == -1)
      return -1;
    target = need;
  }
  s->file_chunks = target;
  return 0;
}

/* Chunk allocation: the next chunk at the end of the file.  Lock
 * exclusive.
 */
static int
alloc_chunk (struct asif *s, uint64_t *out)
{
  uint64_t p = s->next_chunk, end;

  if (p > ASIF_INDEX_MASK || ADD_OVERFLOW (p, 1, &end) ||
      MUL_OVERFLOW (end, (uint64_t) s->g.chunk_size, &end) ||
      end > INT64_MAX) {
    vd_error_msg (ENOSPC, "%s: the ASIF image file cannot grow any more",
                  s->a.name);
    return -1;
  }
  if (grow_file (s, p + 1) == -1)
    return -1;
  s->next_chunk = p + 1;
  *out = p;
  return 0;
}

/* Sorted list of table chunks (a guard against corrupt entries that point
 * at a table: writing user data there would destroy the table).
 */
static bool
is_table_chunk (const struct asif *s, uint64_t p)
{
  size_t lo = 0, hi = s->nr_table_chunks;

  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (s->table_chunks[mid] == p)
      return true;
    if (s->table_chunks[mid] < p)
      lo = mid + 1;
    else
      hi = mid;
  }
  return false;
}

static int
add_table_chunk (struct asif *s, uint64_t p)
{
  size_t i = s->nr_table_chunks;
  uint64_t *n = realloc (s->table_chunks, (i + 1) * sizeof *n);

  if (n == NULL) {
    vd_error (errno, "%s", s->a.name);
    return -1;
  }
  s->table_chunks = n;
  while (i > 0 && n[i - 1] > p) {
    n[i] = n[i - 1];
    i--;
  }
  n[i] = p;
  s->nr_table_chunks++;
  return 0;
}

static int
build_table_chunks (struct asif *s)
{
  for (uint64_t t = 0; t < s->g.t; ++t)
    if (s->dir[t] && add_table_chunk (s, s->dir[t]) == -1)
      return -1;
  return 0;
}

/* A data chunk about to receive user data must not be metadata. */
static int
guard_data_chunk (struct asif *s, uint64_t v, uint64_t phys, uint64_t bm)
{
  if (phys == bm || phys == s->meta_phys || phys == s->meta_bm_phys ||
      is_table_chunk (s, phys))
    return corrupt (s, "virtual chunk %" PRIu64 " maps to chunk %" PRIu64
                    ", which holds metadata", v, phys);
  return 0;
}

/* Table cache.  Lock held (shared for find, exclusive for the rest). */

static struct asif_table *
table_find (struct asif *s, uint64_t t)
{
  for (int i = 0; i < ASIF_TABLE_CACHE; ++i)
    if (s->tables[i].t == t) {
      atomic_store_explicit (&s->tables[i].lru,
                             atomic_fetch_add (&s->lru_clock, 1) + 1,
                             memory_order_relaxed);
      return &s->tables[i];
    }
  return NULL;
}

static void
table_set (struct asif *s, struct asif_table *tb, uint64_t idx, uint64_t val)
{
  uint64_t sector = idx * 8 / 512;

  tb->e[idx] = val;
  tb->dirty[sector / 8] |= (uint8_t) (1u << (sector % 8));
  tb->any_dirty = true;
}

static bool
table_entry_dirty (const struct asif_table *tb, uint64_t idx)
{
  uint64_t sector = idx * 8 / 512;
  return tb->is_new || (tb->dirty[sector / 8] >> (sector % 8)) & 1;
}

static int flush_meta_locked (struct asif *s);
static int flush_meta_steps (struct asif *s, bool *sync_left);

static struct asif_table *
table_slot (struct asif *s)
{
  struct asif_table *best = NULL;
  bool flushed = false;

 again:
  for (int i = 0; i < ASIF_TABLE_CACHE; ++i) {
    struct asif_table *tb = &s->tables[i];
    if (tb->t == UINT64_MAX) {
      best = tb;
      break;
    }
    if (tb->any_dirty || tb->is_new)
      continue;
    if (best == NULL || atomic_load (&tb->lru) < atomic_load (&best->lru))
      best = tb;
  }
  if (best == NULL) {
    assert (!flushed);
    if (flush_meta_locked (s) == -1)
      return NULL;
    flushed = true;
    goto again;
  }
  if (best->e == NULL) {
    best->e = malloc (s->g.e * sizeof (uint64_t));
    best->dirty = calloc (1, s->g.table_bytes / 512 / 8 + 1);
    if (best->e == NULL || best->dirty == NULL) {
      vd_error (errno, "%s: allocating the table cache", s->a.name);
      return NULL;
    }
  }
  best->t = UINT64_MAX;
  return best;
}

/* Read a table chunk from the file and decode it into e. */
static int
load_table (struct asif *s, uint64_t t, uint64_t *e, uint8_t *buf)
{
  uint64_t p = s->dir[t];
  const char *why = asif_check_dir_entry (p, s->next_chunk);

  if (why || p == 0)
    return corrupt (s, "directory entry %" PRIu64 ": %s", t,
                    why ? why : "no table");
  if (cpread (s, buf, s->g.table_bytes, chunk_off (s, p)) == -1)
    return -1;
  for (uint64_t i = 0; i < s->g.e; ++i)
    e[i] = load_be64 (buf + 8 * i);
  return 0;
}

/* Get table t into the cache.  If it does not exist: NULL with *absent
 * (create false), or a new empty table (create true).  Lock exclusive.
 */
static struct asif_table *
table_get (struct asif *s, uint64_t t, bool create, bool *absent)
{
  struct asif_table *tb = table_find (s, t);
  uint64_t p;

  *absent = false;
  if (tb)
    return tb;
  if (s->dir[t] == 0 && !create) {
    *absent = true;
    return NULL;
  }
  tb = table_slot (s);
  if (tb == NULL)
    return NULL;
  memset (tb->dirty, 0, s->g.table_bytes / 512 / 8 + 1);
  tb->any_dirty = false;
  tb->is_new = false;
  if (s->dir[t] == 0) {
    if (alloc_chunk (s, &p) == -1 || add_table_chunk (s, p) == -1)
      return NULL;
    memset (tb->e, 0, s->g.e * sizeof (uint64_t));
    tb->is_new = true;
    s->dir[t] = p;
    s->dir_dirty = true;
  }
  else if (load_table (s, t, tb->e, s->iobuf) == -1)
    return NULL;
  tb->t = t;
  atomic_store (&tb->lru, atomic_fetch_add (&s->lru_clock, 1) + 1);
  return tb;
}

/* Bitmap slice cache: a chained hash over a fixed array, emptied as a
 * whole when full (after writing back what is dirty).
 */

static unsigned
slice_hash (uint64_t v)
{
  return (unsigned) ((v * UINT64_C (0x9e3779b97f4a7c15)) >> 40) %
    (2 * ASIF_SLICE_CACHE);
}

static struct asif_slice *
slice_find (struct asif *s, uint64_t v)
{
  for (int i = s->slice_hash[slice_hash (v)]; i != -1; i = s->slices[i].next)
    if (s->slices[i].v == v)
      return &s->slices[i];
  return NULL;
}

static void
slices_clear (struct asif *s)
{
  s->nr_slices = 0;
  for (int i = 0; i < 2 * ASIF_SLICE_CACHE; ++i)
    s->slice_hash[i] = -1;
}

/* A new cache entry for v (not filled).  Lock exclusive. */
static struct asif_slice *
slice_add (struct asif *s, uint64_t v, uint64_t bm)
{
  struct asif_slice *sl;
  unsigned h;

  if (s->nr_slices == ASIF_SLICE_CACHE) {
    if (s->slices_dirty && flush_meta_locked (s) == -1)
      return NULL;
    slices_clear (s);
  }
  sl = &s->slices[s->nr_slices];
  sl->bits = s->slice_mem + (size_t) s->nr_slices * s->g.slice_bytes;
  sl->v = v;
  sl->bm = bm;
  sl->dirty = false;
  sl->unpublished = false;
  h = slice_hash (v);
  sl->next = s->slice_hash[h];
  s->slice_hash[h] = s->nr_slices++;
  return sl;
}

/* The bitmap slice of partial chunk v (entry in tb at pos).  Lock
 * exclusive.
 */
static struct asif_slice *
slice_get (struct asif *s, uint64_t v, struct asif_table *tb,
           const struct asif_pos *pos)
{
  struct asif_slice *sl = slice_find (s, v);
  uint64_t bm = tb->e[pos->bitmap_entry];
  const char *why;

  if (sl)
    return sl;
  why = asif_check_bitmap_entry (bm, s->next_chunk);
  if (why || bm == 0) {
    corrupt (s, "table %" PRIu64 " group %" PRIu64 ": %s", pos->t, pos->g,
             why ? why : "partial chunk without a bitmap chunk");
    return NULL;
  }
  sl = slice_add (s, v, bm);
  if (sl == NULL)
    return NULL;
  if (cpread (s, sl->bits, s->g.slice_bytes,
              chunk_off (s, bm) + pos->slot * s->g.slice_bytes) == -1) {
    /* Drop the half-made entry: it is the last one added. */
    slices_clear (s);
    return NULL;
  }
  return sl;
}

/* Metadata write-back (see Method).  Lock exclusive. */

static int
write_slice (struct asif *s, struct asif_slice *sl)
{
  uint64_t slot = sl->v % s->g.chunks_per_table % s->g.n;

  return cpwrite (s, sl->bits, s->g.slice_bytes,
                  chunk_off (s, sl->bm) + slot * s->g.slice_bytes, 0);
}

/* Write the dirty slices of one phase (unpublished ones before A, all
 * the rest after A).  Slices of one bitmap chunk that has many of them
 * are written as one span: the span is read, the slices of this phase
 * are laid over it, and it is written back (one large I/O instead of
 * hundreds of 512-byte ones, which matters most with O_DIRECT, where
 * each small write is a read-modify-write).  Slices of the other phase
 * keep their on-disk bytes in the span.
 */
#define ASIF_SPAN_MIN 4

static int
slice_cmp (const void *a, const void *b)
{
  const struct asif_slice *x = *(struct asif_slice *const *) a;
  const struct asif_slice *y = *(struct asif_slice *const *) b;

  if (x->bm != y->bm)
    return x->bm < y->bm ? -1 : 1;
  return x->v < y->v ? -1 : x->v > y->v;
}

static int
write_slices (struct asif *s, bool unpublished, bool *wrote)
{
  struct asif_slice **v;
  size_t n = 0, i = 0;
  uint64_t sb = s->g.slice_bytes;
  int r = 0;

  for (int k = 0; k < s->nr_slices; ++k)
    if (s->slices[k].dirty && s->slices[k].unpublished == unpublished)
      n++;
  if (n == 0)
    return 0;
  *wrote = true;
  v = malloc (n * sizeof *v);
  if (v == NULL) {
    vd_error (errno, "%s: flush", s->a.name);
    return -1;
  }
  n = 0;
  for (int k = 0; k < s->nr_slices; ++k)
    if (s->slices[k].dirty && s->slices[k].unpublished == unpublished)
      v[n++] = &s->slices[k];
  qsort (v, n, sizeof *v, slice_cmp);
  while (i < n && r == 0) {
    size_t j = i;
    while (j < n && v[j]->bm == v[i]->bm)
      j++;
    /* A span when it is dense enough: at most 16 slices' worth of bytes
     * per dirty slice.
     */
    if (j - i < ASIF_SPAN_MIN ||
        ((v[j - 1]->v - v[i]->v) % s->g.chunks_per_table + 1) >
        (j - i) * 16) {
      for (; i < j && r == 0; ++i)
        r = write_slice (s, v[i]);
      continue;
    }
    {
      uint64_t first = v[i]->v % s->g.chunks_per_table % s->g.n;
      uint64_t last = v[j - 1]->v % s->g.chunks_per_table % s->g.n;
      uint64_t base = chunk_off (s, v[i]->bm) + first * sb;
      size_t len = (last - first + 1) * sb;
      r = cpread (s, s->iobuf, len, base);
      for (size_t k = i; k < j && r == 0; ++k) {
        uint64_t slot = v[k]->v % s->g.chunks_per_table % s->g.n;
        memcpy (s->iobuf + (slot - first) * sb, v[k]->bits, sb);
      }
      if (r == 0)
        r = cpwrite (s, s->iobuf, len, base, 0);
    }
    i = j;
  }
  free (v);
  return r;
}

static int
write_table_sectors (struct asif *s, struct asif_table *tb, bool whole)
{
  uint64_t nsec = s->g.table_bytes / 512, i = 0;
  uint64_t base = chunk_off (s, s->dir[tb->t]);

  while (i < nsec) {
    uint64_t j;
    if (!whole && !((tb->dirty[i / 8] >> (i % 8)) & 1)) {
      i++;
      continue;
    }
    j = i;
    while (j < nsec && (whole || ((tb->dirty[j / 8] >> (j % 8)) & 1)))
      j++;
    /* Encode sectors [i, j). */
    for (uint64_t x = i * 64; x < j * 64; ++x)
      store_be64 (s->iobuf + (x - i * 64) * 8, x < s->g.e ? tb->e[x] : 0);
    if (cpwrite (s, s->iobuf, (j - i) * 512, base + i * 512, 0) == -1)
      return -1;
    i = j;
  }
  return 0;
}

/* The new directory into the inactive slot.  The flush after the
 * sequence word is left to the caller when final_sync is false.
 */
static int
publish_directory (struct asif *s, bool final_sync)
{
  int slot = 1 - s->active;
  uint64_t off = s->g.dir_off[slot];

  asif_encode_directory (&s->g, s->seq + 1, s->dir, s->iobuf);
  /* Entries first, sequence word last: a torn write of the slot can never
   * carry the higher sequence number.
   */
  if (cpwrite (s, s->iobuf + 8, s->g.dir_slot - 8, off + 8, 0) == -1 ||
      cflush (s) == -1 ||
      cpwrite (s, s->iobuf, 8, off, 0) == -1 ||
      (final_sync && cflush (s) == -1))
    return -1;
  s->active = slot;
  s->seq++;
  s->dir_dirty = false;
  return 0;
}

/* Whether any metadata waits to be written back.  Lock held (shared is
 * enough: the dirty state only changes under the exclusive lock).
 */
static bool
meta_dirty (const struct asif *s)
{
  if (s->slices_dirty || s->dir_dirty || s->nr_pending_bm > 0)
    return true;
  for (int i = 0; i < ASIF_TABLE_CACHE; ++i)
    if (s->tables[i].t != UINT64_MAX &&
        (s->tables[i].any_dirty || s->tables[i].is_new))
      return true;
  return false;
}

/* The flush procedure (Method).  With sync_left NULL it ends with the
 * container flushed.  Otherwise the last container flush is left to the
 * caller, to be made after the lock is released, and *sync_left is set:
 * nothing else has to wait for a flush that only makes durable what is
 * already written.  Leaving it is safe because every later metadata
 * write comes after flush A of a later call (a directory slot is never
 * rewritten before the sequence word of the previous publication is
 * durable), and data writes never depend on metadata being durable.
 * Lock exclusive.
 */
static int
flush_meta_steps (struct asif *s, bool *sync_left)
{
  bool need_flush = false;

  if (!meta_dirty (s)) {
    if (sync_left) {
      *sync_left = true;
      return 0;
    }
    return cflush (s);
  }

  /* Slices whose chunks are not referenced from disk yet. */
  if (write_slices (s, true, &need_flush) == -1)
    return -1;
  need_flush = false;
  /* A */
  if (cflush (s) == -1)
    return -1;

  /* B: new bitmap entries in published tables, slices of published
   * chunks (their data is durable now).
   */
  for (size_t i = 0; i < s->nr_pending_bm; ++i) {
    struct asif_pending_bm *p = &s->pending_bm[i];
    struct asif_table *tb = table_find (s, p->t);
    uint8_t be[8];
    assert (tb != NULL);
    if (tb->is_new)
      continue;
    store_be64 (be, tb->e[p->idx]);
    if (cpwrite (s, be, 8, chunk_off (s, s->dir[p->t]) + 8 * p->idx,
                 0) == -1)
      return -1;
    need_flush = true;
  }
  if (need_flush) {
    if (cflush (s) == -1)
      return -1;
    need_flush = false;
  }
  s->nr_pending_bm = 0;
  if (write_slices (s, false, &need_flush) == -1)
    return -1;

  /* C: tables. */
  for (int i = 0; i < ASIF_TABLE_CACHE; ++i) {
    struct asif_table *tb = &s->tables[i];
    if (tb->t == UINT64_MAX || !(tb->any_dirty || tb->is_new))
      continue;
    if (write_table_sectors (s, tb, tb->is_new) == -1)
      return -1;
    need_flush = true;
  }
  if (s->dir_dirty) {
    if (need_flush && cflush (s) == -1)
      return -1;
    /* D: directory. */
    if (publish_directory (s, sync_left == NULL) == -1)
      return -1;
    need_flush = sync_left != NULL;
  }
  if (need_flush) {
    if (sync_left)
      *sync_left = true;
    else if (cflush (s) == -1)
      return -1;
  }

  for (int i = 0; i < ASIF_TABLE_CACHE; ++i) {
    struct asif_table *tb = &s->tables[i];
    if (tb->t == UINT64_MAX)
      continue;
    if (tb->any_dirty)
      memset (tb->dirty, 0, s->g.table_bytes / 512 / 8 + 1);
    tb->any_dirty = false;
    tb->is_new = false;
  }
  for (int i = 0; i < s->nr_slices; ++i)
    s->slices[i].dirty = s->slices[i].unpublished = false;
  s->slices_dirty = false;
  return 0;
}

static int
flush_meta_locked (struct asif *s)
{
  return flush_meta_steps (s, NULL);
}

/* A flush from outside.  The container flush (fdatasync: milliseconds on
 * a real disk) is made without the lock, so reads and writes of other
 * requests go on meanwhile; in the steady state of a guest rewriting
 * allocated blocks nothing is dirty and the lock is only taken shared to
 * see that.
 */
int
asif_flush_all (struct asif *s)
{
  bool sync_left = false;
  int r;

  pthread_rwlock_rdlock (&s->lock);
  if (meta_dirty (s)) {
    pthread_rwlock_unlock (&s->lock);
    pthread_rwlock_wrlock (&s->lock);
    r = flush_meta_steps (s, &sync_left);
  }
  else {
    sync_left = true;
    r = 0;
  }
  pthread_rwlock_unlock (&s->lock);
  if (r == 0 && sync_left)
    r = cflush (s);
  return r;
}

/* Lookup of virtual chunk v: its entry (0 if no table), and for partial
 * chunks a copy of its bitmap slice in bits.
 */
static int
lookup (struct asif *s, uint64_t v, uint64_t *entry, uint8_t *bits)
{
  struct asif_pos pos;
  struct asif_table *tb;
  struct asif_slice *sl = NULL;
  const char *why;
  bool absent;
  int r = 0;

  asif_locate (&s->g, v, &pos);
  pthread_rwlock_rdlock (&s->lock);
  if (s->dir[pos.t] == 0) {
    *entry = 0;
    pthread_rwlock_unlock (&s->lock);
    return 0;
  }
  tb = table_find (s, pos.t);
  if (tb) {
    *entry = tb->e[pos.entry];
    if (asif_entry_status (*entry) != ASIF_ST_PARTIAL)
      goto done;
    sl = slice_find (s, v);
    if (sl) {
      memcpy (bits, sl->bits, s->g.slice_bytes);
      goto done;
    }
  }
  pthread_rwlock_unlock (&s->lock);

  pthread_rwlock_wrlock (&s->lock);
  tb = table_get (s, pos.t, false, &absent);
  if (tb == NULL) {
    *entry = 0;
    r = absent ? 0 : -1;
    goto out;
  }
  *entry = tb->e[pos.entry];
  if (asif_entry_status (*entry) == ASIF_ST_PARTIAL &&
      asif_check_data_entry (*entry, s->next_chunk) == NULL) {
    sl = slice_get (s, v, tb, &pos);
    if (sl == NULL) {
      r = -1;
      goto out;
    }
    memcpy (bits, sl->bits, s->g.slice_bytes);
  }
 done:
  why = asif_check_data_entry (*entry, s->next_chunk);
  if (why)
    r = corrupt (s, "table %" PRIu64 " entry %" PRIu64 " (virtual chunk %"
                 PRIu64 "): %s", pos.t, pos.entry, v, why);
 out:
  pthread_rwlock_unlock (&s->lock);
  return r;
}

static int
bad_bitmap_state (struct asif *s, uint64_t v, uint64_t b, unsigned st)
{
  return corrupt (s, "virtual chunk %" PRIu64 " block %" PRIu64
                  ": bitmap state %u is not one macOS writes", v, b, st);
}

/* pread */

static int
read_piece (struct asif *s, const struct asif_data *d, uint64_t v,
            uint64_t o, uint8_t *bits)
{
  uint64_t e, B = s->g.block_size;

  if (lookup (s, v, &e, bits) == -1)
    return -1;
  switch (asif_entry_status (e)) {
  case ASIF_ST_EMPTY:
  case ASIF_ST_UNMAPPED:
    vd_iov_zero (d->iov, d->cnt, d->n);
    return 0;
  case ASIF_ST_FULL:
    return cpreadv (s, d->iov, d->cnt, d->n,
                    chunk_off (s, asif_entry_index (e)) + o);
  default: {
    uint64_t pos = o, end = o + d->n;
    struct vd_iov_cursor c;

    vd_iov_cursor_init (&c, d->iov, d->cnt);
    while (pos < end) {
      uint64_t b = pos / B;
      unsigned st = asif_bm_get (bits, b);
      uint64_t run_end;
      int k;
      if (st > ASIF_BM_DATA)
        return bad_bitmap_state (s, v, b, st);
      while (++b * B < end && asif_bm_get (bits, b) == st)
        ;
      run_end = MIN (b * B, end);
      k = vd_iov_cursor_take (&c, run_end - pos, d->scratch);
      if (st == ASIF_BM_DATA) {
        if (cpreadv (s, d->scratch, k, run_end - pos,
                     chunk_off (s, asif_entry_index (e)) + pos) == -1)
          return -1;
      }
      else
        vd_iov_zero (d->scratch, k, run_end - pos);
      pos = run_end;
    }
    return 0;
  }
  }
}

/* Scratch segment arrays for a request of iovcnt segments: the pieces
 * of one chunk, and the runs cut from them (struct asif_data).
 */
#define ASIF_IOV_STACK 4

struct asif_iov_scratch {
  struct iovec stack[2 * ASIF_IOV_STACK];
  struct iovec *piece, *run;
};

static int
scratch_init (struct asif *s, struct asif_iov_scratch *sc, int iovcnt)
{
  if (iovcnt <= ASIF_IOV_STACK) {
    sc->piece = sc->stack;
    sc->run = sc->stack + ASIF_IOV_STACK;
    return 0;
  }
  sc->piece = malloc (2 * (size_t) iovcnt * sizeof *sc->piece);
  if (sc->piece == NULL) {
    vd_error (errno, "%s", s->a.name);
    return -1;
  }
  sc->run = sc->piece + iovcnt;
  return 0;
}

static void
scratch_free (struct asif_iov_scratch *sc)
{
  if (sc->piece != sc->stack)
    free (sc->piece);
}

static int
asif_preadv (struct vd_attachment *a, const struct iovec *iov, int iovcnt,
             size_t count, uint64_t offset, uint32_t flags)
{
  struct asif *s = ASIF (a);
  uint64_t K = s->g.chunk_size;
  struct asif_iov_scratch sc;
  struct vd_iov_cursor c;
  uint8_t *bits;
  int r = 0;

  if (scratch_init (s, &sc, iovcnt) == -1)
    return -1;
  bits = malloc (s->g.slice_bytes);
  if (bits == NULL) {
    vd_error (errno, "%s: pread", a->name);
    scratch_free (&sc);
    return -1;
  }
  vd_iov_cursor_init (&c, iov, iovcnt);
  while (count > 0 && r == 0) {
    uint64_t v = offset / K, o = offset % K;
    size_t n = MIN ((uint64_t) count, K - o);
    struct asif_data d = { .iov = sc.piece, .n = n, .scratch = sc.run };
    d.cnt = vd_iov_cursor_take (&c, n, sc.piece);
    r = read_piece (s, &d, v, o, bits);
    offset += n;
    count -= n;
  }
  free (bits);
  scratch_free (&sc);
  return r;
}

static int
asif_pread (struct vd_attachment *a, void *buf, size_t count,
            uint64_t offset, uint32_t flags)
{
  struct iovec one = { .iov_base = buf, .iov_len = count };
  return asif_preadv (a, &one, 1, count, offset, flags);
}

/* pwrite */

/* True if blocks [b0, b1] are all marked written. */
static bool
all_written (const uint8_t *bits, uint64_t b0, uint64_t b1)
{
  for (uint64_t b = b0; b <= b1; ++b)
    if (asif_bm_get (bits, b) != ASIF_BM_DATA)
      return false;
  return true;
}

/* Write [o, o+n) of partial chunk phys whose slice is sl, setting the
 * bits of the blocks it covers.  Blocks not yet written read as zeros, so
 * a write that covers them only in part is padded with zeros.  Lock
 * exclusive.
 */
static int
write_partial_locked (struct asif *s, struct asif_slice *sl, uint64_t phys,
                      const struct asif_data *d, uint64_t o)
{
  uint64_t B = s->g.block_size, n = d->n;
  uint64_t b0 = o / B, b1 = (o + n - 1) / B;
  uint64_t lo = b0 * B, hi = (b1 + 1) * B;
  bool head = o % B != 0, tail = (o + n) % B != 0;

  if ((!head && !tail) ||
      ((!head || asif_bm_get (sl->bits, b0) == ASIF_BM_DATA) &&
       (!tail || asif_bm_get (sl->bits, b1) == ASIF_BM_DATA))) {
    if (cpwritev (s, d->iov, d->cnt, n, chunk_off (s, phys) + o, 0) == -1)
      return -1;
  }
  else {
    char *pad = calloc (1, hi - lo);
    int r = 0;
    if (pad == NULL) {
      vd_error (errno, "%s: pwrite", s->a.name);
      return -1;
    }
    if (head && asif_bm_get (sl->bits, b0) == ASIF_BM_DATA)
      r = cpread (s, pad, B, chunk_off (s, phys) + lo);
    if (r == 0 && tail && asif_bm_get (sl->bits, b1) == ASIF_BM_DATA)
      r = cpread (s, pad + (hi - lo - B), B, chunk_off (s, phys) + hi - B);
    if (r == 0) {
      vd_iov_to_buf (d->iov, d->cnt, 0, pad + (o - lo), n);
      r = cpwrite (s, pad, hi - lo, chunk_off (s, phys) + lo, 0);
    }
    free (pad);
    if (r == -1)
      return -1;
  }
  for (uint64_t b = b0; b <= b1; ++b)
    asif_bm_set (sl->bits, b, ASIF_BM_DATA);
  sl->dirty = true;
  s->slices_dirty = true;
  return 0;
}

static int
pending_bm_add (struct asif *s, uint64_t t, uint64_t idx)
{
  if (s->nr_pending_bm == s->cap_pending_bm) {
    size_t cap = s->cap_pending_bm ? 2 * s->cap_pending_bm : 16;
    struct asif_pending_bm *p = realloc (s->pending_bm, cap * sizeof *p);
    if (p == NULL) {
      vd_error (errno, "%s", s->a.name);
      return -1;
    }
    s->pending_bm = p;
    s->cap_pending_bm = cap;
  }
  s->pending_bm[s->nr_pending_bm++] = (struct asif_pending_bm) { t, idx };
  return 0;
}

/* Allocations in flight (see "Locking" above and struct asif). */

/* A chunk reserved for an allocating write, to be written without the
 * lock and then made visible by alloc_commit_locked.
 */
struct asif_alloc {
  uint64_t v, phys;
  bool partial;                 /* status 11 with bits, else status 01 */
};

/* write_piece_locked's answers besides 0 (done) and -1. */
#define ALLOC_RESERVED 1        /* *al is reserved: write, then commit */
#define ALLOC_BUSY     2        /* another write is allocating v: wait */

static bool
allocating_has (const struct asif *s, uint64_t v)
{
  for (size_t i = 0; i < s->nr_allocating; ++i)
    if (s->allocating[i] == v)
      return true;
  return false;
}

/* Room for one more, so that allocating_add cannot fail once a chunk is
 * reserved.  Lock exclusive.
 */
static int
allocating_reserve (struct asif *s)
{
  uint64_t *p;
  size_t cap;

  if (s->nr_allocating < s->cap_allocating)
    return 0;
  cap = s->cap_allocating ? 2 * s->cap_allocating : 16;
  pthread_mutex_lock (&s->alloc_lock);
  p = realloc (s->allocating, cap * sizeof *p);
  if (p) {
    s->allocating = p;
    s->cap_allocating = cap;
  }
  pthread_mutex_unlock (&s->alloc_lock);
  if (p == NULL) {
    vd_error (errno, "%s", s->a.name);
    return -1;
  }
  return 0;
}

/* Lock exclusive, allocating_reserve done. */
static void
allocating_add (struct asif *s, uint64_t v)
{
  assert (s->nr_allocating < s->cap_allocating);
  pthread_mutex_lock (&s->alloc_lock);
  s->allocating[s->nr_allocating++] = v;
  pthread_mutex_unlock (&s->alloc_lock);
}

/* Lock exclusive. */
static void
allocating_remove (struct asif *s, uint64_t v)
{
  pthread_mutex_lock (&s->alloc_lock);
  for (size_t i = 0; i < s->nr_allocating; ++i)
    if (s->allocating[i] == v) {
      s->allocating[i] = s->allocating[--s->nr_allocating];
      break;
    }
  pthread_cond_broadcast (&s->alloc_cond);
  pthread_mutex_unlock (&s->alloc_lock);
}

/* Wait until no write is allocating v (all = true: none at all).  Lock
 * not held.
 */
static void
allocating_wait (struct asif *s, uint64_t v, bool all)
{
  pthread_mutex_lock (&s->alloc_lock);
  while (all ? s->nr_allocating > 0 : allocating_has (s, v))
    pthread_cond_wait (&s->alloc_cond, &s->alloc_lock);
  pthread_mutex_unlock (&s->alloc_lock);
}

/* The data of al is written: make it visible.  Lock exclusive. */
static int
alloc_commit_locked (struct asif *s, const struct asif_alloc *al, size_t n,
                     uint64_t o)
{
  uint64_t K = s->g.chunk_size, B = s->g.block_size;
  struct asif_pos pos;
  struct asif_table *tb;
  struct asif_slice *sl;
  bool absent;

  asif_locate (&s->g, al->v, &pos);
  /* Made at the reservation; it may have left the cache since. */
  tb = table_get (s, pos.t, true, &absent);
  if (tb == NULL)
    return -1;
  if (!al->partial) {
    /* A whole-chunk write past the file's end extended the file by
     * itself; set the size the layers below believe in (a no-op for the
     * file unless the disk's last chunk is short).  Up to every chunk
     * reserved so far, never down: writes into the chunks reserved after
     * this one may already be on their way, past its end.
     */
    if (s->next_chunk > s->file_chunks) {
      if (vd_backend_resize (s->file, s->next_chunk * K) == -1)
        return -1;
      s->file_chunks = s->next_chunk;
    }
    table_set (s, tb, pos.entry, asif_entry_make (ASIF_ST_FULL, al->phys));
    return 0;
  }
  sl = slice_find (s, al->v);
  if (sl == NULL) {
    sl = slice_add (s, al->v, tb->e[pos.bitmap_entry]);
    if (sl == NULL)
      return -1;
  }
  /* Bits left from a discarded earlier chunk of v do not count. */
  sl->bm = tb->e[pos.bitmap_entry];
  memset (sl->bits, 0, s->g.slice_bytes);
  for (uint64_t b = o / B; b <= (o + n - 1) / B; ++b)
    asif_bm_set (sl->bits, b, ASIF_BM_DATA);
  sl->unpublished = true;
  sl->dirty = true;
  s->slices_dirty = true;
  table_set (s, tb, pos.entry, asif_entry_make (ASIF_ST_PARTIAL, al->phys));
  return 0;
}

/* Write the data of reserved chunk al without the lock, then commit it.
 * A chunk whose write failed is never used again: it may hold part of
 * the data, and fresh partial chunks must read as zeros.  It stays in
 * the file unreferenced (check reports it as leaked).
 */
static int
alloc_write (struct asif *s, const struct asif_alloc *al,
             const struct asif_data *d, uint64_t o)
{
  size_t n = d->n;
  int r = cpwritev (s, d->iov, d->cnt, n, chunk_off (s, al->phys) + o, 0);

  pthread_rwlock_wrlock (&s->lock);
  if (r == 0)
    r = alloc_commit_locked (s, al, n, o);
  allocating_remove (s, al->v);
  pthread_rwlock_unlock (&s->lock);
  return r;
}

/* Slow path of a write piece: exclusive lock.  Writes into allocated
 * chunks here; for an unallocated one, reserves a chunk in *al
 * (ALLOC_RESERVED) for the caller to write without the lock.
 */
static int
write_piece_locked (struct asif *s, const struct asif_data *d, uint64_t v,
                    uint64_t o, bool *meta, struct asif_alloc *al)
{
  size_t n = d->n;
  uint64_t K = s->g.chunk_size;
  struct asif_pos pos;
  struct asif_table *tb;
  struct asif_slice *sl;
  uint64_t e, phys, bm;
  const char *why;
  bool absent, full;

  if (allocating_has (s, v))
    return ALLOC_BUSY;
  asif_locate (&s->g, v, &pos);
  tb = table_get (s, pos.t, true, &absent);
  if (tb == NULL)
    return -1;
  e = tb->e[pos.entry];
  why = asif_check_data_entry (e, s->next_chunk);
  if (why)
    return corrupt (s, "table %" PRIu64 " entry %" PRIu64 " (virtual chunk %"
                    PRIu64 "): %s", pos.t, pos.entry, v, why);
  bm = tb->e[pos.bitmap_entry];
  phys = asif_entry_index (e);

  switch (asif_entry_status (e)) {
  case ASIF_ST_FULL:
    if (guard_data_chunk (s, v, phys, bm) == -1)
      return -1;
    return cpwritev (s, d->iov, d->cnt, n, chunk_off (s, phys) + o, 0);

  case ASIF_ST_PARTIAL:
    if (guard_data_chunk (s, v, phys, bm) == -1)
      return -1;
    sl = slice_get (s, v, tb, &pos);
    if (sl == NULL)
      return -1;
    *meta = true;
    return write_partial_locked (s, sl, phys, d, o);

  default:
    break;
  }

  /* Allocate.  The last chunk of a disk whose size is not chunk-aligned
   * counts as full when the write reaches the end of the disk.
   */
  full = o == 0 && (n == K || v * K + n == s->g.size);
  *meta = true;
  if (allocating_reserve (s) == -1)
    return -1;
  if (full) {
    /* The next chunk, written by the caller: past the file's end the data
     * write extends the file (file systems handle an append better than
     * filling a hole made by ftruncate); inside space grown ahead it
     * just writes.
     */
    uint64_t end;
    phys = s->next_chunk;
    if (phys > ASIF_INDEX_MASK || ADD_OVERFLOW (phys, 1, &end) ||
        MUL_OVERFLOW (end, K, &end) || end > INT64_MAX) {
      vd_error_msg (ENOSPC, "%s: the ASIF image file cannot grow any more",
                    s->a.name);
      return -1;
    }
    s->next_chunk = phys + 1;
    *al = (struct asif_alloc) { .v = v, .phys = phys, .partial = false };
    allocating_add (s, v);
    return ALLOC_RESERVED;
  }

  /* A chunk discarded since the last flush may still be partial on disk,
   * with its bits in the same bitmap slot: publish the discard first so
   * the new bits can never be read against the old chunk.
   */
  if (asif_entry_status (e) == ASIF_ST_UNMAPPED &&
      table_entry_dirty (tb, pos.entry)) {
    if (flush_meta_locked (s) == -1)
      return -1;
  }
  if (bm == 0) {
    if (alloc_chunk (s, &bm) == -1)
      return -1;
    table_set (s, tb, pos.bitmap_entry, bm);
    if (!tb->is_new && pending_bm_add (s, pos.t, pos.bitmap_entry) == -1)
      return -1;
  }
  else if ((why = asif_check_bitmap_entry (bm, s->next_chunk)) != NULL)
    return corrupt (s, "table %" PRIu64 " group %" PRIu64 ": %s", pos.t,
                    pos.g, why);
  /* A fresh chunk, grown by ftruncate: it reads as zeros, so the caller
   * writes just its bytes, without padding the blocks they touch.
   */
  if (alloc_chunk (s, &phys) == -1)
    return -1;
  *al = (struct asif_alloc) { .v = v, .phys = phys, .partial = true };
  allocating_add (s, v);
  return ALLOC_RESERVED;
}

static int
write_piece (struct asif *s, const struct asif_data *d, uint64_t v,
             uint64_t o, uint32_t fua, bool *meta)
{
  uint64_t B = s->g.block_size, n = d->n;
  struct asif_pos pos;
  struct asif_table *tb;
  uint64_t e = 0, phys = 0;
  bool fast = false;
  int r;

  asif_locate (&s->g, v, &pos);
  pthread_rwlock_rdlock (&s->lock);
  if (s->dir[pos.t] != 0 && (tb = table_find (s, pos.t)) != NULL) {
    e = tb->e[pos.entry];
    if (asif_check_data_entry (e, s->next_chunk) == NULL) {
      phys = asif_entry_index (e);
      if (asif_entry_status (e) == ASIF_ST_FULL)
        fast = true;
      else if (asif_entry_status (e) == ASIF_ST_PARTIAL) {
        struct asif_slice *sl = slice_find (s, v);
        fast = sl && all_written (sl->bits, o / B, (o + n - 1) / B);
        if (fast && sl->dirty)
          *meta = true;
      }
      /* FUA on a chunk whose entry (or bits) are not on disk yet needs
       * the metadata written back too, not just the data.
       */
      if (fast && table_entry_dirty (tb, pos.entry))
        *meta = true;
      if (fast && guard_data_chunk (s, v, phys,
                                    tb->e[pos.bitmap_entry]) == -1) {
        pthread_rwlock_unlock (&s->lock);
        return -1;
      }
    }
  }
  pthread_rwlock_unlock (&s->lock);
  if (fast)
    return cpwritev (s, d->iov, d->cnt, n, chunk_off (s, phys) + o,
                     fua && !*meta ? VD_FLAG_FUA : 0);

  for (;;) {
    struct asif_alloc al = { 0 };

    pthread_rwlock_wrlock (&s->lock);
    r = write_piece_locked (s, d, v, o, meta, &al);
    pthread_rwlock_unlock (&s->lock);
    if (r == ALLOC_BUSY) {
      /* Once the other write has allocated v, this one is an overwrite
       * (or a partial write into its chunk): start over.
       */
      allocating_wait (s, v, false);
      continue;
    }
    if (r == ALLOC_RESERVED)
      r = alloc_write (s, &al, d, o);
    break;
  }
  *meta = true;                 /* slow path: FUA needs a full flush */
  return r;
}

static int
asif_pwritev (struct vd_attachment *a, const struct iovec *iov, int iovcnt,
              size_t count, uint64_t offset, uint32_t flags)
{
  struct asif *s = ASIF (a);
  uint64_t K = s->g.chunk_size;
  uint32_t fua = flags & VD_FLAG_FUA;
  struct asif_iov_scratch sc;
  struct vd_iov_cursor c;
  bool meta = false;
  int r = 0;

  if (scratch_init (s, &sc, iovcnt) == -1)
    return -1;
  vd_iov_cursor_init (&c, iov, iovcnt);
  while (count > 0 && r == 0) {
    uint64_t v = offset / K, o = offset % K;
    size_t n = MIN ((uint64_t) count, K - o);
    struct asif_data d = { .iov = sc.piece, .n = n, .scratch = sc.run };
    d.cnt = vd_iov_cursor_take (&c, n, sc.piece);
    r = write_piece (s, &d, v, o, fua, &meta);
    offset += n;
    count -= n;
  }
  scratch_free (&sc);
  if (r == 0 && fua && meta)
    r = asif_flush_all (s);
  return r;
}

static int
asif_pwrite (struct vd_attachment *a, const void *buf, size_t count,
             uint64_t offset, uint32_t flags)
{
  struct iovec one = { .iov_base = (void *) buf, .iov_len = count };
  return asif_pwritev (a, &one, 1, count, offset, flags);
}

static int
asif_flush (struct vd_attachment *a, uint32_t flags)
{
  return asif_flush_all (ASIF (a));
}

/* discard / write_zeroes / resize: make [offset, offset + count) read as
 * zeros.  Whole chunks become "discarded" (status 10) when trimming is
 * allowed; other allocated ranges are zeroed in place.  Lock exclusive.
 */
static int
zero_range_locked (struct asif *s, uint64_t count, uint64_t offset,
                   uint32_t flags, bool may_unmap, uint64_t disk_size)
{
  uint64_t K = s->g.chunk_size, end = offset + count;

  while (offset < end) {
    uint64_t v = offset / K, o = offset % K;
    uint64_t n = MIN (end - offset, K - o);
    struct asif_pos pos;
    struct asif_table *tb;
    uint64_t e, phys;
    const char *why;
    bool absent, whole;

    asif_locate (&s->g, v, &pos);
    if (s->dir[pos.t] == 0) {
      /* No table: the whole table's range reads as zeros already. */
      uint64_t tend = (pos.t + 1) * s->g.d;
      offset = MIN (end, tend);
      continue;
    }
    tb = table_get (s, pos.t, false, &absent);
    if (tb == NULL)
      return -1;
    e = tb->e[pos.entry];
    why = asif_check_data_entry (e, s->next_chunk);
    if (why)
      return corrupt (s, "table %" PRIu64 " entry %" PRIu64 " (virtual chunk %"
                      PRIu64 "): %s", pos.t, pos.entry, v, why);
    phys = asif_entry_index (e);
    whole = o == 0 && (n == K || v * K + n >= disk_size);
    switch (asif_entry_status (e)) {
    case ASIF_ST_EMPTY:
    case ASIF_ST_UNMAPPED:
      break;
    default:
      if (guard_data_chunk (s, v, phys, tb->e[pos.bitmap_entry]) == -1)
        return -1;
      if (whole && may_unmap)
        table_set (s, tb, pos.entry, asif_entry_make (ASIF_ST_UNMAPPED, 0));
      else if (czero (s, n, chunk_off (s, phys) + o,
                      flags & (VD_FLAG_MAY_TRIM | VD_FLAG_FAST_ZERO)) == -1)
        return -1;
    }
    offset += n;
  }
  return 0;
}

static int
asif_zero (struct vd_attachment *a, uint64_t count, uint64_t offset,
           uint32_t flags, bool discard)
{
  struct asif *s = ASIF (a);
  bool may_unmap = discard || (flags & VD_FLAG_MAY_TRIM);
  int r;

  pthread_rwlock_wrlock (&s->lock);
  r = zero_range_locked (s, count, offset,
                         discard ? VD_FLAG_MAY_TRIM : flags, may_unmap,
                         s->g.size);
  if (r == 0 && (flags & VD_FLAG_FUA))
    r = flush_meta_locked (s);
  pthread_rwlock_unlock (&s->lock);
  return r;
}

static int
asif_discard (struct vd_attachment *a, uint64_t count, uint64_t offset,
              uint32_t flags)
{
  return asif_zero (a, count, offset, flags, true);
}

static int
asif_write_zeroes (struct vd_attachment *a, uint64_t count, uint64_t offset,
                   uint32_t flags)
{
  return asif_zero (a, count, offset, flags, false);
}

/* block_status */

static int
asif_block_status (struct vd_attachment *a, uint64_t count, uint64_t offset,
                   uint32_t flags, struct vd_extents *ex)
{
  struct asif *s = ASIF (a);
  uint64_t K = s->g.chunk_size, B = s->g.block_size;
  uint64_t end = vd_extents_end (ex);
  uint8_t *bits = malloc (s->g.slice_bytes);
  int budget = ASIF_STATUS_BUDGET, r = 0;
  const uint32_t hole = VD_STATE_HOLE | VD_STATE_ZERO;

  if (bits == NULL) {
    vd_error (errno, "%s: block_status", a->name);
    return -1;
  }
  while (r == 0 && !vd_extents_full (ex) && budget-- > 0) {
    uint64_t pos = vd_extents_next (ex);
    uint64_t v = pos / K, cend = MIN (end, (v + 1) * K), e;
    struct asif_pos p;

    asif_locate (&s->g, v, &p);
    pthread_rwlock_rdlock (&s->lock);
    if (s->dir[p.t] == 0) {
      pthread_rwlock_unlock (&s->lock);
      r = vd_extents_add (ex, pos, MIN (end, (p.t + 1) * s->g.d) - pos, hole);
      continue;
    }
    pthread_rwlock_unlock (&s->lock);
    if (lookup (s, v, &e, bits) == -1) {
      r = -1;
      break;
    }
    switch (asif_entry_status (e)) {
    case ASIF_ST_EMPTY:
    case ASIF_ST_UNMAPPED:
      r = vd_extents_add (ex, pos, cend - pos, hole);
      break;
    case ASIF_ST_FULL:
      r = vd_extents_add (ex, pos, cend - pos, 0);
      break;
    default:
      while (r == 0 && pos < cend) {
        uint64_t b = (pos % K) / B;
        unsigned st = asif_bm_get (bits, b);
        uint64_t run_end;
        if (st > ASIF_BM_DATA) {
          r = bad_bitmap_state (s, v, b, st);
          break;
        }
        while ((++b) * B < cend - v * K && asif_bm_get (bits, b) == st)
          ;
        run_end = MIN (v * K + b * B, cend);
        r = vd_extents_add (ex, pos, run_end - pos,
                            st == ASIF_BM_DATA ? 0 : hole);
        pos = run_end;
      }
    }
  }
  free (bits);
  return r;
}

/* resize */

static int
asif_resize (struct vd_attachment *a, uint64_t new_size)
{
  struct asif *s = ASIF (a);
  uint64_t B = s->g.block_size, old = s->g.size, lo, hi;
  uint8_t be[8];
  int r = -1;

  if (new_size % B != 0) {
    vd_error_msg (EINVAL, "%s: the size of an ASIF image must be a multiple "
                  "of its block size %" PRIu64 " (got %" PRIu64 ")", a->name,
                  B, new_size);
    return -1;
  }
  if (DIV_ROUND_UP (new_size, (uint64_t) s->g.chunk_size) >
      s->g.metadata_chunk) {
    vd_error_msg (EFBIG, "%s: %" PRIu64 " bytes is larger than this ASIF "
                  "image can hold (%" PRIu64 " bytes)", a->name, new_size,
                  s->g.metadata_chunk * s->g.chunk_size);
    return -1;
  }
  pthread_rwlock_wrlock (&s->lock);
  /* No allocating write may commit an entry across the change of size. */
  while (s->nr_allocating > 0) {
    pthread_rwlock_unlock (&s->lock);
    allocating_wait (s, 0, true);
    pthread_rwlock_wrlock (&s->lock);
  }
  /* Shrinking discards what falls off the end; growing clears whatever an
   * earlier shrink (by any tool) may have left past the old end, so the
   * new space reads as zeros.
   */
  lo = MIN (old, new_size);
  hi = MAX (old, new_size);
  if (zero_range_locked (s, hi - lo, lo, VD_FLAG_MAY_TRIM, true,
                         lo) == -1 ||
      flush_meta_locked (s) == -1)
    goto out;
  store_be64 (be, new_size / B);
  if (cpwrite (s, be, 8, ASIF_H_SECTOR_COUNT, 0) == -1 || cflush (s) == -1)
    goto out;
  s->g.sector_count = new_size / B;
  s->g.size = new_size;
  r = 0;
 out:
  pthread_rwlock_unlock (&s->lock);
  return r;
}

/* properties */

struct asif_counts {
  uint64_t tables, data, partial, bitmaps, discarded;
};

static int
count_entries (struct asif *s, struct asif_counts *c)
{
  uint64_t *e = malloc (s->g.e * sizeof *e);
  uint64_t user_chunks = DIV_ROUND_UP (s->g.size, (uint64_t) s->g.chunk_size);
  int r = 0;

  memset (c, 0, sizeof *c);
  if (e == NULL) {
    vd_error (errno, "%s", s->a.name);
    return -1;
  }
  pthread_rwlock_wrlock (&s->lock);
  for (uint64_t t = 0; t < s->g.t && r == 0; ++t) {
    struct asif_table *tb;
    const uint64_t *te;
    if (s->dir[t] == 0)
      continue;
    c->tables++;
    tb = table_find (s, t);
    if (tb)
      te = tb->e;
    else {
      if (load_table (s, t, e, s->iobuf) == -1) {
        r = -1;
        break;
      }
      te = e;
    }
    for (uint64_t g = 0; g < s->g.c; ++g) {
      const uint64_t *grp = te + g * (s->g.n + 1);
      if (grp[s->g.n])
        c->bitmaps++;
      for (uint64_t k = 0; k < s->g.n; ++k) {
        uint64_t v = t * s->g.chunks_per_table + g * s->g.n + k;
        switch (asif_entry_status (grp[k])) {
        case ASIF_ST_FULL:
        case ASIF_ST_PARTIAL:
          if (v < user_chunks) {
            c->data++;
            if (asif_entry_status (grp[k]) == ASIF_ST_PARTIAL)
              c->partial++;
          }
          break;
        case ASIF_ST_UNMAPPED:
          c->discarded++;
          break;
        }
      }
    }
  }
  pthread_rwlock_unlock (&s->lock);
  free (e);
  return r;
}

static int
asif_properties (struct vd_attachment *a, vd_property_fn fn, void *ud)
{
  struct asif *s = ASIF (a);
  struct asif_counts c;
  char guid[VD_UUID_STRLEN + 1];
  uint64_t file_size = vd_backend_size (s->file);

  if (count_entries (s, &c) == -1)
    return -1;
  vd_uuid_format (s->g.guid, guid);
  if (fn (ud, "asif.version", VD_PROP_UINT, NULL, s->g.version) == -1 ||
      fn (ud, "asif.header-uuid", VD_PROP_STRING, guid, 0) == -1 ||
      fn (ud, "asif.stable-uuid", VD_PROP_STRING,
          s->meta_ok ? s->meta.stable_uuid : "", 0) == -1 ||
      fn (ud, "asif.user-metadata-keys", VD_PROP_UINT, NULL,
          s->meta_ok ? s->meta.user_keys : 0) == -1 ||
      fn (ud, "asif.chunk-size", VD_PROP_UINT, NULL, s->g.chunk_size) == -1 ||
      fn (ud, "asif.block-size", VD_PROP_UINT, NULL, s->g.block_size) == -1 ||
      fn (ud, "asif.sector-count", VD_PROP_UINT, NULL,
          s->g.sector_count) == -1 ||
      fn (ud, "asif.max-size", VD_PROP_UINT, NULL,
          s->g.metadata_chunk * s->g.chunk_size) == -1 ||
      fn (ud, "asif.directory-sequence", VD_PROP_UINT, NULL, s->seq) == -1 ||
      fn (ud, "asif.tables", VD_PROP_UINT, NULL, c.tables) == -1 ||
      fn (ud, "asif.allocated-chunks", VD_PROP_UINT, NULL, c.data) == -1 ||
      fn (ud, "asif.partial-chunks", VD_PROP_UINT, NULL, c.partial) == -1 ||
      fn (ud, "asif.bitmap-chunks", VD_PROP_UINT, NULL, c.bitmaps) == -1 ||
      fn (ud, "asif.discarded-entries", VD_PROP_UINT, NULL,
          c.discarded) == -1 ||
      fn (ud, "asif.file-size", VD_PROP_UINT, NULL, file_size) == -1 ||
      fn (ud, "asif.data-size", VD_PROP_UINT, NULL,
          c.data * s->g.chunk_size) == -1 ||
      fn (ud, "asif.read-only-reason", VD_PROP_STRING, s->ro_reason, 0) == -1)
    return -1;
  return 0;
}

static int64_t
asif_allocated_size (struct vd_attachment *a)
{
  return vd_backend_allocated_size (ASIF (a)->file);
}

static void
asif_free (struct asif *s)
{
  for (int i = 0; i < ASIF_TABLE_CACHE; ++i) {
    free (s->tables[i].e);
    free (s->tables[i].dirty);
  }
  free (s->slices);
  free (s->slice_mem);
  free (s->slice_hash);
  free (s->pending_bm);
  free (s->dir);
  free (s->table_chunks);
  free (s->iobuf);
  free (s->allocating);
  pthread_cond_destroy (&s->alloc_cond);
  pthread_mutex_destroy (&s->alloc_lock);
}

static int
asif_close (struct vd_attachment *a)
{
  struct asif *s = ASIF (a);
  int r = 0;

  /* Give back the chunks grown ahead and never used (the metadata was
   * flushed just before; they are referenced by nothing).
   */
  if (s->file_chunks > s->next_chunk &&
      vd_backend_resize (s->file, s->next_chunk * s->g.chunk_size) == -1)
    r = -1;
  if (vd_attachment_close (s->file) == -1)
    r = -1;

  asif_free (s);
  pthread_rwlock_destroy (&s->lock);
  return r;
}

static const struct vd_backend_ops asif_ops = {
  .struct_size = sizeof asif_ops,
  .format = "asif",
  .pread = asif_pread,
  .pwrite = asif_pwrite,
  .preadv = asif_preadv,
  .pwritev = asif_pwritev,
  .flush = asif_flush,
  .discard = asif_discard,
  .write_zeroes = asif_write_zeroes,
  .block_status = asif_block_status,
  .resize = asif_resize,
  .properties = asif_properties,
  .allocated_size = asif_allocated_size,
  .close = asif_close,
};

/* Open */

static int
read_directories (struct asif *s, uint64_t *seq, uint64_t **dirs)
{
  for (int i = 0; i < 2; ++i) {
    dirs[i] = malloc (s->g.t * sizeof (uint64_t));
    if (dirs[i] == NULL) {
      vd_error (errno, "%s", s->a.name);
      return -1;
    }
    if (cpread (s, s->iobuf, s->g.dir_bytes, s->g.dir_off[i]) == -1)
      return -1;
    asif_decode_directory (&s->g, s->iobuf, &seq[i], dirs[i]);
  }
  return 0;
}

/* Read the metadata chunk through the maps (it lives at a virtual chunk
 * past the disk's end).
 */
static int
read_metadata (struct asif *s)
{
  uint64_t v = s->g.metadata_chunk, e;
  struct asif_pos pos;
  uint8_t *bits = malloc (s->g.slice_bytes);
  char *buf = NULL;
  size_t len = MIN ((uint32_t) 64 * 1024, s->g.chunk_size);
  int r = -1;

  asif_locate (&s->g, v, &pos);
  if (bits == NULL || (buf = malloc (len)) == NULL) {
    vd_error (errno, "%s", s->a.name);
    goto out;
  }
  if (lookup (s, v, &e, bits) == -1)
    goto out;
  if (asif_entry_status (e) != ASIF_ST_FULL &&
      asif_entry_status (e) != ASIF_ST_PARTIAL) {
    vd_error_msg (EIO, "%s: the ASIF metadata chunk is missing", s->a.name);
    goto out;
  }
  s->meta_phys = asif_entry_index (e);
  if (pthread_rwlock_wrlock (&s->lock) == 0) {
    bool absent;
    struct asif_table *tb = table_get (s, pos.t, false, &absent);
    if (tb)
      s->meta_bm_phys = tb->e[pos.bitmap_entry];
    pthread_rwlock_unlock (&s->lock);
  }
  if (asif_pread (&s->a, buf, len, v * s->g.chunk_size, 0) == -1)
    goto out;
  if (asif_decode_meta (s->a.name, (uint8_t *) buf, len, &s->meta) == -1)
    goto out;
  s->meta_ok = true;
  r = 0;
 out:
  free (bits);
  free (buf);
  return r;
}

struct vd_attachment *
vd_asif_open (struct vd_attachment *file, const struct vd_open_options *opts)
{
  struct asif *s;
  uint64_t file_size, seq[2], *dirs[2] = { NULL, NULL };
  uint64_t need, K;
  pthread_rwlockattr_t attr;
  uint8_t hdr[ASIF_HEADER_SIZE];

  if (vd_backend_start (file) == -1) {
    vd_attachment_close (file);
    return NULL;
  }
  s = calloc (1, sizeof *s);
  if (s == NULL) {
    vd_error (errno, "%s", file->name);
    vd_attachment_close (file);
    return NULL;
  }
  if (vd_attachment_init (&s->a, &asif_ops, file->name, opts) == -1) {
    free (s);
    vd_attachment_close (file);
    return NULL;
  }
  s->file = file;
  s->a.caching_mode = file->caching_mode;
  s->a.sync_mode = file->sync_mode;
  pthread_rwlockattr_init (&attr);
  pthread_rwlockattr_setkind_np (&attr,
                                 PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init (&s->lock, &attr);
  pthread_rwlockattr_destroy (&attr);
  pthread_mutex_init (&s->alloc_lock, NULL);
  pthread_cond_init (&s->alloc_cond, NULL);
  for (int i = 0; i < ASIF_TABLE_CACHE; ++i)
    s->tables[i].t = UINT64_MAX;

  file_size = vd_backend_size (file);
  if (file_size < ASIF_HEADER_SIZE) {
    vd_error_msg (EIO, "%s: not an ASIF image: the file is shorter than the "
                  "header", s->a.name);
    goto fail;
  }
  if (cpread (s, hdr, sizeof hdr, 0) == -1 ||
      asif_decode_header (s->a.name, hdr, sizeof hdr, &s->g) == -1)
    goto fail;
  K = s->g.chunk_size;
  need = MAX (s->g.dir_off[0], s->g.dir_off[1]) + s->g.dir_slot;
  if (file_size < need) {
    vd_error_msg (EIO, "%s: truncated ASIF image: the file (%" PRIu64
                  " bytes) ends inside the directories", s->a.name,
                  file_size);
    goto fail;
  }
  s->next_chunk = s->file_chunks = DIV_ROUND_UP (file_size, K);

  s->iobuf = malloc (K);
  /* Not touched until used: an open costs little memory up front. */
  s->slices = malloc (ASIF_SLICE_CACHE * sizeof *s->slices);
  s->slice_mem = malloc ((size_t) ASIF_SLICE_CACHE * s->g.slice_bytes);
  s->slice_hash = malloc (2 * ASIF_SLICE_CACHE * sizeof (int));
  if (s->iobuf == NULL || s->slices == NULL || s->slice_mem == NULL ||
      s->slice_hash == NULL) {
    vd_error (errno, "%s", s->a.name);
    goto fail;
  }
  slices_clear (s);

  if (read_directories (s, seq, dirs) == -1)
    goto fail;
  /* Highest sequence wins; slot 0 on a tie, as other readers do. */
  s->active = seq[1] > seq[0] ? 1 : 0;
  s->seq = seq[s->active];
  s->dir = dirs[s->active];
  dirs[s->active] = NULL;
  free (dirs[0]);
  free (dirs[1]);
  dirs[0] = dirs[1] = NULL;
  for (uint64_t t = 0; t < s->g.t; ++t) {
    const char *why = asif_check_dir_entry (s->dir[t], s->next_chunk);
    if (why) {
      corrupt (s, "active directory (slot %d) entry %" PRIu64 ": %s",
               s->active, t, why);
      goto fail;
    }
  }
  if (s->seq == UINT64_MAX) {
    corrupt (s, "directory sequence number is at its maximum");
    goto fail;
  }
  if (build_table_chunks (s) == -1)
    goto fail;

  if (s->g.unknown_flags)
    snprintf (s->ro_reason, sizeof s->ro_reason,
              "the header has flag bits or fields that vdisk does not know");
  if (read_metadata (s) == -1) {
    if (vd_error_errno () != EIO)
      goto fail;
    snprintf (s->ro_reason, sizeof s->ro_reason, "%s", vd_get_error ());
  }
  if (s->ro_reason[0] && !s->a.read_only) {
    vd_warning ("%s: opening the image read-only: %s", s->a.name,
                s->ro_reason);
    s->a.read_only = true;
  }

  atomic_store (&s->a.size, s->g.size);
  s->a.block_size = s->g.block_size;
  s->a.pref_block_size = s->g.chunk_size;
  s->a.max_request = VD_DEFAULT_MAX_REQUEST;
  s->a.caps = VD_CAP_FLUSH | VD_CAP_FUA | VD_CAP_EXTENTS | VD_CAP_MULTI_CONN;
  if (!s->a.read_only && (file->caps & VD_CAP_WRITE) &&
      (file->caps & VD_CAP_RESIZE)) {
    s->a.caps |= VD_CAP_WRITE | VD_CAP_DISCARD | VD_CAP_ZERO | VD_CAP_RESIZE;
    if (file->caps & VD_CAP_ZERO)
      s->a.caps |= VD_CAP_FAST_ZERO;
  }
  else
    s->a.read_only = true;
  return &s->a;

 fail:
  free (dirs[0]);
  free (dirs[1]);
  asif_free (s);
  pthread_rwlock_destroy (&s->lock);
  vd_attachment_close (file);
  vd_attachment_fini (&s->a);
  free (s);
  return NULL;
}
