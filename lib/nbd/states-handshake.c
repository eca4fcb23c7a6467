/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Handshake states (see states.h): fixed newstyle, then NBD_OPT_STARTTLS
 * and the TLS handshake when TLS is wanted (and everything after it
 * over TLS), NBD_OPT_EXTENDED_HEADERS (falling back to NBD_OPT_STRUCTURED_REPLY),
 * NBD_OPT_SET_META_CONTEXT "base:allocation", and NBD_OPT_GO asking for
 * NBD_INFO_BLOCK_SIZE (falling back to NBD_OPT_EXPORT_NAME when the
 * server does not know GO).
 *
 * Every server reply is checked with the wire module (proto/nbd-proto.c)
 * and bounded: an option reply may carry at most OPT_REPLY_MAX bytes.
 * Failures say whether trying again later may help: a refused export or
 * a server that needs TLS will refuse again (not recoverable); a server
 * shutting down or a connection that broke may be back (recoverable).
 *
 * TLS: an nbds URI (VD_NBD_TLS_REQUIRE) never downgrades.  If the
 * server cannot do fixed newstyle, nothing at all is sent; if it refuses
 * STARTTLS, only NBD_OPT_ABORT follows; no export name and no other
 * option ever leaves in plaintext.  An nbd URI with certificates or a
 * PSK file (VD_NBD_TLS_TRY) asks for TLS and goes on in plaintext when
 * the server says it has none (NBD_REP_ERR_POLICY or NBD_REP_ERR_UNSUP).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "byte-order.h"
#include "nbd-internal.h"

/* The longest option reply we accept: a string (4096), a second string
 * (NBD_REP_SERVER's description) and fixed fields.
 */
#define OPT_REPLY_MAX (2 * NBD_MAX_STRING + 64)

enum {
  STEP_STARTTLS = 0,
  STEP_EXTENDED_HEADERS,
  STEP_STRUCTURED_REPLY,
  STEP_META_CONTEXT,
  STEP_GO,
  STEP_EXPORT_NAME,
};

/* Why TLS is required on this connection, for the error message: the
 * URI said nbds, or (opportunistic TLS) an earlier connection of the same
 * attachment had TLS and a reconnection must not quietly lose it.
 */
static const char *
no_tls_why (const struct vd_nbd_conn *c, char *buf, size_t len)
{
  if (c->tls_uri && vd_nbd_tls_mode (c->tls_uri) != VD_NBD_TLS_REQUIRE)
    return "the connection to this server had TLS before, and vdisk will "
      "not reconnect without it";
  snprintf (buf, len, "vdisk will not connect to an %s URI without TLS",
            c->tls_uri ? vd_nbd_uri_scheme (c->tls_uri->transport, true)
            : "nbds");
  return buf;
}

/* The server's message in an error reply, for our message. */
static const char *
server_message (struct vd_nbd_conn *c, char *buf, size_t len)
{
  size_t n = c->pay_len;

  if (n == 0) {
    buf[0] = '\0';
    return buf;
  }
  if (n > len - 16)
    n = len - 16;
  snprintf (buf, len, " (server: \"%.*s\")", (int) n, (const char *) c->pay);
  for (char *p = buf; *p; ++p)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      *p = '?';
  return buf;
}

int
vd_nbd_state_START (struct vd_nbd_conn *c)
{
  c->state = VD_NBD_STATE_RECV_GREETING;
  return VD_NBD_CONTINUE;
}

int
vd_nbd_state_RECV_GREETING (struct vd_nbd_conn *c)
{
  const char *why = NULL;
  uint32_t cflags = 0;
  int r = vd_nbd_rx_need (c, VD_NBD_GREETING_SIZE);

  if (r <= 0)
    return VD_NBD_BLOCK;
  if (vd_nbd_decode_greeting (vd_nbd_rx_peek (c), VD_NBD_GREETING_SIZE,
                              &c->gflags, &why) == -1) {
    vd_nbd_conn_kill (c, EPROTO, false, "not an NBD server, or one vdisk "
                      "cannot talk to: %s", why);
    return VD_NBD_BLOCK;
  }
  vd_nbd_rx_consume (c, VD_NBD_GREETING_SIZE);
  if (c->tls_mode == VD_NBD_TLS_REQUIRE &&
      !(c->gflags & NBD_FLAG_FIXED_NEWSTYLE)) {
    /* STARTTLS is an option, and options need fixed newstyle. */
    char nt[128];
    vd_nbd_conn_kill (c, ENOTSUP, false, "the server does not do fixed "
                      "newstyle negotiation, so it cannot offer TLS; %s",
                      no_tls_why (c, nt, sizeof nt));
    return VD_NBD_BLOCK;
  }
  if (c->gflags & NBD_FLAG_FIXED_NEWSTYLE)
    cflags |= NBD_FLAG_C_FIXED_NEWSTYLE;
  if (c->gflags & NBD_FLAG_NO_ZEROES) {
    cflags |= NBD_FLAG_C_NO_ZEROES;
    c->no_zeroes = true;
  }
  if (vd_nbd_opt_reserve (c, VD_NBD_CLIENT_FLAGS_SIZE) == -1)
    return VD_NBD_BLOCK;
  vd_nbd_encode_client_flags (c->opt, cflags);
  if (!(c->gflags & NBD_FLAG_FIXED_NEWSTYLE))
    c->hs_step = STEP_EXPORT_NAME;
  else if (c->tls_mode != VD_NBD_TLS_OFF)
    c->hs_step = STEP_STARTTLS;
  else
    c->hs_step = STEP_EXTENDED_HEADERS;
  c->state = VD_NBD_STATE_SEND_CLIENT_FLAGS;
  return VD_NBD_CONTINUE;
}

int
vd_nbd_state_SEND_CLIENT_FLAGS (struct vd_nbd_conn *c)
{
  if (vd_nbd_tx_opt (c) <= 0)
    return VD_NBD_BLOCK;
  c->state = VD_NBD_STATE_PREPARE_OPT;
  return VD_NBD_CONTINUE;
}

/* Encode an option with data of len bytes (filled by the caller). */
static unsigned char *
start_option (struct vd_nbd_conn *c, uint32_t option, size_t len)
{
  if (vd_nbd_opt_reserve (c, NBD_OPTION_HEADER_SIZE + len) == -1)
    return NULL;
  vd_nbd_encode_option_header (c->opt, option, (uint32_t) len);
  c->cur_opt = option;
  return c->opt + NBD_OPTION_HEADER_SIZE;
}

int
vd_nbd_state_PREPARE_OPT (struct vd_nbd_conn *c)
{
  const char *why = NULL;
  size_t nlen = strlen (c->export_name);
  ssize_t n;

  for (;;) {
    switch (c->hs_step) {
    case STEP_STARTTLS:
      if (start_option (c, NBD_OPT_STARTTLS, 0) == NULL)
        return VD_NBD_BLOCK;
      break;

    case STEP_EXTENDED_HEADERS:
      if (c->hs_flags & VD_NBD_NO_EXTENDED_HEADERS) {
        c->hs_step++;
        continue;
      }
      if (start_option (c, NBD_OPT_EXTENDED_HEADERS, 0) == NULL)
        return VD_NBD_BLOCK;
      break;

    case STEP_STRUCTURED_REPLY:
      if (c->info.extended || (c->hs_flags & VD_NBD_NO_STRUCTURED_REPLY)) {
        c->hs_step++;
        continue;
      }
      if (start_option (c, NBD_OPT_STRUCTURED_REPLY, 0) == NULL)
        return VD_NBD_BLOCK;
      break;

    case STEP_META_CONTEXT: {
      static const char *const q[] = { NBD_META_BASE_ALLOCATION };
      unsigned char *d;
      if (!(c->info.structured || c->info.extended) ||
          (c->hs_flags & VD_NBD_NO_META_CONTEXT)) {
        c->hs_step++;
        continue;
      }
      n = vd_nbd_encode_meta_request (NULL, 0, c->export_name, nlen, q, 1,
                                      &why);
      if (n < 0 || (d = start_option (c, NBD_OPT_SET_META_CONTEXT,
                                      (size_t) n)) == NULL) {
        if (n < 0)
          vd_nbd_conn_kill (c, EINVAL, false, "%s", why);
        return VD_NBD_BLOCK;
      }
      vd_nbd_encode_meta_request (d, (size_t) n, c->export_name, nlen, q, 1,
                                  &why);
      c->got_meta = false;
      break;
    }

    case STEP_GO: {
      const uint16_t infos[] = { NBD_INFO_BLOCK_SIZE };
      unsigned char *d;
      if (c->hs_flags & VD_NBD_NO_GO) {
        c->hs_step = STEP_EXPORT_NAME;
        continue;
      }
      n = vd_nbd_encode_info_request (NULL, 0, c->export_name, nlen, infos,
                                      1, &why);
      if (n < 0 || (d = start_option (c, NBD_OPT_GO, (size_t) n)) == NULL) {
        if (n < 0)
          vd_nbd_conn_kill (c, EINVAL, false, "%s", why);
        return VD_NBD_BLOCK;
      }
      vd_nbd_encode_info_request (d, (size_t) n, c->export_name, nlen, infos,
                                  1, &why);
      c->got_info_export = false;
      break;
    }

    default: {                  /* STEP_EXPORT_NAME */
      unsigned char *d;
      if (c->info.extended) {
        /* Forbidden after EXTENDED_HEADERS; a server offering those
         * must support GO, so this is a broken server.
         */
        vd_nbd_conn_kill (c, EPROTO, false, "the server accepted extended "
                          "headers but not NBD_OPT_GO");
        return VD_NBD_BLOCK;
      }
      d = start_option (c, NBD_OPT_EXPORT_NAME, nlen);
      if (d == NULL)
        return VD_NBD_BLOCK;
      memcpy (d, c->export_name, nlen);
      c->state = VD_NBD_STATE_SEND_EXPORT_NAME;
      return VD_NBD_CONTINUE;
    }
    }
    c->state = VD_NBD_STATE_SEND_OPT;
    return VD_NBD_CONTINUE;
  }
}

int
vd_nbd_state_SEND_OPT (struct vd_nbd_conn *c)
{
  if (vd_nbd_tx_opt (c) <= 0)
    return VD_NBD_BLOCK;
  c->state = VD_NBD_STATE_RECV_OPT_REPLY;
  return VD_NBD_CONTINUE;
}

/* The option reply header is kept in c->rhdr while its payload is read. */
static struct vd_nbd_option_reply opt_reply_of (struct vd_nbd_conn *c);

int
vd_nbd_state_RECV_OPT_REPLY (struct vd_nbd_conn *c)
{
  struct vd_nbd_option_reply r;
  const char *why = NULL;
  int n = vd_nbd_rx_need (c, NBD_OPTION_REPLY_HEADER_SIZE);

  if (n <= 0)
    return VD_NBD_BLOCK;
  if (vd_nbd_decode_option_reply_header (vd_nbd_rx_peek (c),
                                         NBD_OPTION_REPLY_HEADER_SIZE, &r,
                                         &why) == -1) {
    vd_nbd_conn_kill (c, EPROTO, true, "bad reply to %s: %s",
                      vd_nbd_opt_name (c->cur_opt), why);
    return VD_NBD_BLOCK;
  }
  if (r.option != c->cur_opt) {
    vd_nbd_conn_kill (c, EPROTO, true, "the server answered %s (%" PRIu32
                      ") while vdisk asked %s", vd_nbd_opt_name (r.option),
                      r.option, vd_nbd_opt_name (c->cur_opt));
    return VD_NBD_BLOCK;
  }
  if (r.length > OPT_REPLY_MAX) {
    vd_nbd_conn_kill (c, EPROTO, true, "the server's reply to %s is %" PRIu32
                      " bytes long (the limit is %d)",
                      vd_nbd_opt_name (c->cur_opt), r.length, OPT_REPLY_MAX);
    return VD_NBD_BLOCK;
  }
  memcpy (c->rhdr, vd_nbd_rx_peek (c), NBD_OPTION_REPLY_HEADER_SIZE);
  vd_nbd_rx_consume (c, NBD_OPTION_REPLY_HEADER_SIZE);
  if (vd_nbd_pay_reserve (c, r.length) == -1)
    return VD_NBD_BLOCK;
  c->state = VD_NBD_STATE_RECV_OPT_PAYLOAD;
  return VD_NBD_CONTINUE;
}

static struct vd_nbd_option_reply
opt_reply_of (struct vd_nbd_conn *c)
{
  struct vd_nbd_option_reply r;

  vd_nbd_decode_option_reply_header (c->rhdr, NBD_OPTION_REPLY_HEADER_SIZE,
                                     &r, NULL);
  return r;
}

int
vd_nbd_state_RECV_OPT_PAYLOAD (struct vd_nbd_conn *c)
{
  uint64_t pos = c->pay_pos;
  int r = vd_nbd_rx_copy (c, c->pay, c->pay_len, &pos);

  c->pay_pos = pos;
  if (r <= 0)
    return VD_NBD_BLOCK;
  c->state = VD_NBD_STATE_CHECK_OPT_REPLY;
  return VD_NBD_CONTINUE;
}

/* End the negotiation politely (NBD_OPT_ABORT), then die with this
 * error.
 */
static int
send_abort (struct vd_nbd_conn *c, int err, bool recoverable,
            const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));

static int
send_abort (struct vd_nbd_conn *c, int err, bool recoverable,
            const char *fmt, ...)
{
  va_list args;

  c->abort_err = err;
  c->abort_recoverable = recoverable;
  va_start (args, fmt);
  vsnprintf (c->abort_msg, sizeof c->abort_msg, fmt, args);
  va_end (args);
  if (start_option (c, NBD_OPT_ABORT, 0) == NULL)
    return VD_NBD_BLOCK;
  c->state = VD_NBD_STATE_SEND_ABORT;
  return VD_NBD_CONTINUE;
}

/* A final reply to the current option: go to the next one. */
static int
next_option (struct vd_nbd_conn *c)
{
  c->hs_step++;
  c->state = VD_NBD_STATE_PREPARE_OPT;
  return VD_NBD_CONTINUE;
}

static int
check_starttls (struct vd_nbd_conn *c, const struct vd_nbd_option_reply *r)
{
  char sm[NBD_MAX_STRING + 32], why[128];

  if (r->type == NBD_REP_ACK) {
    if (c->pay_len != 0) {
      vd_nbd_conn_kill (c, EPROTO, false, "the server's NBD_REP_ACK to "
                        "NBD_OPT_STARTTLS carries %zu bytes of data",
                        c->pay_len);
      return VD_NBD_BLOCK;
    }
    c->state = VD_NBD_STATE_TLS_START;
    return VD_NBD_CONTINUE;
  }
  if (!NBD_REP_IS_ERR (r->type)) {
    vd_nbd_conn_kill (c, EPROTO, false, "unexpected %s in reply to "
                      "NBD_OPT_STARTTLS", vd_nbd_rep_name (r->type));
    return VD_NBD_BLOCK;
  }
  if (c->tls_mode == VD_NBD_TLS_TRY &&
      (r->type == NBD_REP_ERR_POLICY || r->type == NBD_REP_ERR_UNSUP))
    return next_option (c);     /* no TLS there: plaintext, as asked */
  if (c->tls_mode == VD_NBD_TLS_TRY) {
    vd_nbd_conn_kill (c, EPROTO, false, "the server refused "
                      "NBD_OPT_STARTTLS with %s%s", vd_nbd_rep_name (r->type),
                      server_message (c, sm, sizeof sm));
    return VD_NBD_BLOCK;
  }
  /* nbds, or a reconnection after TLS: no downgrade.  Nothing but the
   * ABORT goes out.
   */
  return send_abort (c, ENOTSUP, false, "the server %s TLS (%s to "
                     "NBD_OPT_STARTTLS)%s; %s",
                     r->type == NBD_REP_ERR_POLICY ? "refuses"
                     : "does not support", vd_nbd_rep_name (r->type),
                     server_message (c, sm, sizeof sm),
                     no_tls_why (c, why, sizeof why));
}

static int
check_go (struct vd_nbd_conn *c, const struct vd_nbd_option_reply *r)
{
  char sm[NBD_MAX_STRING + 32];
  const char *why = NULL;
  struct vd_nbd_info info;

  switch (r->type) {
  case NBD_REP_INFO:
    if (vd_nbd_decode_info (c->pay, c->pay_len, &info, &why) == -1) {
      vd_nbd_conn_kill (c, EPROTO, false, "bad NBD_REP_INFO from the "
                        "server: %s", why);
      return VD_NBD_BLOCK;
    }
    if (info.type == NBD_INFO_EXPORT) {
      c->info.size = info.size;
      c->info.eflags = info.transmission_flags;
      c->got_info_export = true;
    }
    else if (info.type == NBD_INFO_BLOCK_SIZE) {
      c->info.min_block = info.minimum;
      c->info.pref_block = info.preferred;
      c->info.max_payload = info.maximum;
      c->info.block_size_advertised = true;
    }
    c->state = VD_NBD_STATE_RECV_OPT_REPLY;
    return VD_NBD_CONTINUE;

  case NBD_REP_ACK:
    if (!c->got_info_export) {
      vd_nbd_conn_kill (c, EPROTO, false, "the server accepted NBD_OPT_GO "
                        "without sending NBD_INFO_EXPORT");
      return VD_NBD_BLOCK;
    }
    c->info.go = true;
    vd_nbd_conn_enter_ready (c);
    return c->state == VD_NBD_STATE_DEAD ? VD_NBD_BLOCK : VD_NBD_CONTINUE;

  case NBD_REP_ERR_UNSUP:
    c->hs_step = STEP_EXPORT_NAME;
    c->state = VD_NBD_STATE_PREPARE_OPT;
    return VD_NBD_CONTINUE;

  case NBD_REP_ERR_UNKNOWN:
    vd_nbd_conn_kill (c, ENOENT, false, "the server has no export named "
                      "'%s'%s", c->export_name,
                      server_message (c, sm, sizeof sm));
    return VD_NBD_BLOCK;

  case NBD_REP_ERR_TLS_REQD:
    vd_nbd_conn_kill (c, ENOTSUP, false, "the server requires TLS: use an "
                      "nbds URI (with tls-certificates=DIR or "
                      "tls-psk-file=FILE)%s",
                      server_message (c, sm, sizeof sm));
    return VD_NBD_BLOCK;

  case NBD_REP_ERR_POLICY:
    vd_nbd_conn_kill (c, EACCES, false, "the server refused export '%s' by "
                      "policy%s", c->export_name,
                      server_message (c, sm, sizeof sm));
    return VD_NBD_BLOCK;

  default:
    if (NBD_REP_IS_ERR (r->type)) {
      vd_nbd_conn_kill (c, EPROTO, false, "the server refused NBD_OPT_GO "
                        "with %s%s", vd_nbd_rep_name (r->type),
                        server_message (c, sm, sizeof sm));
      return VD_NBD_BLOCK;
    }
    /* Unknown non-error replies are skipped (future information). */
    c->state = VD_NBD_STATE_RECV_OPT_REPLY;
    return VD_NBD_CONTINUE;
  }
}

int
vd_nbd_state_CHECK_OPT_REPLY (struct vd_nbd_conn *c)
{
  struct vd_nbd_option_reply r = opt_reply_of (c);
  const char *why = NULL;

  if (r.type == NBD_REP_ERR_SHUTDOWN) {
    /* The protocol asks for a soft disconnect. */
    return send_abort (c, ESHUTDOWN, true, "the server is shutting down");
  }

  switch (c->cur_opt) {
  case NBD_OPT_STARTTLS:
    return check_starttls (c, &r);

  case NBD_OPT_EXTENDED_HEADERS:
  case NBD_OPT_STRUCTURED_REPLY:
    if (r.type == NBD_REP_ACK) {
      if (c->cur_opt == NBD_OPT_EXTENDED_HEADERS)
        c->info.extended = true;
      else
        c->info.structured = true;
      return next_option (c);
    }
    if (NBD_REP_IS_ERR (r.type))
      return next_option (c);   /* not supported: fall back */
    vd_nbd_conn_kill (c, EPROTO, false, "unexpected %s in reply to %s",
                      vd_nbd_rep_name (r.type), vd_nbd_opt_name (c->cur_opt));
    return VD_NBD_BLOCK;

  case NBD_OPT_SET_META_CONTEXT:
    if (r.type == NBD_REP_META_CONTEXT) {
      uint32_t id, nlen;
      const char *name;
      if (vd_nbd_decode_rep_meta_context (c->pay, c->pay_len, &id, &name,
                                          &nlen, &why) == -1) {
        vd_nbd_conn_kill (c, EPROTO, false, "bad NBD_REP_META_CONTEXT from "
                          "the server: %s", why);
        return VD_NBD_BLOCK;
      }
      if (nlen == strlen (NBD_META_BASE_ALLOCATION) &&
          memcmp (name, NBD_META_BASE_ALLOCATION, nlen) == 0) {
        c->info.meta_id = id;
        c->got_meta = true;
      }
      c->state = VD_NBD_STATE_RECV_OPT_REPLY;
      return VD_NBD_CONTINUE;
    }
    if (r.type == NBD_REP_ACK) {
      c->info.extents = c->got_meta;
      return next_option (c);
    }
    if (NBD_REP_IS_ERR (r.type)) {
      c->info.extents = false;  /* no block status: everything is data */
      return next_option (c);
    }
    /* Unknown non-error replies are skipped. */
    c->state = VD_NBD_STATE_RECV_OPT_REPLY;
    return VD_NBD_CONTINUE;

  case NBD_OPT_GO:
    return check_go (c, &r);

  default:
    vd_nbd_conn_kill (c, EPROTO, false, "reply to an option vdisk did not "
                      "send");
    return VD_NBD_BLOCK;
  }
}

int
vd_nbd_state_TLS_START (struct vd_nbd_conn *c)
{
  char msg[VD_NBD_ERRMSG_LEN];

  if (c->rx_end != c->rx_start) {
    /* Bytes sent before the handshake would be taken for encrypted
     * ones by nobody, or worse, for the server's after it (the
     * STARTTLS injection attacks): refuse.
     */
    vd_nbd_conn_kill (c, EPROTO, false, "the server sent %zu bytes after "
                      "acknowledging NBD_OPT_STARTTLS, before the TLS "
                      "handshake", c->rx_end - c->rx_start);
    return VD_NBD_BLOCK;
  }
  if (c->tls_uri == NULL ||
      vd_nbd_tls_wrap (&c->t, c->tls_uri, msg, sizeof msg) == -1) {
    vd_nbd_conn_kill (c, EINVAL, false, "%s", c->tls_uri ? msg
                      : "TLS without settings");
    return VD_NBD_BLOCK;
  }
  c->tls_want_write = true;     /* the ClientHello goes first */
  c->state = VD_NBD_STATE_TLS_HANDSHAKE;
  return VD_NBD_CONTINUE;
}

int
vd_nbd_state_TLS_HANDSHAKE (struct vd_nbd_conn *c)
{
  char msg[VD_NBD_ERRMSG_LEN];
  bool recoverable = false;
  int e = 0;
  int r = vd_nbd_tls_handshake (&c->t, &c->tls_want_write, &e, &recoverable,
                                msg, sizeof msg);

  if (r == 0)
    return VD_NBD_BLOCK;
  if (r == -1) {
    vd_nbd_conn_kill (c, e, recoverable, "%s", msg);
    return VD_NBD_BLOCK;
  }
  c->info.tls = true;
  vd_nbd_tls_describe (&c->t, c->info.tls_desc, sizeof c->info.tls_desc);
  c->rx_eagain = c->tx_eagain = false;
  /* Nothing said in plaintext counts: negotiate from the top. */
  c->hs_step = STEP_EXTENDED_HEADERS;
  c->state = VD_NBD_STATE_PREPARE_OPT;
  return VD_NBD_CONTINUE;
}

int
vd_nbd_state_SEND_EXPORT_NAME (struct vd_nbd_conn *c)
{
  if (vd_nbd_tx_opt (c) <= 0)
    return VD_NBD_BLOCK;
  c->state = VD_NBD_STATE_RECV_EXPORT_NAME_REPLY;
  return VD_NBD_CONTINUE;
}

int
vd_nbd_state_RECV_EXPORT_NAME_REPLY (struct vd_nbd_conn *c)
{
  size_t need = vd_nbd_export_name_reply_size (c->no_zeroes);
  const char *why = NULL;
  uint64_t size;
  uint16_t eflags;
  int r = vd_nbd_rx_need (c, need);

  if (r <= 0)
    return VD_NBD_BLOCK;
  if (vd_nbd_decode_export_name_reply (vd_nbd_rx_peek (c), need, &size,
                                       &eflags, &why) == -1) {
    vd_nbd_conn_kill (c, EPROTO, false, "bad reply to NBD_OPT_EXPORT_NAME: "
                      "%s", why);
    return VD_NBD_BLOCK;
  }
  vd_nbd_rx_consume (c, need);
  c->info.size = size;
  c->info.eflags = eflags;
  c->info.go = false;
  vd_nbd_conn_enter_ready (c);
  return c->state == VD_NBD_STATE_DEAD ? VD_NBD_BLOCK : VD_NBD_CONTINUE;
}

int
vd_nbd_state_SEND_ABORT (struct vd_nbd_conn *c)
{
  if (vd_nbd_tx_opt (c) < 0)
    return VD_NBD_BLOCK;
  if (c->opt_pos < c->opt_len)
    return VD_NBD_BLOCK;
  /* The server may answer the ABORT or just close; either way we are
   * done with this connection.
   */
  {
    char msg[VD_NBD_ERRMSG_LEN];
    snprintf (msg, sizeof msg, "%s", c->abort_msg);
    vd_nbd_conn_kill (c, c->abort_err, c->abort_recoverable, "%s", msg);
  }
  return VD_NBD_BLOCK;
}

int
vd_nbd_state_READY (struct vd_nbd_conn *c)
{
  return VD_NBD_BLOCK;
}

int
vd_nbd_state_DEAD (struct vd_nbd_conn *c)
{
  return VD_NBD_BLOCK;
}
