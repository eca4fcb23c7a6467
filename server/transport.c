/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The plain transports: a socket (TCP, unix, socket activation, or a
 * socket on stdin/stdout) and a pair of non-socket fds (pipes on
 * stdin/stdout).  Everything above talks to struct transport_ops only,
 * so TLS (GnuTLS over STARTTLS) is one more table, not a rewrite.
 *
 * All calls are non-blocking: sockets through MSG_DONTWAIT (the fd's own
 * flags are left alone, as it may be shared with a parent), other fds
 * are switched to O_NONBLOCK.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Sockets. */

static ssize_t
sock_recv (struct transport *t, void *buf, size_t len)
{
  ssize_t r;

  do
    r = recv (t->fd_in, buf, len, MSG_DONTWAIT);
  while (r == -1 && errno == EINTR);
  return r;
}

static ssize_t
sock_send (struct transport *t, const struct iovec *iov, int iovcnt)
{
  struct msghdr msg = { .msg_iov = (struct iovec *) iov,
                        .msg_iovlen = iovcnt };
  ssize_t r;

  do
    r = sendmsg (t->fd_out, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (r == -1 && errno == EINTR);
  return r;
}

static bool
no_pending (struct transport *t)
{
  return false;
}

static void
sock_shutdown (struct transport *t)
{
  shutdown (t->fd_in, SHUT_RDWR);
  if (t->fd_out != t->fd_in)
    shutdown (t->fd_out, SHUT_RDWR);
}

static void
close_fds (struct transport *t)
{
  if (t->own_fds) {
    if (t->fd_in >= 0)
      close (t->fd_in);
    if (t->fd_out >= 0 && t->fd_out != t->fd_in)
      close (t->fd_out);
  }
  t->fd_in = t->fd_out = -1;
}

static const struct transport_ops socket_ops = {
  .name = "socket",
  .recv = sock_recv,
  .send = sock_send,
  .pending = no_pending,
  .shutdown = sock_shutdown,
  .close = close_fds,
};

/* Pipes and other fds. */

static ssize_t
fd_recv (struct transport *t, void *buf, size_t len)
{
  ssize_t r;

  do
    r = read (t->fd_in, buf, len);
  while (r == -1 && errno == EINTR);
  return r;
}

static ssize_t
fd_send (struct transport *t, const struct iovec *iov, int iovcnt)
{
  ssize_t r;

  do
    r = writev (t->fd_out, iov, iovcnt);
  while (r == -1 && errno == EINTR);
  return r;
}

static void
fd_shutdown (struct transport *t)
{
  /* Pipes cannot be shut down; the connection notices the stop through
   * its wake fd instead.
   */
}

static const struct transport_ops fd_ops = {
  .name = "fd",
  .recv = fd_recv,
  .send = fd_send,
  .pending = no_pending,
  .shutdown = fd_shutdown,
  .close = close_fds,
};

static bool
is_socket (int fd)
{
  struct stat st;
  return fstat (fd, &st) == 0 && S_ISSOCK (st.st_mode);
}

static int
set_nonblock (int fd)
{
  int fl = fcntl (fd, F_GETFL);
  if (fl == -1 || fcntl (fd, F_SETFL, fl | O_NONBLOCK) == -1)
    return -1;
  return 0;
}

int
transport_init_fds (struct transport *t, int fd_in, int fd_out, bool own_fds)
{
  t->fd_in = fd_in;
  t->fd_out = fd_out;
  t->own_fds = own_fds;
  if (is_socket (fd_in) && is_socket (fd_out)) {
    t->ops = &socket_ops;
    return 0;
  }
  if (set_nonblock (fd_in) == -1 || set_nonblock (fd_out) == -1)
    return -1;
  t->ops = &fd_ops;
  return 0;
}
