/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Handshake I/O: read or write a whole message over the non-blocking
 * transport, waiting with poll(2) until an absolute deadline (the
 * handshake time limit).  The connection's wake fd interrupts the wait
 * when the server stops.
 *
 * Errors set errno: 0 for end of file, ETIMEDOUT past the deadline,
 * ESHUTDOWN when the server is stopping, else the socket's error.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <unistd.h>

#include "internal.h"

void
conn_wake (struct conn *c)
{
  uint64_t one = 1;

  if (write (c->wake_fd, &one, sizeof one) == -1) {
    /* The eventfd counter cannot overflow in practice; a failed wake of
     * an already-woken connection is harmless.
     */
  }
}

static void
drain_wake (struct conn *c)
{
  uint64_t v;

  if (read (c->wake_fd, &v, sizeof v) == -1) {
    /* EAGAIN: nothing to drain. */
  }
}

int
conn_wait (struct conn *c, int fd, short events, double deadline)
{
  struct pollfd pfd[3] = {
    { .fd = fd, .events = events },
    { .fd = c->wake_fd, .events = POLLIN },
    { .fd = c->s->stop_pipe[0], .events = POLLIN },
  };
  int timeout = -1, r;

  for (;;) {
    if (srv_stopping (c->s)) {
      errno = ESHUTDOWN;
      return -1;
    }
    if (deadline >= 0) {
      double left = deadline - srv_now ();
      if (left <= 0) {
        errno = ETIMEDOUT;
        return -1;
      }
      timeout = (int) ceil (left * 1000);
    }
    r = poll (pfd, 3, timeout);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (pfd[1].revents & POLLIN)
      drain_wake (c);
    if (pfd[0].revents)
      return 0;
  }
}

int
conn_read_full (struct conn *c, void *buf, size_t len, double deadline,
                const char *what)
{
  unsigned char *p = buf;
  ssize_t r;

  while (len > 0) {
    r = c->t.ops->recv (&c->t, p, len);
    if (r > 0) {
      p += r;
      len -= r;
      continue;
    }
    if (r == 0) {
      errno = 0;
      return -1;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return -1;
    if (conn_wait (c, c->t.fd_in, POLLIN, deadline) == -1)
      return -1;
  }
  return 0;
}

int
conn_write_full (struct conn *c, const void *buf, size_t len,
                 double deadline)
{
  const unsigned char *p = buf;
  ssize_t r;

  while (len > 0) {
    struct iovec iov = { .iov_base = (void *) p, .iov_len = len };
    r = c->t.ops->send (&c->t, &iov, 1);
    if (r > 0) {
      p += r;
      len -= r;
      continue;
    }
    if (r == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
      return -1;
    if (conn_wait (c, c->t.fd_out, POLLOUT, deadline) == -1)
      return -1;
  }
  return 0;
}

int
conn_skip (struct conn *c, uint64_t len, double deadline)
{
  unsigned char buf[4096];

  while (len > 0) {
    size_t n = len < sizeof buf ? (size_t) len : sizeof buf;
    if (conn_read_full (c, buf, n, deadline, "option data") == -1)
      return -1;
    len -= n;
  }
  return 0;
}
