/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The server object: exports, listening sockets, the accept loop,
 * connection threads, shutdown.
 *
 * Shutdown: vd_server_stop (async-signal-safe) sets a flag and writes a
 * byte into the stop pipe, which is never drained: every poll(2) that
 * watches it (the accept loop and each connection) wakes, now and
 * later.  The accept loop then closes the listeners and waits for the
 * connections, which finish their requests in flight, send the replies
 * and close.  vd_server_free closes the exports, which flushes them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "errors.h"
#include "rounding.h"

#define CONN_STACK_SIZE (1u << 20)

double
srv_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

bool
srv_stopping (struct server *s)
{
  return atomic_load_explicit (&s->stopping, memory_order_acquire);
}

void
vd_server_config_init (struct vd_server_config *cfg)
{
  memset (cfg, 0, sizeof *cfg);
  cfg->threads = SRV_DEFAULT_THREADS;
  cfg->max_connections = SRV_DEFAULT_MAX_CONNS;
  cfg->handshake_timeout = SRV_DEFAULT_HS_TIMEOUT;
  cfg->max_request = NBD_DEFAULT_MAX_PAYLOAD;
  cfg->conn_buffer_limit = SRV_DEFAULT_CONN_BUFFER;
  cfg->drain_timeout = SRV_DEFAULT_DRAIN_TIMEOUT;
  cfg->inline_io = true;
  cfg->busy_poll_us = SRV_DEFAULT_BUSY_POLL_US;
}

struct vd_server *
vd_server_new (const struct vd_server_config *cfg)
{
  struct server *s = calloc (1, sizeof *s);

  if (s == NULL) {
    vd_error (errno, "allocating the server");
    return NULL;
  }
  if (cfg)
    s->cfg = *cfg;
  else
    vd_server_config_init (&s->cfg);
  if (s->cfg.threads == 0)
    s->cfg.threads = SRV_DEFAULT_THREADS;
  if (s->cfg.max_connections == 0)
    s->cfg.max_connections = SRV_DEFAULT_MAX_CONNS;
  if (s->cfg.handshake_timeout == 0)
    s->cfg.handshake_timeout = SRV_DEFAULT_HS_TIMEOUT;
  if (s->cfg.max_request == 0)
    s->cfg.max_request = NBD_DEFAULT_MAX_PAYLOAD;
  if (s->cfg.max_request < 512)
    s->cfg.max_request = 512;
  if (s->cfg.conn_buffer_limit == 0)
    s->cfg.conn_buffer_limit = SRV_DEFAULT_CONN_BUFFER;
  if (s->cfg.drain_timeout <= 0)
    s->cfg.drain_timeout = SRV_DEFAULT_DRAIN_TIMEOUT;
  if (s->cfg.busy_poll_us > 1000000)
    s->cfg.busy_poll_us = 1000000;
  /* Busy-polling pays only with a CPU to spare for the client: never on
   * one CPU, and never more spinning threads than the CPUs less one.
   */
  {
    long n = sysconf (_SC_NPROCESSORS_ONLN);
    s->max_spinning = n > 1 ? (int) (n - 1) : 0;
  }
  if (s->cfg.tls != VD_SERVER_TLS_OFF) {
#if HAVE_GNUTLS
    s->tls = tls_creds_new (&s->cfg);
    if (s->tls == NULL) {
      free (s);
      return NULL;
    }
#else
    vd_error_msg (ENOTSUP, "TLS: this vdisk was built without GnuTLS");
    free (s);
    return NULL;
#endif
  }
  else if (s->cfg.tls_certificates || s->cfg.tls_psk_file ||
           s->cfg.tls_verify_peer) {
    vd_error_msg (EINVAL, "TLS credentials given but TLS is off");
    free (s);
    return NULL;
  }
  /* Read above; the caller's strings need not outlive this call. */
  s->cfg.tls_certificates = s->cfg.tls_psk_file = NULL;
  if (pipe2 (s->stop_pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
    vd_error (errno, "pipe");
#if HAVE_GNUTLS
    tls_creds_free (s->tls);
#endif
    free (s);
    return NULL;
  }
  atomic_init (&s->stopping, false);
  pthread_mutex_init (&s->lock, NULL);
  pthread_cond_init (&s->conns_cond, NULL);
  pthread_mutex_init (&s->pool.lock, NULL);
  pthread_cond_init (&s->pool.cond, NULL);
  return (struct vd_server *) s;
}

#define S(vs) ((struct server *) (vs))

/* ---- Exports ------------------------------------------------------------ */

struct export *
srv_find_export (struct server *s, const char *name, size_t len)
{
  for (size_t i = 0; i < s->nr_exports; ++i)
    if (strlen (s->exports[i].name) == len &&
        (len == 0 || memcmp (s->exports[i].name, name, len) == 0))
      return &s->exports[i];
  if (len == 0 && s->nr_exports > 0)
    return &s->exports[0];      /* the default export */
  return NULL;
}

/* Largest power of 2 <= v (v >= 1). */
static uint32_t
pow2_floor (uint32_t v)
{
  uint32_t p = 1;
  while (p <= v / 2)
    p *= 2;
  return p;
}

int
vd_server_add_export (struct vd_server *vs, const char *name,
                      const char *description, struct vd_attachment *a)
{
  struct server *s = S (vs);
  struct export *e, *exports;
  int64_t size;
  uint32_t pref, maxr;

  if (strlen (name) > NBD_MAX_STRING ||
      (description && strlen (description) > NBD_MAX_STRING)) {
    vd_error_msg (EINVAL, "export name or description longer than %d bytes",
                  NBD_MAX_STRING);
    goto fail;
  }
  for (size_t i = 0; i < s->nr_exports; ++i)
    if (strcmp (s->exports[i].name, name) == 0) {
      vd_error_msg (EINVAL, "two exports are named '%s'", name);
      goto fail;
    }
  if (vd_attachment_start (a) == -1)
    goto fail;
  size = vd_attachment_get_size (a);
  if (size == -1)
    goto fail;

  exports = realloc (s->exports, (s->nr_exports + 1) * sizeof *exports);
  if (exports == NULL) {
    vd_error (errno, "adding export '%s'", name);
    goto fail;
  }
  s->exports = exports;
  e = &s->exports[s->nr_exports];
  memset (e, 0, sizeof *e);
  e->name = strdup (name);
  e->description = description ? strdup (description) : NULL;
  if (e->name == NULL || (description && e->description == NULL)) {
    vd_error (errno, "adding export '%s'", name);
    free (e->name);
    free (e->description);
    goto fail;
  }
  e->a = a;
  e->size = size;
  e->read_only = vd_attachment_can_write (a) != 1;

  e->flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_CACHE;
  if (e->read_only)
    e->flags |= NBD_FLAG_READ_ONLY;
  if (vd_attachment_can_flush (a) == 1)
    e->flags |= NBD_FLAG_SEND_FLUSH;
  if (vd_attachment_can_fua (a) == 1)
    e->flags |= NBD_FLAG_SEND_FUA;
  if (!e->read_only && vd_attachment_can_discard (a) == 1)
    e->flags |= NBD_FLAG_SEND_TRIM;
  if (!e->read_only && vd_attachment_can_zero (a) == 1) {
    e->flags |= NBD_FLAG_SEND_WRITE_ZEROES;
    if (vd_attachment_can_fast_zero (a) == 1)
      e->flags |= NBD_FLAG_SEND_FAST_ZERO;
  }
  if (vd_attachment_can_multi_conn (a) == 1)
    e->flags |= NBD_FLAG_CAN_MULTI_CONN;

  /* Block sizes: the attachment accepts any offset and length, so the
   * minimum is 1; the preferred size is the attachment's (a power of 2,
   * at least 512); the maximum payload is the smaller of the server's
   * and the attachment's limits, and at least the preferred size.
   */
  maxr = vd_attachment_get_max_request (a);
  if (maxr == 0 || maxr > s->cfg.max_request)
    maxr = s->cfg.max_request;
  pref = vd_attachment_get_preferred_block_size (a);
  pref = pow2_floor (pref < 512 ? 512 : pref);
  if (pref > maxr)
    pref = pow2_floor (maxr);
  if (pref < 512)
    pref = 512;
  if (maxr < pref)
    maxr = pref;
  e->min_block = 1;
  e->pref_block = pref;
  e->max_payload = maxr;
  s->nr_exports++;
  if (s->cfg.verbose >= 1) {
    char flags[200];
    srv_log (s, "export '%s'%s: %s (%s, %" PRIu64 " bytes, %s, caching %s, "
             "sync %s), flags %s", e->name,
             s->nr_exports == 1 ? " (default)" : "",
             vd_attachment_get_name (a), vd_attachment_get_format (a),
             e->size, e->read_only ? "read-only" : "read-write",
             vd_caching_mode_name (vd_attachment_get_caching_mode (a)),
             vd_sync_mode_name (vd_attachment_get_sync_mode (a)),
             vd_nbd_tx_flags_string (e->flags, flags, sizeof flags));
  }
  return 0;

 fail:
  vd_attachment_close (a);
  return -1;
}

int
vd_server_set_export_tls_only (struct vd_server *vs, const char *name)
{
  struct server *s = S (vs);

  if (s->cfg.tls == VD_SERVER_TLS_OFF) {
    vd_error_msg (EINVAL, "export '%s' is TLS-only, but TLS is off", name);
    return -1;
  }
  for (size_t i = 0; i < s->nr_exports; ++i)
    if (strcmp (s->exports[i].name, name) == 0) {
      s->exports[i].tls_only = true;
      return 0;
    }
  vd_error_msg (ENOENT, "no export named '%s'", name);
  return -1;
}

#if !HAVE_GNUTLS
bool
vd_server_tls_available (void)
{
  return false;
}
#endif

/* ---- Listening ---------------------------------------------------------- */

static bool
is_loopback (const struct sockaddr *sa)
{
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
    return (ntohl (in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
    if (IN6_IS_ADDR_LOOPBACK (&in6->sin6_addr))
      return true;
    return IN6_IS_ADDR_V4MAPPED (&in6->sin6_addr) &&
      in6->sin6_addr.s6_addr[12] == 127;
  }
  return true;                  /* unix sockets stay on this machine */
}

/* Plain NBD to the network: anyone on the path can read and change the
 * data, so say so (the default address is loopback for that reason).
 */
static void
warn_exposed (struct server *s, const struct sockaddr *sa, const char *desc)
{
  if (s->cfg.tls == VD_SERVER_TLS_OFF && !is_loopback (sa))
    srv_log (s, "warning: listening on %s (not loopback) without TLS: "
             "the data travels in the clear and anyone who can connect "
             "can use the exports (see --tls)", desc);
}

static int
add_listener (struct server *s, int fd, const char *desc)
{
  struct listener *l = realloc (s->listeners,
                                (s->nr_listeners + 1) * sizeof *l);

  if (l == NULL) {
    vd_error (errno, "listening");
    return -1;
  }
  s->listeners = l;
  l[s->nr_listeners].fd = fd;
  l[s->nr_listeners].desc = strdup (desc);
  if (l[s->nr_listeners].desc == NULL) {
    vd_error (errno, "listening");
    return -1;
  }
  s->nr_listeners++;
  return 0;
}

static int
add_uri (struct server *s, const char *uri)
{
  char **u = realloc (s->uris, (s->nr_uris + 1) * sizeof *u);

  if (u == NULL) {
    vd_error (errno, "recording the URI");
    return -1;
  }
  s->uris = u;
  u[s->nr_uris] = strdup (uri);
  if (u[s->nr_uris] == NULL) {
    vd_error (errno, "recording the URI");
    return -1;
  }
  s->nr_uris++;
  return 0;
}

/* Percent-encode what a URI path or query value cannot carry as is. */
static void
uri_encode (const char *in, bool query, char *out, size_t outlen)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;

  for (; *in && o + 4 < outlen; ++in) {
    unsigned char ch = *in;
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (ch >= '0' && ch <= '9') || strchr ("-._~/", ch) ||
        (!query && strchr ("!$'()*+,;=:@", ch)))
      out[o++] = ch;
    else {
      out[o++] = '%';
      out[o++] = hex[ch >> 4];
      out[o++] = hex[ch & 15];
    }
  }
  out[o] = '\0';
}

static const char *
default_export_name (struct server *s)
{
  return s->nr_exports ? s->exports[0].name : "";
}

/* With TLS on the URI says so (nbds: the client insists on TLS). */
static const char *
uri_scheme (struct server *s, bool unix_socket)
{
  if (s->cfg.tls == VD_SERVER_TLS_OFF)
    return unix_socket ? "nbd+unix" : "nbd";
  return unix_socket ? "nbds+unix" : "nbds";
}

/* nbd://HOST:PORT/EXPORT for a bound socket address. */
static int
add_tcp_uri (struct server *s, const struct sockaddr *sa)
{
  char host[INET6_ADDRSTRLEN + 2], name[3 * NBD_MAX_STRING + 1];
  char uri[sizeof host + sizeof name + 32];
  int port;

  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
    if (in->sin_addr.s_addr == htonl (INADDR_ANY))
      snprintf (host, sizeof host, "localhost");
    else
      inet_ntop (AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs (in->sin_port);
  }
  else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
    char a[INET6_ADDRSTRLEN];
    if (IN6_IS_ADDR_UNSPECIFIED (&in6->sin6_addr))
      snprintf (host, sizeof host, "localhost");
    else {
      inet_ntop (AF_INET6, &in6->sin6_addr, a, sizeof a);
      snprintf (host, sizeof host, "[%s]", a);
    }
    port = ntohs (in6->sin6_port);
  }
  else
    return 0;
  uri_encode (default_export_name (s), false, name, sizeof name);
  snprintf (uri, sizeof uri, "%s://%s:%d/%s", uri_scheme (s, false), host,
            port, name);
  return add_uri (s, uri);
}

int
vd_server_listen_tcp (struct vd_server *vs, const char *host,
                      const char *port)
{
  struct server *s = S (vs);
  struct addrinfo hints = {
    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
    .ai_flags = AI_PASSIVE | AI_ADDRCONFIG,
  };
  struct addrinfo *res, *ai;
  char portbuf[16];
  int err, n = 0, saved = 0;

  if (host == NULL)
    host = "127.0.0.1";
  if (port == NULL) {
    snprintf (portbuf, sizeof portbuf, "%d", NBD_DEFAULT_PORT);
    port = portbuf;
  }
  err = getaddrinfo (host, port, &hints, &res);
  if (err) {
    vd_error_msg (EINVAL, "%s port %s: %s", host, port,
                  gai_strerror (err));
    return -1;
  }
  for (ai = res; ai; ai = ai->ai_next) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char desc[128];
    int fd, one = 1;

    fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                 ai->ai_protocol);
    if (fd == -1) {
      saved = errno;
      continue;
    }
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
      setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind (fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
        listen (fd, SOMAXCONN) == -1 ||
        getsockname (fd, (struct sockaddr *) &ss, &sl) == -1) {
      saved = errno;
      close (fd);
      continue;
    }
    if (ss.ss_family == AF_INET6)
      snprintf (desc, sizeof desc, "tcp %s port %d", host,
                ntohs (((struct sockaddr_in6 *) &ss)->sin6_port));
    else
      snprintf (desc, sizeof desc, "tcp %s port %d", host,
                ntohs (((struct sockaddr_in *) &ss)->sin_port));
    warn_exposed (s, (struct sockaddr *) &ss, desc);
    if (add_listener (s, fd, desc) == -1 ||
        add_tcp_uri (s, (struct sockaddr *) &ss) == -1) {
      close (fd);
      freeaddrinfo (res);
      return -1;
    }
    n++;
  }
  freeaddrinfo (res);
  if (n == 0) {
    vd_error (saved, "cannot listen on %s port %s", host, port);
    return -1;
  }
  return 0;
}

int
vd_server_listen_unix (struct vd_server *vs, const char *path)
{
  struct server *s = S (vs);
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  char abs[4096], enc[3 * sizeof abs], name[3 * NBD_MAX_STRING + 1];
  char uri[sizeof enc + sizeof name + 32];
  struct stat st;
  int fd;

  if (strlen (path) >= sizeof sun.sun_path) {
    vd_error_msg (EINVAL, "%s: socket path longer than %zu bytes", path,
                  sizeof sun.sun_path - 1);
    return -1;
  }
  memcpy (sun.sun_path, path, strlen (path) + 1);
  if (lstat (path, &st) == 0) {
    /* A socket nobody answers on is a leftover: replace it.  Anything
     * else is not ours to remove.
     */
    int probe;
    if (!S_ISSOCK (st.st_mode)) {
      vd_error_msg (EEXIST, "%s: exists and is not a socket", path);
      return -1;
    }
    probe = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 &&
        connect (probe, (struct sockaddr *) &sun, sizeof sun) == 0) {
      close (probe);
      vd_error_msg (EADDRINUSE, "%s: a server is already listening there",
                    path);
      return -1;
    }
    if (probe >= 0)
      close (probe);
    unlink (path);
  }
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1) {
    vd_error (errno, "%s: socket", path);
    return -1;
  }
  if (bind (fd, (struct sockaddr *) &sun, sizeof sun) == -1 ||
      listen (fd, SOMAXCONN) == -1) {
    vd_error (errno, "%s: cannot listen", path);
    close (fd);
    return -1;
  }
  free (s->unix_path);
  s->unix_path = strdup (path);
  snprintf (uri, sizeof uri, "unix %s", path);
  if (add_listener (s, fd, uri) == -1) {
    close (fd);
    return -1;
  }
  if (path[0] == '/')
    snprintf (abs, sizeof abs, "%s", path);
  else {
    char cwd[2048];
    if (getcwd (cwd, sizeof cwd) == NULL)
      snprintf (abs, sizeof abs, "%s", path);
    else
      snprintf (abs, sizeof abs, "%s/%s", cwd, path);
  }
  uri_encode (abs, true, enc, sizeof enc);
  uri_encode (default_export_name (s), false, name, sizeof name);
  snprintf (uri, sizeof uri, "%s:///%s?socket=%s", uri_scheme (s, true),
                  name, enc);
  return add_uri (s, uri);
}

int
vd_server_listen_fd (struct vd_server *vs, int fd)
{
  struct server *s = S (vs);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int acc = 0;
  socklen_t al = sizeof acc;
  char desc[64];

  if (getsockopt (fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == -1 || !acc) {
    vd_error_msg (EINVAL, "fd %d is not a listening socket", fd);
    return -1;
  }
  fcntl (fd, F_SETFD, FD_CLOEXEC);
  snprintf (desc, sizeof desc, "inherited fd %d", fd);
  if (add_listener (s, fd, desc) == -1)
    return -1;
  if (getsockname (fd, (struct sockaddr *) &ss, &sl) == 0) {
    if (ss.ss_family == AF_UNIX) {
      struct sockaddr_un *sun = (struct sockaddr_un *) &ss;
      char enc[3 * sizeof sun->sun_path + 1];
      char name[3 * NBD_MAX_STRING + 1], uri[sizeof enc + sizeof name + 32];
      if (sl > offsetof (struct sockaddr_un, sun_path) &&
          sun->sun_path[0] != '\0') {
        uri_encode (sun->sun_path, true, enc, sizeof enc);
        uri_encode (default_export_name (s), false, name, sizeof name);
        snprintf (uri, sizeof uri, "%s:///%s?socket=%s", uri_scheme (s, true),
                  name, enc);
        return add_uri (s, uri);
      }
    }
    else {
      warn_exposed (s, (struct sockaddr *) &ss, desc);
      return add_tcp_uri (s, (struct sockaddr *) &ss);
    }
  }
  return 0;
}

int
vd_server_listen_systemd (struct vd_server *vs)
{
  const char *pid_s = getenv ("LISTEN_PID"), *fds_s = getenv ("LISTEN_FDS");
  char *end;
  long pid, nfds;

  if (pid_s == NULL || fds_s == NULL)
    return 0;
  errno = 0;
  pid = strtol (pid_s, &end, 10);
  if (errno || *end || pid != (long) getpid ())
    return 0;
  nfds = strtol (fds_s, &end, 10);
  if (errno || *end || nfds < 1 || nfds > 1024) {
    vd_error_msg (EINVAL, "LISTEN_FDS=%s is not a number of descriptors",
                  fds_s);
    return -1;
  }
  unsetenv ("LISTEN_PID");
  unsetenv ("LISTEN_FDS");
  unsetenv ("LISTEN_FDNAMES");
  for (long i = 0; i < nfds; ++i)
    if (vd_server_listen_fd (vs, 3 + (int) i) == -1)
      return -1;
  return (int) nfds;
}

size_t
vd_server_nr_uris (const struct vd_server *vs)
{
  return ((const struct server *) vs)->nr_uris;
}

const char *
vd_server_uri (const struct vd_server *vs, size_t i)
{
  const struct server *s = (const struct server *) vs;
  return i < s->nr_uris ? s->uris[i] : NULL;
}

/* ---- Connections -------------------------------------------------------- */

static struct conn *
conn_new (struct server *s, int fd_in, int fd_out, bool own_fds,
          const char *peer)
{
  struct conn *c = calloc (1, sizeof *c);

  if (c == NULL)
    return NULL;
  c->s = s;
  c->peer = strdup (peer);
  c->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (c->peer == NULL || c->wake_fd == -1 ||
      transport_init_fds (&c->t, fd_in, fd_out, own_fds) == -1) {
    if (c->wake_fd >= 0)
      close (c->wake_fd);
    free (c->peer);
    free (c);
    return NULL;
  }
  pthread_mutex_init (&c->out_lock, NULL);
  c->inline_ewma_ns = 0;
  return c;
}

static void
conn_free (struct conn *c)
{
  c->t.ops->close (&c->t);
  close (c->wake_fd);
  pthread_mutex_destroy (&c->out_lock);
  free (c->peer);
  free (c);
}

/* Handshake, then requests; returns true if it ended cleanly. */
static bool
conn_run (struct conn *c)
{
  enum hs_state st = handshake (c);

  if (st == HS_TRANSMISSION) {
    char flags[160];
    conn_debug (c, 1, "export '%s', %s%s, flags %s", c->exp->name,
                c->extended ? "extended headers" :
                c->structured ? "structured replies" : "simple replies",
                c->tx.nr_meta_contexts ? ", base:allocation" : "",
                vd_nbd_tx_flags_string (c->tx.transmission_flags, flags,
                                        sizeof flags));
    transmission (c);
  }
  conn_debug (c, 1, "closed");
  return !c->protocol_error;
}

static void *
conn_thread (void *arg)
{
  struct conn *c = arg;
  struct server *s = c->s;

  conn_run (c);
  pthread_mutex_lock (&s->lock);
  if (c->prev_conn)
    c->prev_conn->next_conn = c->next_conn;
  else
    s->conns = c->next_conn;
  if (c->next_conn)
    c->next_conn->prev_conn = c->prev_conn;
  s->nr_conns--;
  pthread_cond_broadcast (&s->conns_cond);
  pthread_mutex_unlock (&s->lock);
  conn_free (c);
  return NULL;
}

static void
peer_name (int fd, char *buf, size_t len)
{
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char a[INET6_ADDRSTRLEN];

  snprintf (buf, len, "unknown");
  if (getpeername (fd, (struct sockaddr *) &ss, &sl) == -1)
    return;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *) &ss;
    inet_ntop (AF_INET, &in->sin_addr, a, sizeof a);
    snprintf (buf, len, "%s:%d", a, ntohs (in->sin_port));
  }
  else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
    inet_ntop (AF_INET6, &in6->sin6_addr, a, sizeof a);
    snprintf (buf, len, "[%s]:%d", a, ntohs (in6->sin6_port));
  }
  else if (ss.ss_family == AF_UNIX) {
    struct ucred cred;
    socklen_t cl = sizeof cred;
    if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0)
      snprintf (buf, len, "unix pid %d", (int) cred.pid);
    else
      snprintf (buf, len, "unix");
  }
}

static void
accept_one (struct server *s, struct listener *l)
{
  char peer[96];
  pthread_attr_t attr;
  struct conn *c;
  int fd, one = 1, err;
  bool tcp;

  fd = accept4 (l->fd, NULL, NULL, SOCK_CLOEXEC);
  if (fd == -1) {
    if (errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
        errno == ENOBUFS) {
      srv_log (s, "accepting on %s: %m (pausing)", l->desc);
      poll (NULL, 0, 100);
    }
    else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
      srv_log (s, "accepting on %s: %m", l->desc);
    return;
  }
  peer_name (fd, peer, sizeof peer);
  /* Fails on a unix socket: that is how we know it is TCP. */
  tcp = setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0;

  pthread_mutex_lock (&s->lock);
  if (s->nr_conns >= s->cfg.max_connections) {
    pthread_mutex_unlock (&s->lock);
    srv_log (s, "client %s refused: already %u connections (the maximum)",
             peer, s->cfg.max_connections);
    close (fd);
    return;
  }
  c = conn_new (s, fd, fd, true, peer);
  if (c == NULL) {
    pthread_mutex_unlock (&s->lock);
    srv_log (s, "client %s refused: out of resources", peer);
    close (fd);
    return;
  }
  c->id = ++s->next_conn_id;
  c->tcp = tcp;
  c->next_conn = s->conns;
  if (s->conns)
    s->conns->prev_conn = c;
  s->conns = c;
  s->nr_conns++;
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize (&attr, CONN_STACK_SIZE);
  err = pthread_create (&c->thread, &attr, conn_thread, c);
  pthread_attr_destroy (&attr);
  if (err) {
    s->conns = c->next_conn;
    if (s->conns)
      s->conns->prev_conn = NULL;
    s->nr_conns--;
    pthread_mutex_unlock (&s->lock);
    errno = err;
    srv_log (s, "client %s refused: cannot start a thread: %m", peer);
    conn_free (c);
    return;
  }
  /* Before the unlock: a connection that ends at once frees c as soon as
   * its thread can take the lock to leave the list.
   */
  conn_debug (c, 1, "connected on %s", l->desc);
  pthread_mutex_unlock (&s->lock);
}

static int
start_pool (struct server *s)
{
  if (s->pool_started)
    return 0;
  if (pool_start (&s->pool, s->cfg.threads) == -1) {
    vd_error (errno, "starting %u worker threads", s->cfg.threads);
    pool_stop (&s->pool);
    return -1;
  }
  s->pool_started = true;
  return 0;
}

int
vd_server_run (struct vd_server *vs)
{
  struct server *s = S (vs);
  struct pollfd *pfd;
  int r = 0;

  if (s->nr_exports == 0 || s->nr_listeners == 0) {
    vd_error_msg (EINVAL, "nothing to serve (no export or no listener)");
    return -1;
  }
  if (start_pool (s) == -1)
    return -1;
  pfd = calloc (s->nr_listeners + 1, sizeof *pfd);
  if (pfd == NULL) {
    vd_error (errno, "accept loop");
    return -1;
  }
  for (size_t i = 0; i < s->nr_listeners; ++i)
    pfd[i] = (struct pollfd) { .fd = s->listeners[i].fd, .events = POLLIN };
  pfd[s->nr_listeners] = (struct pollfd) { .fd = s->stop_pipe[0],
    .events = POLLIN };

  while (!srv_stopping (s)) {
    if (poll (pfd, s->nr_listeners + 1, -1) == -1) {
      if (errno == EINTR)
        continue;
      vd_error (errno, "poll");
      r = -1;
      break;
    }
    if (srv_stopping (s))
      break;
    for (size_t i = 0; i < s->nr_listeners; ++i)
      if (pfd[i].revents & POLLIN)
        accept_one (s, &s->listeners[i]);
  }
  free (pfd);

  /* Stop accepting: new clients get "connection refused" at once. */
  for (size_t i = 0; i < s->nr_listeners; ++i) {
    close (s->listeners[i].fd);
    s->listeners[i].fd = -1;
  }
  if (s->unix_path) {
    unlink (s->unix_path);
    free (s->unix_path);
    s->unix_path = NULL;
  }

  /* Make sure the stop is seen even if the loop ended on an error, then
   * wait for the connections to drain.  Each bounds its own drain; the
   * extra margin here only guards against a wedged backend.
   */
  vd_server_stop (vs);
  pthread_mutex_lock (&s->lock);
  if (s->nr_conns)
    srv_log (s, "shutting down: waiting for %u connection%s", s->nr_conns,
             s->nr_conns == 1 ? "" : "s");
  {
    const double give_up = srv_now () + s->cfg.drain_timeout +
      s->cfg.handshake_timeout + 5;
    bool forced = false;
    while (s->nr_conns > 0) {
      struct timespec ts;
      clock_gettime (CLOCK_REALTIME, &ts);
      ts.tv_sec += 1;
      pthread_cond_timedwait (&s->conns_cond, &s->lock, &ts);
      if (!forced && srv_now () > give_up) {
        forced = true;
        srv_log (s, "connections still open: shutting down their sockets");
        /* The socket itself, not through c->t.ops: STARTTLS may be
         * swapping that table on the connection's thread right now.
         * Accepted connections are always sockets.
         */
        for (struct conn *c = s->conns; c; c = c->next_conn)
          shutdown (c->t.fd_in, SHUT_RDWR);
      }
    }
  }
  pthread_mutex_unlock (&s->lock);
  return r;
}

int
vd_server_serve_fds (struct vd_server *vs, int in_fd, int out_fd)
{
  struct server *s = S (vs);
  struct conn *c;
  bool ok;

  if (s->nr_exports == 0) {
    vd_error_msg (EINVAL, "nothing to serve (no export)");
    return -1;
  }
  if (start_pool (s) == -1)
    return -1;
  c = conn_new (s, in_fd, out_fd, false, "stdio");
  if (c == NULL) {
    vd_error (errno, "setting up the connection on fds %d/%d", in_fd,
              out_fd);
    return -1;
  }
  c->id = ++s->next_conn_id;
  ok = conn_run (c);
  conn_free (c);
  if (!ok) {
    vd_error_msg (EPROTO, "the client broke the protocol (see the log)");
    return -1;
  }
  return 0;
}

void
vd_server_stop (struct vd_server *vs)
{
  struct server *s = S (vs);
  char b = 0;

  atomic_store_explicit (&s->stopping, true, memory_order_release);
  /* Never drained: wakes every poll that watches it. */
  if (write (s->stop_pipe[1], &b, 1) == -1) {
    /* EAGAIN: the pipe already holds a byte. */
  }
}

int
vd_server_free (struct vd_server *vs)
{
  struct server *s = S (vs);
  int r = 0;

  if (s == NULL)
    return 0;
  if (s->pool_started)
    pool_stop (&s->pool);
  srv_buf_cache_drop ();
  for (size_t i = 0; i < s->nr_listeners; ++i) {
    if (s->listeners[i].fd >= 0)
      close (s->listeners[i].fd);
    free (s->listeners[i].desc);
  }
  free (s->listeners);
  if (s->unix_path) {
    unlink (s->unix_path);
    free (s->unix_path);
  }
  for (size_t i = 0; i < s->nr_exports; ++i) {
    struct export *e = &s->exports[i];
    if (vd_attachment_close (e->a) == -1) {
      srv_log (s, "closing export '%s': %s", e->name, vd_get_error ());
      r = -1;
    }
    free (e->name);
    free (e->description);
  }
  free (s->exports);
  for (size_t i = 0; i < s->nr_uris; ++i)
    free (s->uris[i]);
  free (s->uris);
  close (s->stop_pipe[0]);
  close (s->stop_pipe[1]);
#if HAVE_GNUTLS
  tls_creds_free (s->tls);
#endif
  pthread_mutex_destroy (&s->lock);
  pthread_cond_destroy (&s->conns_cond);
  pthread_mutex_destroy (&s->pool.lock);
  pthread_cond_destroy (&s->pool.cond);
  free (s);
  return r;
}
