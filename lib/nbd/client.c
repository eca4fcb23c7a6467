/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * One NBD connection and the thread that drives it.
 *
 * Method:
 *   Connect and handshake run in the caller's thread: the state machine
 *   (conn.c) plus a poll loop with the connect deadline ("sync = async +
 *   poll").  Once the export is negotiated, an I/O thread takes the
 *   connection over and is the only thread that touches it.  Callers
 *   hand it commands through a mutex-protected list and an eventfd
 *   (written only when the thread may be asleep in poll), and wait for
 *   their command's done callback, which the thread calls as replies
 *   come in.  So many callers share one connection with any number of
 *   requests in flight, replies are matched in any order, and no caller
 *   ever blocks another on the socket.
 *
 *   A TLS transport may hold decrypted bytes that poll cannot see
 *   (pending()); both poll loops then poll without waiting and report
 *   the socket readable, or a reply already here would wait for the
 *   next packet.  The TLS handshake is part of the handshake, bounded by
 *   the same deadline.
 *
 *   Timeouts are deadlines in the poll loop, never signals: while
 *   commands are outstanding, a connection that moves no byte in either
 *   direction for io_timeout is declared dead (ETIMEDOUT), which fails
 *   its commands as recoverable so the reconnect layer replays them.
 *
 *   Once the connection dies the thread fails everything still queued,
 *   marks the client dead (later submissions fail at once) and exits;
 *   vd_nbd_client_close joins it.  Close on a live connection sends
 *   NBD_CMD_DISC after the last reply (a soft disconnect).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "nbd-internal.h"

struct vd_nbd_client {
  struct vd_nbd_conn conn;      /* the I/O thread's, once started */
  int64_t io_timeout;           /* ns */
  int efd;                      /* wakes the I/O thread */
  atomic_bool sleeping;         /* the thread may be in poll */
  pthread_t thread;
  pthread_mutex_t lock;         /* protects the fields below */
  struct vd_nbd_cmd *sub_head, *sub_tail; /* submitted, not taken yet */
  bool closing;                 /* close asked: DISC, then exit */
  bool dead;                    /* the thread is gone or going */
  int dead_err;
  char dead_msg[VD_NBD_ERRMSG_LEN];
};

static int
poll_ms (int64_t deadline, int64_t now)
{
  int64_t ms;

  if (deadline == INT64_MAX)
    return -1;
  if (deadline <= now)
    return 0;
  ms = (deadline - now + 999999) / 1000000;
  return ms > INT_MAX ? INT_MAX : (int) ms;
}

/* Handshake in the calling thread, bounded by deadline. */
static int
handshake (struct vd_nbd_conn *c, int64_t deadline)
{
  while (!vd_nbd_conn_ready (c) && !vd_nbd_conn_dead (c)) {
    struct pollfd pfd = { .fd = c->t.ops->get_fd (c->t.handle),
                          .events = vd_nbd_conn_events (c) };
    bool pending = c->t.ops->pending (c->t.handle);
    int64_t now = vd_nbd_now ();
    int r;

    if (now >= deadline) {
      vd_nbd_conn_kill (c, ETIMEDOUT, true, "the server did not complete "
                        "the handshake in time (waiting in state %s)",
                        vd_nbd_state_name (c->state));
      break;
    }
    r = poll (&pfd, 1, pending ? 0 : poll_ms (deadline, now));
    if (r == -1 && errno != EINTR) {
      vd_nbd_conn_kill (c, errno, true, "poll failed");
      break;
    }
    if (pending && r >= 0) {
      pfd.revents |= POLLIN;
      r = 1;
    }
    if (r > 0)
      vd_nbd_conn_run (c, pfd.revents);
  }
  return vd_nbd_conn_ready (c) ? 0 : -1;
}

/* Take what callers submitted.  Returns whether close was asked. */
static bool
take_submissions (struct vd_nbd_client *cl)
{
  struct vd_nbd_cmd *list;
  bool closing;

  pthread_mutex_lock (&cl->lock);
  list = cl->sub_head;
  cl->sub_head = cl->sub_tail = NULL;
  closing = cl->closing;
  pthread_mutex_unlock (&cl->lock);
  while (list) {
    struct vd_nbd_cmd *next = list->next;
    list->next = NULL;
    vd_nbd_conn_submit (&cl->conn, list);
    list = next;
  }
  return closing;
}

static bool
have_submissions (struct vd_nbd_client *cl)
{
  bool r;

  pthread_mutex_lock (&cl->lock);
  r = cl->sub_head != NULL || (cl->closing && !cl->conn.disc_requested);
  pthread_mutex_unlock (&cl->lock);
  return r;
}

static void *
io_thread (void *arg)
{
  struct vd_nbd_client *cl = arg;
  struct vd_nbd_conn *c = &cl->conn;
  int64_t last_progress = vd_nbd_now ();
  uint64_t last_moved = c->bytes_moved;
  struct vd_nbd_cmd *list;

  for (;;) {
    struct pollfd pfd[2];
    int64_t now, deadline;
    bool pending;
    int r;

    if (take_submissions (cl) && !c->disc_requested)
      vd_nbd_conn_disconnect (c);
    /* Send new requests at once rather than after a poll round trip. */
    vd_nbd_conn_run (c, 0);
    if (vd_nbd_conn_dead (c))
      break;

    now = vd_nbd_now ();
    if (c->bytes_moved != last_moved) {
      last_moved = c->bytes_moved;
      last_progress = now;
    }
    if (vd_nbd_conn_busy (c) > 0 || c->disc_requested) {
      deadline = last_progress + cl->io_timeout;
      if (now >= deadline) {
        vd_nbd_conn_kill (c, ETIMEDOUT, true, "the server did not answer "
                          "for %.3g s", (double) cl->io_timeout / 1e9);
        break;
      }
    }
    else {
      deadline = INT64_MAX;
      last_progress = now;      /* idle time is not a stall */
    }

    atomic_store (&cl->sleeping, true);
    if (have_submissions (cl)) {
      atomic_store (&cl->sleeping, false);
      continue;
    }
    pfd[0].fd = c->t.ops->get_fd (c->t.handle);
    pfd[0].events = vd_nbd_conn_events (c);
    pfd[0].revents = 0;
    pfd[1].fd = cl->efd;
    pfd[1].events = POLLIN;
    pfd[1].revents = 0;
    pending = c->t.ops->pending (c->t.handle);
    r = poll (pfd, 2, pending ? 0 : poll_ms (deadline, now));
    atomic_store (&cl->sleeping, false);
    if (r == -1 && errno != EINTR) {
      vd_nbd_conn_kill (c, errno, true, "poll failed");
      break;
    }
    if (pending && r >= 0) {
      pfd[0].revents |= POLLIN;
      r = r > 0 ? r : 1;
    }
    if (r > 0 && (pfd[1].revents & POLLIN)) {
      uint64_t v;
      if (read (cl->efd, &v, sizeof v) == -1 && errno != EAGAIN) {
        vd_nbd_conn_kill (c, errno, true, "eventfd read failed");
        break;
      }
    }
    if (r > 0 && pfd[0].revents)
      vd_nbd_conn_run (c, pfd[0].revents);
    if (vd_nbd_conn_dead (c))
      break;
  }

  /* Dead: refuse new work, fail what was submitted meanwhile. */
  pthread_mutex_lock (&cl->lock);
  cl->dead = true;
  cl->dead_err = c->err;
  snprintf (cl->dead_msg, sizeof cl->dead_msg, "%s", c->errmsg);
  list = cl->sub_head;
  cl->sub_head = cl->sub_tail = NULL;
  pthread_mutex_unlock (&cl->lock);
  while (list) {
    struct vd_nbd_cmd *next = list->next;
    list->next = NULL;
    vd_nbd_cmd_reset (list);
    vd_nbd_cmd_set_error (list, cl->dead_err ? cl->dead_err : ESHUTDOWN,
                          "%s", cl->dead_msg[0] ? cl->dead_msg
                          : "the connection is closed");
    list->recoverable = true;
    list->done (list);
    list = next;
  }
  return NULL;
}

struct vd_nbd_client *
vd_nbd_client_connect (const struct vd_nbd_client_params *p, int *err,
                       bool *recoverable, char *msg, size_t msglen)
{
  struct vd_nbd_client *cl = calloc (1, sizeof *cl);
  struct vd_nbd_transport t;
  int r;

  if (cl == NULL) {
    *err = ENOMEM;
    *recoverable = true;
    snprintf (msg, msglen, "out of memory");
    return NULL;
  }
  cl->io_timeout = p->io_timeout;
  cl->efd = -1;
  if (p->fd >= 0) {
    if (vd_nbd_transport_from_fd (p->fd, &t) == -1) {
      *err = errno;
      *recoverable = false;
      snprintf (msg, msglen, "cannot use fd %d", p->fd);
      free (cl);
      return NULL;
    }
  }
  else if (vd_nbd_transport_connect (p->uri, p->deadline, &t, err,
                                     recoverable, msg, msglen) == -1) {
    free (cl);
    return NULL;
  }
  if (vd_nbd_conn_init (&cl->conn, t, p->name, p->uri->export_name,
                        p->hs_flags) == -1) {
    *err = ENOMEM;
    *recoverable = true;
    snprintf (msg, msglen, "out of memory");
    free (cl);
    return NULL;
  }
  /* Every connection, first or reconnection, does STARTTLS and its own
   * TLS handshake.
   */
  cl->conn.tls_mode = p->tls_required ? VD_NBD_TLS_REQUIRE
    : vd_nbd_tls_mode (p->uri);
  cl->conn.tls_uri = p->uri;
  if (handshake (&cl->conn, p->deadline) == -1) {
    *err = cl->conn.err;
    *recoverable = cl->conn.recoverable;
    snprintf (msg, msglen, "%s", cl->conn.errmsg);
    vd_nbd_conn_fini (&cl->conn);
    free (cl);
    return NULL;
  }

  cl->efd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (cl->efd == -1) {
    *err = errno;
    *recoverable = true;
    {
      char ebuf[128];
      snprintf (msg, msglen, "eventfd: %s",
                strerror_r (*err, ebuf, sizeof ebuf));
    }
    vd_nbd_conn_fini (&cl->conn);
    free (cl);
    return NULL;
  }
  atomic_init (&cl->sleeping, false);
  pthread_mutex_init (&cl->lock, NULL);
  r = pthread_create (&cl->thread, NULL, io_thread, cl);
  if (r != 0) {
    *err = r;
    *recoverable = true;
    {
      char ebuf[128];
      snprintf (msg, msglen, "cannot start the I/O thread: %s",
                strerror_r (r, ebuf, sizeof ebuf));
    }
    pthread_mutex_destroy (&cl->lock);
    close (cl->efd);
    vd_nbd_conn_fini (&cl->conn);
    free (cl);
    return NULL;
  }
  return cl;
}

const struct vd_nbd_export_info *
vd_nbd_client_info (struct vd_nbd_client *cl)
{
  return &cl->conn.info;
}

static void
wake (struct vd_nbd_client *cl)
{
  uint64_t one = 1;

  if (atomic_load (&cl->sleeping)) {
    /* Can only fail with EAGAIN (the counter is already nonzero, so the
     * thread will wake anyway).
     */
    ssize_t r = write (cl->efd, &one, sizeof one);
    (void) r;
  }
}

int
vd_nbd_client_submit (struct vd_nbd_client *cl, struct vd_nbd_cmd *cmd)
{
  pthread_mutex_lock (&cl->lock);
  if (cl->dead) {
    int e = cl->dead_err ? cl->dead_err : ESHUTDOWN;
    char m[VD_NBD_ERRMSG_LEN];
    snprintf (m, sizeof m, "%s", cl->dead_msg[0] ? cl->dead_msg
              : "the connection is closed");
    pthread_mutex_unlock (&cl->lock);
    vd_nbd_cmd_reset (cmd);
    vd_nbd_cmd_set_error (cmd, e, "%s", m);
    cmd->recoverable = true;
    return -1;
  }
  cmd->next = NULL;
  if (cl->sub_tail)
    cl->sub_tail->next = cmd;
  else
    cl->sub_head = cmd;
  cl->sub_tail = cmd;
  pthread_mutex_unlock (&cl->lock);
  wake (cl);
  return 0;
}

void
vd_nbd_client_close (struct vd_nbd_client *cl)
{
  uint64_t one = 1;

  if (cl == NULL)
    return;
  pthread_mutex_lock (&cl->lock);
  cl->closing = true;
  pthread_mutex_unlock (&cl->lock);
  {
    ssize_t r = write (cl->efd, &one, sizeof one); /* see wake () */
    (void) r;
  }
  pthread_join (cl->thread, NULL);
  vd_nbd_conn_fini (&cl->conn);
  pthread_mutex_destroy (&cl->lock);
  close (cl->efd);
  free (cl);
}
