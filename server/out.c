/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The reply queue of a connection.  Replies are produced on worker
 * threads and on the connection thread, in any order (NBD allows replies
 * out of order); each reply is appended whole, as a chain of items, so
 * the bytes of one reply are never interleaved with another's.
 *
 * Method:
 *   Whoever appends tries to send at once with one non-blocking sendmsg
 *   of everything queued (header and data iovecs, no copy of the data).
 *   What the socket does not take stays queued and the connection thread
 *   is woken to wait for POLLOUT.  A worker therefore never blocks on a
 *   client: a client that stops reading only fills its own queue, and
 *   the connection stops reading its requests when its budget of
 *   in-flight bytes is used up.  While the connection thread runs a batch
 *   of requests inline it sets `batching` and sends once at the end.
 *
 *   One thread sends at a time (`sending`), and it sends without the
 *   lock: the items it sends stay at the head of the queue, others only
 *   append at the tail and leave, and the sender takes what they added
 *   before it stops.  Sending under the lock made every other worker and
 *   the connection thread (which takes the lock to account each request
 *   it reads) wait for a 1 MiB sendmsg: 5.3 futex calls per request of a
 *   4-connection sequential read over TCP, against nbdkit's 2.1.  While a
 *   send is under way nobody frees an item: dropping the queue is left to
 *   the sender.
 *
 *   Items carry the accounting they release (bytes and requests in
 *   flight) and the buffer they free, so memory is returned as soon as
 *   the client has it.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "internal.h"

#define OUT_MAX_IOV 64

struct out_item *
out_item_new (void)
{
  return calloc (1, sizeof (struct out_item));
}

/* Called with out_lock held. */
static void
release_locked (struct conn *c, uint64_t bytes, uint32_t reqs)
{
  c->inflight_bytes -= bytes;
  c->inflight_reqs -= reqs;
  if (c->want_wake && (bytes || reqs)) {
    c->want_wake = false;
    conn_wake (c);
  }
}

void
conn_release (struct conn *c, uint64_t bytes, uint32_t reqs)
{
  pthread_mutex_lock (&c->out_lock);
  release_locked (c, bytes, reqs);
  pthread_mutex_unlock (&c->out_lock);
}

static void
item_done (struct conn *c, struct out_item *it)
{
  release_locked (c, it->release_bytes, it->release_reqs);
  srv_buf_free (it->owner);
  free (it);
}

void
out_drop_locked (struct conn *c)
{
  struct out_item *it, *next;

  if (c->sending)
    return;                     /* the sender drops them (c->dead is set) */

  for (it = c->out_head; it; it = next) {
    next = it->next;
    item_done (c, it);
  }
  c->out_head = c->out_tail = NULL;
}

int
out_flush_locked (struct conn *c)
{
  if (c->sending)
    return 0;                   /* the sender takes what was added */
  c->sending = true;
  while (c->out_head && !c->dead) {
    struct iovec iov[OUT_MAX_IOV];
    int n = 0, err;
    ssize_t r;

    for (struct out_item *it = c->out_head; it && n < OUT_MAX_IOV - 1;
         it = it->next) {
      size_t off = it->sent;
      if (off < it->hdr_len) {
        iov[n].iov_base = it->hdr + off;
        iov[n++].iov_len = it->hdr_len - off;
        off = 0;
      }
      else
        off -= it->hdr_len;
      if (it->data_len > off) {
        iov[n].iov_base = (char *) it->data + off;
        iov[n++].iov_len = it->data_len - off;
      }
    }
    pthread_mutex_unlock (&c->out_lock);
    r = c->t.ops->send (&c->t, iov, n);
    err = errno;
    pthread_mutex_lock (&c->out_lock);
    if (r == -1) {
      if (err == EAGAIN || err == EWOULDBLOCK) {
        c->sending = false;
        return 0;
      }
      if (!c->dead) {
        errno = err;
        conn_debug (c, 1, "sending replies: %m");
      }
      c->dead = true;
      break;
    }
    while (r > 0) {
      struct out_item *it = c->out_head;
      size_t left = it->hdr_len + it->data_len - it->sent;
      if ((size_t) r >= left) {
        r -= left;
        c->out_head = it->next;
        if (c->out_head == NULL)
          c->out_tail = NULL;
        item_done (c, it);
      }
      else {
        it->sent += r;
        r = 0;
      }
    }
  }
  c->sending = false;
  if (c->dead) {
    out_drop_locked (c);
    return -1;
  }
  return 0;
}

void
out_queue (struct conn *c, struct out_item *chain)
{
  struct out_item *last = chain;

  while (last->next)
    last = last->next;
  pthread_mutex_lock (&c->out_lock);
  if (c->dead) {
    struct out_item *it, *next;
    for (it = chain; it; it = next) {
      next = it->next;
      item_done (c, it);
    }
    pthread_mutex_unlock (&c->out_lock);
    return;
  }
  if (c->out_tail)
    c->out_tail->next = chain;
  else
    c->out_head = chain;
  c->out_tail = last;
  if (!c->batching) {
    out_flush_locked (c);       /* returns at once if another is sending */
    /* Left over: the connection thread must wait for POLLOUT. */
    if (c->out_head && !c->sending && !c->polls_out)
      conn_wake (c);
  }
  pthread_mutex_unlock (&c->out_lock);
}

bool
out_pending (struct conn *c)
{
  bool r;

  pthread_mutex_lock (&c->out_lock);
  r = c->out_head != NULL;
  pthread_mutex_unlock (&c->out_lock);
  return r;
}
