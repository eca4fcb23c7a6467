/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The vhost-user session state machine (see device.h).
 *
 * Method (ring life cycle, vhost-user.rst "Ring states"): a ring is
 * configured by SET_VRING_NUM/ADDR/BASE/CALL in any order, started when
 * its kick eventfd arrives (SET_VRING_KICK) and stopped by
 * GET_VRING_BASE, whose answer is where it stopped.  Stopping waits for
 * every request in flight, so the used index has caught up with the
 * available index we report and the front end can restart the ring
 * anywhere without losing or repeating a request.  Whatever would change
 * under a running ring (its size or addresses, the kick eventfd, the
 * negotiated features, the memory table) is applied by stopping the
 * affected rings, changing it and starting them again.  Only the call
 * and error eventfds change on the fly (QEMU swaps the call eventfd when
 * the guest masks an MSI-X vector), under the queue lock.
 *
 * Errors: a message the front end asked an acknowledgement for (REPLY_ACK
 * and need_reply) is answered with a failure and the session goes on;
 * GET_CONFIG answers an empty payload, as the spec says; any other
 * failure ends the session (as libvhost-user does), since the front end
 * would otherwise carry on with a device in a state it does not know.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "le.h"
#include "device.h"

#define F(bit) (UINT64_C (1) << (bit))

uint64_t
vhost_dev_features (const struct vhost_dev *d)
{
  return vhost_blk_features (d->blk) | F (VIRTIO_F_VERSION_1) |
    F (VIRTIO_RING_F_INDIRECT_DESC) | F (VIRTIO_RING_F_EVENT_IDX) |
    F (VHOST_USER_F_PROTOCOL_FEATURES);
}

uint64_t
vhost_dev_protocol_features (const struct vhost_dev *d)
{
  return F (VHOST_USER_PROTOCOL_F_MQ) | F (VHOST_USER_PROTOCOL_F_REPLY_ACK) |
    F (VHOST_USER_PROTOCOL_F_CONFIG) | F (VHOST_USER_PROTOCOL_F_RESET_DEVICE);
}

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

int
vhost_dev_init (struct vhost_dev *d, struct vhost_blk *blk, unsigned nqueues,
                const struct vhost_dev_ops *ops, void *opaque,
                const char *name)
{
  memset (d, 0, sizeof *d);
  if (nqueues == 0 || nqueues > VHOST_MAX_QUEUES) {
    vd_error_msg (EINVAL, "%u queues requested: between 1 and %d are "
                  "supported", nqueues, VHOST_MAX_QUEUES);
    return -1;
  }
  d->blk = blk;
  d->ops = ops;
  d->opaque = opaque;
  d->name = name;
  d->nqueues = nqueues;
  for (unsigned i = 0; i < nqueues; ++i) {
    struct vhost_queue *q = &d->queues[i];
    q->dev = d;
    q->index = i;
    q->kick_fd = q->call_fd = q->err_fd = -1;
    atomic_init (&q->enabled, false);
    atomic_init (&q->broken, false);
    atomic_init (&q->bad_requests, 0);
    atomic_init (&q->requests, 0);
    atomic_init (&q->broken_count, 0);
    atomic_init (&q->kicks, 0);
    atomic_init (&q->interrupts, 0);
    pthread_mutex_init (&q->lock, NULL);
    pthread_cond_init (&q->idle, NULL);
    q->scratch_iov = calloc (VHOST_MAX_SEGS, sizeof *q->scratch_iov);
    q->scratch_ind = malloc (VHOST_MAX_INDIRECT * VIRTQ_DESC_SIZE);
    if (q->scratch_iov == NULL || q->scratch_ind == NULL) {
      vd_error (errno, "%s: allocating queue %u", name, i);
      d->nqueues = i + 1;
      vhost_dev_fini (d);
      return -1;
    }
  }
  return 0;
}

static void
queue_stop (struct vhost_dev *d, struct vhost_queue *q)
{
  if (!q->started)
    return;
  d->ops->stop (d->opaque, q);
  q->base = q->vq.last_avail_idx;
  q->started = false;
  free (q->busy);
  q->busy = NULL;
}

/* Start q if everything it needs is there.  0, or -1 (raised). */
static int
queue_try_start (struct vhost_dev *d, struct vhost_queue *q)
{
  if (q->started || q->kick_fd < 0 || !q->addr_set || q->num == 0)
    return 0;
  if (d->mem.nregions == 0) {
    vd_error_msg (EPROTO, "queue %u was started before the memory table "
                  "was set", q->index);
    return -1;
  }
  if (virtq_init (&q->vq, &d->mem, q->num, q->desc_uva, q->avail_uva,
                  q->used_uva, q->base,
                  d->features & F (VIRTIO_RING_F_EVENT_IDX),
                  d->features & F (VIRTIO_RING_F_INDIRECT_DESC)) == -1) {
    vd_error_prefix ("queue %u", q->index);
    return -1;
  }
  q->busy = calloc (q->num, sizeof *q->busy);
  if (q->busy == NULL) {
    vd_error (errno, "queue %u", q->index);
    return -1;
  }
  q->auto_enabled = !(d->features & F (VHOST_USER_F_PROTOCOL_FEATURES));
  atomic_store (&q->broken, false);
  q->inflight = 0;
  if (d->ops->start (d->opaque, q) == -1) {
    free (q->busy);
    q->busy = NULL;
    return -1;
  }
  q->started = true;
  return 0;
}

/* Stop every running queue; *was gets which ones ran. */
static void
stop_all (struct vhost_dev *d, bool *was)
{
  for (unsigned i = 0; i < d->nqueues; ++i) {
    was[i] = d->queues[i].started;
    queue_stop (d, &d->queues[i]);
  }
}

static int
restart (struct vhost_dev *d, const bool *was)
{
  int r = 0;

  for (unsigned i = 0; i < d->nqueues; ++i)
    if (was[i] && queue_try_start (d, &d->queues[i]) == -1)
      r = -1;
  return r;
}

static void
queue_reset (struct vhost_dev *d, struct vhost_queue *q)
{
  queue_stop (d, q);
  close_fd (&q->kick_fd);
  pthread_mutex_lock (&q->lock);
  close_fd (&q->call_fd);
  close_fd (&q->err_fd);
  pthread_mutex_unlock (&q->lock);
  q->num = 0;
  q->addr_set = false;
  q->base = 0;
  atomic_store (&q->enabled, false);
  atomic_store (&q->broken, false);
}

static void
unmap_all (struct vhost_dev *d)
{
  for (unsigned i = 0; i < d->mem.nregions; ++i)
    d->ops->unmap (d->opaque, &d->mem.regions[i]);
  memset (&d->mem, 0, sizeof d->mem);
}

void
vhost_dev_reset (struct vhost_dev *d)
{
  for (unsigned i = 0; i < d->nqueues; ++i)
    queue_reset (d, &d->queues[i]);
  unmap_all (d);
  d->features = 0;
  d->protocol_features = 0;
}

void
vhost_dev_fini (struct vhost_dev *d)
{
  vhost_dev_reset (d);
  for (unsigned i = 0; i < d->nqueues; ++i) {
    struct vhost_queue *q = &d->queues[i];
    pthread_mutex_destroy (&q->lock);
    pthread_cond_destroy (&q->idle);
    free (q->scratch_iov);
    free (q->scratch_ind);
    q->scratch_iov = NULL;
    q->scratch_ind = NULL;
  }
  d->nqueues = 0;
}

static struct vhost_queue *
get_queue (struct vhost_dev *d, const struct vhost_msg *m, uint32_t index)
{
  if (index >= d->nqueues) {
    vd_error_msg (EPROTO, "%s: queue %" PRIu32 " does not exist (the device "
                  "has %u)", vhost_msg_name (m->request), index, d->nqueues);
    return NULL;
  }
  return &d->queues[index];
}

static int
set_mem_table (struct vhost_dev *d, const struct vhost_msg *m, int *fds)
{
  struct vhost_mem mem = { 0 };
  bool was[VHOST_MAX_QUEUES];
  int r = 0;

  for (uint32_t i = 0; i < m->u.mem.nregions; ++i) {
    const struct vhost_msg_region *w = &m->u.mem.r[i];
    if (vhost_mem_check_region (w->gpa, w->size, w->uva,
                                w->mmap_offset) == -1)
      return -1;
  }
  /* Map the new table before dropping the old one, so that a failure
   * leaves the device as it was.
   */
  for (uint32_t i = 0; i < m->u.mem.nregions; ++i) {
    const struct vhost_msg_region *w = &m->u.mem.r[i];
    struct vhost_mem_region *reg = &mem.regions[i];

    reg->gpa = w->gpa;
    reg->size = w->size;
    reg->uva = w->uva;
    if (d->ops->map (d->opaque, fds[i], w->mmap_offset, w->size, reg) == -1) {
      for (uint32_t j = 0; j < i; ++j)
        d->ops->unmap (d->opaque, &mem.regions[j]);
      return -1;
    }
    mem.nregions = i + 1;
  }
  stop_all (d, was);
  unmap_all (d);
  d->mem = mem;
  r = restart (d, was);
  return r;
}

/* Replies. */

static void
reply_u64 (uint8_t *reply, size_t *len, uint32_t request, uint64_t v)
{
  vhost_msg_reply_header (reply, request, VHOST_USER_U64_SIZE);
  store_ne64 (reply + VHOST_USER_HDR_SIZE, v);
  *len = VHOST_USER_HDR_SIZE + VHOST_USER_U64_SIZE;
}

/* Apply m; replies of GET-style messages are built here.  0 or -1. */
static int
handle (struct vhost_dev *d, const struct vhost_msg *m, int *fds,
        size_t nfds, uint8_t *reply, size_t *reply_len)
{
  struct vhost_queue *q;
  bool was[VHOST_MAX_QUEUES];

  switch (m->request) {
  case VHOST_USER_GET_FEATURES:
    reply_u64 (reply, reply_len, m->request, vhost_dev_features (d));
    return 0;

  case VHOST_USER_SET_FEATURES:
    if (m->u.u64 & ~vhost_dev_features (d)) {
      vd_error_msg (EPROTO, "SET_FEATURES: features 0x%" PRIx64 " were not "
                    "offered", m->u.u64 & ~vhost_dev_features (d));
      return -1;
    }
    if (m->u.u64 == d->features)
      return 0;
    stop_all (d, was);
    d->features = m->u.u64;
    return restart (d, was);

  case VHOST_USER_GET_PROTOCOL_FEATURES:
    reply_u64 (reply, reply_len, m->request, vhost_dev_protocol_features (d));
    return 0;

  case VHOST_USER_SET_PROTOCOL_FEATURES:
    if (m->u.u64 & ~vhost_dev_protocol_features (d)) {
      vd_error_msg (EPROTO, "SET_PROTOCOL_FEATURES: features 0x%" PRIx64
                    " were not offered",
                    m->u.u64 & ~vhost_dev_protocol_features (d));
      return -1;
    }
    d->protocol_features = m->u.u64;
    return 0;

  case VHOST_USER_GET_QUEUE_NUM:
    reply_u64 (reply, reply_len, m->request, d->nqueues);
    return 0;

  case VHOST_USER_SET_OWNER:
    return 0;

  case VHOST_USER_RESET_OWNER:
    /* Deprecated; the spec suggests disabling every ring. */
    for (unsigned i = 0; i < d->nqueues; ++i)
      queue_reset (d, &d->queues[i]);
    return 0;

  case VHOST_USER_RESET_DEVICE: {
    /* The device, not the connection: the protocol features stay (QEMU
     * negotiates them once per connection), the rest starts over.
     */
    uint64_t pf = d->protocol_features;
    vhost_dev_reset (d);
    d->protocol_features = pf;
    return 0;
  }

  case VHOST_USER_SET_MEM_TABLE:
    return set_mem_table (d, m, fds);

  case VHOST_USER_SET_VRING_NUM: {
    uint32_t n = m->u.state.num;
    if ((q = get_queue (d, m, m->u.state.index)) == NULL)
      return -1;
    if (n == 0 || n > VHOST_MAX_QUEUE_SIZE || (n & (n - 1)) != 0) {
      vd_error_msg (EPROTO, "SET_VRING_NUM: queue size %" PRIu32 " is not a "
                    "power of 2 between 1 and %d", n, VHOST_MAX_QUEUE_SIZE);
      return -1;
    }
    was[0] = q->started;
    queue_stop (d, q);
    q->num = n;
    return was[0] ? queue_try_start (d, q) : 0;
  }

  case VHOST_USER_SET_VRING_ADDR:
    if ((q = get_queue (d, m, m->u.addr.index)) == NULL)
      return -1;
    if (m->u.addr.flags & F (VHOST_VRING_F_LOG)) {
      vd_error_msg (EPROTO, "SET_VRING_ADDR: dirty logging was not offered");
      return -1;
    }
    was[0] = q->started;
    queue_stop (d, q);
    q->desc_uva = m->u.addr.desc;
    q->avail_uva = m->u.addr.avail;
    q->used_uva = m->u.addr.used;
    q->addr_set = true;
    return was[0] ? queue_try_start (d, q) : 0;

  case VHOST_USER_SET_VRING_BASE:
    if ((q = get_queue (d, m, m->u.state.index)) == NULL)
      return -1;
    if (m->u.state.num > UINT16_MAX) {
      vd_error_msg (EPROTO, "SET_VRING_BASE: index %" PRIu32 " is not a "
                    "16-bit ring index", m->u.state.num);
      return -1;
    }
    was[0] = q->started;
    queue_stop (d, q);
    q->base = m->u.state.num;
    return was[0] ? queue_try_start (d, q) : 0;

  case VHOST_USER_GET_VRING_BASE:
    if ((q = get_queue (d, m, m->u.state.index)) == NULL)
      return -1;
    queue_stop (d, q);
    /* The ring is stopped: the front end hands out new eventfds when it
     * starts it again.
     */
    close_fd (&q->kick_fd);
    pthread_mutex_lock (&q->lock);
    close_fd (&q->call_fd);
    pthread_mutex_unlock (&q->lock);
    vhost_msg_reply_header (reply, m->request, VHOST_USER_STATE_SIZE);
    store_ne32 (reply + VHOST_USER_HDR_SIZE, q->index);
    store_ne32 (reply + VHOST_USER_HDR_SIZE + 4, q->base);
    *reply_len = VHOST_USER_HDR_SIZE + VHOST_USER_STATE_SIZE;
    return 0;

  case VHOST_USER_SET_VRING_KICK:
    if ((q = get_queue (d, m, m->u.vring_fd.index)) == NULL)
      return -1;
    if (m->u.vring_fd.nofd) {
      vd_error_msg (EPROTO, "SET_VRING_KICK: polling the ring without a "
                    "kick eventfd is not supported");
      return -1;
    }
    queue_stop (d, q);
    close_fd (&q->kick_fd);
    q->kick_fd = fds[0];
    fds[0] = -1;
    return queue_try_start (d, q);

  case VHOST_USER_SET_VRING_CALL:
  case VHOST_USER_SET_VRING_ERR:
    if ((q = get_queue (d, m, m->u.vring_fd.index)) == NULL)
      return -1;
    pthread_mutex_lock (&q->lock);
    if (m->request == VHOST_USER_SET_VRING_CALL) {
      close_fd (&q->call_fd);
      q->call_fd = m->u.vring_fd.nofd ? -1 : fds[0];
    }
    else {
      close_fd (&q->err_fd);
      q->err_fd = m->u.vring_fd.nofd ? -1 : fds[0];
    }
    pthread_mutex_unlock (&q->lock);
    if (!m->u.vring_fd.nofd)
      fds[0] = -1;
    return 0;

  case VHOST_USER_SET_VRING_ENABLE:
    if ((q = get_queue (d, m, m->u.state.index)) == NULL)
      return -1;
    if (m->u.state.num > 1) {
      vd_error_msg (EPROTO, "SET_VRING_ENABLE: invalid value %" PRIu32,
                    m->u.state.num);
      return -1;
    }
    atomic_store (&q->enabled, m->u.state.num == 1);
    if (m->u.state.num == 1 && q->started)
      d->ops->wake (d->opaque, q);
    return 0;

  case VHOST_USER_GET_CONFIG: {
    uint8_t cfg[VHOST_USER_MAX_CONFIG_SIZE];
    uint32_t off = m->u.config.offset, sz = m->u.config.size;

    if (off > VHOST_USER_MAX_CONFIG_SIZE ||
        sz > VHOST_USER_MAX_CONFIG_SIZE - off) {
      vd_error_msg (EPROTO, "GET_CONFIG: bytes %" PRIu32 "+%" PRIu32 " are "
                    "outside the %d-byte config space", off, sz,
                    VHOST_USER_MAX_CONFIG_SIZE);
      return -1;
    }
    vhost_blk_config (d->blk, cfg);
    vhost_msg_reply_header (reply, m->request,
                            VHOST_USER_CONFIG_HDR_SIZE + sz);
    store_ne32 (reply + VHOST_USER_HDR_SIZE, off);
    store_ne32 (reply + VHOST_USER_HDR_SIZE + 4, sz);
    store_ne32 (reply + VHOST_USER_HDR_SIZE + 8, m->u.config.flags);
    memcpy (reply + VHOST_USER_HDR_SIZE + VHOST_USER_CONFIG_HDR_SIZE,
            cfg + off, sz);
    *reply_len = VHOST_USER_HDR_SIZE + VHOST_USER_CONFIG_HDR_SIZE + sz;
    return 0;
  }

  case VHOST_USER_SET_CONFIG:
    if (m->u.config.offset > VHOST_USER_MAX_CONFIG_SIZE ||
        m->u.config.size > VHOST_USER_MAX_CONFIG_SIZE - m->u.config.offset) {
      vd_error_msg (EPROTO, "SET_CONFIG: bytes %" PRIu32 "+%" PRIu32 " are "
                    "outside the %d-byte config space", m->u.config.offset,
                    m->u.config.size, VHOST_USER_MAX_CONFIG_SIZE);
      return -1;
    }
    return vhost_blk_set_config (d->blk,
                                 d->features & F (VIRTIO_BLK_F_CONFIG_WCE),
                                 m->u.config.offset, m->u.config.data,
                                 m->u.config.size, m->u.config.flags);

  default:
    vd_error_msg (EPROTO, "vhost-user request %s (%" PRIu32 ") is not "
                  "supported", vhost_msg_name (m->request), m->request);
    return -1;
  }
}

int
vhost_dev_handle (struct vhost_dev *d, const struct vhost_msg *m, int *fds,
                  size_t nfds, uint8_t *reply, size_t *reply_len)
{
  bool ack = (m->flags & VHOST_USER_NEED_REPLY_MASK) &&
    (d->protocol_features & F (VHOST_USER_PROTOCOL_F_REPLY_ACK));
  int r;

  *reply_len = 0;
  r = handle (d, m, fds, nfds, reply, reply_len);
  /* Close whatever descriptors the message brought that were not kept
   * (a memory table's, after mapping; all of them on failure).
   */
  for (size_t i = 0; i < nfds; ++i)
    close_fd (&fds[i]);

  if (r == -1 && m->request == VHOST_USER_GET_CONFIG) {
    /* "zero length of payload to indicate an error" */
    vhost_msg_reply_header (reply, m->request, 0);
    *reply_len = VHOST_USER_HDR_SIZE;
    return 1;
  }
  if (*reply_len == 0 && ack && !vhost_msg_has_reply (m->request)) {
    reply_u64 (reply, reply_len, m->request, r == -1 ? 1 : 0);
    return r == -1 ? 1 : 0;
  }
  return r;
}
