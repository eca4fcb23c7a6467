/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The reconnect decorator: keeps an NBD export usable across server
 * restarts and network failures, without losing or reordering a write.
 * It wraps one client (one connection, client.c) at a time and replaces
 * it when it dies.
 *
 * Method:
 *   Journal.  Every request is in the journal, in submission order, from
 *   the moment it is submitted until its caller has its result.  A
 *   request whose connection dies under it (a recoverable failure: reset,
 *   refused, I/O timeout, EOF, protocol error, or the server's
 *   ESHUTDOWN) is not completed: it is marked LOST and its caller keeps
 *   waiting.  Requests submitted while there is no connection are QUEUED.
 *
 *   Leader.  The first waiting caller to see the connection broken
 *   becomes the leader and reconnects (every journaled request has a
 *   caller blocked in vd_nbd_rc_wait, so there is always one; no extra
 *   thread).  It closes the dead client (joining its I/O thread, so every
 *   command of the old connection has completed or been marked LOST),
 *   then connects again with exponential backoff (first try at once,
 *   then 25 ms doubling to 2 s, jittered by +-25%), each attempt bounded
 *   by the window.
 *
 *   Window.  The window opens when a connection is first lost and closes
 *   when a request completes on a new connection (or, when nothing was
 *   waiting, when the new connection is made).  If it lasts longer than
 *   the timeout, or a failure cannot be retried (the export is gone, the
 *   server needs TLS), the attachment fails for good: every journaled
 *   request fails with a message saying why and since when, and
 *   VD_EVENT_FAILED is emitted, exactly once.  A connection that is
 *   established but cannot complete anything (a server that accepts and
 *   then hangs) is caught by the client's I/O timeout, so the worst case
 *   for one request is two timeouts: one to notice the stall, one window.
 *
 *   Identity.  After reconnecting, the export must have the same size,
 *   transmission flags, block size constraints and block status support
 *   as the first time; otherwise it is a different disk and the
 *   attachment fails rather than write to it.
 *
 *   Replay.  With the new connection in place, every LOST and QUEUED
 *   request is submitted in journal order, before any request submitted
 *   later.  Replaying is safe because every NBD request is idempotent:
 *   writing the same bytes, zeroing or trimming the same range, flushing,
 *   reading.  Order relative to flushes is kept: a request that was
 *   concurrent with a flush (both in flight) stays concurrent with it;
 *   a request that completed before a flush was sent was acknowledged by
 *   the server that is now gone, and is covered by that flush if the
 *   server kept its data (what a killed process's page cache does; the
 *   protocol lets a crashed server lose unflushed writes, and no client
 *   can recover those without keeping a copy of every unflushed write).
 *   A caller's write returns only after the server acknowledged it, so a
 *   later write to the same place is never overtaken by a replay.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "nbd-internal.h"

enum { REQ_QUEUED, REQ_IN_FLIGHT, REQ_LOST, REQ_DONE };
enum { RC_NEW, RC_CONNECTED, RC_BROKEN, RC_RECONNECTING, RC_FAILED };

#define BACKOFF_FIRST (25 * INT64_C (1000000))   /* ns */
#define BACKOFF_MAX   (2 * VD_NBD_NS_PER_S)

struct vd_nbd_rc {
  struct vd_attachment *a;
  struct vd_nbd_events *ev;     /* delivers VD_EVENT_* */
  const struct vd_nbd_uri *uri;
  char name[200];
  int64_t timeout;              /* ns */
  uint32_t hs_flags;

  pthread_mutex_t lock;
  int state;
  struct vd_nbd_client *client;
  uint64_t gen;                 /* generation of client */
  struct vd_nbd_req *head, *tail; /* the journal, by seq */
  uint64_t seq;
  bool leader;                  /* a caller is reconnecting */
  int64_t window_start;         /* 0: no window open */
  int64_t backoff;
  unsigned reconnects;          /* successful ones in the open window */
  uint64_t rand;
  char last_msg[VD_NBD_ERRMSG_LEN];     /* why the connection was lost */
  int fail_err;
  char fail_msg[VD_NBD_ERRMSG_LEN + 256];
  struct vd_nbd_export_info info;
  uint64_t connections;
};

struct vd_nbd_rc *
vd_nbd_rc_new (const struct vd_nbd_rc_params *p)
{
  struct vd_nbd_rc *rc = calloc (1, sizeof *rc);

  if (rc == NULL)
    return NULL;
  rc->a = p->a;
  rc->ev = vd_nbd_events_new (p->a);
  if (rc->ev == NULL) {
    free (rc);
    return NULL;
  }
  rc->uri = p->uri;
  snprintf (rc->name, sizeof rc->name, "%s", p->name);
  {
    /* NaN, negative or absurd values from the API must not overflow. */
    double t = p->timeout;
    if (!(t > 0))
      t = VD_NBD_DEFAULT_TIMEOUT;
    if (t > 1e8)
      t = 1e8;                  /* three years */
    rc->timeout = (int64_t) (t * 1e9);
    if (rc->timeout < 1000000)
      rc->timeout = 1000000;    /* 1 ms */
  }
  rc->hs_flags = p->hs_flags;
  pthread_mutex_init (&rc->lock, NULL);
  rc->state = RC_NEW;
  rc->backoff = BACKOFF_FIRST;
  rc->rand = (uint64_t) vd_nbd_now () ^ (uint64_t) (uintptr_t) rc;
  return rc;
}

const struct vd_nbd_export_info *
vd_nbd_rc_info (struct vd_nbd_rc *rc)
{
  return &rc->info;
}

uint64_t
vd_nbd_rc_connections (struct vd_nbd_rc *rc)
{
  uint64_t n;

  pthread_mutex_lock (&rc->lock);
  n = rc->connections;
  pthread_mutex_unlock (&rc->lock);
  return n;
}

/* Journal. */

static void
journal_append (struct vd_nbd_rc *rc, struct vd_nbd_req *req)
{
  req->seq = ++rc->seq;
  req->next = NULL;
  req->prev = rc->tail;
  if (rc->tail)
    rc->tail->next = req;
  else
    rc->head = req;
  rc->tail = req;
}

static void
journal_remove (struct vd_nbd_rc *rc, struct vd_nbd_req *req)
{
  if (req->prev)
    req->prev->next = req->next;
  else
    rc->head = req->next;
  if (req->next)
    req->next->prev = req->prev;
  else
    rc->tail = req->prev;
  req->prev = req->next = NULL;
}

/* Wake every waiting caller (lock held): the state changed, one of them
 * may have to lead a reconnection, or all have an answer.
 */
static void
wake_all (struct vd_nbd_rc *rc)
{
  for (struct vd_nbd_req *r = rc->head; r; r = r->next)
    pthread_cond_signal (&r->cond);
}

/* The connection of generation gen is broken (lock held). */
static void
broken (struct vd_nbd_rc *rc, uint64_t gen, const char *why)
{
  if (gen != rc->gen || rc->state != RC_CONNECTED)
    return;
  rc->state = RC_BROKEN;
  if (rc->window_start == 0)
    rc->window_start = vd_nbd_now ();
  snprintf (rc->last_msg, sizeof rc->last_msg, "%s", why);
  wake_all (rc);
}

/* Called by the I/O thread of the client the request went to. */
static void
req_done (struct vd_nbd_cmd *cmd)
{
  struct vd_nbd_req *req = cmd->user;
  struct vd_nbd_rc *rc = req->rc;

  pthread_mutex_lock (&rc->lock);
  if (cmd->err && cmd->recoverable) {
    req->state = REQ_LOST;
    broken (rc, req->gen, cmd->errmsg);
  }
  else {
    req->state = REQ_DONE;
    /* The server answered: the connection works, the window closes. */
    if (req->gen == rc->gen && rc->state == RC_CONNECTED) {
      rc->window_start = 0;
      rc->backoff = BACKOFF_FIRST;
      rc->reconnects = 0;
    }
  }
  pthread_cond_signal (&req->cond);
  pthread_mutex_unlock (&rc->lock);
}

/* Submit to the current client (lock held, state CONNECTED). */
static void
submit_locked (struct vd_nbd_rc *rc, struct vd_nbd_req *req)
{
  req->gen = rc->gen;
  req->state = REQ_IN_FLIGHT;
  req->cmd.done = req_done;
  req->cmd.user = req;
  if (vd_nbd_client_submit (rc->client, &req->cmd) == -1) {
    req->state = REQ_LOST;
    broken (rc, req->gen, req->cmd.errmsg);
  }
}

static void
fail_req (struct vd_nbd_req *req, int err, const char *msg)
{
  vd_nbd_cmd_reset (&req->cmd);
  req->cmd.err = err;
  vd_nbd_copy_str (req->cmd.errmsg, sizeof req->cmd.errmsg, msg);
  req->state = REQ_DONE;
}

void
vd_nbd_rc_submit (struct vd_nbd_rc *rc, struct vd_nbd_req *req)
{
  req->rc = rc;
  req->prev = req->next = NULL;
  pthread_cond_init (&req->cond, NULL);
  pthread_mutex_lock (&rc->lock);
  journal_append (rc, req);
  if (rc->state == RC_FAILED)
    fail_req (req, ESHUTDOWN, rc->fail_msg);
  else if (rc->state == RC_CONNECTED)
    submit_locked (rc, req);
  else {
    vd_nbd_cmd_reset (&req->cmd);
    req->state = REQ_QUEUED;
  }
  pthread_mutex_unlock (&rc->lock);
}

/* Connecting. */

static void
sleep_ns (int64_t ns)
{
  struct timespec ts = { .tv_sec = ns / VD_NBD_NS_PER_S,
                         .tv_nsec = ns % VD_NBD_NS_PER_S };
  while (clock_nanosleep (CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
    ;
}

static int64_t
jitter (struct vd_nbd_rc *rc, int64_t ns)
{
  /* xorshift64: no shared state with the process's rand (). */
  rc->rand ^= rc->rand << 13;
  rc->rand ^= rc->rand >> 7;
  rc->rand ^= rc->rand << 17;
  return ns * 3 / 4 + (int64_t) (rc->rand % (uint64_t) (ns / 2 + 1));
}

static bool
same_export (const struct vd_nbd_export_info *a,
             const struct vd_nbd_export_info *b, char *why, size_t len)
{
  if (a->size != b->size)
    snprintf (why, len, "its size changed from %" PRIu64 " to %" PRIu64
              " bytes", a->size, b->size);
  else if (a->eflags != b->eflags)
    snprintf (why, len, "its transmission flags changed from 0x%04x to "
              "0x%04x", a->eflags, b->eflags);
  else if (a->min_block != b->min_block || a->max_payload != b->max_payload)
    snprintf (why, len, "its block size constraints changed (minimum %"
              PRIu32 " -> %" PRIu32 ", maximum payload %" PRIu32 " -> %"
              PRIu32 ")", a->min_block, b->min_block, a->max_payload,
              b->max_payload);
  else if (a->extents != b->extents)
    snprintf (why, len, "it %s base:allocation block status",
              b->extents ? "now offers" : "no longer offers");
  else
    return true;
  return false;
}

/* The message when the window is over. */
static void
window_over (struct vd_nbd_rc *rc, bool first, unsigned attempts,
             const char *last, int *err, char *msg, size_t msglen)
{
  unsigned reconnects;

  pthread_mutex_lock (&rc->lock);
  reconnects = rc->reconnects;
  pthread_mutex_unlock (&rc->lock);
  *err = ETIMEDOUT;
  if (attempts == 0 && reconnects > 0)
    snprintf (msg, msglen, "the NBD server completed no request for %.3g s "
              "after the connection was lost, despite %u reconnection%s "
              "(last error: %s)", (double) rc->timeout / 1e9, reconnects,
              reconnects == 1 ? "" : "s", last);
  else
    snprintf (msg, msglen, "%s the NBD server within %.3g s (%u attempt%s; "
              "last error: %s)",
              first ? "could not connect to" : "could not reconnect to",
              (double) rc->timeout / 1e9, attempts,
              attempts == 1 ? "" : "s", last);
}

/* Connect with retries until window_end.  Lock NOT held.  Returns the
 * client, or NULL with *err and msg (the reason to fail for good).
 */
static struct vd_nbd_client *
connect_loop (struct vd_nbd_rc *rc, int64_t window_start, const char *lost,
              int *err, char *msg, size_t msglen)
{
  int64_t window_end = window_start + rc->timeout;
  char last[VD_NBD_ERRMSG_LEN];
  unsigned attempts = 0;
  bool first = rc->connections == 0;

  snprintf (last, sizeof last, "%s", lost);
  for (;;) {
    /* Once a connection was encrypted (opportunistic TLS on nbd://
     * found a server that speaks it), every reconnection must be too:
     * otherwise anyone able to cut the connection could answer the next
     * STARTTLS with ERR_POLICY and read the rest in plaintext.
     */
    struct vd_nbd_client_params p = {
      .uri = rc->uri, .name = rc->name, .io_timeout = rc->timeout,
      .hs_flags = rc->hs_flags, .fd = -1,
      .tls_required = !first && rc->info.tls,
    };
    struct vd_nbd_client *cl;
    bool recoverable;
    int64_t now = vd_nbd_now ();
    int e;

    if (attempts > 0 || !first) {
      int64_t delay = 0;
      /* The first try after a loss goes at once; every later one, in
       * this attempt or in the next reconnection of the same window,
       * waits twice as long as the one before.
       */
      pthread_mutex_lock (&rc->lock);
      if (attempts > 0 || rc->backoff > BACKOFF_FIRST) {
        delay = jitter (rc, rc->backoff);
        rc->backoff = rc->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX
          : rc->backoff * 2;
      }
      else
        rc->backoff *= 2;
      pthread_mutex_unlock (&rc->lock);
      if (now + delay >= window_end) {
        window_over (rc, first, attempts, last, err, msg, msglen);
        return NULL;
      }
      if (delay > 0)
        sleep_ns (delay);
    }
    attempts++;
    p.deadline = window_end;
    cl = vd_nbd_client_connect (&p, &e, &recoverable, last, sizeof last);
    if (cl) {
      const struct vd_nbd_export_info *i = vd_nbd_client_info (cl);
      char why[256];
      if (!first && !same_export (&rc->info, i, why, sizeof why)) {
        vd_nbd_client_close (cl);
        *err = ESTALE;
        snprintf (msg, msglen, "after reconnecting, the export is not the "
                  "same disk: %s", why);
        return NULL;
      }
      return cl;
    }
    if (!recoverable) {
      *err = e;
      snprintf (msg, msglen, "%s", last);
      return NULL;
    }
    if (vd_nbd_now () >= window_end) {
      window_over (rc, first, attempts, last, err, msg, msglen);
      return NULL;
    }
  }
}

/* Fail for good (lock held).  Returns whether the caller must emit
 * VD_EVENT_FAILED (only the first time).
 */
static bool
fail_locked (struct vd_nbd_rc *rc, int err, const char *msg)
{
  if (rc->state == RC_FAILED)
    return false;
  rc->state = RC_FAILED;
  rc->fail_err = err;
  snprintf (rc->fail_msg, sizeof rc->fail_msg, "the NBD attachment has "
            "failed: %s", msg);
  for (struct vd_nbd_req *r = rc->head; r; r = r->next)
    if (r->state != REQ_DONE)
      fail_req (r, err, rc->fail_msg);
  wake_all (rc);
  return true;
}

int
vd_nbd_rc_start (struct vd_nbd_rc *rc)
{
  struct vd_nbd_client *cl;
  char msg[VD_NBD_ERRMSG_LEN + 128];
  int err;

  cl = connect_loop (rc, vd_nbd_now (), "no attempt was made", &err, msg,
                     sizeof msg);
  pthread_mutex_lock (&rc->lock);
  if (cl == NULL) {
    bool emit = fail_locked (rc, err, msg);
    pthread_mutex_unlock (&rc->lock);
    if (emit)
      vd_nbd_events_post (rc->ev, VD_EVENT_FAILED, err, rc->fail_msg);
    vd_error_msg (err, "%s: %s", rc->name, msg);
    return -1;
  }
  rc->client = cl;
  rc->info = *vd_nbd_client_info (cl);
  rc->gen++;
  rc->connections++;
  rc->state = RC_CONNECTED;
  pthread_mutex_unlock (&rc->lock);
  vd_nbd_events_post (rc->ev, VD_EVENT_CONNECTED, 0, NULL);
  return 0;
}

/* The leader's work (lock held on entry and on return). */
static void
reconnect_locked (struct vd_nbd_rc *rc)
{
  struct vd_nbd_client *old = rc->client, *cl;
  char msg[VD_NBD_ERRMSG_LEN + 256];
  char lost[VD_NBD_ERRMSG_LEN];
  int64_t window_start;
  int err;
  bool replayed = false;

  rc->leader = true;
  rc->state = RC_RECONNECTING;
  rc->client = NULL;
  window_start = rc->window_start ? rc->window_start : vd_nbd_now ();
  rc->window_start = window_start;
  snprintf (lost, sizeof lost, "%s", rc->last_msg);
  pthread_mutex_unlock (&rc->lock);

  /* Every command of the old connection completes (or is marked LOST)
   * before this returns.
   */
  vd_nbd_client_close (old);
  cl = connect_loop (rc, window_start, lost, &err, msg, sizeof msg);

  pthread_mutex_lock (&rc->lock);
  rc->leader = false;
  if (cl == NULL) {
    char full[sizeof msg + 64];
    bool emit;
    snprintf (full, sizeof full, "%s", msg);
    emit = fail_locked (rc, err, full);
    if (emit) {
      char fm[sizeof rc->fail_msg];
      snprintf (fm, sizeof fm, "%s", rc->fail_msg);
      pthread_mutex_unlock (&rc->lock);
      vd_nbd_events_post (rc->ev, VD_EVENT_FAILED, err, fm);
      pthread_mutex_lock (&rc->lock);
    }
    return;
  }
  rc->client = cl;
  rc->gen++;
  rc->connections++;
  rc->state = RC_CONNECTED;
  for (struct vd_nbd_req *r = rc->head; r && rc->state == RC_CONNECTED;
       r = r->next)
    if (r->state == REQ_LOST || r->state == REQ_QUEUED) {
      replayed = true;
      submit_locked (rc, r);
    }
  if (!replayed && rc->state == RC_CONNECTED) {
    rc->window_start = 0;
    rc->backoff = BACKOFF_FIRST;
    rc->reconnects = 0;
  }
  else
    rc->reconnects++;
  wake_all (rc);
  pthread_mutex_unlock (&rc->lock);
  vd_nbd_events_post (rc->ev, VD_EVENT_CONNECTED, 0, NULL);
  pthread_mutex_lock (&rc->lock);
}

int
vd_nbd_rc_wait (struct vd_nbd_rc *rc, struct vd_nbd_req *req)
{
  int r;

  pthread_mutex_lock (&rc->lock);
  for (;;) {
    if (req->state == REQ_DONE)
      break;
    if (rc->state == RC_BROKEN && !rc->leader) {
      reconnect_locked (rc);
      continue;
    }
    pthread_cond_wait (&req->cond, &rc->lock);
  }
  journal_remove (rc, req);
  pthread_mutex_unlock (&rc->lock);
  pthread_cond_destroy (&req->cond);
  r = req->cmd.err ? -1 : 0;
  return r;
}

void
vd_nbd_rc_free (struct vd_nbd_rc *rc)
{
  if (rc == NULL)
    return;
  /* Events first: a callback still running may be using the
   * connection.
   */
  vd_nbd_events_free (rc->ev);
  vd_nbd_client_close (rc->client);
  pthread_mutex_destroy (&rc->lock);
  free (rc);
}
