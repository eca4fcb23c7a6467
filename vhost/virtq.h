/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Split virtqueues, device side (virtio 1.2 section 2.7): take request
 * heads from the available ring, walk their descriptor chains (direct
 * and indirect) into host segments, return them on the used ring, and
 * decide when the driver wants an interrupt (EVENT_IDX or the
 * NO_INTERRUPT flag) and when it should kick us.
 *
 * Everything the guest controls is distrusted:
 *  - the available index may not run ahead of us by more than the ring
 *    size, and a head must index the descriptor table: otherwise the
 *    ring itself is corrupt and the caller stops the queue;
 *  - a chain is followed at most as many steps as its table has
 *    entries (so a loop ends), an indirect table must have a sane size,
 *    may not nest and is copied out of guest memory before use, every
 *    buffer is translated through the memory table with overflow
 *    checks, and device-writable buffers may not come before readable
 *    ones: otherwise only that request fails.
 * Descriptors are copied once out of guest memory; the driver changing
 * them under us cannot turn a checked value into an unchecked one.
 *
 * Pure: no system calls.  Ring indices use atomic loads and stores and
 * explicit fences, since the driver runs concurrently on another CPU.
 */
#ifndef VD_VHOST_VIRTQ_H
#define VD_VHOST_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

/* Largest queue we accept (QEMU's VIRTQUEUE_MAX_SIZE). */
#define VHOST_MAX_QUEUE_SIZE 1024
/* Largest indirect table, in descriptors. */
#define VHOST_MAX_INDIRECT   1024
/* Largest number of host segments one request may map to (a chain of
 * up to VHOST_MAX_INDIRECT buffers, plus splits at region boundaries).
 */
#define VHOST_MAX_SEGS       (VHOST_MAX_INDIRECT + 64)

struct vhost_iov {
  uint8_t *base;
  size_t len;
};

struct virtq {
  const struct vhost_mem *mem;
  uint16_t num;                 /* ring size, a power of 2 */
  uint8_t *desc;                /* num * 16 bytes */
  uint8_t *avail;               /* VIRTQ_AVAIL_SIZE (num) bytes */
  uint8_t *used;                /* VIRTQ_USED_SIZE (num) bytes */
  bool event_idx;               /* VIRTIO_RING_F_EVENT_IDX negotiated */
  bool indirect;                /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
  uint16_t last_avail_idx;      /* next available entry to take */
  uint16_t used_idx;            /* our copy of used->idx */
  uint16_t signalled_used;      /* used_idx at the last interrupt (or
                                   the last virtq_should_renotify) */
  bool signalled_used_valid;
};

/* A walked chain: segments [0, n_out) are device-readable, [n_out,
 * n_out + n_in) device-writable.
 */
struct virtq_chain {
  struct vhost_iov *iov;        /* caller's array of max_iov entries */
  unsigned max_iov;
  unsigned n_out;
  unsigned n_in;
  uint64_t out_bytes;
  uint64_t in_bytes;
  uint8_t *scratch;             /* VHOST_MAX_INDIRECT * 16 bytes, for
                                   copying indirect tables */
};

/* Map the rings (front-end virtual addresses, as in SET_VRING_ADDR) and
 * start at available index base.  num must be a power of 2 no larger
 * than VHOST_MAX_QUEUE_SIZE; each ring must be aligned as the spec
 * requires and lie in one memory region.  0, or -1 with EINVAL raised.
 */
int virtq_init (struct virtq *vq, const struct vhost_mem *mem, uint16_t num,
                uint64_t desc_uva, uint64_t avail_uva, uint64_t used_uva,
                uint16_t base, bool event_idx, bool indirect);

/* How many heads the driver has made available beyond ours.  -1 (and
 * a message in *why) when the count exceeds the ring size: the ring is
 * corrupt.
 */
int virtq_pending (struct virtq *vq, uint16_t *count, const char **why);

/* Take the next available head (call only while virtq_pending > 0).
 * -1 with *why when the head is out of range.
 */
int virtq_pop (struct virtq *vq, uint16_t *head, const char **why);

/* Walk the descriptor chain starting at head into c.  0, or -1 with
 * *why: the request is malformed and must be failed.
 */
int virtq_walk (const struct virtq *vq, uint16_t head,
                struct virtq_chain *c, const char **why);

/* Put head on the used ring with len bytes written.  Not thread-safe:
 * callers serialise (struct vhost_queue's lock).
 */
void virtq_push (struct virtq *vq, uint16_t head, uint32_t len);

/* After one or more virtq_push: does the driver want an interrupt?
 * With EVENT_IDX: has used->idx passed used_event since the last
 * interrupt (not only since the last push: see virtq.c).
 */
bool virtq_should_notify (struct virtq *vq);

/* Entries were pushed since the last interrupt. */
bool virtq_unsignalled (const struct virtq *vq);

/* A while after the last push: look at the driver's wish again, in case
 * it was made visible to us only after we decided (virtq.c, "Method").
 * Either way the entries pushed so far count as dealt with.
 */
bool virtq_should_renotify (struct virtq *vq);

/* Ask the driver to kick us for new buffers (enable) or not to bother
 * (disable, while we are busy taking them anyway).  Enabling is
 * followed by a full fence, so that a virtq_pending after it cannot
 * miss buffers made available before the driver saw the request.
 */
void virtq_set_notification (struct virtq *vq, bool enable);

#endif
