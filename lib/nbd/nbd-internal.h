/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Internal interfaces of the NBD client (lib/nbd/).  Four layers, each
 * in its own file; docs/internals/client-state-machine.md has the
 * picture and the rules.
 *
 *   nbd.c        the "nbd" attachment: validation results -> wire
 *                commands (alignment, read-modify-write, splitting,
 *                sync mode, FUA emulation), capabilities, properties
 *   reconnect.c  the reconnect decorator: journal of requests in flight,
 *                backoff, replay in order, export identity check, events
 *   client.c     one connection: the handshake driven by the caller's
 *                poll loop, then an I/O thread that owns the socket;
 *                callers submit commands and wait for their completion
 *   conn.c + states-*.c
 *                the non-blocking state machine of one connection (no
 *                threads, no blocking, no clock): handshake, issuing
 *                requests, reading replies; states are listed in states.h
 *   transport.c  the byte pipe under the state machine: a small vtable
 *                (TCP, Unix, vsock sockets)
 *   tls.c        TLS (GnuTLS): a transport wrapping a socket transport
 */
#ifndef VD_NBD_INTERNAL_H
#define VD_NBD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "nbd-uri.h"
#include "nbd-protocol.h"
#include "nbd-proto.h"

/* Copy a string into a fixed buffer, truncating (always terminated). */
static inline void
vd_nbd_copy_str (char *dst, size_t len, const char *src)
{
  size_t n = strnlen (src, len - 1);
  memcpy (dst, src, n);
  dst[n] = '\0';
}

/* ---- URIs (uri.c) ------------------------------------------------------ */

/* Parse an NBD URI, raising EINVAL with "URI: problem" on error. */
int vd_nbd_parse_uri (const char *uri, struct vd_nbd_uri *u);

/* uri made safe and short enough to print in a message. */
void vd_nbd_uri_for_message (const char *uri, char *buf, size_t len);

/* ---- Transport (transport.c) ------------------------------------------- */

/* A byte pipe.  Every call is non-blocking.  TLS (tls.c) is a
 * transport that wraps a socket transport: pending() reports bytes
 * decrypted but not yet returned, and its handshake runs (as a state of
 * the state machine) before the first recv/send.
 *
 * The rule for send: after it fails with EAGAIN, the next call must
 * start with the same bytes (at least as many).  TLS has already
 * encrypted them into a record it holds, and writes that record on the
 * next call whatever it is given (GnuTLS's rule).
 */
struct vd_nbd_transport_ops {
  const char *name;
  /* > 0 bytes read, 0 at end of stream, -1 with errno (EAGAIN). */
  ssize_t (*recv) (void *t, void *buf, size_t len);
  /* Bytes written (possibly fewer than asked), or -1 with errno.
   * more: more data follows at once (MSG_MORE).
   */
  ssize_t (*send) (void *t, const struct iovec *iov, int iovcnt, bool more);
  /* The fd to poll, or -1 (in-memory transports: always ready). */
  int (*get_fd) (void *t);
  /* Bytes buffered inside the transport that poll cannot see. */
  bool (*pending) (void *t);
  /* No more data from us (after NBD_CMD_DISC). */
  void (*shut_wr) (void *t);
  void (*close) (void *t);
  /* What went wrong in the last recv/send that failed with an errno
   * strerror cannot explain (TLS), or NULL.  May be NULL itself.
   */
  const char *(*last_error) (void *t);
};

struct vd_nbd_transport {
  const struct vd_nbd_transport_ops *ops;
  void *handle;
};

/* Connect to what u names, within the deadline (CLOCK_MONOTONIC ns).
 * Tries every address a host name resolves to.  On failure returns -1
 * with *err an errno, *recoverable telling whether trying again later
 * may work (refused, reset, timeout, temporary resolver failure), and a
 * message in msg.
 */
int vd_nbd_transport_connect (const struct vd_nbd_uri *u, int64_t deadline,
                              struct vd_nbd_transport *t, int *err,
                              bool *recoverable, char *msg, size_t msglen);
/* A transport over an already connected socket (tests, fuzzing). */
int vd_nbd_transport_from_fd (int fd, struct vd_nbd_transport *t);

/* ---- TLS (tls.c) ------------------------------------------------------ */

enum {
  VD_NBD_TLS_OFF = 0,           /* plaintext */
  VD_NBD_TLS_TRY,               /* nbd:// with certificates or a PSK file:
                                   STARTTLS, plaintext if refused */
  VD_NBD_TLS_REQUIRE,           /* nbds*: TLS or fail, no downgrade */
};

/* What the URI asks for (VD_NBD_TLS_*). */
int vd_nbd_tls_mode (const struct vd_nbd_uri *u);
/* Refuse what cannot work before any connection (no GnuTLS, tls-type
 * anon, contradictions): 0, or -1 with a message.
 */
int vd_nbd_tls_check_config (const struct vd_nbd_uri *u, char *msg,
                             size_t len);
/* Wrap the connected transport *t in a TLS client session configured
 * from u (credentials loaded now).  0, or -1 with a message (t is left
 * as it was).  The handshake has not started.
 */
int vd_nbd_tls_wrap (struct vd_nbd_transport *t, const struct vd_nbd_uri *u,
                     char *msg, size_t len);
/* Advance the TLS handshake of a wrapped transport: 1 done, 0 would
 * block (*want_write: wait for POLLOUT, else POLLIN), -1 failed with
 * *err, *recoverable and a message.
 */
int vd_nbd_tls_handshake (struct vd_nbd_transport *t, bool *want_write,
                          int *err, bool *recoverable, char *msg,
                          size_t len);
/* "TLS1.3, X.509, server verified", for properties. */
void vd_nbd_tls_describe (struct vd_nbd_transport *t, char *buf,
                          size_t len);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t vd_nbd_now (void);
#define VD_NBD_NS_PER_S INT64_C (1000000000)

/* ---- Commands ---------------------------------------------------------- */

#define VD_NBD_ERRMSG_LEN 1024

/* One extent of a BLOCK_STATUS reply (base:allocation flags). */
struct vd_nbd_extent {
  uint64_t length;
  uint32_t flags;
};

/* A byte range [start, end) of a READ covered by a reply chunk. */
struct vd_nbd_range {
  uint64_t start, end;
};

/* A command on the wire, as the layers above see it.  It lives in the
 * memory of whoever submitted it (usually a caller's stack frame, which
 * is blocked until done is called), so no allocation per request.
 */
struct vd_nbd_cmd {
  /* Filled by the submitter. */
  uint16_t type;                /* NBD_CMD_* */
  uint16_t flags;               /* NBD_CMD_FLAG_* */
  uint64_t offset;
  uint64_t count;
  void *data;                   /* READ: destination, WRITE: source */
  /* Called exactly once, from the thread running the state machine,
   * with no connection lock held.  May not call back into the
   * connection.
   */
  void (*done) (struct vd_nbd_cmd *cmd);
  void *user;

  /* Results, valid in done. */
  int err;                      /* 0 or an errno */
  bool recoverable;             /* the connection failed under it: the
                                   command may be replayed elsewhere */
  char errmsg[VD_NBD_ERRMSG_LEN]; /* what went wrong (err != 0) */
  struct vd_nbd_extent *extents; /* BLOCK_STATUS: malloc'd, owner frees */
  size_t nr_extents;

  /* Private to the connection. */
  uint64_t cookie;
  uint32_t slot;
  unsigned char hdr[NBD_EXTENDED_REQUEST_SIZE];
  size_t hdr_len;
  uint64_t tx_pos;              /* bytes of header + payload sent */
  bool sent;                    /* fully on the wire */
  bool has_status;              /* BLOCK_STATUS: a status chunk came */
  uint64_t covered;             /* READ: bytes covered by chunks */
  struct vd_nbd_range *ranges;  /* READ: chunks seen (overlap check) */
  size_t nr_ranges, cap_ranges;
  struct vd_nbd_cmd *next;      /* queue link */
};

/* Reset the results and private fields so cmd can be submitted again
 * (reconnect replay).  Frees extents.
 */
void vd_nbd_cmd_reset (struct vd_nbd_cmd *cmd);

/* ---- The state machine (conn.c, states-*.c) --------------------------- */

#include "states.h"

enum vd_nbd_state {
#define STATE(name, dir, comment) VD_NBD_STATE_##name,
  VD_NBD_STATES
#undef STATE
  VD_NBD_NR_STATES
};

/* What a state function returns. */
enum {
  VD_NBD_CONTINUE = 0,          /* progress: run the (new) state again */
  VD_NBD_BLOCK = 1,             /* wait for the transport (or a command) */
};

/* What the handshake found out. */
struct vd_nbd_export_info {
  uint64_t size;
  uint16_t eflags;              /* transmission flags */
  uint32_t min_block;           /* 1 if not advertised */
  uint32_t pref_block;          /* 4096 if not advertised */
  uint32_t max_payload;         /* 32 MiB if not advertised */
  bool block_size_advertised;
  bool structured;              /* structured replies */
  bool extended;                /* extended headers */
  bool extents;                 /* base:allocation selected */
  uint32_t meta_id;             /* its context id */
  bool go;                      /* NBD_OPT_GO (else EXPORT_NAME) */
  bool tls;                     /* negotiated over TLS */
  char tls_desc[96];            /* vd_nbd_tls_describe, or "" */
};

/* Handshake choices (tests and the fuzz target turn features off to
 * reach the fallbacks).
 */
#define VD_NBD_NO_EXTENDED_HEADERS (1u << 0)
#define VD_NBD_NO_STRUCTURED_REPLY (1u << 1)
#define VD_NBD_NO_META_CONTEXT     (1u << 2)
#define VD_NBD_NO_GO               (1u << 3)

struct vd_nbd_conn {
  struct vd_nbd_transport t;
  char name[200];               /* for messages: the URI */
  char *export_name;            /* owned */
  uint32_t hs_flags;            /* VD_NBD_NO_* */

  int state;                    /* handshake states, READY, DEAD */
  int tx_state, rx_state;       /* the two machines of transmission */
  struct vd_nbd_export_info info;
  uint16_t gflags;              /* server handshake flags */
  bool no_zeroes;
  bool got_info_export;         /* GO: NBD_INFO_EXPORT seen */
  uint32_t cur_opt;             /* option being negotiated */
  int hs_step;                  /* next option group (PREPARE_OPT) */
  bool got_meta;                /* SET_META_CONTEXT named base:allocation */
  bool disc_requested;          /* vd_nbd_conn_disconnect called */

  /* TLS (set after init by the owner; off by default). */
  int tls_mode;                 /* VD_NBD_TLS_* */
  const struct vd_nbd_uri *tls_uri; /* its settings (outlives c) */
  bool tls_want_write;          /* TLS_HANDSHAKE waits for POLLOUT */
  /* Why SEND_ABORT ends the connection. */
  int abort_err;
  bool abort_recoverable;
  char abort_msg[VD_NBD_ERRMSG_LEN];

  /* Death. */
  int err;                      /* errno why it died */
  bool recoverable;
  char errmsg[VD_NBD_ERRMSG_LEN];

  /* Receive buffer: headers and small payloads are read in batches;
   * large payloads go straight into the caller's buffer.
   */
  unsigned char *rx;
  size_t rx_cap, rx_start, rx_end;
  bool rx_eagain;               /* the last recv would have blocked */
  bool tx_eagain;
  uint64_t tx_offered;          /* bytes the last send refused (EAGAIN):
                                   the next send starts with them */
  uint64_t bytes_moved;         /* for no-progress timeouts */

  /* Option being sent: header + data. */
  unsigned char *opt;
  size_t opt_len, opt_pos, opt_cap;

  /* Payload of the current option reply or reply chunk. */
  unsigned char *pay;
  size_t pay_len, pay_pos, pay_cap;

  /* Current reply. */
  unsigned char rhdr[NBD_EXTENDED_REPLY_SIZE];
  size_t rhdr_len, rhdr_pos;
  struct vd_nbd_reply reply;    /* decoded */
  struct vd_nbd_cmd *rcmd;      /* command the reply is for */
  uint64_t data_off, data_len, data_pos; /* READ payload being read */

  /* Commands. */
  struct vd_nbd_cmd *pre_head, *pre_tail; /* submitted during the
                                            handshake, sent after it */
  uint32_t nr_pre;
  struct vd_nbd_cmd *txq_head, *txq_tail; /* to send, in order */
  struct vd_nbd_cmd **slots;    /* in flight, by slot */
  uint32_t nr_slots;
  uint32_t *free_slots;
  uint32_t nr_free;
  uint32_t in_flight;           /* sent or being sent, reply not done */
  uint32_t seq;
  bool shutdown_seen;           /* server said ESHUTDOWN: drain, DISC */
  bool disc_queued, disc_sent;
  struct vd_nbd_cmd disc;       /* the NBD_CMD_DISC command */
};

/* Set up c to negotiate export_name over t (which c then owns). */
int vd_nbd_conn_init (struct vd_nbd_conn *c, struct vd_nbd_transport t,
                      const char *name, const char *export_name,
                      uint32_t hs_flags);
/* Close the transport, fail whatever is still queued or in flight
 * (ESHUTDOWN, recoverable), free everything.
 */
void vd_nbd_conn_fini (struct vd_nbd_conn *c);

/* Advance as far as possible without blocking.  revents are the poll
 * results for the transport's fd (POLLIN/POLLOUT/POLLERR/POLLHUP), or
 * POLLIN|POLLOUT for in-memory transports.
 */
void vd_nbd_conn_run (struct vd_nbd_conn *c, short revents);
/* The poll events the connection waits for now (0 once dead). */
short vd_nbd_conn_events (struct vd_nbd_conn *c);

bool vd_nbd_conn_ready (const struct vd_nbd_conn *c);  /* transmission */
bool vd_nbd_conn_dead (const struct vd_nbd_conn *c);
/* Queue a command.  During the handshake it waits and goes out once the
 * handshake is done (in submission order); if the connection is dead or
 * draining it fails at once, through done.
 */
void vd_nbd_conn_submit (struct vd_nbd_conn *c, struct vd_nbd_cmd *cmd);
/* Ask for a soft disconnect: NBD_CMD_DISC once everything queued is
 * sent and every reply is in.  The connection is dead (err 0) when done.
 */
void vd_nbd_conn_disconnect (struct vd_nbd_conn *c);
/* Hard disconnect with an error: fails every command. */
void vd_nbd_conn_kill (struct vd_nbd_conn *c, int err, bool recoverable,
                       const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));
/* Commands queued or awaiting replies. */
uint32_t vd_nbd_conn_busy (const struct vd_nbd_conn *c);

/* The state table, for messages and docs. */
const char *vd_nbd_state_name (int state);

/* State functions (states-handshake.c, states-transmission.c). */
#define STATE(name, dir, comment) \
  int vd_nbd_state_##name (struct vd_nbd_conn *c);
VD_NBD_STATES
#undef STATE

/* Helpers for state functions (conn.c).  The rx/tx helpers return 1
 * when done, 0 when the transport would block, -1 when the connection
 * died (already killed: the state function returns at once).
 */
int vd_nbd_rx_need (struct vd_nbd_conn *c, size_t n);
const unsigned char *vd_nbd_rx_peek (struct vd_nbd_conn *c);
void vd_nbd_rx_consume (struct vd_nbd_conn *c, size_t n);
int vd_nbd_rx_copy (struct vd_nbd_conn *c, void *dst, uint64_t len,
                    uint64_t *pos);
/* errno e of the transport in words (its own message when it has one). */
const char *vd_nbd_transport_strerror (struct vd_nbd_conn *c, int e,
                                       char *buf, size_t len);
/* Make the payload buffer hold len bytes (0 or -1: killed, ENOMEM). */
int vd_nbd_pay_reserve (struct vd_nbd_conn *c, size_t len);
/* Make the option buffer hold len bytes (0 or -1: killed, ENOMEM). */
int vd_nbd_opt_reserve (struct vd_nbd_conn *c, size_t len);
int vd_nbd_tx_opt (struct vd_nbd_conn *c);
/* Enter transmission (handshake done). */
void vd_nbd_conn_enter_ready (struct vd_nbd_conn *c);
/* Finish a command: checks, ESHUTDOWN handling, done callback. */
void vd_nbd_cmd_finish (struct vd_nbd_conn *c, struct vd_nbd_cmd *cmd);
/* Set a command's error (the first one wins). */
void vd_nbd_cmd_set_error (struct vd_nbd_cmd *cmd, int err,
                           const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
/* The command a reply cookie names, or NULL. */
struct vd_nbd_cmd *vd_nbd_conn_lookup (struct vd_nbd_conn *c, uint64_t cookie);

/* ---- One connection with its I/O thread (client.c) -------------------- */

struct vd_nbd_client;

struct vd_nbd_client_params {
  const struct vd_nbd_uri *uri;
  const char *name;             /* for messages */
  int64_t deadline;             /* connect + handshake (monotonic ns) */
  int64_t io_timeout;           /* ns without progress while busy */
  uint32_t hs_flags;
  int fd;                       /* >= 0: use this connected socket */
  bool tls_required;            /* TLS or fail, whatever the URI says (a
                                   reconnection after a TLS session) */
};

/* Connect, negotiate, and start the I/O thread.  On failure returns
 * NULL with *err, *recoverable and msg set (nothing raised).
 */
struct vd_nbd_client *vd_nbd_client_connect (const struct vd_nbd_client_params *p,
                                             int *err, bool *recoverable,
                                             char *msg, size_t msglen);
const struct vd_nbd_export_info *vd_nbd_client_info (struct vd_nbd_client *cl);
/* Hand a command to the I/O thread.  Never blocks on I/O.  Returns 0
 * (done will be called from the I/O thread), or -1 if the connection is
 * already dead: then done is not called, and cmd->err, errmsg and
 * recoverable say why.
 */
int vd_nbd_client_submit (struct vd_nbd_client *cl, struct vd_nbd_cmd *cmd);
/* Soft disconnect (waits for commands in flight, up to the I/O timeout),
 * stop the thread, free.  Every command submitted has completed when
 * this returns.
 */
void vd_nbd_client_close (struct vd_nbd_client *cl);

/* ---- Event delivery (events.c) ---------------------------------------- */

struct vd_attachment;
struct vd_nbd_events;

/* Events of attachment a, delivered in order by their own thread (never
 * under a lock of ours or of the core).  new returns NULL on ENOMEM.
 */
struct vd_nbd_events *vd_nbd_events_new (struct vd_attachment *a);
/* Queue an event (msg is copied; may be NULL).  Never blocks on the
 * callback unless 16 events are already waiting.
 */
void vd_nbd_events_post (struct vd_nbd_events *ev, int event, int err,
                         const char *msg);
/* Deliver what is pending, stop the thread, free. */
void vd_nbd_events_free (struct vd_nbd_events *ev);

/* ---- Reconnect decorator (reconnect.c) -------------------------------- */

struct vd_attachment;
struct vd_nbd_rc;

/* A request as the attachment issues it: one wire command plus its
 * place in the journal.
 */
struct vd_nbd_req {
  struct vd_nbd_cmd cmd;
  struct vd_nbd_rc *rc;
  uint64_t seq;                 /* journal order */
  uint64_t gen;                 /* connection it was submitted to */
  int state;                    /* private to reconnect.c */
  pthread_cond_t cond;          /* its caller waits here (one condition
                                   per request: a completion wakes only
                                   its own caller) */
  struct vd_nbd_req *prev, *next; /* journal links */
};

struct vd_nbd_rc_params {
  struct vd_attachment *a;      /* for events */
  const struct vd_nbd_uri *uri;
  const char *name;
  double timeout;               /* seconds */
  uint32_t hs_flags;
};

struct vd_nbd_rc *vd_nbd_rc_new (const struct vd_nbd_rc_params *p);
/* First connection (with retries within the timeout).  0, or -1 raised;
 * emits VD_EVENT_CONNECTED or VD_EVENT_FAILED.
 */
int vd_nbd_rc_start (struct vd_nbd_rc *rc);
const struct vd_nbd_export_info *vd_nbd_rc_info (struct vd_nbd_rc *rc);
/* Start a request (journal + submit); never blocks on the network. */
void vd_nbd_rc_submit (struct vd_nbd_rc *rc, struct vd_nbd_req *req);
/* Wait for a submitted request, reconnecting and replaying as needed.
 * Returns 0, or -1 with req->cmd.err and errmsg set (nothing raised).
 */
int vd_nbd_rc_wait (struct vd_nbd_rc *rc, struct vd_nbd_req *req);
/* Number of successful connections so far. */
uint64_t vd_nbd_rc_connections (struct vd_nbd_rc *rc);
void vd_nbd_rc_free (struct vd_nbd_rc *rc);

#endif
