/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * One vhost-user session with a front end (QEMU, cloud-hypervisor, ...):
 * the negotiated features, the guest memory table, and per virtqueue its
 * configuration and runtime state.  vhost_dev_handle applies one decoded
 * message and builds the reply; vhost_queue_process takes requests off a
 * ring and hands them to whoever executes them; vhost_req_execute runs
 * one and completes it on the used ring.
 *
 * Side effects that need the operating system (mapping memory, starting
 * and stopping a queue's poll loop) go through struct vhost_dev_ops, so
 * the fuzz target and the unit tests drive the same code with a fake
 * memory table and synchronous queues; vhost/export.c provides the real
 * ones (mmap, one poll thread per queue, a worker pool).
 *
 * Threads: vhost_dev_handle runs on the session thread only.  A queue's
 * configuration fields change only while the queue is stopped, except
 * call_fd/err_fd (under the queue lock) and enabled (atomic).
 * vhost_queue_process runs on the queue's poll thread; vhost_req_execute
 * on any worker.
 */
#ifndef VD_VHOST_DEVICE_H
#define VD_VHOST_DEVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blk.h"
#include "mem.h"
#include "msg.h"
#include "virtq.h"

/* Most queues one device may have. */
#define VHOST_MAX_QUEUES 32

struct vhost_queue;

/* A request taken off a ring, on its way to a worker. */
struct vhost_req {
  struct vhost_req *next;       /* worker pool list */
  struct vhost_queue *q;
  uint16_t head;
  struct virtq_chain chain;     /* chain.iov points at iov below */
  struct vhost_iov iov[];
};

struct vhost_queue {
  struct vhost_dev *dev;
  unsigned index;

  /* Configuration from the front end. */
  uint16_t num;                 /* 0 until SET_VRING_NUM */
  bool addr_set;
  uint64_t desc_uva, avail_uva, used_uva;
  uint16_t base;                /* where the ring (re)starts */
  int kick_fd;                  /* -1 if none */
  int call_fd;                  /* -1 if none; under lock */
  int err_fd;                   /* -1 if none; under lock */
  atomic_bool enabled;          /* SET_VRING_ENABLE */
  bool auto_enabled;            /* no protocol features: always enabled */
  bool started;                 /* ring mapped and being polled */

  /* Runtime. */
  struct virtq vq;              /* avail side: poll loop; used side: lock */
  pthread_mutex_t lock;         /* used ring, call/err fds, inflight */
  pthread_cond_t idle;          /* signalled when inflight drops to 0 */
  unsigned inflight;            /* requests handed out, not completed */
  atomic_uchar *busy;           /* per head: 1 while in flight */
  atomic_bool broken;           /* ring corrupt: stopped until restarted */
  atomic_uint_fast64_t bad_requests; /* malformed chains failed */
  atomic_uint_fast64_t requests;     /* requests taken */
  atomic_uint_fast64_t broken_count; /* times the ring was found corrupt */
  atomic_uint_fast64_t kicks;        /* notifications from the driver
                                        (counted by the poll loop) */
  atomic_uint_fast64_t interrupts;   /* call eventfd signals */
  struct vhost_iov *scratch_iov;     /* VHOST_MAX_SEGS, poll loop only */
  uint8_t *scratch_ind;              /* VHOST_MAX_INDIRECT descriptors */

  void *runner;                 /* vhost_dev_ops' per-queue state */
};

struct vhost_dev_ops {
  /* Map size bytes of fd at mmap_offset; fill r->host, r->map_base,
   * r->map_len.  fd stays the caller's.  0, or -1 (raised).
   */
  int (*map) (void *opaque, int fd, uint64_t mmap_offset, uint64_t size,
              struct vhost_mem_region *r);
  void (*unmap) (void *opaque, struct vhost_mem_region *r);
  /* Start polling q (q->kick_fd, q->vq are ready).  0, or -1 (raised). */
  int (*start) (void *opaque, struct vhost_queue *q);
  /* Stop polling q and return once none of its requests is in flight. */
  void (*stop) (void *opaque, struct vhost_queue *q);
  /* Look at q's ring again (it was just enabled). */
  void (*wake) (void *opaque, struct vhost_queue *q);
};

struct vhost_dev {
  struct vhost_blk *blk;
  const struct vhost_dev_ops *ops;
  void *opaque;
  const char *name;             /* for messages (the socket path) */
  unsigned nqueues;
  struct vhost_queue queues[VHOST_MAX_QUEUES];
  uint64_t features;            /* negotiated virtio features */
  uint64_t protocol_features;   /* negotiated protocol features */
  struct vhost_mem mem;
};

/* Set up d for blk with nqueues queues.  0, or -1 (raised). */
int vhost_dev_init (struct vhost_dev *d, struct vhost_blk *blk,
                    unsigned nqueues, const struct vhost_dev_ops *ops,
                    void *opaque, const char *name);

/* Back to the state of a new connection: stop every queue, close every
 * descriptor, unmap guest memory, forget the features.
 */
void vhost_dev_reset (struct vhost_dev *d);

/* vhost_dev_reset, then free what init allocated. */
void vhost_dev_fini (struct vhost_dev *d);

/* Features we offer. */
uint64_t vhost_dev_features (const struct vhost_dev *d);
uint64_t vhost_dev_protocol_features (const struct vhost_dev *d);

/* Apply message m, which came with fds[0..nfds) (now owned by d: kept
 * or closed, also on failure).  If a reply must be sent, it is built in
 * reply (room for VHOST_USER_HDR_SIZE + VHOST_MSG_MAX_PAYLOAD bytes)
 * and *reply_len is its length, else 0.  Returns 0 on success; 1 when
 * the message failed (raised) and the reply tells the front end so;
 * -1 (raised) when it failed and the session must end, because the
 * front end gets no negative answer to it.
 */
int vhost_dev_handle (struct vhost_dev *d, const struct vhost_msg *m,
                      int *fds, size_t nfds, uint8_t *reply,
                      size_t *reply_len);

typedef void (*vhost_submit_fn) (void *opaque, struct vhost_req *r);

/* Take every request the driver made available on q (unless q is
 * disabled or broken), walk its chain and pass it to submit (which owns
 * it from then on).  Malformed chains are failed here.  Then ask for
 * the next kick.  If run_inline is not NULL, a request that turns out
 * to be the only one in flight is passed to run_inline instead, which
 * executes it at once (vhost_req_execute) on the calling thread; the
 * ring is then looked at again.  At most a ring's worth of requests is
 * taken per call: *more is then true, kicks are still off, and the
 * caller must call again (after checking whether it should stop).
 * Returns the number of requests taken, or -1 if the ring turned out to
 * be corrupt (q is then broken: its error eventfd was signalled and it
 * takes nothing until restarted).
 */
int vhost_queue_process (struct vhost_queue *q, vhost_submit_fn submit,
                         vhost_submit_fn run_inline, void *opaque,
                         bool *more);

/* Execute r, put it on the used ring, interrupt the driver if it
 * wants, and free r.
 */
void vhost_req_execute (struct vhost_req *r);

/* Block until no request of q is in flight. */
void vhost_queue_wait_idle (struct vhost_queue *q);

/* Entries were returned since the last interrupt: the poll loop should
 * call vhost_queue_renotify after a short while (10 ms by default)
 * unless something else happens first.  vhost_req_execute wakes the
 * loop (ops->wake) when a burst ends without an interrupt.
 */
bool vhost_queue_unsignalled (struct vhost_queue *q);
void vhost_queue_renotify (struct vhost_queue *q);

#endif
