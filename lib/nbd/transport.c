/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The transport under the NBD state machine: a small vtable (recv,
 * send, fd, pending, shut_wr, close) over a non-blocking socket, and
 * connecting one within a deadline.  TLS, when it comes, is another
 * implementation of the same vtable wrapping this one.
 *
 * Method:
 *   TCP: getaddrinfo (the system resolver; numeric addresses and
 *   /etc/hosts names never wait), then a non-blocking connect to each
 *   address in turn, each bounded by the deadline, so "localhost" works
 *   whether the server listens on ::1 or 127.0.0.1.  TCP_NODELAY, since
 *   NBD headers are small and latency-bound.  Unix: sockaddr_un with the
 *   exact length (abstract names start with a NUL byte).  vsock:
 *   sockaddr_vm.  Every socket is SOCK_CLOEXEC | SOCK_NONBLOCK, and sends
 *   use MSG_NOSIGNAL so a dead peer is an EPIPE, never a SIGPIPE.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "nbd-internal.h"

int64_t
vd_nbd_now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * VD_NBD_NS_PER_S + ts.tv_nsec;
}

struct sock {
  int fd;
};

static ssize_t
sock_recv (void *t, void *buf, size_t len)
{
  struct sock *s = t;
  ssize_t r;

  do
    r = recv (s->fd, buf, len, 0);
  while (r == -1 && errno == EINTR);
  return r;
}

static ssize_t
sock_send (void *t, const struct iovec *iov, int iovcnt, bool more)
{
  struct sock *s = t;
  struct msghdr msg = { .msg_iov = (struct iovec *) iov,
                        .msg_iovlen = iovcnt };
  ssize_t r;

  do
    r = sendmsg (s->fd, &msg, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
  while (r == -1 && errno == EINTR);
  return r;
}

static int
sock_get_fd (void *t)
{
  return ((struct sock *) t)->fd;
}

static bool
sock_pending (void *t)
{
  return false;
}

static void
sock_shut_wr (void *t)
{
  shutdown (((struct sock *) t)->fd, SHUT_WR);
}

static void
sock_close (void *t)
{
  struct sock *s = t;

  close (s->fd);
  free (s);
}

static const struct vd_nbd_transport_ops sock_ops = {
  .name = "socket",
  .recv = sock_recv,
  .send = sock_send,
  .get_fd = sock_get_fd,
  .pending = sock_pending,
  .shut_wr = sock_shut_wr,
  .close = sock_close,
};

int
vd_nbd_transport_from_fd (int fd, struct vd_nbd_transport *t)
{
  struct sock *s = malloc (sizeof *s);
  int fl;

  if (s == NULL)
    return -1;
  fl = fcntl (fd, F_GETFL);
  if (fl == -1 || fcntl (fd, F_SETFL, fl | O_NONBLOCK) == -1) {
    free (s);
    return -1;
  }
  s->fd = fd;
  t->ops = &sock_ops;
  t->handle = s;
  return 0;
}

static bool
recoverable_errno (int e)
{
  switch (e) {
  case ECONNREFUSED: case ECONNRESET: case ECONNABORTED: case ETIMEDOUT:
  case EHOSTUNREACH: case ENETUNREACH: case ENETDOWN: case EHOSTDOWN:
  case ENOENT:                  /* unix socket not (yet) there */
  case EAGAIN:                  /* unix listen backlog full */
  case EADDRNOTAVAIL: case EPIPE: case EINTR: case ENOBUFS: case ENOMEM:
    return true;
  default:
    return false;
  }
}

/* Connect fd to addr, waiting at most until deadline.  0 or -1 (errno). */
static int
connect_by (int fd, const struct sockaddr *addr, socklen_t len,
            int64_t deadline)
{
  if (connect (fd, addr, len) == 0)
    return 0;
  if (errno != EINPROGRESS && errno != EINTR)
    return -1;
  for (;;) {
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    int64_t left = deadline - vd_nbd_now ();
    int r, soerr = 0;
    socklen_t sl = sizeof soerr;

    if (left <= 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    r = poll (&pfd, 1, (int) ((left + 999999) / 1000000));
    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1)
      return -1;
    if (r == 0)
      continue;
    if (getsockopt (fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
      return -1;
    if (soerr != 0) {
      errno = soerr;
      return -1;
    }
    return 0;
  }
}

static int
make_socket (int family)
{
  return socket (family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

static int
set_fail (int e, bool rec, int *err, bool *recoverable, char *msg,
          size_t msglen, const char *what)
{
  char ebuf[128];

  *err = e;
  *recoverable = rec;
  snprintf (msg, msglen, "%s: %s", what, strerror_r (e, ebuf, sizeof ebuf));
  return -1;
}

static int
connect_tcp (const struct vd_nbd_uri *u, int64_t deadline, int *fdp,
             int *err, bool *recoverable, char *msg, size_t msglen)
{
  struct addrinfo hints = { .ai_family = AF_UNSPEC,
                            .ai_socktype = SOCK_STREAM,
                            .ai_flags = AI_NUMERICSERV };
  struct addrinfo *res, *ai;
  char port[16], host[VD_NBD_URI_MAX_HOST + 80], what[VD_NBD_URI_MAX_HOST + 120];
  int r, last = ECONNREFUSED;

  snprintf (port, sizeof port, "%u", (unsigned) u->port);
  if (u->zone)
    snprintf (host, sizeof host, "%s%%%s", u->host, u->zone);
  else
    snprintf (host, sizeof host, "%s", u->host);
  if (u->host_is_ipv6 || u->host_is_ipv4)
    hints.ai_flags |= AI_NUMERICHOST;
  r = getaddrinfo (host, port, &hints, &res);
  if (r != 0) {
    *err = r == EAI_SYSTEM ? errno : EHOSTUNREACH;
    /* A name that does not exist stays missing; a resolver that cannot
     * answer now may answer later.
     */
    *recoverable = r == EAI_AGAIN || (r == EAI_SYSTEM && recoverable_errno (errno));
    {
      char ebuf[128];
      snprintf (msg, msglen, "cannot resolve '%s': %s", host,
                r == EAI_SYSTEM ? strerror_r (errno, ebuf, sizeof ebuf)
                : gai_strerror (r));
    }
    return -1;
  }
  for (ai = res; ai; ai = ai->ai_next) {
    int fd = make_socket (ai->ai_family);
    int one = 1;
    if (fd == -1) {
      last = errno;
      continue;
    }
    if (connect_by (fd, ai->ai_addr, ai->ai_addrlen, deadline) == 0) {
      setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      freeaddrinfo (res);
      *fdp = fd;
      return 0;
    }
    last = errno;
    close (fd);
    if (last == ETIMEDOUT)
      break;
  }
  freeaddrinfo (res);
  if (u->host_is_ipv6)
    snprintf (what, sizeof what, "connect to [%s]:%u", host, (unsigned) u->port);
  else
    snprintf (what, sizeof what, "connect to %s:%u", host, (unsigned) u->port);
  return set_fail (last, recoverable_errno (last), err, recoverable, msg,
                   msglen, what);
}

static int
connect_unix (const struct vd_nbd_uri *u, int64_t deadline, int *fdp,
              int *err, bool *recoverable, char *msg, size_t msglen)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  socklen_t len;
  char what[VD_NBD_URI_MAX_SOCKET + 64];
  int fd;

  if (u->socket_len >= sizeof sun.sun_path)
    return set_fail (ENAMETOOLONG, false, err, recoverable, msg, msglen,
                     "unix socket path");
  memcpy (sun.sun_path, u->socket, u->socket_len);
  len = offsetof (struct sockaddr_un, sun_path) + u->socket_len +
    (u->socket[0] == '\0' ? 0 : 1);
  if (u->socket[0] == '\0')
    snprintf (what, sizeof what, "connect to unix socket @%.*s",
              (int) u->socket_len - 1, u->socket + 1);
  else
    snprintf (what, sizeof what, "connect to unix socket %s", u->socket);
  fd = make_socket (AF_UNIX);
  if (fd == -1)
    return set_fail (errno, false, err, recoverable, msg, msglen, "socket");
  if (connect_by (fd, (struct sockaddr *) &sun, len, deadline) == -1) {
    int e = errno;
    close (fd);
    return set_fail (e, recoverable_errno (e), err, recoverable, msg, msglen,
                     what);
  }
  *fdp = fd;
  return 0;
}

static int
connect_vsock (const struct vd_nbd_uri *u, int64_t deadline, int *fdp,
               int *err, bool *recoverable, char *msg, size_t msglen)
{
  struct sockaddr_vm svm = { .svm_family = AF_VSOCK, .svm_cid = u->cid,
                             .svm_port = u->port };
  char what[64];
  int fd;

  snprintf (what, sizeof what, "connect to vsock %u:%u", (unsigned) u->cid,
            (unsigned) u->port);
  fd = make_socket (AF_VSOCK);
  if (fd == -1)
    return set_fail (errno, false, err, recoverable, msg, msglen,
                     "vsock socket");
  if (connect_by (fd, (struct sockaddr *) &svm, sizeof svm, deadline) == -1) {
    int e = errno;
    close (fd);
    return set_fail (e, recoverable_errno (e), err, recoverable, msg, msglen,
                     what);
  }
  *fdp = fd;
  return 0;
}

int
vd_nbd_transport_connect (const struct vd_nbd_uri *u, int64_t deadline,
                          struct vd_nbd_transport *t, int *err,
                          bool *recoverable, char *msg, size_t msglen)
{
  int fd = -1, r;

  switch (u->transport) {
  case VD_NBD_TRANSPORT_TCP:
    r = connect_tcp (u, deadline, &fd, err, recoverable, msg, msglen);
    break;
  case VD_NBD_TRANSPORT_UNIX:
    r = connect_unix (u, deadline, &fd, err, recoverable, msg, msglen);
    break;
  case VD_NBD_TRANSPORT_VSOCK:
    r = connect_vsock (u, deadline, &fd, err, recoverable, msg, msglen);
    break;
  default:
    *err = EINVAL;
    *recoverable = false;
    snprintf (msg, msglen, "unknown transport");
    return -1;
  }
  if (r == -1)
    return -1;
  if (vd_nbd_transport_from_fd (fd, t) == -1) {
    int e = errno;
    close (fd);
    return set_fail (e, true, err, recoverable, msg, msglen, "transport");
  }
  return 0;
}
