/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Taking requests off a virtqueue and completing them (see device.h).
 *
 * Method: the queue's poll loop walks each available chain into its
 * scratch segment array, copies the segments into a request of exactly
 * that size and hands it on; whoever executes it pushes it on the used
 * ring under the queue lock, which also serialises the interrupt
 * decision and the call eventfd.  Each head is marked busy from the
 * moment it is taken until just before it is returned: a driver that
 * makes a head available again while we still hold it has corrupted its
 * ring, and we stop the queue rather than run two requests on one set
 * of buffers.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "device.h"

/* Warnings about malformed requests per queue before we stay quiet. */
#define BAD_REQUEST_WARNINGS 5

static void
signal_eventfd (int fd)
{
  uint64_t one = 1;

  /* An eventfd write only fails when the counter would overflow, which
   * still leaves it readable: the peer will notice.
   */
  if (fd >= 0 && write (fd, &one, sizeof one) == -1 && errno != EAGAIN)
    vd_warning ("signalling an eventfd: %s", strerror (errno));
}

/* Interrupt the driver (counted).  Call with q->lock held. */
static void
interrupt_locked (struct vhost_queue *q)
{
  signal_eventfd (q->call_fd);
  atomic_fetch_add (&q->interrupts, 1);
}

/* Return head to the driver.  Call with q->lock held.  Whether the
 * driver was interrupted.
 */
static bool
push_locked (struct vhost_queue *q, uint16_t head, uint32_t len)
{
  virtq_push (&q->vq, head, len);
  if (virtq_should_notify (&q->vq)) {
    interrupt_locked (q);
    return true;
  }
  return false;
}

static void
bad_request (struct vhost_queue *q, uint16_t head, const char *why)
{
  uint64_t n = atomic_fetch_add (&q->bad_requests, 1) + 1;

  if (n <= BAD_REQUEST_WARNINGS)
    vd_warning ("%s: queue %u: failing request %" PRIu16 ": %s%s",
                q->dev->name, q->index, head, why,
                n == BAD_REQUEST_WARNINGS ? " (further malformed requests "
                "are failed silently)" : "");
}

static int
ring_broken (struct vhost_queue *q, const char *why)
{
  atomic_store (&q->broken, true);
  atomic_fetch_add (&q->broken_count, 1);
  pthread_mutex_lock (&q->lock);
  signal_eventfd (q->err_fd);
  pthread_mutex_unlock (&q->lock);
  vd_warning ("%s: queue %u: %s: the queue is stopped until the guest "
              "resets the device", q->dev->name, q->index, why);
  return -1;
}

int
vhost_queue_process (struct vhost_queue *q, vhost_submit_fn submit,
                     vhost_submit_fn run_inline, void *opaque, bool *more)
{
  const char *why = NULL;
  struct vhost_req *held = NULL;
  int submitted = 0;
  unsigned taken = 0;           /* heads popped, malformed ones too */

  *more = false;
  if (atomic_load (&q->broken) ||
      !(q->auto_enabled || atomic_load (&q->enabled)))
    return 0;

  for (;;) {
    uint16_t n;

    /* A ring's worth per call, so that a driver that never stops
     * submitting (or whose buffers overlap its own available ring, so
     * that failing a request makes another one available) cannot keep
     * the caller from noticing it must stop.
     */
    if (taken >= q->num) {
      if (held)
        submit (opaque, held);
      *more = true;
      return submitted;
    }
    virtq_set_notification (&q->vq, false);
    if (virtq_pending (&q->vq, &n, &why) == -1)
      goto broken;
    if (n == 0 && held == NULL) {
      /* Ask for a kick, then look once more: buffers made available
       * before the driver saw our request would get no kick.
       */
      virtq_set_notification (&q->vq, true);
      if (virtq_pending (&q->vq, &n, &why) == -1)
        goto broken;
      if (n == 0)
        return submitted;
    }
    if (n == 0) {
      bool alone;

      /* The last request taken: when it is the only one in flight (a
       * guest waiting for each request before the next), run it here
       * and save two thread hand-offs; otherwise the pool runs it.
       * Either way look at the ring again afterwards, which is why
       * kicks stay off meanwhile: a request the driver makes available
       * while we run this one costs it no kick (under TCG a notify is
       * an exit from translated code and a system call in the vCPU
       * thread) and us no wake-up.
       */
      pthread_mutex_lock (&q->lock);
      alone = q->inflight == 1;
      pthread_mutex_unlock (&q->lock);
      if (run_inline && alone)
        run_inline (opaque, held);
      else
        submit (opaque, held);
      held = NULL;
      continue;
    }

    while (n-- > 0) {
      struct virtq_chain c = {
        .iov = q->scratch_iov, .max_iov = VHOST_MAX_SEGS,
        .scratch = q->scratch_ind,
      };
      struct vhost_req *r;
      uint16_t head;
      unsigned nseg;

      if (virtq_pop (&q->vq, &head, &why) == -1)
        goto broken;
      taken++;
      if (atomic_exchange (&q->busy[head], 1) != 0) {
        why = "a descriptor chain was made available again while in flight";
        goto broken;
      }
      atomic_fetch_add (&q->requests, 1);
      if (virtq_walk (&q->vq, head, &c, &why) == -1) {
        bad_request (q, head, why);
        goto fail;
      }
      nseg = c.n_out + c.n_in;
      r = malloc (sizeof *r + nseg * sizeof r->iov[0]);
      if (r == NULL) {
        bad_request (q, head, "out of memory");
        goto fail;
      }
      memcpy (r->iov, c.iov, nseg * sizeof r->iov[0]);
      r->next = NULL;
      r->q = q;
      r->head = head;
      r->chain = c;
      r->chain.iov = r->iov;
      r->chain.max_iov = nseg;
      r->chain.scratch = NULL;
      pthread_mutex_lock (&q->lock);
      q->inflight++;
      pthread_mutex_unlock (&q->lock);
      if (held)
        submit (opaque, held);
      held = r;
      submitted++;
      continue;

    fail:
      /* Nothing was written into the request's buffers. */
      atomic_store (&q->busy[head], 0);
      pthread_mutex_lock (&q->lock);
      push_locked (q, head, 0);
      pthread_mutex_unlock (&q->lock);
    }
  }

 broken:
  /* Requests taken before the corruption was found are still valid. */
  if (held)
    submit (opaque, held);
  return ring_broken (q, why);
}

void
vhost_req_execute (struct vhost_req *r)
{
  struct vhost_queue *q = r->q;
  uint32_t used_len;
  bool notified, recheck = false;

  if (vhost_blk_handle (q->dev->blk, &r->chain, &used_len) == -1)
    bad_request (q, r->head, "the request has no device-writable status "
                 "byte");
  atomic_store (&q->busy[r->head], 0);
  pthread_mutex_lock (&q->lock);
  notified = push_locked (q, r->head, used_len);
  if (--q->inflight == 0) {
    pthread_cond_broadcast (&q->idle);
    /* The end of a burst that interrupted nobody: have the queue thread
     * look at the driver's wish again in a moment (virtq.c, "Method").
     */
    recheck = !notified;
  }
  pthread_mutex_unlock (&q->lock);
  free (r);
  if (recheck)
    q->dev->ops->wake (q->dev->opaque, q);
}

bool
vhost_queue_unsignalled (struct vhost_queue *q)
{
  bool r;

  pthread_mutex_lock (&q->lock);
  r = virtq_unsignalled (&q->vq);
  pthread_mutex_unlock (&q->lock);
  return r;
}

void
vhost_queue_renotify (struct vhost_queue *q)
{
  pthread_mutex_lock (&q->lock);
  if (virtq_should_renotify (&q->vq))
    interrupt_locked (q);
  pthread_mutex_unlock (&q->lock);
}

void
vhost_queue_wait_idle (struct vhost_queue *q)
{
  pthread_mutex_lock (&q->lock);
  while (q->inflight > 0)
    pthread_cond_wait (&q->idle, &q->lock);
  pthread_mutex_unlock (&q->lock);
}
