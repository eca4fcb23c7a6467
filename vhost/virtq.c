/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Split virtqueue, device side (see virtq.h).
 *
 * Method (memory ordering, virtio 1.2 section 2.7.13 and 2.7.7):
 *  - taking buffers: load avail->idx with acquire, then read the ring
 *    entries and descriptors it covers;
 *  - returning buffers: write the used element, then store used->idx
 *    with release;
 *  - deciding to interrupt: a full fence between the used->idx store and
 *    the load of used_event (or avail->flags), pairing with the driver's
 *    fence between its used_event store and its used->idx load;
 *  - re-enabling kicks: store avail_event (or clear NO_NOTIFY), full
 *    fence, then look at avail->idx again.
 *
 * Method (interrupts a driver may still be waiting for): the protocol
 * is only race-free if the driver, too, puts a full barrier between
 * storing used_event (or clearing NO_INTERRUPT) and loading used->idx.
 * A single-vCPU guest under TCG does not: QEMU drops guest barriers when
 * no other vCPU can observe them, but we are another CPU, and x86 lets a
 * store wait in the store buffer behind a later load.  We can then read
 * the old used_event, decide no interrupt is wanted, while the driver
 * reads the old used->idx and goes to sleep waiting for one (we saw a
 * guest hang this way).  Two defences: the EVENT_IDX decision asks
 * whether used->idx passed used_event since the last interrupt rather
 * than during this push, so any later completion catches a late
 * used_event; and after the last completion of a burst the queue thread
 * looks again a few milliseconds later (virtq_should_renotify), by
 * which time the driver's store is visible.  A spurious interrupt is
 * harmless; a missing one hangs the guest.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "errors.h"
#include "checked-overflow.h"
#include "le.h"
#include "virtq.h"

/* Offsets of the concurrently updated 16-bit fields. */
#define AVAIL_FLAGS(vq)      ((uint16_t *) ((vq)->avail + 0))
#define AVAIL_IDX(vq)        ((uint16_t *) ((vq)->avail + 2))
#define USED_EVENT(vq)       ((uint16_t *) ((vq)->avail + 4 + 2 * (size_t) (vq)->num))
#define USED_FLAGS(vq)       ((uint16_t *) ((vq)->used + 0))
#define USED_IDX(vq)         ((uint16_t *) ((vq)->used + 2))
#define AVAIL_EVENT(vq)      ((uint16_t *) ((vq)->used + 4 + 8 * (size_t) (vq)->num))

static inline uint16_t
ring_load (uint16_t *p)
{
  return le16toh (__atomic_load_n (p, __ATOMIC_ACQUIRE));
}

static inline void
ring_store (uint16_t *p, uint16_t v)
{
  __atomic_store_n (p, htole16 (v), __ATOMIC_RELEASE);
}

static uint8_t *
map_ring (const struct vhost_mem *mem, const char *what, uint64_t uva,
          uint64_t size, uint64_t align)
{
  uint8_t *p;

  if (uva % align != 0) {
    vd_error_msg (EINVAL, "the %s ring address 0x%" PRIx64 " is not "
                  "aligned to %" PRIu64 " bytes", what, uva, align);
    return NULL;
  }
  p = vhost_mem_uva (mem, uva, size);
  if (p == NULL) {
    vd_error_msg (EINVAL, "the %s ring (0x%" PRIx64 ", %" PRIu64 " bytes) "
                  "is not inside one guest memory region", what, uva, size);
    return NULL;
  }
  /* The front end's virtual addresses and ours differ by the region's
   * mapping offset, which is page aligned, so alignment carries over;
   * check anyway, since the atomics below depend on it.
   */
  if ((uintptr_t) p % align != 0) {
    vd_error_msg (EINVAL, "the %s ring is misaligned in our mapping", what);
    return NULL;
  }
  return p;
}

int
virtq_init (struct virtq *vq, const struct vhost_mem *mem, uint16_t num,
            uint64_t desc_uva, uint64_t avail_uva, uint64_t used_uva,
            uint16_t base, bool event_idx, bool indirect)
{
  memset (vq, 0, sizeof *vq);
  if (num == 0 || num > VHOST_MAX_QUEUE_SIZE || (num & (num - 1)) != 0) {
    vd_error_msg (EINVAL, "queue size %" PRIu16 " is not a power of 2 "
                  "between 1 and %d", num, VHOST_MAX_QUEUE_SIZE);
    return -1;
  }
  vq->mem = mem;
  vq->num = num;
  vq->desc = map_ring (mem, "descriptor", desc_uva,
                       (uint64_t) num * VIRTQ_DESC_SIZE, VIRTQ_DESC_ALIGN);
  if (vq->desc == NULL)
    return -1;
  vq->avail = map_ring (mem, "available", avail_uva, VIRTQ_AVAIL_SIZE (num),
                        VIRTQ_AVAIL_ALIGN);
  if (vq->avail == NULL)
    return -1;
  vq->used = map_ring (mem, "used", used_uva, VIRTQ_USED_SIZE (num),
                       VIRTQ_USED_ALIGN);
  if (vq->used == NULL)
    return -1;
  /* Rings that overlap make no sense, and a used ring over the available
   * one would have every completion we write publish new "requests"
   * (the fuzzer found a queue that fed itself that way).
   */
  {
    const struct { const uint8_t *p; size_t n; const char *what; } r[3] = {
      { vq->desc, (size_t) num * VIRTQ_DESC_SIZE, "descriptor" },
      { vq->avail, VIRTQ_AVAIL_SIZE (num), "available" },
      { vq->used, VIRTQ_USED_SIZE (num), "used" },
    };
    for (int i = 0; i < 3; ++i)
      for (int j = i + 1; j < 3; ++j)
        if (r[i].p < r[j].p + r[j].n && r[j].p < r[i].p + r[i].n) {
          vd_error_msg (EINVAL, "the %s and %s rings overlap", r[i].what,
                        r[j].what);
          return -1;
        }
  }
  vq->event_idx = event_idx;
  vq->indirect = indirect;
  vq->last_avail_idx = base;
  /* The used index lives in guest memory and survives a stop/start of
   * the ring (the front end restarts us where we stopped).
   */
  vq->used_idx = ring_load (USED_IDX (vq));
  vq->signalled_used = vq->used_idx;
  vq->signalled_used_valid = false;
  return 0;
}

int
virtq_pending (struct virtq *vq, uint16_t *count, const char **why)
{
  uint16_t idx = ring_load (AVAIL_IDX (vq));
  uint16_t n = (uint16_t) (idx - vq->last_avail_idx);

  if (n > vq->num) {
    *why = "the available index moved further than the ring size";
    return -1;
  }
  *count = n;
  return 0;
}

int
virtq_pop (struct virtq *vq, uint16_t *head, const char **why)
{
  size_t slot = vq->last_avail_idx & (vq->num - 1);
  uint16_t h = load_le16 (vq->avail + 4 + 2 * slot);

  if (h >= vq->num) {
    *why = "an available ring entry is not a descriptor index";
    return -1;
  }
  vq->last_avail_idx++;
  *head = h;
  return 0;
}

/* Add the guest buffer [addr, addr + len) to c, split at memory region
 * boundaries.
 */
static int
add_buffer (const struct virtq *vq, struct virtq_chain *c, uint64_t addr,
            uint32_t len, bool writable, const char **why)
{
  uint64_t total;

  if (len == 0)
    return 0;                   /* nothing to transfer: ignore */
  if (!writable && c->n_in > 0) {
    *why = "a device-readable descriptor follows a device-writable one";
    return -1;
  }
  while (len > 0) {
    uint64_t n;
    uint8_t *p = vhost_mem_gpa (vq->mem, addr, len, &n);

    if (p == NULL) {
      *why = "a descriptor points outside guest memory";
      return -1;
    }
    if (c->n_out + c->n_in >= c->max_iov) {
      *why = "the request has too many segments";
      return -1;
    }
    c->iov[c->n_out + c->n_in] = (struct vhost_iov) { p, n };
    if (writable) {
      c->n_in++;
      total = c->in_bytes;
      if (ADD_OVERFLOW (total, n, &c->in_bytes))
        goto overflow;
    }
    else {
      c->n_out++;
      total = c->out_bytes;
      if (ADD_OVERFLOW (total, n, &c->out_bytes))
        goto overflow;
    }
    len -= n;
    if (len > 0 && ADD_OVERFLOW (addr, n, &addr)) {
      *why = "a descriptor wraps around the address space";
      return -1;
    }
  }
  return 0;
 overflow:
  *why = "the request is too large";
  return -1;
}

int
virtq_walk (const struct virtq *vq, uint16_t head, struct virtq_chain *c,
            const char **why)
{
  const uint8_t *table = vq->desc;
  unsigned limit = vq->num;     /* entries in the current table */
  unsigned steps = 0;
  bool in_indirect = false;
  uint16_t i = head;

  c->n_out = c->n_in = 0;
  c->out_bytes = c->in_bytes = 0;

  for (;;) {
    uint8_t d[VIRTQ_DESC_SIZE];
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;

    if (i >= limit) {
      *why = "a descriptor index is out of range";
      return -1;
    }
    if (++steps > limit) {
      *why = "the descriptor chain loops";
      return -1;
    }
    memcpy (d, table + (size_t) i * VIRTQ_DESC_SIZE, sizeof d);
    addr = load_le64 (d);
    len = load_le32 (d + 8);
    flags = load_le16 (d + 12);
    next = load_le16 (d + 14);

    if (flags & VIRTQ_DESC_F_INDIRECT) {
      if (!vq->indirect) {
        *why = "an indirect descriptor was used without "
          "VIRTIO_RING_F_INDIRECT_DESC";
        return -1;
      }
      if (in_indirect) {
        *why = "an indirect table contains an indirect descriptor";
        return -1;
      }
      if (flags & VIRTQ_DESC_F_NEXT) {
        *why = "an indirect descriptor also has VIRTQ_DESC_F_NEXT";
        return -1;
      }
      if (len == 0 || len % VIRTQ_DESC_SIZE != 0 ||
          len / VIRTQ_DESC_SIZE > VHOST_MAX_INDIRECT) {
        *why = "an indirect table has an invalid size";
        return -1;
      }
      /* Copy the table out of guest memory: the guest cannot change it
       * under us, and a table spanning regions needs no special case.
       */
      if (vhost_mem_read (vq->mem, addr, c->scratch, len) == -1) {
        *why = "an indirect table lies outside guest memory";
        return -1;
      }
      table = c->scratch;
      limit = len / VIRTQ_DESC_SIZE;
      steps = 0;
      in_indirect = true;
      i = 0;
      continue;
    }

    if (add_buffer (vq, c, addr, len, flags & VIRTQ_DESC_F_WRITE, why) == -1)
      return -1;
    if (!(flags & VIRTQ_DESC_F_NEXT))
      return 0;
    i = next;
  }
}

void
virtq_push (struct virtq *vq, uint16_t head, uint32_t len)
{
  size_t slot = vq->used_idx & (vq->num - 1);
  uint8_t *e = vq->used + 4 + 8 * slot;

  store_le32 (e, head);
  store_le32 (e + 4, len);
  vq->used_idx++;
  ring_store (USED_IDX (vq), vq->used_idx);
}

/* Does the driver want an interrupt for the entries [old, used_idx)? */
static bool
wanted (struct virtq *vq, uint16_t old)
{
  uint16_t new_idx = vq->used_idx, event;

  __atomic_thread_fence (__ATOMIC_SEQ_CST);
  if (!vq->event_idx)
    return !(ring_load (AVAIL_FLAGS (vq)) & VIRTQ_AVAIL_F_NO_INTERRUPT);
  /* The driver asked for an interrupt once used->idx passes event. */
  event = ring_load (USED_EVENT (vq));
  return (uint16_t) (new_idx - event - 1) < (uint16_t) (new_idx - old);
}

bool
virtq_should_notify (struct virtq *vq)
{
  /* With EVENT_IDX the first entry always interrupts (we know nothing
   * of the driver's wishes yet); without, the flag says.
   */
  if ((vq->event_idx && !vq->signalled_used_valid) ||
      wanted (vq, vq->signalled_used)) {
    vq->signalled_used = vq->used_idx;
    vq->signalled_used_valid = true;
    return true;
  }
  return false;
}

bool
virtq_unsignalled (const struct virtq *vq)
{
  /* Without a first interrupt, signalled_used is the used index the
   * ring started with (virtq_init).
   */
  return vq->signalled_used != vq->used_idx;
}

bool
virtq_should_renotify (struct virtq *vq)
{
  bool r;

  if (!virtq_unsignalled (vq))
    return false;
  r = wanted (vq, vq->signalled_used);
  vq->signalled_used = vq->used_idx;
  vq->signalled_used_valid = true;
  return r;
}

void
virtq_set_notification (struct virtq *vq, bool enable)
{
  if (vq->event_idx) {
    if (enable)
      ring_store (AVAIL_EVENT (vq), vq->last_avail_idx);
  }
  else {
    uint16_t f = enable ? 0 : VIRTQ_USED_F_NO_NOTIFY;
    ring_store (USED_FLAGS (vq), f);
  }
  if (enable)
    __atomic_thread_fence (__ATOMIC_SEQ_CST);
}
