/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The "nbd" attachment (Apple's VZNetworkBlockDeviceStorageDeviceAttachment):
 * opened from an NBD URI without touching the network, connected at
 * start, kept alive by the reconnect decorator (reconnect.c), and
 * disconnected at close.
 *
 * Method:
 *   The core has validated every request (range, read-only, flags,
 *   caps, size), so this layer only turns requests into wire commands:
 *
 *   - Alignment.  If the server advertises a minimum block size > 1,
 *     any unaligned head or tail block of a read is read whole into a
 *     bounce buffer; an unaligned write or zeroing reads those blocks,
 *     patches them and writes them back (read-modify-write), holding a
 *     per-block lock so two partial writes to one block never undo each
 *     other; a discard shrinks to the aligned blocks inside it (it is a
 *     hint); cache and block status widen to whole blocks.
 *   - Splitting.  READ and WRITE are split at the server's maximum
 *     payload (at most 32 MiB), payload-less commands at 1 GiB (64 GiB
 *     with extended headers).  The pieces of one request go out
 *     together and the request completes when all are answered.
 *   - Sync mode.  VD_SYNC_FULL forwards flushes and FUA (emulating FUA
 *     with a flush after the write when the server has FLUSH but not
 *     FUA); VD_SYNC_NONE drops both.  VD_SYNC_FSYNC means FULL here.
 *   - Zeroing without NBD_CMD_WRITE_ZEROES is done by writing zeros.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdisk/nbd.h"
#include "backend.h"
#include "minmax.h"
#include "nbd-internal.h"

#define BATCH_INLINE 4
#define EMULATE_ROUND 16        /* zero-buffer writes in flight at once */

struct nbd_att {
  struct vd_attachment a;
  struct vd_nbd_uri uri;
  char shown[200];              /* the URI as messages show it */
  double timeout;
  struct vd_nbd_rc *rc;

  /* After start. */
  struct vd_nbd_export_info info;
  uint64_t mb;                  /* minimum block size (>= 1) */
  uint64_t max_part;            /* READ/WRITE payload per command */
  uint64_t max_effect;          /* length of payload-less commands */
  bool sync_full;

  /* Blocks being read-modify-written. */
  pthread_mutex_t rmw_lock;
  pthread_cond_t rmw_cond;
  uint64_t *locked;
  size_t nr_locked, cap_locked;
};

static struct nbd_att *
att (struct vd_attachment *a)
{
  return (struct nbd_att *) a;
}

/* ---- Batches of wire commands ------------------------------------------ */

struct batch {
  struct vd_nbd_req *r;
  size_t n, cap;
  struct vd_nbd_req inl[BATCH_INLINE];
};

static void
batch_init (struct batch *b)
{
  b->r = b->inl;
  b->n = 0;
  b->cap = BATCH_INLINE;
}

static void
batch_free (struct batch *b)
{
  for (size_t i = 0; i < b->n; ++i)
    free (b->r[i].cmd.extents);
  if (b->r != b->inl)
    free (b->r);
  batch_init (b);
}

static struct vd_nbd_req *
batch_add (struct batch *b, uint16_t type, uint16_t flags, uint64_t offset,
           uint64_t count, void *data)
{
  struct vd_nbd_req *req;

  if (b->n == b->cap) {
    size_t cap = b->cap * 2;
    struct vd_nbd_req *p = malloc (cap * sizeof *p);
    if (p == NULL) {
      vd_error (errno, "allocating %zu NBD requests", cap);
      return NULL;
    }
    memcpy (p, b->r, b->n * sizeof *p);
    if (b->r != b->inl)
      free (b->r);
    b->r = p;
    b->cap = cap;
  }
  req = &b->r[b->n++];
  memset (req, 0, sizeof *req);
  req->cmd.type = type;
  req->cmd.flags = flags;
  req->cmd.offset = offset;
  req->cmd.count = count;
  req->cmd.data = data;
  return req;
}

/* Split [offset, offset + count) into commands of at most max bytes. */
static int
batch_split (struct batch *b, uint16_t type, uint16_t flags, uint64_t offset,
             uint64_t count, void *data, uint64_t max)
{
  while (count > 0) {
    uint64_t n = MIN (count, max);
    if (batch_add (b, type, flags, offset, n, data) == NULL)
      return -1;
    offset += n;
    count -= n;
    if (data)
      data = (char *) data + n;
  }
  return 0;
}

/* Submit every command, wait for all of them (their buffers are in use
 * until then), raise the first error.  The caller frees the batch (the
 * results, such as extents, are still in it).
 */
static int
batch_run (struct nbd_att *na, struct batch *b, const char *op,
           uint64_t offset)
{
  int r = 0;
  struct vd_nbd_req *failed = NULL;

  for (size_t i = 0; i < b->n; ++i)
    vd_nbd_rc_submit (na->rc, &b->r[i]);
  for (size_t i = 0; i < b->n; ++i)
    if (vd_nbd_rc_wait (na->rc, &b->r[i]) == -1 && failed == NULL)
      failed = &b->r[i];
  if (failed) {
    vd_error_msg (failed->cmd.err, "%s: %s at offset %" PRIu64 ": %s",
                  na->shown, op, offset, failed->cmd.errmsg);
    r = -1;
  }
  return r;
}

/* ---- Flags -------------------------------------------------------------- */

static uint16_t
fua_flag (struct nbd_att *na, uint32_t flags)
{
  if ((flags & VD_FLAG_FUA) && na->sync_full &&
      (na->info.eflags & NBD_FLAG_SEND_FUA))
    return NBD_CMD_FLAG_FUA;
  return 0;
}

/* FUA the server cannot do: a flush after the write. */
static bool
needs_fua_flush (struct nbd_att *na, uint32_t flags)
{
  return (flags & VD_FLAG_FUA) && na->sync_full &&
    !(na->info.eflags & NBD_FLAG_SEND_FUA) &&
    (na->info.eflags & NBD_FLAG_SEND_FLUSH);
}

static int
do_flush (struct nbd_att *na)
{
  struct batch b;
  int r;

  batch_init (&b);
  if (batch_add (&b, NBD_CMD_FLUSH, 0, 0, 0, NULL) == NULL)
    return -1;
  r = batch_run (na, &b, "flush", 0);
  batch_free (&b);
  return r;
}

/* ---- Alignment ---------------------------------------------------------- */

/* A request [off, end) seen through the minimum block size: an unaligned
 * head block, the aligned middle, an unaligned tail block.
 */
struct spans {
  bool head, tail;
  uint64_t hs, he;              /* head block [hs, he) */
  uint64_t ms, me;              /* middle [ms, me), empty if ms >= me */
  uint64_t ts, te;              /* tail block [ts, te) */
};

static void
split_spans (struct nbd_att *na, uint64_t off, uint64_t count,
             struct spans *s)
{
  uint64_t mb = na->mb, size = vd_backend_size (&na->a);
  uint64_t end = off + count;

  memset (s, 0, sizeof *s);
  if (off % mb) {
    s->head = true;
    s->hs = off - off % mb;
    s->he = MIN (s->hs + mb, size);
  }
  if (end % mb && end != size) {
    s->ts = end - end % mb;
    s->te = MIN (s->ts + mb, size);
    s->tail = !(s->head && s->ts == s->hs);
  }
  s->ms = s->head ? s->he : off;
  s->me = s->tail ? s->ts : end;
  if (s->head && end <= s->he)
    s->me = s->ms;              /* all inside the head block */
}

static bool
aligned (struct nbd_att *na, uint64_t off, uint64_t count)
{
  return na->mb == 1 ||
    (off % na->mb == 0 &&
     (count % na->mb == 0 || off + count == vd_backend_size (&na->a)));
}

static bool
is_locked (struct nbd_att *na, uint64_t blk)
{
  for (size_t i = 0; i < na->nr_locked; ++i)
    if (na->locked[i] == blk)
      return true;
  return false;
}

/* Lock the blocks starting at b1 and b2 (either may be UINT64_MAX for
 * none) for read-modify-write.
 */
static int
lock_blocks (struct nbd_att *na, uint64_t b1, uint64_t b2)
{
  pthread_mutex_lock (&na->rmw_lock);
  while ((b1 != UINT64_MAX && is_locked (na, b1)) ||
         (b2 != UINT64_MAX && is_locked (na, b2)))
    pthread_cond_wait (&na->rmw_cond, &na->rmw_lock);
  if (na->nr_locked + 2 > na->cap_locked) {
    size_t cap = na->cap_locked ? na->cap_locked * 2 : 16;
    uint64_t *p = realloc (na->locked, cap * sizeof *p);
    if (p == NULL) {
      pthread_mutex_unlock (&na->rmw_lock);
      vd_error (errno, "%s: read-modify-write lock", na->shown);
      return -1;
    }
    na->locked = p;
    na->cap_locked = cap;
  }
  if (b1 != UINT64_MAX)
    na->locked[na->nr_locked++] = b1;
  if (b2 != UINT64_MAX)
    na->locked[na->nr_locked++] = b2;
  pthread_mutex_unlock (&na->rmw_lock);
  return 0;
}

static void
unlock_one (struct nbd_att *na, uint64_t blk)
{
  if (blk == UINT64_MAX)
    return;
  for (size_t i = 0; i < na->nr_locked; ++i)
    if (na->locked[i] == blk) {
      na->locked[i] = na->locked[--na->nr_locked];
      return;
    }
}

static void
unlock_blocks (struct nbd_att *na, uint64_t b1, uint64_t b2)
{
  pthread_mutex_lock (&na->rmw_lock);
  unlock_one (na, b1);
  unlock_one (na, b2);
  pthread_cond_broadcast (&na->rmw_cond);
  pthread_mutex_unlock (&na->rmw_lock);
}

/* ---- I/O ------------------------------------------------------------- */

static int
nbdatt_pread (struct vd_attachment *a, void *buf, size_t count, uint64_t offset,
           uint32_t flags)
{
  struct nbd_att *na = att (a);
  struct batch b;
  struct spans s;
  char *bounce = NULL;
  int r;

  batch_init (&b);
  if (aligned (na, offset, count)) {
    if (batch_split (&b, NBD_CMD_READ, 0, offset, count, buf,
                     na->max_part) == -1) {
      batch_free (&b);
      return -1;
    }
    r = batch_run (na, &b, "pread", offset);
    batch_free (&b);
    return r;
  }

  split_spans (na, offset, count, &s);
  bounce = malloc (2 * na->mb);
  if (bounce == NULL) {
    vd_error (errno, "%s: pread: bounce buffer", na->shown);
    return -1;
  }
  if ((s.head && batch_add (&b, NBD_CMD_READ, 0, s.hs, s.he - s.hs,
                            bounce) == NULL) ||
      (s.tail && batch_add (&b, NBD_CMD_READ, 0, s.ts, s.te - s.ts,
                            bounce + na->mb) == NULL) ||
      (s.ms < s.me && batch_split (&b, NBD_CMD_READ, 0, s.ms, s.me - s.ms,
                                   (char *) buf + (s.ms - offset),
                                   na->max_part) == -1)) {
    batch_free (&b);
    free (bounce);
    return -1;
  }
  r = batch_run (na, &b, "pread", offset);
  batch_free (&b);
  if (r == 0) {
    uint64_t end = offset + count;
    if (s.head)
      memcpy (buf, bounce + (offset - s.hs), MIN (end, s.he) - offset);
    if (s.tail)
      memcpy ((char *) buf + (s.ts - offset), bounce + na->mb, end - s.ts);
  }
  free (bounce);
  return r;
}

/* Write (or zero, when buf is NULL and zero_flags says how) a range the
 * server may not take as is.  flags: VD_FLAG_*.
 */
static int
write_range (struct nbd_att *na, const void *buf, uint64_t count,
             uint64_t offset, uint32_t flags, const char *op)
{
  struct batch b;
  struct spans s;
  char *bounce = NULL;
  uint16_t fua = fua_flag (na, flags);
  uint64_t b1 = UINT64_MAX, b2 = UINT64_MAX;
  uint64_t end = offset + count;
  int r;

  batch_init (&b);
  if (aligned (na, offset, count)) {
    if (batch_split (&b, NBD_CMD_WRITE, fua, offset, count, (void *) buf,
                     na->max_part) == -1) {
      batch_free (&b);
      return -1;
    }
    r = batch_run (na, &b, op, offset);
    batch_free (&b);
    return r;
  }

  /* Read-modify-write of the head and tail blocks. */
  split_spans (na, offset, count, &s);
  bounce = malloc (2 * na->mb);
  if (bounce == NULL) {
    vd_error (errno, "%s: %s: bounce buffer", na->shown, op);
    return -1;
  }
  if (s.head)
    b1 = s.hs;
  if (s.tail)
    b2 = s.ts;
  if (lock_blocks (na, b1, b2) == -1) {
    free (bounce);
    return -1;
  }
  if ((s.head && batch_add (&b, NBD_CMD_READ, 0, s.hs, s.he - s.hs,
                            bounce) == NULL) ||
      (s.tail && batch_add (&b, NBD_CMD_READ, 0, s.ts, s.te - s.ts,
                            bounce + na->mb) == NULL)) {
    r = -1;
    goto out;
  }
  r = batch_run (na, &b, op, offset);
  batch_free (&b);
  if (r == -1)
    goto out;
  if (s.head) {
    uint64_t n = MIN (end, s.he) - offset;
    if (buf)
      memcpy (bounce + (offset - s.hs), buf, n);
    else
      memset (bounce + (offset - s.hs), 0, n);
  }
  if (s.tail) {
    if (buf)
      memcpy (bounce + na->mb, (const char *) buf + (s.ts - offset),
              end - s.ts);
    else
      memset (bounce + na->mb, 0, end - s.ts);
  }
  if ((s.head && batch_add (&b, NBD_CMD_WRITE, fua, s.hs, s.he - s.hs,
                            bounce) == NULL) ||
      (s.tail && batch_add (&b, NBD_CMD_WRITE, fua, s.ts, s.te - s.ts,
                            bounce + na->mb) == NULL) ||
      (buf && s.ms < s.me &&
       batch_split (&b, NBD_CMD_WRITE, fua, s.ms, s.me - s.ms,
                    (char *) buf + (s.ms - offset), na->max_part) == -1)) {
    r = -1;
    goto out;
  }
  r = batch_run (na, &b, op, offset);
 out:
  batch_free (&b);
  unlock_blocks (na, b1, b2);
  free (bounce);
  return r;
}

static int
nbdatt_pwrite (struct vd_attachment *a, const void *buf, size_t count,
            uint64_t offset, uint32_t flags)
{
  struct nbd_att *na = att (a);

  if (write_range (na, buf, count, offset, flags, "pwrite") == -1)
    return -1;
  return needs_fua_flush (na, flags) ? do_flush (na) : 0;
}

static int
nbdatt_flush (struct vd_attachment *a, uint32_t flags)
{
  struct nbd_att *na = att (a);

  if (!na->sync_full || !(na->info.eflags & NBD_FLAG_SEND_FLUSH))
    return 0;
  return do_flush (na);
}

/* Zeroing by writing zero buffers, for servers without WRITE_ZEROES. */
static int
zero_by_writing (struct nbd_att *na, uint64_t count, uint64_t offset,
                 uint32_t flags)
{
  uint64_t chunk = MIN (count, na->max_part);
  char *zeros;
  int r = 0;

  /* Unaligned edges go through write_range one by one; the aligned
   * middle in rounds of EMULATE_ROUND commands sharing one buffer.
   */
  if (!aligned (na, offset, count)) {
    struct spans s;
    split_spans (na, offset, count, &s);
    if (s.head && write_range (na, NULL, MIN (offset + count, s.he) - offset,
                               offset, flags, "write_zeroes") == -1)
      return -1;
    if (s.tail && write_range (na, NULL, offset + count - s.ts, s.ts, flags,
                               "write_zeroes") == -1)
      return -1;
    if (s.ms >= s.me)
      return 0;
    offset = s.ms;
    count = s.me - s.ms;
    chunk = MIN (count, na->max_part);
  }
  zeros = calloc (1, chunk);
  if (zeros == NULL) {
    vd_error (errno, "%s: write_zeroes: zero buffer", na->shown);
    return -1;
  }
  while (count > 0 && r == 0) {
    struct batch b;
    uint64_t start = offset;
    batch_init (&b);
    for (int i = 0; i < EMULATE_ROUND && count > 0; ++i) {
      uint64_t n = MIN (count, chunk);
      if (batch_add (&b, NBD_CMD_WRITE, fua_flag (na, flags), offset, n,
                     zeros) == NULL) {
        r = -1;
        break;
      }
      offset += n;
      count -= n;
    }
    if (r == 0)
      r = batch_run (na, &b, "write_zeroes", start);
    batch_free (&b);
  }
  free (zeros);
  return r;
}

static int
nbdatt_write_zeroes (struct vd_attachment *a, uint64_t count, uint64_t offset,
                  uint32_t flags)
{
  struct nbd_att *na = att (a);
  struct batch b;
  struct spans s;
  uint16_t nflags = fua_flag (na, flags);
  int r;

  if (!(na->info.eflags & NBD_FLAG_SEND_WRITE_ZEROES)) {
    r = zero_by_writing (na, count, offset, flags);
    goto fua;
  }
  if (!(flags & VD_FLAG_MAY_TRIM))
    nflags |= NBD_CMD_FLAG_NO_HOLE;
  if (flags & VD_FLAG_FAST_ZERO)
    nflags |= NBD_CMD_FLAG_FAST_ZERO;

  split_spans (na, offset, count, &s);
  if (!aligned (na, offset, count)) {
    if (flags & VD_FLAG_FAST_ZERO) {
      vd_error_msg (ENOTSUP, "%s: write_zeroes: fast zeroing of a range "
                    "not aligned to the server's %" PRIu64 "-byte blocks "
                    "would need read-modify-write", na->shown, na->mb);
      return -1;
    }
    if (s.head && write_range (na, NULL, MIN (offset + count, s.he) - offset,
                               offset, flags, "write_zeroes") == -1)
      return -1;
    if (s.tail && write_range (na, NULL, offset + count - s.ts, s.ts, flags,
                               "write_zeroes") == -1)
      return -1;
  }
  else {
    s.ms = offset;
    s.me = offset + count;
  }
  r = 0;
  if (s.ms < s.me) {
    batch_init (&b);
    if (batch_split (&b, NBD_CMD_WRITE_ZEROES, nflags, s.ms, s.me - s.ms,
                     NULL, na->max_effect) == -1) {
      batch_free (&b);
      return -1;
    }
    r = batch_run (na, &b, "write_zeroes", s.ms);
    batch_free (&b);
  }
 fua:
  if (r == 0 && needs_fua_flush (na, flags))
    r = do_flush (na);
  return r;
}

static int
nbdatt_discard (struct vd_attachment *a, uint64_t count, uint64_t offset,
             uint32_t flags)
{
  struct nbd_att *na = att (a);
  uint64_t start = offset, end = offset + count;
  struct batch b;
  int r;

  /* A hint: only the whole blocks inside the range. */
  if (start % na->mb)
    start += na->mb - start % na->mb;
  if (end % na->mb && end != vd_backend_size (a))
    end -= end % na->mb;
  if (start >= end)
    return 0;
  batch_init (&b);
  if (batch_split (&b, NBD_CMD_TRIM, fua_flag (na, flags), start, end - start,
                   NULL, na->max_effect) == -1) {
    batch_free (&b);
    return -1;
  }
  r = batch_run (na, &b, "discard", start);
  batch_free (&b);
  if (r == 0 && needs_fua_flush (na, flags))
    r = do_flush (na);
  return r;
}

static int
nbdatt_cache (struct vd_attachment *a, uint64_t count, uint64_t offset,
           uint32_t flags)
{
  struct nbd_att *na = att (a);
  uint64_t size = vd_backend_size (a);
  uint64_t start = offset - offset % na->mb, end = offset + count;
  struct batch b;
  int r;

  if (end % na->mb)
    end = MIN (end + (na->mb - end % na->mb), size);
  batch_init (&b);
  if (batch_split (&b, NBD_CMD_CACHE, 0, start, end - start, NULL,
                   na->max_effect) == -1) {
    batch_free (&b);
    return -1;
  }
  r = batch_run (na, &b, "cache", start);
  batch_free (&b);
  return r;
}

static int
nbdatt_block_status (struct vd_attachment *a, uint64_t count, uint64_t offset,
                  uint32_t flags, struct vd_extents *e)
{
  struct nbd_att *na = att (a);
  uint64_t size = vd_backend_size (a);
  uint64_t start = offset - offset % na->mb, end = offset + count, pos;
  struct vd_nbd_req *req;
  struct batch b;
  int r = -1;

  if (end % na->mb)
    end = MIN (end + (na->mb - end % na->mb), size);
  batch_init (&b);
  req = batch_add (&b, NBD_CMD_BLOCK_STATUS,
                   (flags & VD_FLAG_REQ_ONE) ? NBD_CMD_FLAG_REQ_ONE : 0,
                   start, MIN (end - start, na->max_effect), NULL);
  if (req == NULL)
    goto out;
  if (batch_run (na, &b, "block_status", start) == -1)
    goto out;
  pos = start;
  for (size_t i = 0; i < req->cmd.nr_extents && !vd_extents_full (e); ++i) {
    const struct vd_nbd_extent *x = &req->cmd.extents[i];
    uint64_t len = MIN (x->length, size - pos);
    if (len == 0)
      break;
    if (pos + len > offset &&
        vd_extents_add (e, MAX (pos, offset), pos + len - MAX (pos, offset),
                        x->flags & (VD_STATE_HOLE | VD_STATE_ZERO)) == -1)
      goto out;
    pos += len;
  }
  r = 0;
 out:
  batch_free (&b);
  return r;
}

/* ---- Lifecycle ----------------------------------------------------------- */

static int
nbdatt_start (struct vd_attachment *a)
{
  struct nbd_att *na = att (a);
  const struct vd_nbd_export_info *i;
  uint16_t f;
  uint32_t caps = 0;

  if (vd_nbd_rc_start (na->rc) == -1) {
    /* Apple's client is dead after a failed start; so is ours (the core
     * refuses every later call).
     */
    a->start_failed = true;
    return -1;
  }
  i = vd_nbd_rc_info (na->rc);
  na->info = *i;
  f = i->eflags;
  na->mb = i->min_block ? i->min_block : 1;
  na->max_part = MIN ((uint64_t) i->max_payload,
                      (uint64_t) VD_DEFAULT_MAX_REQUEST);
  na->max_part -= na->max_part % na->mb;
  if (na->max_part == 0)
    na->max_part = na->mb;
  na->max_effect = i->extended ? UINT64_C (64) << 30 : UINT64_C (1) << 30;
  na->max_effect -= na->max_effect % na->mb;

  if (!(f & NBD_FLAG_READ_ONLY))
    caps |= VD_CAP_WRITE | VD_CAP_ZERO;
  if (!na->sync_full || (f & NBD_FLAG_SEND_FLUSH))
    caps |= VD_CAP_FLUSH;
  if (!na->sync_full || (f & (NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_FLUSH)))
    caps |= VD_CAP_FUA;
  if (f & NBD_FLAG_SEND_TRIM)
    caps |= VD_CAP_DISCARD;
  if ((f & NBD_FLAG_SEND_WRITE_ZEROES) && (f & NBD_FLAG_SEND_FAST_ZERO))
    caps |= VD_CAP_FAST_ZERO;
  if (i->extents)
    caps |= VD_CAP_EXTENTS;
  if (f & NBD_FLAG_SEND_CACHE)
    caps |= VD_CAP_CACHE;
  if (f & NBD_FLAG_CAN_MULTI_CONN)
    caps |= VD_CAP_MULTI_CONN;
  a->caps = caps;
  atomic_store (&a->size, i->size);
  a->block_size = na->mb <= 512 ? 512 : 4096;
  a->pref_block_size = MAX (i->pref_block, a->block_size);
  a->max_request = VD_DEFAULT_MAX_REQUEST;
  return 0;
}

static int
nbdatt_properties (struct vd_attachment *a, vd_property_fn fn, void *ud)
{
  struct nbd_att *na = att (a);
  const struct vd_nbd_export_info *i = &na->info;
  char *canon = vd_nbd_uri_format (&na->uri);
  char t[32];
  int r = -1;

  if (canon == NULL) {
    vd_error (ENOMEM, "%s", na->shown);
    return -1;
  }
  snprintf (t, sizeof t, "%g", na->timeout);
#define S(k, v) if (fn (ud, "nbd." k, VD_PROP_STRING, (v), 0) == -1) goto out
#define U(k, v) if (fn (ud, "nbd." k, VD_PROP_UINT, NULL, (v)) == -1) goto out
#define B(k, v) if (fn (ud, "nbd." k, VD_PROP_BOOL, NULL, (v)) == -1) goto out
  S ("uri", canon);
  S ("transport", na->uri.transport == VD_NBD_TRANSPORT_TCP ? "tcp"
     : na->uri.transport == VD_NBD_TRANSPORT_UNIX ? "unix" : "vsock");
  S ("export", na->uri.export_name);
  S ("tls", i->tls ? i->tls_desc : "none");
  S ("handshake", i->go ? "fixed newstyle, NBD_OPT_GO"
     : "NBD_OPT_EXPORT_NAME");
  S ("replies", i->extended ? "extended headers"
     : i->structured ? "structured" : "simple");
  B ("block-status", i->extents);
  U ("minimum-block-size", i->min_block);
  U ("preferred-block-size", i->pref_block);
  U ("maximum-payload", i->max_payload);
  B ("can-flush", (i->eflags & NBD_FLAG_SEND_FLUSH) != 0);
  B ("can-fua", (i->eflags & NBD_FLAG_SEND_FUA) != 0);
  B ("can-fast-zero", (i->eflags & NBD_FLAG_SEND_FAST_ZERO) != 0);
  B ("can-cache", (i->eflags & NBD_FLAG_SEND_CACHE) != 0);
  B ("can-multi-conn", (i->eflags & NBD_FLAG_CAN_MULTI_CONN) != 0);
  B ("server-read-only", (i->eflags & NBD_FLAG_READ_ONLY) != 0);
  S ("timeout", t);
  U ("connections", vd_nbd_rc_connections (na->rc));
#undef S
#undef U
#undef B
  r = 0;
 out:
  free (canon);
  return r;
}

static int
nbdatt_close (struct vd_attachment *a)
{
  struct nbd_att *na = att (a);

  vd_nbd_rc_free (na->rc);
  vd_nbd_uri_free (&na->uri);
  free (na->locked);
  pthread_cond_destroy (&na->rmw_cond);
  pthread_mutex_destroy (&na->rmw_lock);
  return 0;
}

static const struct vd_backend_ops nbd_ops = {
  .struct_size = sizeof (struct vd_backend_ops),
  .format = "nbd",
  .start = nbdatt_start,
  .pread = nbdatt_pread,
  .pwrite = nbdatt_pwrite,
  .flush = nbdatt_flush,
  .discard = nbdatt_discard,
  .write_zeroes = nbdatt_write_zeroes,
  .block_status = nbdatt_block_status,
  .cache = nbdatt_cache,
  .properties = nbdatt_properties,
  .close = nbdatt_close,
};

struct vd_attachment *
vd_nbd_open (const char *uri, const struct vd_open_options *opts)
{
  struct vd_open_options o;
  struct nbd_att *na;
  struct vd_nbd_rc_params p;

  vd_open_options_resolve (opts, &o);
  na = calloc (1, sizeof *na);
  if (na == NULL) {
    vd_error (errno, "%s", "allocating an NBD attachment");
    goto fail_early;
  }
  if (vd_nbd_parse_uri (uri, &na->uri) == -1)
    goto fail_early;
  vd_nbd_uri_for_message (uri, na->shown, sizeof na->shown);
  {
    /* What cannot work fails now, not at the first connection. */
    char msg[512];
    if (vd_nbd_tls_check_config (&na->uri, msg, sizeof msg) == -1) {
      vd_error_msg (ENOTSUP, "%s: %s", na->shown, msg);
      goto fail_early;
    }
  }
  /* NBD has FULL and NONE (Apple's VZDiskSynchronizationMode); FSYNC
   * is at least as strong as FULL promises, so it means FULL.
   */
  if (o.sync_mode == VD_SYNC_FSYNC)
    o.sync_mode = VD_SYNC_FULL;
  /* No host page cache is involved on the client side. */
  o.caching_mode = VD_CACHING_UNCACHED;
  if (vd_attachment_init (&na->a, &nbd_ops, uri, &o) == -1)
    goto fail_early;
  na->timeout = o.timeout > 0 ? (o.timeout > 1e8 ? 1e8 : o.timeout)
    : VD_NBD_DEFAULT_TIMEOUT;   /* as reconnect.c clamps it */
  na->sync_full = o.sync_mode == VD_SYNC_FULL;
  na->mb = 1;
  pthread_mutex_init (&na->rmw_lock, NULL);
  pthread_cond_init (&na->rmw_cond, NULL);
  p = (struct vd_nbd_rc_params) {
    .a = &na->a, .uri = &na->uri, .name = na->shown, .timeout = na->timeout,
    .hs_flags = 0,
  };
  na->rc = vd_nbd_rc_new (&p);
  if (na->rc == NULL) {
    vd_error (ENOMEM, "%s", na->shown);
    pthread_cond_destroy (&na->rmw_cond);
    pthread_mutex_destroy (&na->rmw_lock);
    vd_attachment_fini (&na->a);
    vd_nbd_uri_free (&na->uri);
    free (na);
    return NULL;
  }
  return &na->a;

 fail_early:
  /* The events' user data is released when open fails, as documented
   * for struct vd_event_callback.
   */
  if (o.events.free)
    o.events.free (o.events.user_data);
  if (na)
    vd_nbd_uri_free (&na->uri);
  free (na);
  return NULL;
}
