/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Transmission states (see states.h): the issue machine sends requests
 * in submission order, the reply machine reads replies in whatever
 * order the server sends them and matches them to commands by cookie.
 *
 * Method (replies):
 *   A header is decoded by the wire module, which also checks that its
 *   kind (simple / structured / extended) is what was negotiated.  The
 *   cookie must name a command that is fully sent (a reply to a request
 *   still being sent would let the caller free a buffer we are writing
 *   from); with extended headers the echoed offset must match.  Each
 *   chunk type must fit its command (data chunks only for READ, status
 *   chunks only for BLOCK_STATUS); an unknown non-error chunk type is a
 *   hard disconnect, as the protocol asks.
 *
 *   READ with structured replies: every OFFSET_DATA / OFFSET_HOLE chunk
 *   must lie inside the request and not overlap an earlier one (the
 *   ranges seen are kept sorted, merged when adjacent, and bounded);
 *   the command succeeds only if the chunks cover the whole request.
 *   Data chunks are received straight into the caller's buffer.
 *
 *   Sizes from the wire are bounded before anything is allocated:
 *   status chunks at 2^20 descriptors (what the protocol tells servers
 *   to stay under), error chunks at a 4096-byte message.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byte-order.h"
#include "checked-overflow.h"
#include "nbd-internal.h"

#define IOV_BATCH 64            /* iovecs per sendmsg */
#define MAX_STATUS_PAYLOAD (8 + 16 * ((size_t) 1 << 20))
#define MAX_ERROR_PAYLOAD (6 + NBD_MAX_STRING + 8 + 64)
#define MAX_RANGES 65536        /* disjoint chunks of one READ */

/* ---- Issue machine ---------------------------------------------------- */

int
vd_nbd_state_ISSUE_IDLE (struct vd_nbd_conn *c)
{
  return VD_NBD_BLOCK;
}

int
vd_nbd_state_ISSUE_DISC (struct vd_nbd_conn *c)
{
  return VD_NBD_BLOCK;
}

static uint64_t
tx_total (const struct vd_nbd_cmd *cmd)
{
  return cmd->hdr_len + (cmd->type == NBD_CMD_WRITE ? cmd->count : 0);
}

int
vd_nbd_state_ISSUE_SEND (struct vd_nbd_conn *c)
{
  struct iovec iov[IOV_BATCH];
  int n = 0;
  struct vd_nbd_cmd *cmd;
  ssize_t r;
  bool more;

  if (c->txq_head == NULL) {
    c->tx_state = VD_NBD_STATE_ISSUE_IDLE;
    return VD_NBD_BLOCK;
  }
  for (cmd = c->txq_head; cmd && n + 2 <= IOV_BATCH; cmd = cmd->next) {
    uint64_t pos = cmd->tx_pos;
    if (pos < cmd->hdr_len) {
      iov[n].iov_base = cmd->hdr + pos;
      iov[n].iov_len = cmd->hdr_len - pos;
      n++;
      pos = cmd->hdr_len;
    }
    if (cmd->type == NBD_CMD_WRITE && pos < tx_total (cmd)) {
      iov[n].iov_base = (char *) cmd->data + (pos - cmd->hdr_len);
      iov[n].iov_len = tx_total (cmd) - pos;
      n++;
    }
  }
  more = cmd != NULL;
  r = c->t.ops->send (c->t.handle, iov, n, more);
  if (r == -1) {
    char ebuf[256];
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      c->tx_eagain = true;
      c->tx_offered = 0;
      for (int i = 0; i < n; ++i)
        c->tx_offered += iov[i].iov_len;
      return VD_NBD_BLOCK;
    }
    vd_nbd_conn_kill (c, e == EPIPE ? ECONNRESET : e, true,
                      "sending to the server: %s",
                      vd_nbd_transport_strerror (c, e, ebuf, sizeof ebuf));
    return VD_NBD_BLOCK;
  }
  c->tx_offered = 0;
  c->bytes_moved += r;
  while (r > 0 && (cmd = c->txq_head) != NULL) {
    uint64_t left = tx_total (cmd) - cmd->tx_pos;
    if ((uint64_t) r < left) {
      cmd->tx_pos += r;
      break;
    }
    r -= left;
    cmd->tx_pos += left;
    cmd->sent = true;
    c->txq_head = cmd->next;
    if (c->txq_head == NULL)
      c->txq_tail = NULL;
    cmd->next = NULL;
    if (cmd == &c->disc) {
      /* Nothing may follow NBD_CMD_DISC, and nothing is in flight (it is
       * only queued then): the connection is done.  The server closes
       * its side when it reads the DISC; we need not wait for that.
       */
      c->disc_sent = true;
      c->t.ops->shut_wr (c->t.handle);
      c->tx_state = VD_NBD_STATE_ISSUE_DISC;
      vd_nbd_conn_kill (c, c->shutdown_seen ? ESHUTDOWN : 0,
                        c->shutdown_seen, c->shutdown_seen
                        ? "the server is shutting down" : "disconnected");
      return VD_NBD_BLOCK;
    }
  }
  if (c->txq_head == NULL)
    c->tx_state = VD_NBD_STATE_ISSUE_IDLE;
  return VD_NBD_CONTINUE;
}

/* ---- Reply machine ---------------------------------------------------- */

static int
protocol_error (struct vd_nbd_conn *c, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

static int
protocol_error (struct vd_nbd_conn *c, const char *fmt, ...)
{
  char msg[512];
  va_list args;

  va_start (args, fmt);
  vsnprintf (msg, sizeof msg, fmt, args);
  va_end (args);
  /* Recoverable: a fresh connection (perhaps to a restarted server) may
   * well behave; the reconnect window bounds a server that never does.
   */
  vd_nbd_conn_kill (c, EPROTO, true, "protocol error from the server: %s",
                    msg);
  return VD_NBD_BLOCK;
}

static int
finish_reply (struct vd_nbd_conn *c)
{
  struct vd_nbd_cmd *cmd = c->rcmd;

  c->rcmd = NULL;
  c->rx_state = VD_NBD_STATE_REPLY_START;
  vd_nbd_cmd_finish (c, cmd);
  return VD_NBD_CONTINUE;
}

static void
wire_error (struct vd_nbd_cmd *cmd, uint32_t nbd_error, const char *msg,
            size_t msg_len, bool has_offset, uint64_t offset)
{
  int err = vd_nbd_wire_to_errno (nbd_error);
  char where[64] = "";
  char text[NBD_MAX_STRING + 1];
  size_t n = msg_len < sizeof text - 1 ? msg_len : sizeof text - 1;

  memcpy (text, msg ? msg : "", n);
  text[n] = '\0';
  for (char *p = text; *p; ++p)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      *p = '?';
  if (has_offset)
    snprintf (where, sizeof where, " at offset %" PRIu64, offset);
  if (nbd_error == NBD_ESHUTDOWN) {
    vd_nbd_cmd_set_error (cmd, err, "the server is shutting down (it "
                          "failed %s%s with NBD_ESHUTDOWN%s%s)",
                          vd_nbd_cmd_name (cmd->type), where,
                          n > 0 ? ": " : "", text);
    return;
  }
  if (n > 0)
    vd_nbd_cmd_set_error (cmd, err, "the server failed %s%s: %s (%s)",
                          vd_nbd_cmd_name (cmd->type), where, text,
                          vd_nbd_error_name (nbd_error));
  else
    vd_nbd_cmd_set_error (cmd, err, "the server failed %s%s with %s",
                          vd_nbd_cmd_name (cmd->type), where,
                          vd_nbd_error_name (nbd_error));
}

int
vd_nbd_state_REPLY_START (struct vd_nbd_conn *c)
{
  struct vd_nbd_reply *r = &c->reply;
  struct vd_nbd_cmd *cmd;
  const char *why = NULL;
  size_t hsize;
  int n;

  n = vd_nbd_rx_need (c, 4);
  if (n <= 0)
    return VD_NBD_BLOCK;
  hsize = vd_nbd_reply_header_size (vd_nbd_rx_peek (c), 4);
  if (hsize == 0)
    return protocol_error (c, "bad reply magic 0x%08" PRIx32,
                           load_be32 (vd_nbd_rx_peek (c)));
  n = vd_nbd_rx_need (c, hsize);
  if (n <= 0)
    return VD_NBD_BLOCK;
  if (vd_nbd_decode_reply (vd_nbd_rx_peek (c), hsize, c->info.structured,
                           c->info.extended, r, &why) == -1)
    return protocol_error (c, "%s", why);
  vd_nbd_rx_consume (c, hsize);

  cmd = vd_nbd_conn_lookup (c, r->cookie);
  if (cmd == NULL)
    return protocol_error (c, "reply for unknown cookie 0x%016" PRIx64,
                           r->cookie);
  if (!cmd->sent)
    return protocol_error (c, "reply to %s before the request was fully "
                           "sent", vd_nbd_cmd_name (cmd->type));
  if (r->kind == VD_NBD_REPLY_EXTENDED && r->offset != cmd->offset)
    return protocol_error (c, "reply to %s at offset %" PRIu64 " echoes "
                           "offset %" PRIu64, vd_nbd_cmd_name (cmd->type),
                           cmd->offset, r->offset);
  c->rcmd = cmd;

  if (r->kind == VD_NBD_REPLY_SIMPLE) {
    if (r->error != 0) {
      wire_error (cmd, r->error, NULL, 0, false, 0);
      return finish_reply (c);
    }
    if (cmd->type == NBD_CMD_READ) {
      if (c->info.structured)
        return protocol_error (c, "simple reply with data to a READ after "
                               "structured replies were negotiated");
      c->data_pos = 0;
      c->rx_state = VD_NBD_STATE_REPLY_SIMPLE_DATA;
      return VD_NBD_CONTINUE;
    }
    if (cmd->type == NBD_CMD_BLOCK_STATUS)
      return protocol_error (c, "simple reply to BLOCK_STATUS");
    return finish_reply (c);
  }

  /* A chunk. */
  switch (r->type) {
  case NBD_REPLY_TYPE_NONE:
    c->rx_state = VD_NBD_STATE_REPLY_CHUNK_DONE;
    c->pay_len = 0;
    return VD_NBD_CONTINUE;

  case NBD_REPLY_TYPE_OFFSET_DATA:
    if (cmd->type != NBD_CMD_READ)
      return protocol_error (c, "data chunk in reply to %s",
                             vd_nbd_cmd_name (cmd->type));
    if (r->length < 9)
      return protocol_error (c, "OFFSET_DATA chunk of %" PRIu64 " bytes",
                             r->length);
    c->data_len = r->length - 8;
    c->rx_state = VD_NBD_STATE_REPLY_DATA_PREFIX;
    return VD_NBD_CONTINUE;

  case NBD_REPLY_TYPE_OFFSET_HOLE:
    if (cmd->type != NBD_CMD_READ)
      return protocol_error (c, "hole chunk in reply to %s",
                             vd_nbd_cmd_name (cmd->type));
    if (r->length != VD_NBD_OFFSET_HOLE_SIZE)
      return protocol_error (c, "OFFSET_HOLE chunk of %" PRIu64 " bytes",
                             r->length);
    break;

  case NBD_REPLY_TYPE_BLOCK_STATUS:
  case NBD_REPLY_TYPE_BLOCK_STATUS_EXT:
    if (cmd->type != NBD_CMD_BLOCK_STATUS)
      return protocol_error (c, "block status chunk in reply to %s",
                             vd_nbd_cmd_name (cmd->type));
    if ((r->type == NBD_REPLY_TYPE_BLOCK_STATUS_EXT) != c->info.extended)
      return protocol_error (c, "%s chunk with%s extended headers",
                             vd_nbd_reply_type_name (r->type),
                             c->info.extended ? "" : "out");
    if (r->length > MAX_STATUS_PAYLOAD)
      return protocol_error (c, "block status chunk of %" PRIu64 " bytes "
                             "(more than 2^20 extents)", r->length);
    break;

  default:
    if (!NBD_REPLY_TYPE_IS_ERR (r->type))
      return protocol_error (c, "unknown reply chunk type %" PRIu16,
                             r->type);
    if (r->length > MAX_ERROR_PAYLOAD)
      return protocol_error (c, "error chunk of %" PRIu64 " bytes",
                             r->length);
    break;
  }
  if (vd_nbd_pay_reserve (c, (size_t) r->length) == -1)
    return VD_NBD_BLOCK;
  c->rx_state = VD_NBD_STATE_REPLY_PAYLOAD;
  return VD_NBD_CONTINUE;
}

int
vd_nbd_state_REPLY_SIMPLE_DATA (struct vd_nbd_conn *c)
{
  struct vd_nbd_cmd *cmd = c->rcmd;
  int r = vd_nbd_rx_copy (c, cmd->data, cmd->count, &c->data_pos);

  if (r <= 0)
    return VD_NBD_BLOCK;
  return finish_reply (c);
}

/* Record [start, end) of a READ as covered; false if it overlaps. */
static bool
add_range (struct vd_nbd_cmd *cmd, uint64_t start, uint64_t end,
           bool *too_many)
{
  size_t lo = 0, hi = cmd->nr_ranges;

  *too_many = false;
  /* Fast path: chunks in ascending order extend the last range. */
  if (cmd->nr_ranges > 0 && cmd->ranges[cmd->nr_ranges - 1].end == start) {
    cmd->ranges[cmd->nr_ranges - 1].end = end;
    return true;
  }
  while (lo < hi) {             /* first range with start >= end... */
    size_t mid = lo + (hi - lo) / 2;
    if (cmd->ranges[mid].start < start)
      lo = mid + 1;
    else
      hi = mid;
  }
  /* lo: insertion point by start. */
  if (lo > 0 && cmd->ranges[lo - 1].end > start)
    return false;
  if (lo < cmd->nr_ranges && cmd->ranges[lo].start < end)
    return false;
  if (lo > 0 && cmd->ranges[lo - 1].end == start) {
    cmd->ranges[lo - 1].end = end;
    if (lo < cmd->nr_ranges && cmd->ranges[lo].start == end) {
      cmd->ranges[lo - 1].end = cmd->ranges[lo].end;
      memmove (&cmd->ranges[lo], &cmd->ranges[lo + 1],
               (cmd->nr_ranges - lo - 1) * sizeof cmd->ranges[0]);
      cmd->nr_ranges--;
    }
    return true;
  }
  if (lo < cmd->nr_ranges && cmd->ranges[lo].start == end) {
    cmd->ranges[lo].start = start;
    return true;
  }
  if (cmd->nr_ranges >= MAX_RANGES) {
    *too_many = true;
    return false;
  }
  if (cmd->nr_ranges == cmd->cap_ranges) {
    size_t cap = cmd->cap_ranges ? cmd->cap_ranges * 2 : 8;
    struct vd_nbd_range *p = realloc (cmd->ranges, cap * sizeof *p);
    if (p == NULL) {
      *too_many = true;
      return false;
    }
    cmd->ranges = p;
    cmd->cap_ranges = cap;
  }
  memmove (&cmd->ranges[lo + 1], &cmd->ranges[lo],
           (cmd->nr_ranges - lo) * sizeof cmd->ranges[0]);
  cmd->ranges[lo].start = start;
  cmd->ranges[lo].end = end;
  cmd->nr_ranges++;
  return true;
}

/* Check a content chunk [off, off + len) against the READ. */
static int
check_content (struct vd_nbd_conn *c, struct vd_nbd_cmd *cmd, uint64_t off,
               uint64_t len, const char *what)
{
  uint64_t end, req_end = cmd->offset + cmd->count;
  bool too_many;

  if (ADD_OVERFLOW (off, len, &end) || off < cmd->offset || end > req_end)
    return protocol_error (c, "%s chunk [%" PRIu64 ", +%" PRIu64 ") outside "
                           "the READ of [%" PRIu64 ", +%" PRIu64 ")", what,
                           off, len, cmd->offset, cmd->count);
  if (!add_range (cmd, off, end, &too_many)) {
    if (too_many)
      return protocol_error (c, "a READ reply split into more than %d "
                             "chunks", MAX_RANGES);
    return protocol_error (c, "%s chunk at offset %" PRIu64 " overlaps an "
                           "earlier chunk", what, off);
  }
  cmd->covered += len;
  return VD_NBD_CONTINUE;
}

int
vd_nbd_state_REPLY_DATA_PREFIX (struct vd_nbd_conn *c)
{
  struct vd_nbd_cmd *cmd = c->rcmd;
  int n = vd_nbd_rx_need (c, 8);

  if (n <= 0)
    return VD_NBD_BLOCK;
  c->data_off = load_be64 (vd_nbd_rx_peek (c));
  vd_nbd_rx_consume (c, 8);
  if (check_content (c, cmd, c->data_off, c->data_len, "OFFSET_DATA") ==
      VD_NBD_BLOCK)
    return VD_NBD_BLOCK;
  c->data_pos = 0;
  c->rx_state = VD_NBD_STATE_REPLY_DATA;
  return VD_NBD_CONTINUE;
}

int
vd_nbd_state_REPLY_DATA (struct vd_nbd_conn *c)
{
  struct vd_nbd_cmd *cmd = c->rcmd;
  char *dst = (char *) cmd->data + (c->data_off - cmd->offset);
  int n = vd_nbd_rx_copy (c, dst, c->data_len, &c->data_pos);

  if (n <= 0)
    return VD_NBD_BLOCK;
  c->pay_len = 0;
  c->rx_state = VD_NBD_STATE_REPLY_CHUNK_DONE;
  return VD_NBD_CONTINUE;
}

int
vd_nbd_state_REPLY_PAYLOAD (struct vd_nbd_conn *c)
{
  uint64_t pos = c->pay_pos;
  int n = vd_nbd_rx_copy (c, c->pay, c->pay_len, &pos);

  c->pay_pos = pos;
  if (n <= 0)
    return VD_NBD_BLOCK;
  c->rx_state = VD_NBD_STATE_REPLY_CHUNK_DONE;
  return VD_NBD_CONTINUE;
}

static int
chunk_status (struct vd_nbd_conn *c, struct vd_nbd_cmd *cmd)
{
  struct vd_nbd_block_status bs;
  const char *why = NULL;

  if (vd_nbd_decode_block_status (c->pay, c->pay_len, c->reply.type, &bs,
                                  &why) == -1)
    return protocol_error (c, "%s", why);
  if (!c->info.extents || bs.context_id != c->info.meta_id) {
    vd_nbd_cmd_set_error (cmd, EIO, "the server sent block status for "
                          "context %" PRIu32 ", which vdisk did not select",
                          bs.context_id);
    return VD_NBD_CONTINUE;
  }
  if (cmd->has_status) {
    vd_nbd_cmd_set_error (cmd, EIO, "the server sent two base:allocation "
                          "chunks for one BLOCK_STATUS");
    return VD_NBD_CONTINUE;
  }
  if ((cmd->flags & NBD_CMD_FLAG_REQ_ONE) && bs.nr_descriptors != 1) {
    vd_nbd_cmd_set_error (cmd, EIO, "the server sent %" PRIu32 " extents "
                          "for a REQ_ONE BLOCK_STATUS", bs.nr_descriptors);
    return VD_NBD_CONTINUE;
  }
  free (cmd->extents);
  cmd->extents = malloc (bs.nr_descriptors * sizeof *cmd->extents);
  if (cmd->extents == NULL) {
    vd_nbd_cmd_set_error (cmd, ENOMEM, "out of memory for %" PRIu32
                          " extents", bs.nr_descriptors);
    return VD_NBD_CONTINUE;
  }
  for (uint32_t i = 0; i < bs.nr_descriptors; ++i) {
    uint64_t len, st;
    vd_nbd_block_status_get (&bs, i, &len, &st);
    if (st > UINT32_MAX) {
      free (cmd->extents);
      cmd->extents = NULL;
      vd_nbd_cmd_set_error (cmd, EIO, "base:allocation status 0x%" PRIx64
                            " does not fit 32 bits", st);
      return VD_NBD_CONTINUE;
    }
    cmd->extents[i].length = len;
    cmd->extents[i].flags = (uint32_t) st;
  }
  cmd->nr_extents = bs.nr_descriptors;
  cmd->has_status = true;
  return VD_NBD_CONTINUE;
}

int
vd_nbd_state_REPLY_CHUNK_DONE (struct vd_nbd_conn *c)
{
  struct vd_nbd_cmd *cmd = c->rcmd;
  struct vd_nbd_reply *r = &c->reply;
  const char *why = NULL;

  switch (r->type) {
  case NBD_REPLY_TYPE_NONE:
  case NBD_REPLY_TYPE_OFFSET_DATA:
    break;

  case NBD_REPLY_TYPE_OFFSET_HOLE: {
    uint64_t off;
    uint32_t len;
    if (vd_nbd_decode_offset_hole (c->pay, c->pay_len, cmd->offset,
                                   cmd->count, &off, &len, &why) == -1)
      return protocol_error (c, "%s", why);
    if (check_content (c, cmd, off, len, "OFFSET_HOLE") == VD_NBD_BLOCK)
      return VD_NBD_BLOCK;
    memset ((char *) cmd->data + (off - cmd->offset), 0, len);
    break;
  }

  case NBD_REPLY_TYPE_BLOCK_STATUS:
  case NBD_REPLY_TYPE_BLOCK_STATUS_EXT:
    if (chunk_status (c, cmd) == VD_NBD_BLOCK)
      return VD_NBD_BLOCK;
    break;

  default: {                    /* error chunks */
    struct vd_nbd_error_chunk e;
    if (vd_nbd_decode_error_chunk (c->pay, c->pay_len, r->type, &e,
                                   &why) == -1)
      return protocol_error (c, "%s", why);
    wire_error (cmd, e.error, e.msg, e.msg_len, e.has_offset, e.offset);
    break;
  }
  }

  if (r->flags & NBD_REPLY_FLAG_DONE)
    return finish_reply (c);
  c->rcmd = NULL;
  c->rx_state = VD_NBD_STATE_REPLY_START;
  return VD_NBD_CONTINUE;
}
