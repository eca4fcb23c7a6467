/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The transmission phase: the connection thread reads and checks
 * requests, runs short fast ones itself and hands the rest to the worker
 * pool; replies go out through the connection's reply queue (out.c) in
 * whatever order requests finish.
 *
 * Method (docs/internals/server.md has the measurements behind it):
 *   - The connection thread polls its socket, its wake eventfd and the
 *     server's stop pipe.  It reads as much as the socket has into a
 *     64 KiB buffer and parses every complete request in it, so a client
 *     that keeps 16 requests in flight costs one recv for many requests.
 *     Large WRITE payloads are received straight into their own buffer.
 *   - Each request is checked (vd_nbd_validate_request) against the
 *     negotiated state; a bad one gets an error reply and a log line
 *     naming the client, command, offset and length.  Only protocol
 *     violations that make the stream unreadable (bad magic, an extended
 *     payload beyond the limit) end the connection.
 *   - READ and WRITE of up to 1 MiB, and CACHE and BLOCK_STATUS of up
 *     to 128 KiB, run inline on the connection thread while they are
 *     fast (an average under 50 us beyond what their data takes at
 *     4 GiB/s, i.e. served from the page cache); their replies are
 *     batched into one sendmsg.  Everything else, and everything once
 *     inline requests turn slow, goes to the pool, so one slow request
 *     never holds up the others.  Every 32nd request is probed inline
 *     again.
 *   - Back pressure: at most SRV_MAX_INFLIGHT requests and the
 *     connection's byte budget in flight; beyond that the thread stops
 *     reading the socket until replies have been sent.
 *   - End: on NBD_CMD_DISC, end of file, a protocol error or server
 *     shutdown the thread stops reading, waits for the requests in flight
 *     and their replies (bounded by the drain timeout on shutdown), then
 *     returns and the connection is closed.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "errors.h"
#include "iszero.h"
#include "minmax.h"
#include "vector.h"

#define INLINE_SLOW_NS   50000   /* inline average above this: use pool */
#define INLINE_SLOW_MAX_NS UINT64_C (100000) /* one request counts
                                               at most this much */
#define INLINE_NS_PER_KIB 250    /* time a read or write may take for its
                                    data before it counts (4 GiB/s) */
#define INLINE_FLUSH_NS  10000   /* a request this slow sends the batch's
                                    replies at once */
#define INLINE_PROBE     32      /* re-probe inline every N requests */
#define MAX_ERROR_MSG    1024

/* ---- Replies ------------------------------------------------------------ */

static bool
chunked (const struct conn *c)
{
  return c->structured || c->extended;
}

/* A chunk header (+ an optional small payload prefix) in a new item. */
static struct out_item *
chunk_item (struct request *req, uint16_t flags, uint16_t type,
            uint64_t payload_len, const void *prefix, size_t prefix_len)
{
  struct conn *c = req->c;
  struct out_item *it = out_item_new ();
  size_t n;

  if (it == NULL)
    return NULL;
  n = vd_nbd_encode_chunk_header (it->hdr, c->extended, flags, type,
                                  req->r.cookie, req->r.offset, payload_len);
  if (prefix_len)
    memcpy (it->hdr + n, prefix, prefix_len);
  it->hdr_len = n + prefix_len;
  return it;
}

/* Attach the request's accounting to the last item of a chain and queue
 * it.  On allocation failure the connection cannot be kept in step: it
 * is marked dead (the client sees a hard disconnect).
 */
static void
send_chain (struct request *req, struct out_item *chain, bool alloc_failed)
{
  struct conn *c = req->c;
  struct out_item *last;

  if (alloc_failed || chain == NULL) {
    struct out_item *it, *next;
    for (it = chain; it; it = next) {
      next = it->next;
      srv_buf_free (it->owner);
      free (it);
    }
    conn_log (c, "out of memory building a reply: disconnecting");
    pthread_mutex_lock (&c->out_lock);
    c->dead = true;
    out_drop_locked (c);
    pthread_mutex_unlock (&c->out_lock);
    conn_release (c, req->acct_bytes, 1);
    return;
  }
  for (last = chain; last->next; last = last->next)
    ;
  last->release_bytes = req->acct_bytes;
  last->release_reqs = 1;
  out_queue (c, chain);
}

static void
reply_ok (struct request *req)
{
  struct out_item *it;

  if (req->c->extended)
    it = chunk_item (req, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, 0,
                     NULL, 0);
  else {
    it = out_item_new ();
    if (it)
      it->hdr_len = vd_nbd_encode_simple_reply (it->hdr, req->r.cookie, 0);
  }
  send_chain (req, it, it == NULL);
}

static void
reply_error (struct request *req, uint32_t nbd_error, const char *msg)
{
  struct conn *c = req->c;
  struct out_item *it;

  if (!chunked (c)) {
    it = out_item_new ();
    if (it)
      it->hdr_len = vd_nbd_encode_simple_reply (it->hdr, req->r.cookie,
                                                nbd_error);
    send_chain (req, it, it == NULL);
    return;
  }
  {
    size_t mlen = msg ? strlen (msg) : 0;
    ssize_t plen;
    unsigned char *payload;

    if (mlen > MAX_ERROR_MSG)
      mlen = MAX_ERROR_MSG;
    plen = vd_nbd_encode_error_chunk (NULL, 0, nbd_error, msg, mlen, false,
                                      0);
    payload = srv_buf_alloc (plen);
    it = payload ? chunk_item (req, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
                               plen, NULL, 0) : NULL;
    if (it == NULL) {
      srv_buf_free (payload);
      send_chain (req, NULL, true);
      return;
    }
    vd_nbd_encode_error_chunk (payload, plen, nbd_error, msg, mlen, false, 0);
    it->data = payload;
    it->data_len = plen;
    it->owner = payload;
    send_chain (req, it, false);
  }
}

static void
log_request (struct conn *c, const struct vd_nbd_request *r,
             const char *what, uint32_t nbd_error, const char *why)
{
  char flags[96], cmd[32];
  const char *name = vd_nbd_cmd_name (r->type);

  if (strcmp (name, "unknown") == 0) {
    snprintf (cmd, sizeof cmd, "command %u", r->type);
    name = cmd;
  }
  conn_log (c, "%s offset %" PRIu64 " length %" PRIu64 " flags %s %s: %s "
            "(%s)", name, r->offset, r->length,
            vd_nbd_cmd_flags_string (r->flags, flags, sizeof flags), what,
            why ? why : "", vd_nbd_error_name (nbd_error));
}

/* A request refused before it ran. */
static void
reject (struct request *req, uint32_t nbd_error, const char *why)
{
  log_request (req->c, &req->r, "rejected", nbd_error, why);
  reply_error (req, nbd_error, why);
}

/* ---- Execution ---------------------------------------------------------- */

struct extent {
  uint64_t offset, length;
  uint32_t state;
};
DEFINE_VECTOR_TYPE (extent_vector, struct extent);

struct extent_collector {
  struct extent_vector v;
  size_t max;
  bool truncated;
};

static int
collect_extent (void *ud, uint64_t offset, uint64_t length, uint32_t state)
{
  struct extent_collector *ec = ud;

  if (ec->v.len >= ec->max) {
    ec->truncated = true;       /* enough for one reply */
    return -1;
  }
  if (extent_vector_append (&ec->v,
                            (struct extent) { offset, length, state }) == -1)
    return -1;
  return 0;
}

/* Extents of [offset, offset + count), at most max of them.  0 or -1
 * (error raised by the attachment).
 */
static int
get_extents (struct export *e, uint64_t count, uint64_t offset,
             uint32_t flags, size_t max, struct extent_collector *ec)
{
  ec->max = max;
  ec->truncated = false;
  if (vd_attachment_block_status (e->a, count, offset, flags, collect_extent,
                                  ec) == -1 && !ec->truncated)
    return -1;
  if (ec->v.len == 0) {
    vd_error_msg (EIO, "%s: block status returned no extents", e->name);
    return -1;
  }
  return 0;
}

/* One content chunk of a read: data from buf, or a hole. */
static struct out_item *
read_chunk (struct request *req, unsigned char *buf, uint64_t pos,
            uint64_t len, bool hole, bool last)
{
  const uint16_t flags = last ? NBD_REPLY_FLAG_DONE : 0;
  unsigned char prefix[VD_NBD_OFFSET_HOLE_SIZE];
  struct out_item *it;

  if (hole) {
    vd_nbd_encode_offset_hole (prefix, pos, (uint32_t) len);
    return chunk_item (req, flags, NBD_REPLY_TYPE_OFFSET_HOLE,
                       VD_NBD_OFFSET_HOLE_SIZE, prefix,
                       VD_NBD_OFFSET_HOLE_SIZE);
  }
  vd_nbd_encode_offset_data_prefix (prefix, pos);
  it = chunk_item (req, flags, NBD_REPLY_TYPE_OFFSET_DATA, 8 + len, prefix,
                   8);
  if (it) {
    it->data = buf + (pos - req->r.offset);
    it->data_len = len;
  }
  return it;
}

static void
do_read (struct request *req)
{
  struct conn *c = req->c;
  struct export *e = c->exp;
  const uint64_t off = req->r.offset, len = req->r.length;
  unsigned char *buf;
  struct out_item *chain = NULL, **tail = &chain, *it = NULL;
  bool sparse;

  if (len == 0) {
    /* Nothing to read: an empty success. */
    if (!chunked (c)) {
      it = out_item_new ();
      if (it)
        it->hdr_len = vd_nbd_encode_simple_reply (it->hdr, req->r.cookie, 0);
    }
    else
      it = chunk_item (req, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, 0,
                       NULL, 0);
    send_chain (req, it, it == NULL);
    return;
  }
  buf = srv_buf_alloc (len);
  if (buf == NULL) {
    vd_error_msg (ENOMEM, "out of memory for a read of %" PRIu64 " bytes",
                  len);
    goto error;
  }

  if (vd_attachment_pread (e->a, buf, len, off, 0) == -1) {
    srv_buf_free (buf);
    goto error;
  }
  sparse = chunked (c) && !(req->r.flags & NBD_CMD_FLAG_DF) &&
    len >= SRV_SPARSE_READ_MIN;
  if (sparse) {
    /* Zero runs of whole 64 KiB blocks (aligned to the export) go out
     * as OFFSET_HOLE chunks, the rest as OFFSET_DATA.  Checking the data
     * costs next to nothing (is_zero stops at the first non-zero byte)
     * and, unlike asking block status, finds explicit zeros too.
     */
    uint64_t pos = off, end = off + len, run_start = off;
    bool run_zero = false, first = true;
    while (pos < end) {
      uint64_t next = (pos / SRV_SPARSE_READ_MIN + 1) * SRV_SPARSE_READ_MIN;
      bool z;
      if (next > end)
        next = end;
      z = next - pos == SRV_SPARSE_READ_MIN &&
        is_zero (buf + (pos - off), next - pos);
      if (first) {
        run_zero = z;
        first = false;
      }
      else if (z != run_zero) {
        it = read_chunk (req, buf, run_start, pos - run_start, run_zero,
                         false);
        if (it == NULL)
          break;
        *tail = it;
        tail = &it->next;
        run_start = pos;
        run_zero = z;
      }
      pos = next;
    }
    if (pos == end)
      it = read_chunk (req, buf, run_start, end - run_start, run_zero, true);
    if (it == NULL) {
      send_chain (req, chain, true);
      srv_buf_free (buf);
      return;
    }
    *tail = it;
    if (run_zero && chain == it) {
      /* The whole read was zeros: nothing points into the buffer. */
      srv_buf_free (buf);
      send_chain (req, chain, false);
      return;
    }
    /* The last item frees the buffer, after every chunk that points into
     * it has been sent.
     */
    it->owner = buf;
    send_chain (req, chain, false);
    return;
  }

  if (!chunked (c)) {
    it = out_item_new ();
    if (it) {
      it->hdr_len = vd_nbd_encode_simple_reply (it->hdr, req->r.cookie, 0);
      it->data = buf;
      it->data_len = len;
      it->owner = buf;
    }
    else
      srv_buf_free (buf);
  }
  else if (is_zero (buf, len)) {
    unsigned char prefix[VD_NBD_OFFSET_HOLE_SIZE];
    srv_buf_free (buf);
    vd_nbd_encode_offset_hole (prefix, off, (uint32_t) len);
    it = chunk_item (req, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_HOLE,
                     VD_NBD_OFFSET_HOLE_SIZE, prefix,
                     VD_NBD_OFFSET_HOLE_SIZE);
  }
  else {
    unsigned char prefix[8];
    vd_nbd_encode_offset_data_prefix (prefix, off);
    it = chunk_item (req, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA,
                     8 + len, prefix, 8);
    if (it) {
      it->data = buf;
      it->data_len = len;
      it->owner = buf;
    }
    else
      srv_buf_free (buf);
  }
  send_chain (req, it, it == NULL);
  return;

 error:
  {
    int err = vd_get_errno ();
    uint32_t nbd = vd_nbd_errno_to_wire (err, false);
    const char *msg = vd_get_error ();
    log_request (c, &req->r, "failed", nbd, msg);
    reply_error (req, nbd, msg);
  }
}

static void
do_block_status (struct request *req)
{
  struct conn *c = req->c;
  struct export *e = c->exp;
  struct extent_collector ec = { .v = empty_vector };
  const bool ext = c->extended;
  const bool req_one = (req->r.flags & NBD_CMD_FLAG_REQ_ONE) != 0;
  unsigned char *payload;
  size_t plen, p;
  struct out_item *it;

  if (get_extents (e, req->r.length, req->r.offset,
                   req_one ? VD_FLAG_REQ_ONE : 0,
                   req_one ? 1 : SRV_MAX_EXTENTS, &ec) == -1) {
    int err = vd_get_errno ();
    uint32_t nbd = vd_nbd_errno_to_wire (err, false);
    log_request (c, &req->r, "failed", nbd, vd_get_error ());
    reply_error (req, nbd, vd_get_error ());
    free (ec.v.ptr);
    return;
  }
  plen = vd_nbd_block_status_header_size (ext) +
    ec.v.len * vd_nbd_block_descriptor_size (ext);
  payload = srv_buf_alloc (plen);
  if (payload == NULL) {
    free (ec.v.ptr);
    send_chain (req, NULL, true);
    return;
  }
  p = vd_nbd_encode_block_status_header (payload, ext, SRV_META_CONTEXT_ID,
                                         ec.v.len);
  for (size_t i = 0; i < ec.v.len; ++i)
    /* Compact requests are at most 4 GiB - 1, and extents never go past
     * the request: every length fits in 32 bits.
     */
    p += vd_nbd_encode_block_descriptor (payload + p, ext,
                                         ec.v.ptr[i].length,
                                         ec.v.ptr[i].state &
                                         (NBD_STATE_HOLE | NBD_STATE_ZERO));
  free (ec.v.ptr);
  it = chunk_item (req, NBD_REPLY_FLAG_DONE,
                   ext ? NBD_REPLY_TYPE_BLOCK_STATUS_EXT
                   : NBD_REPLY_TYPE_BLOCK_STATUS, plen, NULL, 0);
  if (it == NULL) {
    srv_buf_free (payload);
    send_chain (req, NULL, true);
    return;
  }
  it->data = payload;
  it->data_len = plen;
  it->owner = payload;
  send_chain (req, it, false);
}

/* Run a checked request and reply.  Frees req. */
void
request_execute (struct request *req)
{
  struct conn *c = req->c;
  struct vd_attachment *a = c->exp->a;
  const struct vd_nbd_request *r = &req->r;
  const uint32_t fua = (r->flags & NBD_CMD_FLAG_FUA) ? VD_FLAG_FUA : 0;
  bool fast_zero = false;
  int ret = 0;

  vd_error_clear ();
  switch (r->type) {
  case NBD_CMD_READ:
    do_read (req);
    goto out;
  case NBD_CMD_BLOCK_STATUS:
    do_block_status (req);
    goto out;
  case NBD_CMD_WRITE:
    ret = vd_attachment_pwrite (a, req->payload, r->length, r->offset, fua);
    break;
  case NBD_CMD_FLUSH:
    ret = vd_attachment_flush (a, 0);
    break;
  case NBD_CMD_TRIM:
    ret = vd_attachment_discard (a, r->length, r->offset, fua);
    break;
  case NBD_CMD_WRITE_ZEROES: {
    uint32_t f = fua;
    if (!(r->flags & NBD_CMD_FLAG_NO_HOLE))
      f |= VD_FLAG_MAY_TRIM;
    if (r->flags & NBD_CMD_FLAG_FAST_ZERO) {
      f |= VD_FLAG_FAST_ZERO;
      fast_zero = true;
    }
    ret = vd_attachment_write_zeroes (a, r->length, r->offset, f);
    break;
  }
  case NBD_CMD_CACHE:
    ret = vd_attachment_cache (a, r->length, r->offset, 0);
    break;
  default:
    /* vd_nbd_validate_request lets nothing else through. */
    vd_error_msg (EINVAL, "unexpected command %u", r->type);
    ret = -1;
    break;
  }
  if (ret == -1) {
    int err = vd_get_errno ();
    uint32_t nbd = vd_nbd_errno_to_wire (err, fast_zero);
    const char *msg = vd_get_error ();
    /* A refused fast zero is part of the protocol (clients fall back to
     * writing zeroes): not worth a line unless asked.
     */
    if (fast_zero && nbd == NBD_ENOTSUP)
      conn_debug (c, 1, "NBD_CMD_WRITE_ZEROES offset %" PRIu64 " length %"
                  PRIu64 ": fast zero not possible", r->offset, r->length);
    else
      log_request (c, r, "failed", nbd, msg);
    reply_error (req, nbd, msg);
  }
  else
    reply_ok (req);
 out:
  if (!req->payload_borrowed)
    srv_buf_free (req->payload);
  free (req);
}

/* ---- Receiving and dispatching ------------------------------------------ */

static uint64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Waiting for the client: poll, busy first.
 *
 * Putting the connection thread to sleep and waking it for the next
 * request costs tens of microseconds on a virtual machine (the idle vCPU
 * halts, and the wakeup is an interrupt through the hypervisor): at queue
 * depth 1 it was half the round trip of a 4 KiB read, which ran at 0.8x
 * nbdkit's rate (docs/internals/server.md, "Waiting").  So a connection
 * that waits for input polls without sleeping for up to poll_ns first,
 * as QEMU's IOThreads do (poll-max-ns).  The window adapts to the client
 * as there: it grows (4 us, doubling, up to --busy-poll) while requests
 * arrive just after it ran out, and halves when the client was idle for
 * longer than the maximum, so an idle connection soon costs nothing.
 * Only CPUs - 1 threads spin at once, so a spinning server never takes
 * the last CPU from its clients.
 */
/* Take one of the server's max_spinning slots; false if none is free.
 * A taken slot is given back with spin_end.
 */
static bool
spin_begin (struct server *s)
{
  if (atomic_fetch_add (&s->spinning, 1) < s->max_spinning)
    return true;
  atomic_fetch_sub (&s->spinning, 1);
  return false;
}

static void
spin_end (struct server *s)
{
  atomic_fetch_sub (&s->spinning, 1);
}

static int
wait_poll (struct conn *c, struct pollfd *pfd, int nfds, int timeout,
           bool for_input)
{
  struct server *s = c->s;
  uint64_t max_ns = (uint64_t) s->cfg.busy_poll_us * 1000, t0 = 0, waited;
  int r = 0;

  if (!for_input || max_ns == 0)
    return poll (pfd, nfds, timeout);
  if (c->poll_ns > 0 && spin_begin (s)) {
    uint64_t end;
    t0 = now_ns ();
    end = t0 + c->poll_ns;
    do
      r = poll (pfd, nfds, 0);
    while (r == 0 && now_ns () < end);
    spin_end (s);
  }
  if (t0 == 0)
    t0 = now_ns ();
  if (r == 0)
    r = poll (pfd, nfds, timeout);
  waited = now_ns () - t0;
  if (waited <= c->poll_ns)
    ;                           /* came while polling */
  else if (waited > max_ns)
    c->poll_ns /= 2;            /* an idle client */
  else
    c->poll_ns = c->poll_ns ? MIN (2 * c->poll_ns, max_ns) : 4000;
  return r;
}

static bool
budget_exhausted (struct conn *c)
{
  bool r;

  pthread_mutex_lock (&c->out_lock);
  r = c->inflight_reqs >= SRV_MAX_INFLIGHT ||
    (c->inflight_bytes > 0 &&
     c->inflight_bytes >= c->s->cfg.conn_buffer_limit);
  pthread_mutex_unlock (&c->out_lock);
  return r;
}

static void
account (struct conn *c, struct request *req, uint64_t bytes)
{
  req->acct_bytes = bytes;
  pthread_mutex_lock (&c->out_lock);
  c->inflight_reqs++;
  c->inflight_bytes += bytes;
  pthread_mutex_unlock (&c->out_lock);
}

static bool
inline_eligible (struct conn *c, const struct vd_nbd_request *r)
{
  if (!c->s->cfg.inline_io)
    return false;
  switch (r->type) {
  case NBD_CMD_READ:
  case NBD_CMD_WRITE:
  case NBD_CMD_CACHE:
  case NBD_CMD_BLOCK_STATUS:
    break;
  default:
    return false;
  }
  /* Reads and writes up to 1 MiB: from the page cache a large request
   * on the connection thread costs less than the hand-off to a worker
   * (its wakeup, and the data received or read on one CPU and written or
   * sent from another).  nbdcopy with 4 connections over TCP, 1 GiB to
   * null: server CPU 220-330 ms against 280-370 ms through the pool,
   * futex calls 218 against 5392; 1 GiB from a file, 4 connections over
   * TCP: 0.23-0.30 against 0.31-0.46 ms of server CPU per MiB, median
   * 2535 against 2088 MiB/s (docs/internals/server.md).
   */
  if (r->length > (r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE
                   ? SRV_INLINE_DATA_MAX : SRV_INLINE_MAX))
    return false;
  if (c->inline_ewma_ns <= INLINE_SLOW_NS)
    return true;
  /* Slow lately: probe now and then, to notice when it is fast again. */
  return ++c->inline_probe % INLINE_PROBE == 0;
}

/* A request whose header and payload are complete. */
static void
dispatch (struct conn *c, struct request *req)
{
  const struct vd_nbd_request *r = &req->r;
  uint32_t nbd_error;
  const char *why = NULL;
  uint64_t bytes = 0;

  if (r->type == NBD_CMD_READ)
    bytes = r->length;
  else if (req->payload)
    bytes = r->length;
  if (r->type == NBD_CMD_DISC) {
    /* No reply, whatever it carries. */
    if (vd_nbd_validate_request (r, &c->tx, &nbd_error, &why) == -1)
      log_request (c, r, "malformed", nbd_error, why);
    conn_debug (c, 1, "client sent NBD_CMD_DISC");
    c->reading_done = true;
    free (req);
    return;
  }
  c->nr_dispatched++;
  account (c, req, bytes);
  if (req->error) {
    reject (req, req->error, req->error_why);
    goto free_req;
  }
  if (vd_nbd_validate_request (r, &c->tx, &nbd_error, &why) == -1) {
    reject (req, nbd_error, why);
    goto free_req;
  }
  if (c->s->cfg.verbose >= 2) {
    char flags[96];
    conn_log (c, "%s offset %" PRIu64 " length %" PRIu64 " flags %s",
              vd_nbd_cmd_name (r->type), r->offset, r->length,
              vd_nbd_cmd_flags_string (r->flags, flags, sizeof flags));
  }
  if (inline_eligible (c, r)) {
    /* Counted against the EWMA: what the request took beyond the time
     * its data allows, so a large read from the page cache is not slow
     * and one from a disk is; and at most INLINE_SLOW_MAX_NS, so one
     * request that lost its CPU for a while (two vCPUs, four connection
     * threads) does not send the connection to the pool: only a run of
     * slow ones does.  (Taken before: req is gone afterwards.)
     */
    uint64_t allow = 0, t0, dt, excess;
    if (r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE)
      allow = r->length / 1024 * INLINE_NS_PER_KIB;
    t0 = now_ns ();
    request_execute (req);
    dt = now_ns () - t0;
    excess = MIN (dt > allow ? dt - allow : 0, INLINE_SLOW_MAX_NS);
    c->inline_ewma_ns = (c->inline_ewma_ns * 7 + excess) / 8;
    if (dt > INLINE_FLUSH_NS) {
      /* Batching replies pays for cheap requests only; after a slower one
       * let the client have its replies rather than wait for the batch.
       */
      pthread_mutex_lock (&c->out_lock);
      out_flush_locked (c);
      pthread_mutex_unlock (&c->out_lock);
    }
    return;
  }
  if (req->payload_borrowed) {
    /* The payload still sits in the receive buffer: copy it for the
     * worker.
     */
    void *p = srv_buf_alloc (r->length);
    if (p == NULL) {
      reject (req, NBD_ENOMEM, "out of memory");
      goto free_req;
    }
    memcpy (p, req->payload, r->length);
    req->payload = p;
    req->payload_borrowed = false;
  }
  pool_submit (&c->s->pool, req);
  return;

 free_req:
  if (!req->payload_borrowed)
    srv_buf_free (req->payload);
  free (req);
}

static void
protocol_error (struct conn *c, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
static void
protocol_error (struct conn *c, const char *fmt, ...)
{
  char msg[256];
  va_list args;

  va_start (args, fmt);
  vsnprintf (msg, sizeof msg, fmt, args);
  va_end (args);
  conn_log (c, "%s: disconnecting", msg);
  c->reading_done = true;
  c->protocol_error = true;
}

/* Parse every complete request in the receive buffer (stopping when the
 * budget is used up).
 */
static void
parse_requests (struct conn *c)
{
  const size_t hsize = vd_nbd_request_size (c->extended);

  while (!c->reading_done && c->partial == NULL && c->discard_left == 0 &&
         c->rx_end - c->rx_start >= hsize && !budget_exhausted (c)) {
    struct request *req;
    const char *why = NULL;
    uint64_t plen, avail;

    req = calloc (1, sizeof *req);
    if (req == NULL) {
      protocol_error (c, "out of memory");
      return;
    }
    req->c = c;
    if (vd_nbd_decode_request (c->rx + c->rx_start, hsize, c->extended,
                               &req->r, &why) == -1) {
      free (req);
      protocol_error (c, "%s", why);
      return;
    }
    c->rx_start += hsize;
    plen = vd_nbd_request_payload_length (&req->r, c->extended);
    avail = c->rx_end - c->rx_start;

    if (plen > c->tx.max_payload) {
      if (c->extended) {
        /* The specification asks for a hard disconnect here. */
        protocol_error (c, "%s with a payload of %" PRIu64 " bytes, above "
                        "the maximum of %" PRIu32,
                        vd_nbd_cmd_name (req->r.type), plen,
                        c->tx.max_payload);
        free (req);
        return;
      }
      /* A compact WRITE that is too large: skip the payload, keep the
       * stream in step, refuse it.
       */
      req->error = NBD_EINVAL;
      req->error_why = "payload larger than the maximum request size";
    }
    else if (plen > 0 && req->r.type != NBD_CMD_WRITE) {
      /* Extended requests may carry a payload only where the command
       * defines one; we define none besides WRITE.
       */
      req->error = NBD_EINVAL;
      req->error_why = "payload on a command that takes none";
    }

    if (plen > 0 && req->error) {
      uint64_t n = avail < plen ? avail : plen;
      c->rx_start += n;
      c->discard_left = plen - n;
      if (c->discard_left) {
        c->discard_req = req;
        return;
      }
    }
    else if (plen > 0) {
      if (avail >= plen) {
        /* Whole payload buffered: borrow it (copied if the request goes
         * to the pool).
         */
        req->payload = c->rx + c->rx_start;
        req->payload_borrowed = true;
        c->rx_start += plen;
      }
      else {
        req->payload = srv_buf_alloc (plen);
        if (req->payload == NULL) {
          req->error = NBD_ENOMEM;
          req->error_why = "out of memory for the payload";
          c->rx_start += avail;
          c->discard_left = plen - avail;
          c->discard_req = req;
          return;
        }
        memcpy (req->payload, c->rx + c->rx_start, avail);
        c->rx_start += avail;
        c->partial = req;
        c->partial_got = avail;
        return;
      }
    }
    dispatch (c, req);
  }
}

/* Move unparsed bytes to the front of the receive buffer. */
static void
compact_rx (struct conn *c)
{
  if (c->rx_start == c->rx_end)
    c->rx_start = c->rx_end = 0;
  else if (c->rx_start > 0) {
    memmove (c->rx, c->rx + c->rx_start, c->rx_end - c->rx_start);
    c->rx_end -= c->rx_start;
    c->rx_start = 0;
  }
}

/* Handle a recv result: 1 = data, 0 = stop for now (EAGAIN), -1 = the
 * input ended (EOF or error).
 */
static int
check_recv (struct conn *c, ssize_t r)
{
  if (r > 0)
    return 1;
  if (r == 0) {
    if (c->partial || c->discard_left || c->rx_end > c->rx_start)
      conn_log (c, "client disconnected in the middle of a request");
    else
      conn_debug (c, 1, "client closed the connection");
    c->reading_done = true;
    return -1;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return 0;
  if (errno == ECONNRESET)
    conn_debug (c, 1, "client reset the connection");
  else
    conn_log (c, "reading requests: %m");
  c->reading_done = true;
  return -1;
}

/* Read what the socket has (a bounded number of times) and act on it. */
static void
process_input (struct conn *c)
{
  for (int rounds = 0; rounds < 16 && !c->reading_done; ++rounds) {
    ssize_t r;
    int k;

    if (c->discard_left) {
      size_t n = c->discard_left < SRV_RXBUF_SIZE
        ? (size_t) c->discard_left : SRV_RXBUF_SIZE;
      r = c->t.ops->recv (&c->t, c->rx, n);
      if ((k = check_recv (c, r)) <= 0)
        return;
      c->discard_left -= r;
      if (c->discard_left == 0) {
        struct request *req = c->discard_req;
        c->discard_req = NULL;
        dispatch (c, req);
      }
      continue;
    }
    if (c->partial) {
      struct request *req = c->partial;
      r = c->t.ops->recv (&c->t, (char *) req->payload + c->partial_got,
                          req->r.length - c->partial_got);
      if ((k = check_recv (c, r)) <= 0)
        return;
      c->partial_got += r;
      if (c->partial_got == req->r.length) {
        c->partial = NULL;
        dispatch (c, req);
      }
      continue;
    }
    /* Parse what is buffered before reading more. */
    parse_requests (c);
    if (c->reading_done || c->partial || c->discard_left)
      continue;
    if (budget_exhausted (c))
      return;
    compact_rx (c);
    r = c->t.ops->recv (&c->t, c->rx + c->rx_end, SRV_RXBUF_SIZE - c->rx_end);
    if ((k = check_recv (c, r)) <= 0)
      return;
    c->rx_end += r;
    parse_requests (c);
    if (c->rx_end < SRV_RXBUF_SIZE && !c->t.ops->pending (&c->t) &&
        c->partial == NULL && c->discard_left == 0)
      return;                   /* took everything there was */
  }
}

/* Holding replies back for the next requests (TCP only).
 *
 * A client that keeps many small requests in flight over TCP sends them
 * one segment at a time, and the connection thread, faster than the
 * client, takes them one at a time: every request cost a recv, a sendmsg
 * of one 16-byte reply and one loopback segment, and the sendmsg (with
 * the client's side of the segment, which loopback runs in the sender's
 * context) was half of the server's CPU time.  So after a batch of
 * inline requests the thread waits a few microseconds, polling, for the
 * client's next requests, runs them, and sends all their replies in one
 * sendmsg.  4 KiB random writes at queue depth 16 over TCP: 0.3 instead
 * of 0.8 sendmsg per request (docs/internals/server.md, "Holding
 * replies").  A unix socket's sendmsg is cheap, and there holding made
 * the same job slower, so it is done on TCP only.
 *
 * A client that waits for each reply (queue depth 1) sends nothing while
 * we hold, so the window adapts as the busy-poll one does: it doubles
 * (up to HOLD_MAX_NS, and never beyond --busy-poll) each time a request
 * came while holding, halves each time none did, and once under
 * HOLD_MIN_NS holding stops, tried again every HOLD_PROBE batches.  A
 * client at queue depth 1 thus waits HOLD_MIN_NS once every HOLD_PROBE
 * requests.  Holding ends early at HOLD_MAX_REPLIES replies or
 * HOLD_MAX_BYTES of reply data (large replies gain nothing from sharing
 * a sendmsg), and it spins, so it counts as a spinning thread.
 */
#define HOLD_MIN_NS       UINT64_C (2000)
#define HOLD_MAX_NS       UINT64_C (16000)
#define HOLD_PROBE        64
#define HOLD_MAX_REPLIES  8
#define HOLD_MAX_BYTES    (64 * 1024)

/* Replies and reply bytes queued, not yet sent. */
static void
held_replies (struct conn *c, uint32_t *reqs, uint64_t *bytes)
{
  *reqs = 0;
  *bytes = 0;
  pthread_mutex_lock (&c->out_lock);
  for (struct out_item *it = c->out_head; it; it = it->next) {
    *reqs += it->release_reqs;
    *bytes += it->hdr_len + it->data_len - it->sent;
  }
  pthread_mutex_unlock (&c->out_lock);
}

/* Called while batching, after a batch of input, before the flush. */
static void
hold_replies (struct conn *c)
{
  struct server *s = c->s;
  uint64_t max_ns = MIN ((uint64_t) s->cfg.busy_poll_us * 1000, HOLD_MAX_NS);
  uint64_t end, before = c->nr_dispatched;
  uint32_t reqs;
  uint64_t bytes;

  if (!c->tcp || max_ns < HOLD_MIN_NS || c->reading_done)
    return;
  if (c->hold_ns < HOLD_MIN_NS) {
    if (++c->hold_skipped < HOLD_PROBE)
      return;
    c->hold_skipped = 0;
    c->hold_ns = HOLD_MIN_NS;
  }
  held_replies (c, &reqs, &bytes);
  if (reqs == 0 || reqs >= HOLD_MAX_REPLIES || bytes >= HOLD_MAX_BYTES)
    return;
  if (!spin_begin (s))
    return;
  end = now_ns () + c->hold_ns;
  for (;;) {
    struct pollfd pfd = { .fd = c->t.fd_in, .events = POLLIN };

    if (c->t.ops->pending (&c->t) || poll (&pfd, 1, 0) > 0) {
      process_input (c);
      held_replies (c, &reqs, &bytes);
      if (reqs >= HOLD_MAX_REPLIES || bytes >= HOLD_MAX_BYTES)
        break;
    }
    if (c->reading_done || c->partial || c->discard_left ||
        budget_exhausted (c) || now_ns () >= end)
      break;
  }
  spin_end (s);
  if (c->nr_dispatched > before)
    c->hold_ns = MIN (2 * c->hold_ns, max_ns);
  else
    c->hold_ns /= 2;
}

void
transmission (struct conn *c)
{
  struct server *s = c->s;
  double drain_deadline = -1;
  bool stop_seen = false;

  c->rx = malloc (SRV_RXBUF_SIZE);
  if (c->rx == NULL) {
    conn_log (c, "out of memory");
    return;
  }
  for (;;) {
    struct pollfd pfd[4];
    int nfds = 0, in_idx = -1, out_idx = -1, timeout = -1, r;
    bool want_in, want_out, done, throttled;

    if (!stop_seen && srv_stopping (s)) {
      stop_seen = true;
      if (!c->reading_done)
        conn_debug (c, 1, "server shutting down: finishing the requests "
                    "in flight");
      c->reading_done = true;
      drain_deadline = srv_now () + s->cfg.drain_timeout;
    }

    pthread_mutex_lock (&c->out_lock);
    /* Decided under the lock that releases take, so a release between
     * the decision and poll always wakes us.
     */
    throttled = !c->reading_done &&
      (c->inflight_reqs >= SRV_MAX_INFLIGHT ||
       (c->inflight_bytes > 0 &&
        c->inflight_bytes >= s->cfg.conn_buffer_limit));
    if (c->dead)
      c->reading_done = true;
    done = c->reading_done && c->inflight_reqs == 0 && !c->sending &&
      (c->out_head == NULL || c->dead);
    /* A worker sending takes care of the queue: it wakes us if the
     * socket is full when it stops.
     */
    want_out = c->out_head != NULL && !c->dead && !c->sending;
    c->polls_out = want_out;
    want_in = !c->reading_done && !throttled;
    c->throttled = throttled;
    c->want_wake = throttled || c->reading_done;
    pthread_mutex_unlock (&c->out_lock);
    if (done)
      break;

    if (want_in && (c->rx_end - c->rx_start >= vd_nbd_request_size (c->extended)
                    || c->t.ops->pending (&c->t))) {
      /* Buffered requests (we were throttled) or buffered TLS data. */
      pthread_mutex_lock (&c->out_lock);
      c->batching = true;
      pthread_mutex_unlock (&c->out_lock);
      process_input (c);
      pthread_mutex_lock (&c->out_lock);
      c->batching = false;
      out_flush_locked (c);
      pthread_mutex_unlock (&c->out_lock);
      continue;
    }

    if (c->t.fd_in == c->t.fd_out && (want_in || want_out)) {
      pfd[nfds] = (struct pollfd) { .fd = c->t.fd_in,
        .events = (want_in ? POLLIN : 0) | (want_out ? POLLOUT : 0) };
      in_idx = out_idx = nfds++;
    }
    else {
      if (want_in) {
        pfd[nfds] = (struct pollfd) { .fd = c->t.fd_in, .events = POLLIN };
        in_idx = nfds++;
      }
      if (want_out) {
        pfd[nfds] = (struct pollfd) { .fd = c->t.fd_out, .events = POLLOUT };
        out_idx = nfds++;
      }
    }
    pfd[nfds++] = (struct pollfd) { .fd = c->wake_fd, .events = POLLIN };
    if (!stop_seen)
      pfd[nfds++] = (struct pollfd) { .fd = s->stop_pipe[0],
        .events = POLLIN };
    if (drain_deadline >= 0) {
      double left = drain_deadline - srv_now ();
      if (left <= 0) {
        conn_log (c, "the client did not take its replies within %g "
                  "seconds of shutdown: closing", s->cfg.drain_timeout);
        pthread_mutex_lock (&c->out_lock);
        c->dead = true;
        out_drop_locked (c);
        pthread_mutex_unlock (&c->out_lock);
        drain_deadline = -1;
        continue;
      }
      timeout = (int) ceil (left * 1000);
    }
    r = wait_poll (c, pfd, nfds, timeout, want_in && !want_out);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      conn_log (c, "poll: %m");
      break;
    }
    for (int i = 0; i < nfds; ++i)
      if (pfd[i].fd == c->wake_fd && (pfd[i].revents & POLLIN)) {
        uint64_t v;
        if (read (c->wake_fd, &v, sizeof v) == -1) {
          /* EAGAIN: already drained. */
        }
      }
    if (out_idx >= 0 && (pfd[out_idx].revents & (POLLOUT | POLLERR |
                                                 POLLHUP))) {
      pthread_mutex_lock (&c->out_lock);
      out_flush_locked (c);
      pthread_mutex_unlock (&c->out_lock);
    }
    if (in_idx >= 0 && (pfd[in_idx].revents & (POLLIN | POLLERR |
                                               POLLHUP))) {
      pthread_mutex_lock (&c->out_lock);
      c->batching = true;
      pthread_mutex_unlock (&c->out_lock);
      process_input (c);
      if (!want_out)
        hold_replies (c);
      pthread_mutex_lock (&c->out_lock);
      c->batching = false;
      out_flush_locked (c);
      pthread_mutex_unlock (&c->out_lock);
    }
  }

  /* Requests stranded half-read. */
  if (c->partial) {
    srv_buf_free (c->partial->payload);
    free (c->partial);
    c->partial = NULL;
  }
  if (c->discard_req) {
    free (c->discard_req);
    c->discard_req = NULL;
  }
  free (c->rx);
  c->rx = NULL;
}
