/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The fixed newstyle handshake, as an explicit state machine:
 *
 *   HS_SEND_GREETING -> HS_RECV_CLIENT_FLAGS -> HS_RECV_OPTION (loop)
 *     -> HS_TRANSMISSION   after NBD_OPT_GO + ACK or NBD_OPT_EXPORT_NAME
 *     -> HS_CLOSE          after NBD_OPT_ABORT, end of file, a client
 *                          that broke a MUST, the time limit, shutdown
 *
 * Every option the server does not know, or refuses, gets an error reply
 * after its data has been read (or skipped), so the stream stays in step
 * and the client can go on.  Limits: the whole handshake must finish
 * within the handshake timeout; option data is parsed up to 64 KiB (more
 * is skipped and refused with ERR_TOO_BIG, or ERR_UNSUP for unknown
 * options); strings are at most NBD_MAX_STRING bytes; at most
 * SRV_MAX_OPTIONS options per connection.
 *
 * Supported: EXPORT_NAME, ABORT, LIST, INFO and GO (INFO_EXPORT,
 * INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE), STRUCTURED_REPLY,
 * LIST_META_CONTEXT and SET_META_CONTEXT (base:allocation),
 * EXTENDED_HEADERS, STARTTLS.
 *
 * TLS (the spec's three modes, chosen by cfg.tls for the whole server):
 *   off      STARTTLS gets ERR_POLICY.
 *   on       SELECTIVETLS: STARTTLS is accepted; exports marked tls-only
 *            are left out of LIST and refused (ERR_TLS_REQD, or a
 *            disconnect for EXPORT_NAME, which cannot fail politely)
 *            until TLS is up.
 *   require  FORCEDTLS: before STARTTLS every option but STARTTLS and
 *            ABORT gets ERR_TLS_REQD, and EXPORT_NAME disconnects.
 * After the TLS handshake everything negotiated in the clear (structured
 * replies, extended headers, metadata contexts) is forgotten, as the
 * spec requires: a man in the middle could have chosen it.  A second
 * STARTTLS gets ERR_INVALID.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "cleanup.h"

uint16_t
export_tx_flags (const struct export *e, const struct conn *c)
{
  uint16_t f = e->flags;

  if (c->structured || c->extended)
    f |= NBD_FLAG_SEND_DF;
  return f;
}

/* A printable copy of a client-supplied name for logs (bounded, with
 * control characters replaced).
 */
static const char *
printable (const char *s, size_t len, char *buf, size_t buflen)
{
  size_t i, n = len < buflen - 1 ? len : buflen - 1;

  for (i = 0; i < n; ++i)
    buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  buf[i] = '\0';
  if (len > n && n >= 3)
    memcpy (buf + n - 3, "...", 3);
  return buf;
}

static int
send_reply (struct conn *c, uint32_t option, uint32_t type, const void *data,
            size_t len, double deadline)
{
  unsigned char stackbuf[256];
  CLEANUP_FREE unsigned char *heap = NULL;
  unsigned char *buf = stackbuf;

  if (NBD_OPTION_REPLY_HEADER_SIZE + len > sizeof stackbuf) {
    heap = malloc (NBD_OPTION_REPLY_HEADER_SIZE + len);
    if (heap == NULL) {
      conn_log (c, "out of memory");
      return -1;
    }
    buf = heap;
  }
  vd_nbd_encode_option_reply_header (buf, option, type, len);
  if (len)
    memcpy (buf + NBD_OPTION_REPLY_HEADER_SIZE, data, len);
  if (conn_write_full (c, buf, NBD_OPTION_REPLY_HEADER_SIZE + len,
                       deadline) == -1) {
    if (errno)
      conn_debug (c, 1, "sending the reply to %s: %m",
                  vd_nbd_opt_name (option));
    return -1;
  }
  conn_debug (c, 2, "%s: reply %s, %zu bytes", vd_nbd_opt_name (option),
              vd_nbd_rep_name (type), len);
  return 0;
}

/* An error reply with a message for the human at the other end (also
 * logged: every refused option is).
 */
static int
send_error (struct conn *c, uint32_t option, uint32_t type, double deadline,
            const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));
static int
send_error (struct conn *c, uint32_t option, uint32_t type, double deadline,
            const char *fmt, ...)
{
  char msg[512];
  va_list args;
  int n;

  va_start (args, fmt);
  n = vsnprintf (msg, sizeof msg, fmt, args);
  va_end (args);
  if (n < 0)
    n = 0;
  if ((size_t) n >= sizeof msg)
    n = sizeof msg - 1;
  conn_log (c, "%s refused (%s): %s", vd_nbd_opt_name (option),
            vd_nbd_rep_name (type), msg);
  return send_reply (c, option, type, msg, n, deadline);
}

/* A tls-only export (SELECTIVETLS) named before TLS: refused, and the
 * option loop goes on (the client may STARTTLS and ask again).
 */
static enum hs_state
refuse_tls_only (struct conn *c, uint32_t option, const struct export *e,
                 double deadline)
{
  char nbuf[80];

  return send_error (c, option, NBD_REP_ERR_TLS_REQD, deadline,
                     "export '%s' needs TLS: send NBD_OPT_STARTTLS first",
                     printable (e->name, strlen (e->name), nbuf,
                                sizeof nbuf))
    ? HS_CLOSE : HS_RECV_OPTION;
}

static int
send_ack (struct conn *c, uint32_t option, double deadline)
{
  return send_reply (c, option, NBD_REP_ACK, NULL, 0, deadline);
}

static void
enter_transmission (struct conn *c, struct export *e)
{
  c->exp = e;
  c->tx.export_size = e->size;
  c->tx.transmission_flags = export_tx_flags (e, c);
  c->tx.structured_replies = c->structured;
  c->tx.extended_headers = c->extended;
  c->tx.nr_meta_contexts =
    (c->meta_base_allocation && c->meta_export == e) ? 1 : 0;
  c->tx.min_block = e->min_block;
  c->tx.max_payload = e->max_payload;
}

/* NBD_OPT_INFO and NBD_OPT_GO. */
static enum hs_state
opt_info_go (struct conn *c, uint32_t option, const unsigned char *data,
             uint32_t len, double deadline)
{
  struct vd_nbd_info_request ir;
  struct export *e;
  const char *why = NULL;
  unsigned char buf[16 + NBD_MAX_STRING];
  char nbuf[80];
  ssize_t n;
  uint16_t flags;

  if (vd_nbd_decode_info_request (data, len, &ir, &why) == -1)
    return send_error (c, option, NBD_REP_ERR_INVALID, deadline, "%s", why)
      ? HS_CLOSE : HS_RECV_OPTION;
  if (vd_nbd_info_request_has_duplicates (&ir))
    return send_error (c, option, NBD_REP_ERR_INVALID, deadline,
                       "the same information was requested twice")
      ? HS_CLOSE : HS_RECV_OPTION;
  e = srv_find_export (c->s, ir.name, ir.name_len);
  if (e == NULL)
    return send_error (c, option, NBD_REP_ERR_UNKNOWN, deadline,
                       "no export named '%s'",
                       printable (ir.name, ir.name_len, nbuf, sizeof nbuf))
      ? HS_CLOSE : HS_RECV_OPTION;
  if (e->tls_only && !c->tls)
    return refuse_tls_only (c, option, e, deadline);

  flags = export_tx_flags (e, c);
  n = vd_nbd_encode_info_export (buf, e->size, flags);
  if (send_reply (c, option, NBD_REP_INFO, buf, n, deadline) == -1)
    return HS_CLOSE;
  if (vd_nbd_info_request_has (&ir, NBD_INFO_NAME)) {
    n = vd_nbd_encode_info_string (buf, sizeof buf, NBD_INFO_NAME, e->name,
                                   strlen (e->name), NULL);
    if (n > 0 && send_reply (c, option, NBD_REP_INFO, buf, n, deadline) == -1)
      return HS_CLOSE;
  }
  if (vd_nbd_info_request_has (&ir, NBD_INFO_DESCRIPTION) && e->description) {
    n = vd_nbd_encode_info_string (buf, sizeof buf, NBD_INFO_DESCRIPTION,
                                   e->description, strlen (e->description),
                                   NULL);
    if (n > 0 && send_reply (c, option, NBD_REP_INFO, buf, n, deadline) == -1)
      return HS_CLOSE;
  }
  /* Block sizes are always sent: unasked, a client may ignore them; asked,
   * it must obey them.
   */
  n = vd_nbd_encode_info_block_size (buf, e->min_block, e->pref_block,
                                     e->max_payload);
  if (send_reply (c, option, NBD_REP_INFO, buf, n, deadline) == -1)
    return HS_CLOSE;
  if (send_ack (c, option, deadline) == -1)
    return HS_CLOSE;
  if (option == NBD_OPT_INFO)
    return HS_RECV_OPTION;
  enter_transmission (c, e);
  return HS_TRANSMISSION;
}

static enum hs_state
opt_export_name (struct conn *c, const unsigned char *data, uint32_t len,
                 double deadline)
{
  unsigned char buf[NBD_EXPORT_NAME_REPLY_SIZE + NBD_EXPORT_NAME_PADDING];
  struct export *e;
  char nbuf[80];
  size_t n;

  /* This option cannot fail politely: every problem closes. */
  if (c->extended) {
    conn_log (c, "NBD_OPT_EXPORT_NAME after NBD_OPT_EXTENDED_HEADERS "
              "(forbidden): disconnecting");
    return HS_CLOSE;
  }
  if (len > NBD_MAX_STRING) {
    conn_log (c, "NBD_OPT_EXPORT_NAME: name longer than 4096 bytes: "
              "disconnecting");
    return HS_CLOSE;
  }
  if (srv_stopping (c->s)) {
    conn_log (c, "NBD_OPT_EXPORT_NAME: the server is shutting down: "
              "disconnecting");
    return HS_CLOSE;
  }
  e = srv_find_export (c->s, (const char *) data, len);
  if (e == NULL) {
    conn_log (c, "NBD_OPT_EXPORT_NAME: no export named '%s': "
              "disconnecting",
              printable ((const char *) data, len, nbuf, sizeof nbuf));
    return HS_CLOSE;
  }
  if (e->tls_only && !c->tls) {
    conn_log (c, "NBD_OPT_EXPORT_NAME: export '%s' needs TLS and the "
              "client did not send NBD_OPT_STARTTLS: disconnecting",
              printable (e->name, strlen (e->name), nbuf, sizeof nbuf));
    return HS_CLOSE;
  }
  n = vd_nbd_encode_export_name_reply (buf, e->size, export_tx_flags (e, c),
                                       c->no_zeroes);
  if (conn_write_full (c, buf, n, deadline) == -1)
    return HS_CLOSE;
  enter_transmission (c, e);
  return HS_TRANSMISSION;
}

static enum hs_state
opt_list (struct conn *c, uint32_t len, double deadline)
{
  unsigned char buf[8 + 2 * NBD_MAX_STRING];

  if (len != 0)
    return send_error (c, NBD_OPT_LIST, NBD_REP_ERR_INVALID, deadline,
                       "NBD_OPT_LIST takes no data")
      ? HS_CLOSE : HS_RECV_OPTION;
  for (size_t i = 0; i < c->s->nr_exports; ++i) {
    struct export *e = &c->s->exports[i];
    const char *d = e->description ? e->description : "";
    ssize_t n;

    if (e->tls_only && !c->tls)
      continue;                 /* hidden until TLS (SELECTIVETLS) */
    n = vd_nbd_encode_rep_server (buf, sizeof buf, e->name,
                                  strlen (e->name), d, strlen (d), NULL);
    if (n > 0 && (size_t) n <= sizeof buf &&
        send_reply (c, NBD_OPT_LIST, NBD_REP_SERVER, buf, n, deadline) == -1)
      return HS_CLOSE;
  }
  return send_ack (c, NBD_OPT_LIST, deadline) ? HS_CLOSE : HS_RECV_OPTION;
}

/* NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT. */
static enum hs_state
opt_meta_context (struct conn *c, uint32_t option, const unsigned char *data,
                  uint32_t len, double deadline)
{
  const bool set = option == NBD_OPT_SET_META_CONTEXT;
  struct vd_nbd_meta_request mr;
  const char *why = NULL, *q, *leaf;
  uint32_t qlen;
  size_t pos = 0, nslen, leaflen;
  struct export *e;
  bool match = false;
  char nbuf[80];
  unsigned char buf[64];
  ssize_t n;

  /* The selection is replaced even when the option fails. */
  if (set) {
    c->meta_base_allocation = false;
    c->meta_export = NULL;
  }
  if (!c->structured && !c->extended)
    return send_error (c, option, NBD_REP_ERR_INVALID, deadline,
                       "negotiate structured replies or extended headers "
                       "first")
      ? HS_CLOSE : HS_RECV_OPTION;
  if (vd_nbd_decode_meta_request (data, len, &mr, &why) == -1)
    return send_error (c, option, NBD_REP_ERR_INVALID, deadline, "%s", why)
      ? HS_CLOSE : HS_RECV_OPTION;
  e = srv_find_export (c->s, mr.name, mr.name_len);
  if (e == NULL)
    return send_error (c, option, NBD_REP_ERR_UNKNOWN, deadline,
                       "no export named '%s'",
                       printable (mr.name, mr.name_len, nbuf, sizeof nbuf))
      ? HS_CLOSE : HS_RECV_OPTION;
  if (e->tls_only && !c->tls)
    return refuse_tls_only (c, option, e, deadline);

  if (mr.nr_queries == 0)
    match = !set;               /* list all; select nothing */
  while (vd_nbd_meta_request_next (&mr, &pos, &q, &qlen)) {
    if (vd_nbd_meta_split (q, qlen, &nslen, &leaf, &leaflen) == -1)
      return send_error (c, option, NBD_REP_ERR_INVALID, deadline,
                         "metadata context query '%s' has no namespace",
                         printable (q, qlen, nbuf, sizeof nbuf))
        ? HS_CLOSE : HS_RECV_OPTION;
    if (nslen != 4 || memcmp (q, "base", 4) != 0)
      continue;                 /* unknown namespaces are ignored */
    if (leaflen == 0 && !set)
      match = true;             /* "base:" lists the base contexts */
    else if (leaflen == 10 && memcmp (leaf, "allocation", 10) == 0)
      match = true;
  }
  if (match) {
    n = vd_nbd_encode_rep_meta_context (buf, sizeof buf,
                                        set ? SRV_META_CONTEXT_ID : 0,
                                        NBD_META_BASE_ALLOCATION,
                                        strlen (NBD_META_BASE_ALLOCATION),
                                        NULL);
    if (send_reply (c, option, NBD_REP_META_CONTEXT, buf, n, deadline) == -1)
      return HS_CLOSE;
  }
  if (send_ack (c, option, deadline) == -1)
    return HS_CLOSE;
  if (set) {
    c->meta_base_allocation = match;
    c->meta_export = e;
  }
  return HS_RECV_OPTION;
}

static enum hs_state
opt_starttls (struct conn *c, uint32_t len, double deadline)
{
  if (len)
    return send_error (c, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID, deadline,
                       "NBD_OPT_STARTTLS takes no data")
      ? HS_CLOSE : HS_RECV_OPTION;
  if (c->s->cfg.tls == VD_SERVER_TLS_OFF)
    return send_error (c, NBD_OPT_STARTTLS, NBD_REP_ERR_POLICY, deadline,
                       "TLS is not enabled on this server")
      ? HS_CLOSE : HS_RECV_OPTION;
  if (c->tls)
    return send_error (c, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID, deadline,
                       "TLS is already on")
      ? HS_CLOSE : HS_RECV_OPTION;
  if (send_ack (c, NBD_OPT_STARTTLS, deadline) == -1)
    return HS_CLOSE;
#if HAVE_GNUTLS
  /* From the ACK on it is TLS or nothing: a failed handshake closes. */
  if (tls_upgrade (c, deadline) == -1)
    return HS_CLOSE;
#else
  return HS_CLOSE;              /* unreachable: vd_server_new refuses TLS */
#endif
  c->structured = false;
  c->extended = false;
  c->meta_export = NULL;
  c->meta_base_allocation = false;
  return HS_RECV_OPTION;
}

/* FORCEDTLS: before STARTTLS, only STARTTLS and ABORT are allowed. */
static bool
tls_required (struct conn *c, uint32_t option)
{
  return c->s->cfg.tls == VD_SERVER_TLS_REQUIRE && !c->tls &&
    option != NBD_OPT_STARTTLS && option != NBD_OPT_ABORT;
}

static enum hs_state
refuse_tls_required (struct conn *c, uint32_t option, double deadline)
{
  if (option == NBD_OPT_EXPORT_NAME) {
    conn_log (c, "NBD_OPT_EXPORT_NAME before NBD_OPT_STARTTLS, but TLS is "
              "required: disconnecting");
    return HS_CLOSE;
  }
  return send_error (c, option, NBD_REP_ERR_TLS_REQD, deadline,
                     "TLS is required: send NBD_OPT_STARTTLS first")
    ? HS_CLOSE : HS_RECV_OPTION;
}

/* Read one option and act on it. */
static enum hs_state
recv_option (struct conn *c, double deadline, unsigned *nr_options)
{
  unsigned char hdr[NBD_OPTION_HEADER_SIZE];
  CLEANUP_FREE unsigned char *data = NULL;
  struct vd_nbd_option o;
  const char *why = NULL;
  bool known;

  if (conn_read_full (c, hdr, sizeof hdr, deadline, "option") == -1) {
    if (errno == 0)
      conn_debug (c, 1, "disconnected during the handshake");
    else if (errno == ETIMEDOUT)
      conn_log (c, "handshake not finished within %g seconds: "
                "disconnecting", c->s->cfg.handshake_timeout);
    else if (errno == ECONNRESET)
      conn_debug (c, 1, "client reset the connection");
    else if (errno != ESHUTDOWN)
      conn_log (c, "reading an option: %m");
    return HS_CLOSE;
  }
  if (vd_nbd_decode_option_header (hdr, sizeof hdr, &o, &why) == -1) {
    conn_log (c, "%s: disconnecting", why);
    return HS_CLOSE;
  }
  conn_debug (c, 2, "option %s (%" PRIu32 "), %" PRIu32 " bytes",
              vd_nbd_opt_name (o.option), o.option, o.length);
  if (++*nr_options > SRV_MAX_OPTIONS) {
    conn_log (c, "more than %d options: disconnecting", SRV_MAX_OPTIONS);
    return HS_CLOSE;
  }
  if (!c->fixed_newstyle && o.option != NBD_OPT_EXPORT_NAME) {
    /* Without fixed newstyle the server cannot reply to options. */
    conn_log (c, "%s from a client without fixed newstyle: disconnecting",
              vd_nbd_opt_name (o.option));
    return HS_CLOSE;
  }

  known = strcmp (vd_nbd_opt_name (o.option), "unknown") != 0 &&
    o.option != NBD_OPT_PEEK_EXPORT;
  if (o.length > SRV_MAX_OPTION_LEN) {
    if (o.option == NBD_OPT_EXPORT_NAME) {
      conn_log (c, "NBD_OPT_EXPORT_NAME with %" PRIu32 " bytes of name: "
                "disconnecting", o.length);
      return HS_CLOSE;
    }
    if (conn_skip (c, o.length, deadline) == -1)
      return HS_CLOSE;
    if (o.option == NBD_OPT_ABORT)
      return HS_CLOSE;
    if (tls_required (c, o.option))
      return refuse_tls_required (c, o.option, deadline);
    return send_error (c, o.option,
                       known ? NBD_REP_ERR_TOO_BIG : NBD_REP_ERR_UNSUP,
                       deadline, "option data of %" PRIu32 " bytes is "
                       "larger than this server accepts", o.length)
      ? HS_CLOSE : HS_RECV_OPTION;
  }
  if (o.length) {
    data = malloc (o.length);
    if (data == NULL) {
      conn_log (c, "out of memory");
      return HS_CLOSE;
    }
    if (conn_read_full (c, data, o.length, deadline, "option data") == -1) {
      if (errno)
        conn_log (c, "reading %s data: %m", vd_nbd_opt_name (o.option));
      return HS_CLOSE;
    }
  }

  if (srv_stopping (c->s) && o.option != NBD_OPT_ABORT) {
    if (o.option == NBD_OPT_EXPORT_NAME)
      return HS_CLOSE;
    send_error (c, o.option, NBD_REP_ERR_SHUTDOWN, deadline,
                "the server is shutting down");
    return HS_CLOSE;
  }

  if (tls_required (c, o.option))
    return refuse_tls_required (c, o.option, deadline);

  switch (o.option) {
  case NBD_OPT_EXPORT_NAME:
    return opt_export_name (c, data, o.length, deadline);

  case NBD_OPT_ABORT:
    /* The client may close without waiting for the ACK. */
    send_ack (c, o.option, deadline);
    conn_debug (c, 1, "client aborted the handshake");
    return HS_CLOSE;

  case NBD_OPT_LIST:
    return opt_list (c, o.length, deadline);

  case NBD_OPT_STARTTLS:
    return opt_starttls (c, o.length, deadline);

  case NBD_OPT_INFO:
  case NBD_OPT_GO:
    return opt_info_go (c, o.option, data, o.length, deadline);

  case NBD_OPT_STRUCTURED_REPLY:
    if (o.length)
      return send_error (c, o.option, NBD_REP_ERR_INVALID, deadline,
                         "NBD_OPT_STRUCTURED_REPLY takes no data")
        ? HS_CLOSE : HS_RECV_OPTION;
    if (c->extended)
      return send_error (c, o.option, NBD_REP_ERR_EXT_HEADER_REQD, deadline,
                         "extended headers are already negotiated")
        ? HS_CLOSE : HS_RECV_OPTION;
    c->structured = true;
    return send_ack (c, o.option, deadline) ? HS_CLOSE : HS_RECV_OPTION;

  case NBD_OPT_EXTENDED_HEADERS:
    if (o.length)
      return send_error (c, o.option, NBD_REP_ERR_INVALID, deadline,
                         "NBD_OPT_EXTENDED_HEADERS takes no data")
        ? HS_CLOSE : HS_RECV_OPTION;
    c->extended = true;
    return send_ack (c, o.option, deadline) ? HS_CLOSE : HS_RECV_OPTION;

  case NBD_OPT_LIST_META_CONTEXT:
  case NBD_OPT_SET_META_CONTEXT:
    return opt_meta_context (c, o.option, data, o.length, deadline);

  default:
    return send_error (c, o.option, NBD_REP_ERR_UNSUP, deadline,
                       "option %" PRIu32 " (%s) is not supported", o.option,
                       vd_nbd_opt_name (o.option))
      ? HS_CLOSE : HS_RECV_OPTION;
  }
}

enum hs_state
handshake (struct conn *c)
{
  const double limit = c->s->cfg.handshake_timeout;
  const double deadline = limit > 0 ? srv_now () + limit : -1;
  const uint16_t server_flags = NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES;
  enum hs_state st = HS_SEND_GREETING;
  unsigned nr_options = 0;
  unsigned char buf[VD_NBD_GREETING_SIZE];
  const char *why = NULL;
  uint32_t cflags;

  while (st != HS_TRANSMISSION && st != HS_CLOSE) {
    switch (st) {
    case HS_SEND_GREETING:
      vd_nbd_encode_greeting (buf, server_flags);
      if (conn_write_full (c, buf, VD_NBD_GREETING_SIZE, deadline) == -1) {
        if (errno)
          conn_debug (c, 1, "sending the greeting: %m");
        st = HS_CLOSE;
      }
      else
        st = HS_RECV_CLIENT_FLAGS;
      break;

    case HS_RECV_CLIENT_FLAGS:
      if (conn_read_full (c, buf, VD_NBD_CLIENT_FLAGS_SIZE, deadline,
                          "client flags") == -1) {
        if (errno == ETIMEDOUT)
          conn_log (c, "handshake not finished within %g seconds (no "
                    "client flags): disconnecting", limit);
        else if (errno == 0)
          conn_debug (c, 1, "disconnected before sending client flags");
        else if (errno == ECONNRESET)
          conn_debug (c, 1, "client reset the connection");
        else if (errno != ESHUTDOWN)
          conn_log (c, "reading client flags: %m");
        st = HS_CLOSE;
        break;
      }
      if (vd_nbd_decode_client_flags (buf, VD_NBD_CLIENT_FLAGS_SIZE,
                                      server_flags, &cflags, &why) == -1) {
        conn_log (c, "%s: disconnecting", why);
        st = HS_CLOSE;
        break;
      }
      c->fixed_newstyle = (cflags & NBD_FLAG_C_FIXED_NEWSTYLE) != 0;
      c->no_zeroes = (cflags & NBD_FLAG_C_NO_ZEROES) != 0;
      st = HS_RECV_OPTION;
      break;

    case HS_RECV_OPTION:
      st = recv_option (c, deadline, &nr_options);
      break;

    case HS_TRANSMISSION:
    case HS_CLOSE:
      break;
    }
  }
  return st;
}
