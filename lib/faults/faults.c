/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Fault-injection decorator.  See faults.h for what it simulates.
 *
 * Method (crash):
 *   With write_cache, each modification is appended to a pending list
 *   (kind, range, data) and nothing reaches the wrapped attachment until
 *   a flush, which applies the list in order and flushes the child.  Reads
 *   read the child (zeros past its current end) and replay the pending
 *   list over the buffer, so the user sees its own writes.
 *
 *   A crash resolves the pending list as a disk with a volatile cache
 *   could have: DROP_ALL loses all of it; RANDOM keeps each entry with
 *   probability 1/2, tears it (a random subset of its 512-byte sectors)
 *   with probability 1/4 and loses it otherwise, applying survivors in
 *   their original order (a cache never writes an older version of a
 *   sector over a newer one, but an older one may have reached the media
 *   before the newer one was lost).  The operation in flight is torn.
 *   From then on every call fails with EIO.
 *
 * One mutex serialises everything: this is a test tool, and a total order
 * of operations is what makes a crash point reproducible.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faults.h"
#include "minmax.h"
#include "vector.h"

enum kind {
  K_READ, K_WRITE, K_FLUSH, K_DISCARD, K_ZERO, K_RESIZE, K_NR
};

struct pending {
  enum kind kind;
  uint64_t offset;              /* WRITE, DISCARD, ZERO */
  uint64_t length;              /* ... or the new size for RESIZE */
  uint32_t flags;
  char *data;                   /* WRITE */
};
DEFINE_VECTOR_TYPE (pending_vector, struct pending);

struct faults {
  struct vd_attachment a;       /* must be first */
  struct vd_attachment *next;
  struct vd_fault_config cfg;
  pthread_mutex_t lock;
  uint64_t counts[K_NR];
  uint64_t counted;             /* ops counted towards fail_at */
  uint64_t modifying;           /* modifying ops, for crash_at */
  bool failed;
  bool crashed;
  uint64_t rng;
  struct pending_vector pending;
  _Atomic unsigned writes_in;   /* pwrite calls inside now */
  _Atomic unsigned peak_writes; /* ... and at most */
};

#define FAULTS(a) ((struct faults *) (a))

static uint64_t
rnd (struct faults *f)
{
  /* splitmix64: tiny, and every seed gives a distinct sequence. */
  uint64_t z = (f->rng += UINT64_C (0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C (0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static void
pending_clear (struct faults *f)
{
  for (size_t i = 0; i < f->pending.len; ++i)
    free (f->pending.ptr[i].data);
  f->pending.len = 0;
}

/* Apply one modification to the child; with tear, only a random subset of
 * its sectors (WRITE) or possibly nothing (others).
 */
static int
apply (struct faults *f, const struct pending *p, bool tear)
{
  switch (p->kind) {
  case K_WRITE:
    if (!tear)
      return vd_backend_pwrite (f->next, p->data, p->length, p->offset, 0);
    for (uint64_t pos = 0; pos < p->length;) {
      /* Sector boundaries are absolute, as on a real disk. */
      uint64_t abs = p->offset + pos;
      uint64_t n = MIN (512 - abs % 512, p->length - pos);
      if (rnd (f) & 1) {
        if (vd_backend_pwrite (f->next, p->data + pos, n, abs, 0) == -1)
          return -1;
      }
      pos += n;
    }
    return 0;
  case K_DISCARD:
    if (tear && (rnd (f) & 1))
      return 0;
    return vd_backend_discard (f->next, p->length, p->offset, 0);
  case K_ZERO:
    if (tear && (rnd (f) & 1))
      return 0;
    return vd_backend_write_zeroes (f->next, p->length, p->offset,
                                    p->flags & VD_FLAG_MAY_TRIM);
  case K_RESIZE:
    if (tear && (rnd (f) & 1))
      return 0;
    return vd_backend_resize (f->next, p->length);
  default:
    abort ();
  }
}

static int
do_crash (struct faults *f, const struct pending *inflight)
{
  int r = 0;

  if (f->cfg.crash_mode == VD_CRASH_RANDOM) {
    for (size_t i = 0; i < f->pending.len && r == 0; ++i) {
      uint64_t x = rnd (f) % 4;
      if (x < 2)
        r = apply (f, &f->pending.ptr[i], false);
      else if (x == 2)
        r = apply (f, &f->pending.ptr[i], true);
    }
  }
  if (r == 0 && inflight)
    r = apply (f, inflight, true);
  pending_clear (f);
  f->crashed = true;
  return r;
}

static int
crashed_error (struct faults *f)
{
  vd_error_msg (EIO, "%s: simulated crash: the disk is gone", f->a.name);
  return -1;
}

/* Count an operation and decide its fate: 0 go on, -1 fail (raised),
 * 1 crash with this operation in flight.  Lock held.
 */
static int
enter (struct faults *f, enum kind k)
{
  if (f->crashed)
    return crashed_error (f);
  f->counts[k]++;
  if (f->cfg.fail_ops & (1u << k)) {
    f->counted++;
    if ((f->cfg.fail_at && f->counted == f->cfg.fail_at) ||
        (f->failed && f->cfg.fail_sticky)) {
      int err = f->cfg.fail_errno ? f->cfg.fail_errno : EIO;
      f->failed = true;
      vd_error (err, "%s: injected failure of operation %" PRIu64,
                f->a.name, f->counted);
      return -1;
    }
  }
  if (k == K_WRITE || k == K_DISCARD || k == K_ZERO || k == K_RESIZE) {
    f->modifying++;
    if (f->cfg.crash_at && f->modifying == f->cfg.crash_at)
      return 1;
  }
  return 0;
}

/* Common path of every modification: count, crash, cache or pass on. */
static int
modify (struct faults *f, struct pending *p)
{
  int r;

  pthread_mutex_lock (&f->lock);
  r = enter (f, p->kind);
  if (r == -1)
    goto out;
  if (r == 1) {
    do_crash (f, p);
    r = crashed_error (f);
    goto out;
  }
  if (f->cfg.write_cache) {
    if (p->kind == K_WRITE) {
      char *copy = malloc (p->length ? p->length : 1);
      if (copy == NULL) {
        vd_error (errno, "%s: caching a write", f->a.name);
        r = -1;
        goto out;
      }
      memcpy (copy, p->data, p->length);
      p->data = copy;
    }
    if (pending_vector_append (&f->pending, *p) == -1) {
      if (p->kind == K_WRITE)
        free (p->data);
      vd_error (errno, "%s: caching a write", f->a.name);
      r = -1;
      goto out;
    }
    /* FUA: durable on return, as a disk with a volatile cache does it
     * (writing back more than asked is allowed, less is not).
     */
    if (p->flags & VD_FLAG_FUA) {
      for (size_t i = 0; i < f->pending.len && r == 0; ++i)
        r = apply (f, &f->pending.ptr[i], false);
      pending_clear (f);
      if (r == 0)
        r = vd_backend_flush (f->next, 0);
    }
    goto out;
  }
  r = apply (f, p, false);
  if (r == 0 && (p->flags & VD_FLAG_FUA))
    r = vd_backend_flush (f->next, 0);
 out:
  pthread_mutex_unlock (&f->lock);
  return r;
}

static int
faults_pread (struct vd_attachment *a, void *buf, size_t count,
              uint64_t offset, uint32_t flags)
{
  struct faults *f = FAULTS (a);
  uint64_t child_size;
  char *out = buf;
  int r;

  pthread_mutex_lock (&f->lock);
  r = enter (f, K_READ);
  if (r != 0) {
    if (r == 1)
      r = crashed_error (f);
    goto out;
  }
  /* The child may be shorter than we are while a resize is cached. */
  child_size = vd_backend_size (f->next);
  memset (buf, 0, count);
  if (offset < child_size) {
    size_t n = MIN ((uint64_t) count, child_size - offset);
    r = vd_backend_pread (f->next, buf, n, offset, 0);
    if (r == -1)
      goto out;
  }
  for (size_t i = 0; i < f->pending.len; ++i) {
    const struct pending *p = &f->pending.ptr[i];
    uint64_t lo, hi;
    if (p->kind == K_RESIZE) {
      /* Bytes past a shrink read as zeros even if regrown later. */
      if (p->length < offset + count) {
        lo = MAX (p->length, offset);
        memset (out + (lo - offset), 0, offset + count - lo);
      }
      continue;
    }
    lo = MAX (p->offset, offset);
    hi = MIN (p->offset + p->length, offset + count);
    if (lo >= hi)
      continue;
    if (p->kind == K_WRITE)
      memcpy (out + (lo - offset), p->data + (lo - p->offset), hi - lo);
    else
      memset (out + (lo - offset), 0, hi - lo);
  }
 out:
  pthread_mutex_unlock (&f->lock);
  return r;
}

static void
sleep_ms (unsigned ms)
{
  struct timespec ts = { .tv_sec = ms / 1000,
    .tv_nsec = (long) (ms % 1000) * 1000000 };
  while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
    ;
}

static int
faults_pwrite (struct vd_attachment *a, const void *buf, size_t count,
               uint64_t offset, uint32_t flags)
{
  struct faults *f = FAULTS (a);
  struct pending p = { .kind = K_WRITE, .offset = offset, .length = count,
                       .flags = flags, .data = (char *) buf };
  unsigned in = atomic_fetch_add (&f->writes_in, 1) + 1;
  unsigned peak = atomic_load (&f->peak_writes);
  int r;

  while (in > peak &&
         !atomic_compare_exchange_weak (&f->peak_writes, &peak, in))
    ;
  if (f->cfg.write_delay_ms)
    sleep_ms (f->cfg.write_delay_ms);
  r = modify (f, &p);
  atomic_fetch_sub (&f->writes_in, 1);
  return r;
}

static int
faults_discard (struct vd_attachment *a, uint64_t count, uint64_t offset,
                uint32_t flags)
{
  struct pending p = { .kind = K_DISCARD, .offset = offset, .length = count,
                       .flags = flags };
  return modify (FAULTS (a), &p);
}

static int
faults_write_zeroes (struct vd_attachment *a, uint64_t count, uint64_t offset,
                     uint32_t flags)
{
  struct pending p = { .kind = K_ZERO, .offset = offset, .length = count,
                       .flags = flags };
  return modify (FAULTS (a), &p);
}

static int
faults_resize (struct vd_attachment *a, uint64_t new_size)
{
  struct pending p = { .kind = K_RESIZE, .length = new_size };
  return modify (FAULTS (a), &p);
}

static int
faults_flush (struct vd_attachment *a, uint32_t flags)
{
  struct faults *f = FAULTS (a);
  int r;

  if (f->cfg.flush_delay_ms)
    sleep_ms (f->cfg.flush_delay_ms);
  pthread_mutex_lock (&f->lock);
  r = enter (f, K_FLUSH);
  if (r != 0) {
    if (r == 1)
      r = crashed_error (f);
    goto out;
  }
  for (size_t i = 0; i < f->pending.len && r == 0; ++i)
    r = apply (f, &f->pending.ptr[i], false);
  pending_clear (f);
  if (r == 0)
    r = vd_backend_flush (f->next, flags);
 out:
  pthread_mutex_unlock (&f->lock);
  return r;
}

static int
faults_block_status (struct vd_attachment *a, uint64_t count, uint64_t offset,
                     uint32_t flags, struct vd_extents *e)
{
  struct faults *f = FAULTS (a);
  int r;

  pthread_mutex_lock (&f->lock);
  if (f->crashed)
    r = crashed_error (f);
  else if (f->pending.len > 0)
    /* "Data" is always a true answer; exactness is not worth modelling. */
    r = vd_extents_add (e, offset, count, 0);
  else
    r = vd_backend_block_status (f->next, count, offset, flags, e);
  pthread_mutex_unlock (&f->lock);
  return r;
}

static int64_t
faults_allocated_size (struct vd_attachment *a)
{
  return vd_backend_allocated_size (FAULTS (a)->next);
}

static int
faults_close (struct vd_attachment *a)
{
  struct faults *f = FAULTS (a);
  int r;

  /* After a crash the child must stay exactly as the crash left it; its
   * own close only flushes what it already has.
   */
  pending_clear (f);
  free (f->pending.ptr);
  r = vd_attachment_close (f->next);
  pthread_mutex_destroy (&f->lock);
  return r;
}

static const struct vd_backend_ops faults_ops = {
  .struct_size = sizeof faults_ops,
  .format = "faults",
  .pread = faults_pread,
  .pwrite = faults_pwrite,
  .flush = faults_flush,
  .discard = faults_discard,
  .write_zeroes = faults_write_zeroes,
  .block_status = faults_block_status,
  .resize = faults_resize,
  .allocated_size = faults_allocated_size,
  .close = faults_close,
};

struct vd_attachment *
vd_faults_wrap (struct vd_attachment *next, const struct vd_fault_config *cfg)
{
  struct faults *f;
  struct vd_open_options o;

  if (vd_backend_start (next) == -1) {
    vd_attachment_close (next);
    return NULL;
  }
  f = calloc (1, sizeof *f);
  if (f == NULL) {
    vd_error (errno, "faults");
    vd_attachment_close (next);
    return NULL;
  }
  vd_open_options_init (&o);
  o.caching_mode = next->caching_mode;
  o.sync_mode = next->sync_mode;
  if (next->read_only)
    o.flags |= VD_OPEN_READ_ONLY;
  if (vd_attachment_init (&f->a, &faults_ops, next->name, &o) == -1) {
    free (f);
    vd_attachment_close (next);
    return NULL;
  }
  f->next = next;
  f->cfg = *cfg;
  f->rng = cfg->seed;
  pthread_mutex_init (&f->lock, NULL);
  atomic_store (&f->a.size, vd_backend_size (next));
  f->a.caps = next->caps & ~(VD_CAP_FAST_ZERO | VD_CAP_CACHE);
  f->a.block_size = next->block_size;
  f->a.pref_block_size = next->pref_block_size;
  f->a.max_request = next->max_request;
  return &f->a;
}

uint64_t
vd_faults_count (struct vd_attachment *a, uint32_t ops)
{
  struct faults *f = FAULTS (a);
  uint64_t n = 0;

  pthread_mutex_lock (&f->lock);
  for (int k = 0; k < K_NR; ++k)
    if (ops & (1u << k))
      n += f->counts[k];
  pthread_mutex_unlock (&f->lock);
  return n;
}

int
vd_faults_crash (struct vd_attachment *a)
{
  struct faults *f = FAULTS (a);
  int r = 0;

  pthread_mutex_lock (&f->lock);
  if (!f->crashed)
    r = do_crash (f, NULL);
  pthread_mutex_unlock (&f->lock);
  return r;
}

bool
vd_faults_crashed (struct vd_attachment *a)
{
  struct faults *f = FAULTS (a);
  bool r;

  pthread_mutex_lock (&f->lock);
  r = f->crashed;
  pthread_mutex_unlock (&f->lock);
  return r;
}

unsigned
vd_faults_peak_writes (struct vd_attachment *a)
{
  return atomic_load (&FAULTS (a)->peak_writes);
}

bool
vd_faults_failed (struct vd_attachment *a)
{
  struct faults *f = FAULTS (a);
  bool r;

  pthread_mutex_lock (&f->lock);
  r = f->failed;
  pthread_mutex_unlock (&f->lock);
  return r;
}
