/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The core of the NBD connection state machine: the dispatcher, the
 * command table (cookies), the receive buffer and the helpers that the
 * state functions (states-handshake.c, states-transmission.c) share.
 * Nothing here blocks, sleeps, reads a clock or takes a lock: whoever
 * owns the connection (client.c's I/O thread, or a test) calls
 * vd_nbd_conn_run when poll says the socket is ready.
 *
 * Method:
 *   States return CONTINUE (run the current state again: it changed or
 *   made progress) or BLOCK (the transport would block, or there is
 *   nothing to do).  A state that finds the connection broken calls
 *   vd_nbd_conn_kill, which moves to DEAD, fails every command (queued
 *   or in flight) through its done callback, and closes the transport;
 *   the state then returns BLOCK at once and touches nothing else.
 *
 *   Cookies are (sequence << 32 | slot): the slot indexes the table of
 *   commands in flight (O(1) lookup, no hashing), the sequence number
 *   makes a stale or forged cookie for a reused slot detectable.
 *
 *   Receiving: headers and small payloads are read in batches of up to
 *   4 KiB into conn->rx (one recv for many small replies); READ data
 *   goes straight from the socket into the caller's buffer (only the
 *   few bytes that were already batched are copied).
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-internal.h"

#define RX_BATCH 4096           /* bytes read at once for headers */
#define RX_CAP (RX_BATCH + 64)

static const struct {
  const char *name;
  const char *dir;
  int (*fn) (struct vd_nbd_conn *c);
} states[] = {
#define STATE(name, dir, comment) { #name, dir, vd_nbd_state_##name },
  VD_NBD_STATES
#undef STATE
};

const char *
vd_nbd_state_name (int state)
{
  if (state < 0 || state >= VD_NBD_NR_STATES)
    return "?";
  return states[state].name;
}

void
vd_nbd_cmd_reset (struct vd_nbd_cmd *cmd)
{
  cmd->err = 0;
  cmd->recoverable = false;
  cmd->errmsg[0] = '\0';
  free (cmd->extents);
  cmd->extents = NULL;
  cmd->nr_extents = 0;
  cmd->cookie = 0;
  cmd->slot = 0;
  cmd->hdr_len = 0;
  cmd->tx_pos = 0;
  cmd->sent = false;
  cmd->has_status = false;
  cmd->covered = 0;
  free (cmd->ranges);
  cmd->ranges = NULL;
  cmd->nr_ranges = cmd->cap_ranges = 0;
  cmd->next = NULL;
}

int
vd_nbd_conn_init (struct vd_nbd_conn *c, struct vd_nbd_transport t,
                  const char *name, const char *export_name,
                  uint32_t hs_flags)
{
  memset (c, 0, sizeof *c);
  c->t = t;
  snprintf (c->name, sizeof c->name, "%s", name);
  c->export_name = strdup (export_name);
  c->rx = malloc (RX_CAP);
  if (c->export_name == NULL || c->rx == NULL) {
    free (c->export_name);
    free (c->rx);
    t.ops->close (t.handle);
    c->t.ops = NULL;
    return -1;
  }
  c->rx_cap = RX_CAP;
  c->hs_flags = hs_flags;
  c->state = VD_NBD_STATE_START;
  c->tx_state = VD_NBD_STATE_ISSUE_IDLE;
  c->rx_state = VD_NBD_STATE_REPLY_START;
  return 0;
}

static void
fail_all (struct vd_nbd_conn *c)
{
  struct vd_nbd_cmd *cmd;

  /* Commands in flight first (they were sent earlier), then the queue:
   * each appears in exactly one place, except that a command being sent
   * is both queued and in a slot; the slot pass skips queued ones.
   */
  for (uint32_t i = 0; i < c->nr_slots; ++i) {
    cmd = c->slots[i];
    if (cmd == NULL || !cmd->sent)
      continue;
    c->slots[i] = NULL;
    c->in_flight--;
    vd_nbd_cmd_set_error (cmd, c->err ? c->err : ESHUTDOWN, "%s",
                          c->errmsg[0] ? c->errmsg
                          : "the connection was closed");
    cmd->recoverable = c->recoverable || c->err == 0;
    free (cmd->ranges);
    cmd->ranges = NULL;
    cmd->done (cmd);
  }
  while ((cmd = c->pre_head) != NULL) {
    c->pre_head = cmd->next;
    cmd->next = NULL;
    c->nr_pre--;
    vd_nbd_cmd_set_error (cmd, c->err ? c->err : ESHUTDOWN, "%s",
                          c->errmsg[0] ? c->errmsg
                          : "the connection was closed");
    cmd->recoverable = c->recoverable || c->err == 0;
    cmd->done (cmd);
  }
  c->pre_tail = NULL;
  while ((cmd = c->txq_head) != NULL) {
    c->txq_head = cmd->next;
    cmd->next = NULL;
    if (cmd == &c->disc)
      continue;
    if (cmd->slot < c->nr_slots && c->slots[cmd->slot] == cmd) {
      c->slots[cmd->slot] = NULL;
      c->in_flight--;
    }
    vd_nbd_cmd_set_error (cmd, c->err ? c->err : ESHUTDOWN, "%s",
                          c->errmsg[0] ? c->errmsg
                          : "the connection was closed");
    cmd->recoverable = c->recoverable || c->err == 0;
    cmd->done (cmd);
  }
  c->txq_tail = NULL;
}

void
vd_nbd_conn_kill (struct vd_nbd_conn *c, int err, bool recoverable,
                  const char *fmt, ...)
{
  va_list args;

  if (c->state == VD_NBD_STATE_DEAD)
    return;
  c->state = VD_NBD_STATE_DEAD;
  c->err = err;
  c->recoverable = recoverable;
  if (fmt) {
    va_start (args, fmt);
    vsnprintf (c->errmsg, sizeof c->errmsg, fmt, args);
    va_end (args);
  }
  if (c->t.ops) {
    c->t.ops->close (c->t.handle);
    c->t.ops = NULL;
  }
  fail_all (c);
}

void
vd_nbd_conn_fini (struct vd_nbd_conn *c)
{
  if (c->state != VD_NBD_STATE_DEAD)
    vd_nbd_conn_kill (c, ESHUTDOWN, true, "the connection was closed");
  free (c->export_name);
  free (c->rx);
  free (c->opt);
  free (c->pay);
  free (c->slots);
  free (c->free_slots);
  memset (c, 0, sizeof *c);
  c->state = VD_NBD_STATE_DEAD;
}

bool
vd_nbd_conn_ready (const struct vd_nbd_conn *c)
{
  return c->state == VD_NBD_STATE_READY;
}

bool
vd_nbd_conn_dead (const struct vd_nbd_conn *c)
{
  return c->state == VD_NBD_STATE_DEAD;
}

uint32_t
vd_nbd_conn_busy (const struct vd_nbd_conn *c)
{
  return c->in_flight + c->nr_pre;
}

const char *
vd_nbd_transport_strerror (struct vd_nbd_conn *c, int e, char *buf,
                           size_t len)
{
  const char *m = NULL;

  if (c->t.ops && c->t.ops->last_error)
    m = c->t.ops->last_error (c->t.handle);
  if (m) {
    snprintf (buf, len, "%s", m);
    return buf;
  }
  return strerror_r (e, buf, len);
}

/* Receiving. */

static int
rx_eof_or_error (struct vd_nbd_conn *c, ssize_t r)
{
  if (r == 0) {
    if (c->disc_sent) {
      /* The soft disconnect we asked for: a clean end. */
      vd_nbd_conn_kill (c, 0, false, "disconnected");
      return -1;
    }
    if (c->state == VD_NBD_STATE_RECV_EXPORT_NAME_REPLY)
      vd_nbd_conn_kill (c, ECONNRESET, true, "the server closed the "
                        "connection in reply to NBD_OPT_EXPORT_NAME (does "
                        "it have an export named '%s'?)", c->export_name);
    else if (c->state == VD_NBD_STATE_READY && c->shutdown_seen)
      vd_nbd_conn_kill (c, ESHUTDOWN, true, "the server is shutting down");
    else
      vd_nbd_conn_kill (c, ECONNRESET, true, "the server closed the "
                        "connection%s", c->state == VD_NBD_STATE_READY ? ""
                        : " during the handshake");
    return -1;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    c->rx_eagain = true;
    return 0;
  }
  {
    char ebuf[256];
    int e = errno;
    /* EACCES: the server refused our credentials (a TLS alert); a new
     * connection would be refused the same way.
     */
    vd_nbd_conn_kill (c, e, e != EACCES, "receiving from the server: %s",
                      vd_nbd_transport_strerror (c, e, ebuf, sizeof ebuf));
  }
  return -1;
}

int
vd_nbd_rx_need (struct vd_nbd_conn *c, size_t n)
{
  assert (n <= RX_CAP - 8);
  while (c->rx_end - c->rx_start < n) {
    ssize_t r;
    size_t want;

    if (c->rx_eagain)
      return 0;
    if (c->rx_start > 0) {
      memmove (c->rx, c->rx + c->rx_start, c->rx_end - c->rx_start);
      c->rx_end -= c->rx_start;
      c->rx_start = 0;
    }
    want = c->rx_cap - c->rx_end;
    if (want > RX_BATCH)
      want = RX_BATCH;
    r = c->t.ops->recv (c->t.handle, c->rx + c->rx_end, want);
    if (r <= 0)
      return rx_eof_or_error (c, r);
    c->rx_end += r;
    c->bytes_moved += r;
  }
  return 1;
}

const unsigned char *
vd_nbd_rx_peek (struct vd_nbd_conn *c)
{
  return c->rx + c->rx_start;
}

void
vd_nbd_rx_consume (struct vd_nbd_conn *c, size_t n)
{
  assert (c->rx_end - c->rx_start >= n);
  c->rx_start += n;
  if (c->rx_start == c->rx_end)
    c->rx_start = c->rx_end = 0;
}

int
vd_nbd_rx_copy (struct vd_nbd_conn *c, void *dst, uint64_t len,
                uint64_t *pos)
{
  while (*pos < len) {
    size_t avail = c->rx_end - c->rx_start;
    uint64_t left = len - *pos;
    ssize_t r;

    if (avail > 0) {
      size_t n = left < avail ? (size_t) left : avail;
      memcpy ((char *) dst + *pos, c->rx + c->rx_start, n);
      vd_nbd_rx_consume (c, n);
      *pos += n;
      continue;
    }
    if (c->rx_eagain)
      return 0;
    if (left < RX_BATCH / 2) {
      /* A small remainder: batch it with the headers that follow. */
      int n = vd_nbd_rx_need (c, 1);
      if (n <= 0)
        return n;
      continue;
    }
    r = c->t.ops->recv (c->t.handle, (char *) dst + *pos,
                        left > SSIZE_MAX ? SSIZE_MAX : (size_t) left);
    if (r <= 0)
      return rx_eof_or_error (c, r);
    *pos += r;
    c->bytes_moved += r;
  }
  return 1;
}

static int
grow (unsigned char **buf, size_t *cap, size_t len)
{
  if (len <= *cap)
    return 0;
  unsigned char *p = realloc (*buf, len);
  if (p == NULL)
    return -1;
  *buf = p;
  *cap = len;
  return 0;
}

int
vd_nbd_pay_reserve (struct vd_nbd_conn *c, size_t len)
{
  if (grow (&c->pay, &c->pay_cap, len ? len : 1) == -1) {
    vd_nbd_conn_kill (c, ENOMEM, true, "out of memory for a %zu byte reply",
                      len);
    return -1;
  }
  c->pay_len = len;
  c->pay_pos = 0;
  return 0;
}

int
vd_nbd_opt_reserve (struct vd_nbd_conn *c, size_t len)
{
  if (grow (&c->opt, &c->opt_cap, len) == -1) {
    vd_nbd_conn_kill (c, ENOMEM, true, "out of memory");
    return -1;
  }
  c->opt_len = len;
  c->opt_pos = 0;
  return 0;
}

int
vd_nbd_tx_opt (struct vd_nbd_conn *c)
{
  while (c->opt_pos < c->opt_len) {
    struct iovec iov = { c->opt + c->opt_pos, c->opt_len - c->opt_pos };
    ssize_t r;

    if (c->tx_eagain)
      return 0;
    r = c->t.ops->send (c->t.handle, &iov, 1, false);
    if (r == -1) {
      char ebuf[256];
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) {
        c->tx_eagain = true;
        return 0;
      }
      vd_nbd_conn_kill (c, e, true, "sending to the server: %s",
                        vd_nbd_transport_strerror (c, e, ebuf, sizeof ebuf));
      return -1;
    }
    c->opt_pos += r;
    c->bytes_moved += r;
  }
  return 1;
}

/* Commands. */

void
vd_nbd_cmd_set_error (struct vd_nbd_cmd *cmd, int err, const char *fmt, ...)
{
  va_list args;

  if (cmd->err)
    return;
  cmd->err = err;
  va_start (args, fmt);
  vsnprintf (cmd->errmsg, sizeof cmd->errmsg, fmt, args);
  va_end (args);
}

static void
fail_now (struct vd_nbd_conn *c, struct vd_nbd_cmd *cmd)
{
  vd_nbd_cmd_set_error (cmd, c->err ? c->err : ESHUTDOWN, "%s",
                        c->shutdown_seen ? "the server is shutting down"
                        : c->errmsg[0] ? c->errmsg
                        : "the connection is closed");
  cmd->recoverable = true;
  cmd->done (cmd);
}

static int
alloc_slot (struct vd_nbd_conn *c, uint32_t *slot)
{
  if (c->nr_free == 0) {
    uint32_t n = c->nr_slots ? c->nr_slots * 2 : 64;
    struct vd_nbd_cmd **s;
    uint32_t *f;

    if (n > UINT32_MAX / 2 || n <= c->nr_slots)
      return -1;
    s = realloc (c->slots, n * sizeof *s);
    if (s == NULL)
      return -1;
    c->slots = s;
    f = realloc (c->free_slots, n * sizeof *f);
    if (f == NULL)
      return -1;
    c->free_slots = f;
    for (uint32_t i = n; i > c->nr_slots; --i) {
      c->slots[i - 1] = NULL;
      c->free_slots[c->nr_free++] = i - 1;
    }
    c->nr_slots = n;
  }
  *slot = c->free_slots[--c->nr_free];
  return 0;
}

static void
release_slot (struct vd_nbd_conn *c, struct vd_nbd_cmd *cmd)
{
  if (cmd->slot < c->nr_slots && c->slots[cmd->slot] == cmd) {
    c->slots[cmd->slot] = NULL;
    c->free_slots[c->nr_free++] = cmd->slot;
    c->in_flight--;
  }
}

struct vd_nbd_cmd *
vd_nbd_conn_lookup (struct vd_nbd_conn *c, uint64_t cookie)
{
  uint32_t slot = (uint32_t) cookie;
  struct vd_nbd_cmd *cmd;

  if (slot >= c->nr_slots)
    return NULL;
  cmd = c->slots[slot];
  if (cmd == NULL || cmd->cookie != cookie)
    return NULL;
  return cmd;
}

static void
enqueue (struct vd_nbd_conn *c, struct vd_nbd_cmd *cmd)
{
  cmd->next = NULL;
  if (c->txq_tail)
    c->txq_tail->next = cmd;
  else
    c->txq_head = cmd;
  c->txq_tail = cmd;
  if (c->tx_state == VD_NBD_STATE_ISSUE_IDLE)
    c->tx_state = VD_NBD_STATE_ISSUE_SEND;
}

void
vd_nbd_conn_submit (struct vd_nbd_conn *c, struct vd_nbd_cmd *cmd)
{
  struct vd_nbd_request req;
  uint32_t slot;

  vd_nbd_cmd_reset (cmd);
  if (c->state != VD_NBD_STATE_READY && c->state != VD_NBD_STATE_DEAD &&
      !c->disc_requested) {
    /* The header depends on what the handshake negotiates. */
    if (c->pre_tail)
      c->pre_tail->next = cmd;
    else
      c->pre_head = cmd;
    c->pre_tail = cmd;
    c->nr_pre++;
    return;
  }
  if (c->state != VD_NBD_STATE_READY || c->shutdown_seen ||
      c->disc_requested) {
    fail_now (c, cmd);
    return;
  }
  if (!c->info.extended && cmd->count > UINT32_MAX) {
    /* The layers above split; this is a bug, not a server problem. */
    vd_nbd_cmd_set_error (cmd, EINVAL, "request of %" PRIu64 " bytes does "
                          "not fit a compact NBD header", cmd->count);
    cmd->done (cmd);
    return;
  }
  if (alloc_slot (c, &slot) == -1) {
    vd_nbd_cmd_set_error (cmd, ENOMEM, "out of memory for a new request");
    cmd->done (cmd);
    return;
  }
  c->seq++;
  if (c->seq == 0)
    c->seq = 1;
  cmd->slot = slot;
  cmd->cookie = ((uint64_t) c->seq << 32) | slot;
  c->slots[slot] = cmd;
  c->in_flight++;

  req.flags = cmd->flags;
  req.type = cmd->type;
  req.cookie = cmd->cookie;
  req.offset = cmd->offset;
  req.length = cmd->count;
  if (c->info.extended && cmd->type == NBD_CMD_WRITE)
    req.flags |= NBD_CMD_FLAG_PAYLOAD_LEN;
  cmd->hdr_len = vd_nbd_encode_request (cmd->hdr, c->info.extended, &req);
  assert (cmd->hdr_len > 0);
  enqueue (c, cmd);
}

/* Bytes of header and payload the command puts on the wire. */
static uint64_t
tx_total_of (const struct vd_nbd_cmd *cmd)
{
  return cmd->hdr_len + (cmd->type == NBD_CMD_WRITE ? cmd->count : 0);
}

/* Queue NBD_CMD_DISC once nothing is in flight. */
static void
maybe_queue_disc (struct vd_nbd_conn *c)
{
  struct vd_nbd_request req = { .type = NBD_CMD_DISC };

  if (!c->disc_requested || c->disc_queued || c->in_flight > 0 ||
      c->state != VD_NBD_STATE_READY)
    return;
  memset (&c->disc, 0, sizeof c->disc);
  c->disc.type = NBD_CMD_DISC;
  c->seq++;
  req.cookie = ((uint64_t) c->seq << 32) | UINT32_MAX;
  c->disc.cookie = req.cookie;
  c->disc.slot = UINT32_MAX;
  c->disc.hdr_len = vd_nbd_encode_request (c->disc.hdr, c->info.extended,
                                           &req);
  c->disc_queued = true;
  enqueue (c, &c->disc);
}

void
vd_nbd_conn_disconnect (struct vd_nbd_conn *c)
{
  if (c->state == VD_NBD_STATE_DEAD)
    return;
  if (c->state != VD_NBD_STATE_READY) {
    vd_nbd_conn_kill (c, 0, false, "disconnected during the handshake");
    return;
  }
  c->disc_requested = true;
  maybe_queue_disc (c);
}

void
vd_nbd_cmd_finish (struct vd_nbd_conn *c, struct vd_nbd_cmd *cmd)
{
  if (cmd->err == 0) {
    if (cmd->type == NBD_CMD_READ && (c->info.structured || c->info.extended)
        && cmd->covered != cmd->count)
      vd_nbd_cmd_set_error (cmd, EIO, "the server's reply covered %" PRIu64
                            " of the %" PRIu64 " bytes read at offset %"
                            PRIu64, cmd->covered, cmd->count, cmd->offset);
    else if (cmd->type == NBD_CMD_BLOCK_STATUS && !cmd->has_status)
      vd_nbd_cmd_set_error (cmd, EIO, "the server's block status reply "
                            "had no base:allocation extents");
  }
  if (cmd->err == ESHUTDOWN) {
    /* The server is going away: finish what is in flight, then a soft
     * disconnect (the protocol's MUST); the command is replayed on the
     * next connection by the layer above.
     */
    cmd->recoverable = true;
    if (!c->shutdown_seen) {
      struct vd_nbd_cmd **pp = &c->txq_head, *q;
      uint64_t offered = c->tx_eagain ? c->tx_offered : 0;
      c->shutdown_seen = true;
      c->disc_requested = true;
      /* Fail what has not started going out.  Bytes the last send
       * refused count as gone: the next send must start with them (TLS
       * holds them encrypted already; see struct vd_nbd_transport_ops).
       */
      while ((q = *pp) != NULL) {
        uint64_t left = tx_total_of (q) - q->tx_pos;
        bool held = offered > 0;
        offered = offered > left ? offered - left : 0;
        if (q->tx_pos == 0 && q != &c->disc && !held) {
          *pp = q->next;
          if (c->txq_tail == q) {
            c->txq_tail = NULL;
            for (struct vd_nbd_cmd *t = c->txq_head; t; t = t->next)
              c->txq_tail = t;
          }
          release_slot (c, q);
          q->next = NULL;
          vd_nbd_cmd_set_error (q, ESHUTDOWN, "the server is shutting down");
          q->recoverable = true;
          q->done (q);
        }
        else
          pp = &q->next;
      }
      if (c->txq_head == NULL && c->tx_state == VD_NBD_STATE_ISSUE_SEND)
        c->tx_state = VD_NBD_STATE_ISSUE_IDLE;
    }
  }
  release_slot (c, cmd);
  free (cmd->ranges);
  cmd->ranges = NULL;
  cmd->nr_ranges = cmd->cap_ranges = 0;
  cmd->done (cmd);
  maybe_queue_disc (c);
}

void
vd_nbd_conn_enter_ready (struct vd_nbd_conn *c)
{
  struct vd_nbd_export_info *i = &c->info;

  /* Sizes are int64_t in the API, and offset + block size must never
   * wrap: an export beyond 2^63 bytes is refused.
   */
  if (i->size > (uint64_t) INT64_MAX) {
    vd_nbd_conn_kill (c, EFBIG, false, "the server advertises an export of "
                      "%" PRIu64 " bytes, more than vdisk can address "
                      "(2^63 - 1)", i->size);
    return;
  }

  if (!i->block_size_advertised) {
    i->min_block = 1;
    i->pref_block = 4096;
    i->max_payload = NBD_DEFAULT_MAX_PAYLOAD;
  }
  i->extents = i->extents && (i->structured || i->extended);
  free (c->opt);
  c->opt = NULL;
  c->opt_cap = c->opt_len = c->opt_pos = 0;
  c->state = VD_NBD_STATE_READY;
  c->tx_state = VD_NBD_STATE_ISSUE_IDLE;
  c->rx_state = VD_NBD_STATE_REPLY_START;
  while (c->pre_head) {
    struct vd_nbd_cmd *cmd = c->pre_head;
    c->pre_head = cmd->next;
    if (c->pre_head == NULL)
      c->pre_tail = NULL;
    c->nr_pre--;
    cmd->next = NULL;
    vd_nbd_conn_submit (c, cmd);
  }
}

/* The dispatcher. */

static int
run_state (struct vd_nbd_conn *c, int state)
{
  assert (state >= 0 && state < VD_NBD_NR_STATES);
  return states[state].fn (c);
}

void
vd_nbd_conn_run (struct vd_nbd_conn *c, short revents)
{
  if (c->state == VD_NBD_STATE_DEAD)
    return;
  if (revents & (POLLIN | POLLHUP | POLLERR) ||
      (c->t.ops && c->t.ops->pending (c->t.handle)))
    c->rx_eagain = false;
  if (revents & (POLLOUT | POLLHUP | POLLERR))
    c->tx_eagain = false;

  while (c->state != VD_NBD_STATE_READY && c->state != VD_NBD_STATE_DEAD) {
    if (run_state (c, c->state) == VD_NBD_BLOCK)
      return;
  }
  while (c->state == VD_NBD_STATE_READY) {
    bool progress = false;

    while (c->state == VD_NBD_STATE_READY && !c->tx_eagain &&
           c->tx_state != VD_NBD_STATE_ISSUE_IDLE &&
           c->tx_state != VD_NBD_STATE_ISSUE_DISC) {
      if (run_state (c, c->tx_state) == VD_NBD_BLOCK)
        break;
      progress = true;
    }
    while (c->state == VD_NBD_STATE_READY && !c->rx_eagain) {
      if (run_state (c, c->rx_state) == VD_NBD_BLOCK)
        break;
      progress = true;
    }
    if (!progress)
      break;
  }
}

short
vd_nbd_conn_events (struct vd_nbd_conn *c)
{
  const char *dir;

  if (c->state == VD_NBD_STATE_DEAD)
    return 0;
  if (c->state == VD_NBD_STATE_READY)
    return POLLIN | (c->tx_state == VD_NBD_STATE_ISSUE_SEND ? POLLOUT : 0);
  dir = states[c->state].dir;
  if (strcmp (dir, "tls") == 0)
    return c->tls_want_write ? POLLOUT : POLLIN;
  if (strcmp (dir, "read") == 0)
    return POLLIN;
  if (strcmp (dir, "write") == 0)
    return POLLOUT;
  return POLLIN | POLLOUT;
}
