/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Internals of the NBD server: exports, the transport vtable,
 * connections, requests, the reply queue and the worker pool.
 * docs/internals/server.md explains the threading model.
 */
#ifndef VD_SERVER_INTERNAL_H
#define VD_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "server.h"
#include "nbd-proto.h"

/* Defaults and limits. */
#define SRV_DEFAULT_THREADS        16
#define SRV_DEFAULT_BUSY_POLL_US   50
#define SRV_DEFAULT_MAX_CONNS      128
#define SRV_DEFAULT_HS_TIMEOUT     10.0
#define SRV_DEFAULT_CONN_BUFFER    (8u << 20)
#define SRV_DEFAULT_DRAIN_TIMEOUT  10.0
#define SRV_MAX_OPTION_LEN         65536  /* option data we parse */
#define SRV_MAX_OPTIONS            1024   /* options per handshake */
#define SRV_MAX_INFLIGHT           128    /* requests per connection */
#define SRV_RXBUF_SIZE             (64u << 10)
#define SRV_INLINE_DATA_MAX        (1u << 20)   /* largest READ or WRITE
                                                   run inline */
#define SRV_INLINE_MAX             (128u << 10) /* ... CACHE or
                                                   BLOCK_STATUS */
#define SRV_SPARSE_READ_MIN        (64u << 10)  /* reads this big look
                                                   for holes first */
#define SRV_MAX_EXTENTS            65536  /* descriptors per reply */
#define SRV_META_CONTEXT_ID        1      /* id of base:allocation */

struct export {
  char *name;
  char *description;            /* may be NULL */
  struct vd_attachment *a;
  uint64_t size;
  bool read_only;
  bool tls_only;                /* SELECTIVETLS: hidden and refused
                                   before STARTTLS */
  uint16_t flags;               /* transmission flags without SEND_DF */
  uint32_t min_block, pref_block, max_payload;
};

/* Transport: byte streams over a socket or a pair of fds.  Every call is
 * non-blocking: recv and send return -1 with errno EAGAIN when they would
 * block, and the connection polls fd_in / fd_out.  A TLS transport
 * (STARTTLS) implements the same table; pending() then reports
 * decrypted bytes buffered inside it.
 */
struct transport;
struct transport_ops {
  const char *name;
  ssize_t (*recv) (struct transport *t, void *buf, size_t len);
  ssize_t (*send) (struct transport *t, const struct iovec *iov, int iovcnt);
  bool (*pending) (struct transport *t);
  void (*shutdown) (struct transport *t); /* wake and stop both ways */
  void (*close) (struct transport *t);
};
struct tls_session;
struct transport {
  const struct transport_ops *ops;
  int fd_in, fd_out;
  bool own_fds;                 /* close closes them */
  const struct transport_ops *lower; /* under TLS: the plain table the
                                        records travel over */
  struct tls_session *tls;      /* under TLS (tls.c) */
};
/* A socket, or (stdio) a pair of fds that may be pipes.  The fds are
 * owned (closed by close) unless own_fds is false.
 */
int transport_init_fds (struct transport *t, int fd_in, int fd_out,
                        bool own_fds);

/* One reply segment in a connection's output queue: a small header area
 * copied in, then optional data borrowed from a buffer that is freed
 * when the last segment referring to it is sent.
 */
struct out_item {
  struct out_item *next;
  size_t hdr_len;
  unsigned char hdr[48];
  const void *data;             /* may be NULL */
  size_t data_len;
  size_t sent;                  /* bytes of hdr+data already sent */
  void *owner;                  /* srv_buf_free()d when this item is done */
  uint64_t release_bytes;       /* accounting released when done */
  uint32_t release_reqs;
};

struct server;
struct conn;

/* A request in the transmission phase. */
struct request {
  struct request *next;         /* in the connection's job queue */
  struct conn *c;
  struct vd_nbd_request r;
  void *payload;                /* WRITE data (malloc, or borrowed) */
  bool payload_borrowed;        /* points into the receive buffer */
  uint64_t acct_bytes;          /* bytes counted against the budget */
  uint32_t error;               /* an NBD error decided at parse time */
  const char *error_why;
};

enum hs_state {
  HS_SEND_GREETING,
  HS_RECV_CLIENT_FLAGS,
  HS_RECV_OPTION,
  HS_TRANSMISSION,              /* success: go on to requests */
  HS_CLOSE,                     /* end the connection (ABORT, error) */
};

struct conn {
  struct server *s;
  struct conn *prev_conn, *next_conn; /* server's list */
  uint64_t id;
  char *peer;                   /* "127.0.0.1:40000", "unix", "stdio" */
  struct transport t;
  int wake_fd;                  /* eventfd: workers and stop wake us */
  pthread_t thread;
  bool thread_started;
  bool tcp;                     /* a TCP socket (replies are held back) */

  /* Negotiated state. */
  bool fixed_newstyle, no_zeroes, structured, extended;
  bool tls;                     /* STARTTLS done: c->t is the TLS table */
  struct export *meta_export;   /* export the contexts were set for */
  bool meta_base_allocation;    /* base:allocation selected */
  struct export *exp;           /* after GO / EXPORT_NAME */
  struct vd_nbd_tx_state tx;

  /* Receive side (connection thread only). */
  unsigned char *rx;            /* SRV_RXBUF_SIZE */
  size_t rx_start, rx_end;
  struct request *partial;      /* request waiting for its payload */
  uint64_t partial_got;
  uint64_t discard_left;        /* payload bytes to skip */
  struct request *discard_req;  /* reply after the skip */
  bool reading_done;            /* EOF, DISC, error or shutdown */
  bool throttled;               /* not reading: budget exhausted */
  bool protocol_error;          /* hard disconnect for a protocol error */

  /* Inline execution statistics (connection thread only). */
  uint64_t inline_ewma_ns;
  unsigned inline_probe;
  uint64_t poll_ns;             /* current busy-poll window (conn thread) */
  uint64_t hold_ns;             /* current reply-hold window (conn thread) */
  unsigned hold_skipped;        /* batches since holding was last tried */
  uint64_t nr_dispatched;       /* requests parsed whole (conn thread) */

  /* Output queue and accounting (out_lock). */
  pthread_mutex_t out_lock;
  struct out_item *out_head, *out_tail;
  bool dead;                    /* sending failed: drop replies */
  uint32_t inflight_reqs;
  uint64_t inflight_bytes;
  bool want_wake;               /* conn thread wants a wake on release */
  bool polls_out;               /* conn thread polls for POLLOUT */
  bool batching;                /* conn thread will flush after its batch */
  bool sending;                 /* a thread is sending, without the lock */

  /* Worker queue (pool lock). */
  struct request *job_head, *job_tail;
  bool in_pool_queue;
  struct conn *next_ready;
};

struct pool {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct conn *ready_head, *ready_tail; /* conns with queued jobs */
  bool stop;
  unsigned nr_threads;
  pthread_t *threads;
};

struct listener {
  int fd;
  char *desc;                   /* for logs */
};

struct server {
  struct vd_server_config cfg;
  struct export *exports;
  size_t nr_exports;
  struct listener *listeners;
  size_t nr_listeners;
  char **uris;
  size_t nr_uris;
  char *unix_path;              /* removed at free */
  int stop_pipe[2];
  atomic_bool stopping;
  pthread_mutex_t lock;         /* connection list */
  pthread_cond_t conns_cond;
  struct conn *conns;
  unsigned nr_conns;
  uint64_t next_conn_id;
  struct pool pool;
  bool pool_started;
  struct tls_creds *tls;        /* tls.c; NULL with --tls=off */
  atomic_int spinning;          /* connection threads busy-polling now */
  int max_spinning;             /* at most this many (CPUs - 1) */
};

/* log.c */
void srv_log (struct server *s, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
void conn_log (struct conn *c, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
#define conn_debug(c, lvl, ...) do {                    \
    if ((c)->s->cfg.verbose >= (lvl))                   \
      conn_log ((c), __VA_ARGS__);                      \
  } while (0)

/* server.c */
struct export *srv_find_export (struct server *s, const char *name,
                                size_t len);
bool srv_stopping (struct server *s);
double srv_now (void);

/* io.c: blocking-with-deadline I/O for the handshake, over the
 * non-blocking transport.  Return 0, or -1 (logged unless EOF: *eof).
 */
int conn_read_full (struct conn *c, void *buf, size_t len, double deadline,
                    const char *what);
int conn_write_full (struct conn *c, const void *buf, size_t len,
                     double deadline);
int conn_skip (struct conn *c, uint64_t len, double deadline);
/* Wait until fd has events, the deadline passes (ETIMEDOUT) or the
 * server stops (ESHUTDOWN).  0 or -1.
 */
int conn_wait (struct conn *c, int fd, short events, double deadline);
/* Wake the connection thread. */
void conn_wake (struct conn *c);

/* tls.c (compiled with GnuTLS only; vd_server_new refuses --tls=on and
 * require without it, so nothing calls these in other builds).
 *   tls_creds_new: load the credentials the config names (once per
 *     server); NULL with the thread-local error naming the bad file.
 *   tls_upgrade: the TLS handshake on c's transport, bounded by the
 *     handshake deadline; on success c->t uses the TLS table.  0, or -1
 *     (logged naming the client; the connection must be closed).
 */
struct tls_creds *tls_creds_new (const struct vd_server_config *cfg);
void tls_creds_free (struct tls_creds *creds);
int tls_upgrade (struct conn *c, double deadline);

/* handshake.c: returns HS_TRANSMISSION or HS_CLOSE. */
enum hs_state handshake (struct conn *c);
uint16_t export_tx_flags (const struct export *e, const struct conn *c);

/* transmission.c */
void transmission (struct conn *c);
void request_execute (struct request *req); /* on a worker or inline */

/* pool.c */
int pool_start (struct pool *p, unsigned nr_threads);
void pool_submit (struct pool *p, struct request *req);
void pool_stop (struct pool *p);

/* out.c: the reply queue. */
struct out_item *out_item_new (void);
/* Append items (a chain linked by next) and try to send; called from any
 * thread.  Returns 0, or -1 if the connection is dead (items freed).
 */
void out_queue (struct conn *c, struct out_item *chain);
/* Send what the socket takes now (out_lock held by caller).  -1 on a
 * send error (connection marked dead).
 */
int out_flush_locked (struct conn *c);
bool out_pending (struct conn *c);
void out_drop_locked (struct conn *c);
/* buf.c: buffers for payloads and replies (large ones are recycled).
 * Everything stored in out_item.owner comes from here.
 */
void *srv_buf_alloc (size_t size);
void srv_buf_free (void *p);
void srv_buf_cache_drop (void);

/* Release accounting for work that produced no queued reply. */
void conn_release (struct conn *c, uint64_t bytes, uint32_t reqs);

#endif
