/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The vhost-user-blk export (see vhost.h): the unix socket, the session
 * thread that reads front-end messages and passes them to the session
 * state machine (device.c), guest memory mapping, one poll thread per
 * started queue and the worker pool that executes requests.
 *
 * Method (threads):
 *   export thread   accept, then read messages and apply them until the
 *                   front end disconnects; refuse a second front end
 *                   while one is connected; end on vhost_export_stop
 *   queue thread    one per started ring: poll its kick eventfd, take
 *                   the available requests, hand them to the pool
 *   workers         execute requests against the attachment (blocking
 *                   calls, so concurrency = workers), complete them on
 *                   the used ring and signal the call eventfd
 * A ring is stopped (GET_VRING_BASE, reconfiguration, disconnect) by
 * telling its queue thread to exit, joining it and waiting until its
 * requests in flight are done: guest memory is unmapped only after that,
 * so no worker ever touches a mapping that is gone.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "errors.h"
#include "checked-overflow.h"
#include "device.h"
#include "vhost.h"

#define WORKERS_PER_QUEUE 8
#define MAX_WORKERS 64

struct qrunner {
  struct vhost_export *e;
  struct vhost_queue *q;
  pthread_t thread;
  int wake_fd;                  /* eventfd: stop or look at the ring */
  atomic_bool stop;
};

struct pool {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct vhost_req *head, *tail;
  bool stop;
  unsigned nthreads;
  pthread_t *threads;
};

struct vhost_export {
  struct vd_attachment *a;
  char *socket_path;
  bool verbose;
  int listen_fd;
  int stop_fd;                  /* eventfd: end the export */
  pthread_t thread;
  struct vhost_blk blk;
  struct vhost_dev dev;
  struct qrunner runners[VHOST_MAX_QUEUES];
  struct pool pool;
  atomic_uint_fast64_t sessions;
  atomic_bool connected;
  int flush_failed;             /* a flush at session end failed */
  int renotify_ms;
};

int
vhost_validate_serial (const char *serial)
{
  return vhost_blk_validate_serial (serial);
}

static void
info (struct vhost_export *e, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

static void
info (struct vhost_export *e, const char *fmt, ...)
{
  va_list ap;

  if (!e->verbose)
    return;
  va_start (ap, fmt);
  fprintf (stderr, "vdisk: %s: ", e->socket_path);
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
}

/* Worker pool. */

static void
pool_submit (void *opaque, struct vhost_req *r)
{
  struct pool *p = opaque;

  pthread_mutex_lock (&p->lock);
  if (p->tail)
    p->tail->next = r;
  else
    p->head = r;
  p->tail = r;
  pthread_cond_signal (&p->cond);
  pthread_mutex_unlock (&p->lock);
}

static void *
worker (void *arg)
{
  struct pool *p = arg;

  pthread_mutex_lock (&p->lock);
  for (;;) {
    struct vhost_req *r;

    while (p->head == NULL && !p->stop)
      pthread_cond_wait (&p->cond, &p->lock);
    if (p->head == NULL)
      break;
    r = p->head;
    p->head = r->next;
    if (p->head == NULL)
      p->tail = NULL;
    pthread_mutex_unlock (&p->lock);
    vhost_req_execute (r);
    pthread_mutex_lock (&p->lock);
  }
  pthread_mutex_unlock (&p->lock);
  return NULL;
}

static int
pool_start (struct pool *p, unsigned n)
{
  int err;

  memset (p, 0, sizeof *p);
  pthread_mutex_init (&p->lock, NULL);
  pthread_cond_init (&p->cond, NULL);
  p->threads = calloc (n, sizeof *p->threads);
  if (p->threads == NULL) {
    vd_error (errno, "allocating the worker pool");
    return -1;
  }
  for (unsigned i = 0; i < n; ++i) {
    err = pthread_create (&p->threads[i], NULL, worker, p);
    if (err != 0) {
      vd_error (err, "starting a worker thread");
      return -1;
    }
    p->nthreads++;
  }
  return 0;
}

/* Stop after the queued requests (there are none: every ring has been
 * stopped and drained before this is called).
 */
static void
pool_stop (struct pool *p)
{
  pthread_mutex_lock (&p->lock);
  p->stop = true;
  pthread_cond_broadcast (&p->cond);
  pthread_mutex_unlock (&p->lock);
  for (unsigned i = 0; i < p->nthreads; ++i)
    pthread_join (p->threads[i], NULL);
  free (p->threads);
  pthread_mutex_destroy (&p->lock);
  pthread_cond_destroy (&p->cond);
}

/* Session hooks (struct vhost_dev_ops). */

static int
ops_map (void *opaque, int fd, uint64_t mmap_offset, uint64_t size,
         struct vhost_mem_region *r)
{
  struct stat st;
  uint64_t end;
  void *p;

  if (ADD_OVERFLOW (mmap_offset, size, &end) || end > SIZE_MAX) {
    vd_error_msg (EINVAL, "memory region (offset %" PRIu64 ", size %"
                  PRIu64 ") is too large", mmap_offset, size);
    return -1;
  }
  /* Touching a page past the end of the file would kill us with
   * SIGBUS: refuse regions the file does not cover.  (QEMU seals its
   * memfds against shrinking, so this holds for the whole session.)
   */
  if (fstat (fd, &st) == -1) {
    vd_error (errno, "memory region file descriptor");
    return -1;
  }
  if (S_ISREG (st.st_mode) && (uint64_t) st.st_size < end) {
    vd_error_msg (EINVAL, "memory region (offset %" PRIu64 ", size %"
                  PRIu64 ") extends past the end of its file (%" PRIu64
                  " bytes)", mmap_offset, size, (uint64_t) st.st_size);
    return -1;
  }
  /* Map from offset 0 (hugetlbfs needs huge-page aligned offsets, which
   * mmap_offset need not be); only [mmap_offset, end) is ever used.
   */
  p = mmap (NULL, end, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
            fd, 0);
  if (p == MAP_FAILED) {
    vd_error (errno, "mapping %" PRIu64 " bytes of guest memory", end);
    return -1;
  }
  r->map_base = p;
  r->map_len = end;
  r->host = (uint8_t *) p + mmap_offset;
  return 0;
}

static void
ops_unmap (void *opaque, struct vhost_mem_region *r)
{
  if (r->map_base)
    munmap (r->map_base, r->map_len);
  r->map_base = NULL;
  r->host = NULL;
}

/* Reset an eventfd; the number of signals it had collected. */
static uint64_t
drain_eventfd (int fd)
{
  uint64_t v;
  ssize_t r;

  do
    r = read (fd, &v, sizeof v);
  while (r == -1 && errno == EINTR);
  return r == sizeof v ? v : 0;
}

static void
submit (void *opaque, struct vhost_req *r)
{
  struct qrunner *qr = opaque;

  pool_submit (&qr->e->pool, r);
}

/* A request alone in flight, which the queue thread may run itself (see
 * vhost_queue_process) to save two thread hand-offs.  Only small ones:
 * while the queue thread is busy with a 1 MiB read, it does not see the
 * guest's next requests, and a guest reading ahead (sequential reads,
 * readahead) waits for the whole transfer before its next request is
 * even taken.  4 KiB random I/O, where the hand-offs matter, keeps the
 * fast path (docs/benchmarks.md, the vhost-user-blk section).
 */
#define VHOST_INLINE_MAX_BYTES (64u << 10)

static void
run_inline (void *opaque, struct vhost_req *r)
{
  if (r->chain.out_bytes + r->chain.in_bytes > VHOST_INLINE_MAX_BYTES + 512) {
    submit (opaque, r);
    return;
  }
  vhost_req_execute (r);
}

/* Take everything available, a ring's worth at a time, unless told to
 * stop.
 */
static int
take_requests (struct qrunner *qr)
{
  bool more;
  int n, total = 0;

  do {
    n = vhost_queue_process (qr->q, submit, run_inline, qr, &more);
    if (n > 0)
      total += n;
  } while (more && !atomic_load (&qr->stop));
  return total;
}

static void *
queue_thread (void *arg)
{
  struct qrunner *qr = arg;
  struct vhost_queue *q = qr->q;

  /* Look again at the rings once, a little after each burst: the
   * driver's stores (available index, used_event) may reach us later
   * than its decision not to kick or that it needs an interrupt
   * (virtq.c, "Method"; the same race in the kick direction).
   */
  bool look_again = true;

  /* Requests may already be waiting (a ring restarted after a stop). */
  take_requests (qr);
  for (;;) {
    struct pollfd pfd[2] = {
      { .fd = q->kick_fd, .events = POLLIN },
      { .fd = qr->wake_fd, .events = POLLIN },
    };
    int timeout = look_again || vhost_queue_unsignalled (q)
      ? qr->e->renotify_ms : -1;
    int n = poll (pfd, 2, timeout);

    if (n == -1) {
      if (errno == EINTR)
        continue;
      vd_warning ("%s: queue %u: poll: %s", qr->e->socket_path, q->index,
                  strerror (errno));
      break;
    }
    if (atomic_load (&qr->stop))
      break;
    if (n == 0) {
      vhost_queue_renotify (q);
      look_again = take_requests (qr) > 0;
      continue;
    }
    look_again = true;
    if (pfd[0].revents & (POLLERR | POLLNVAL)) {
      vd_warning ("%s: queue %u: the kick eventfd failed",
                  qr->e->socket_path, q->index);
      break;
    }
    if (pfd[0].revents & POLLIN)
      atomic_fetch_add (&q->kicks, drain_eventfd (q->kick_fd));
    if (pfd[1].revents & POLLIN)
      drain_eventfd (qr->wake_fd);
    take_requests (qr);
  }
  return NULL;
}

static int
ops_start (void *opaque, struct vhost_queue *q)
{
  struct vhost_export *e = opaque;
  struct qrunner *qr = &e->runners[q->index];
  int err;

  q->runner = qr;
  atomic_store (&qr->stop, false);
  drain_eventfd (qr->wake_fd);
  err = pthread_create (&qr->thread, NULL, queue_thread, qr);
  if (err != 0) {
    vd_error (err, "queue %u: starting its thread", q->index);
    return -1;
  }
  info (e, "queue %u started (size %" PRIu16 ")", q->index, q->num);
  return 0;
}

static void
ops_stop (void *opaque, struct vhost_queue *q)
{
  struct vhost_export *e = opaque;
  struct qrunner *qr = &e->runners[q->index];
  uint64_t one = 1;

  atomic_store (&qr->stop, true);
  if (write (qr->wake_fd, &one, sizeof one) == -1)
    vd_warning ("%s: queue %u: waking its thread: %s", e->socket_path,
                q->index, strerror (errno));
  pthread_join (qr->thread, NULL);
  vhost_queue_wait_idle (q);
  info (e, "queue %u stopped at index %" PRIu16 " (%" PRIu64 " requests, %"
        PRIu64 " kicks, %" PRIu64 " interrupts so far)",
        q->index, q->vq.last_avail_idx, (uint64_t) atomic_load (&q->requests),
        (uint64_t) atomic_load (&q->kicks),
        (uint64_t) atomic_load (&q->interrupts));
}

static void
ops_wake (void *opaque, struct vhost_queue *q)
{
  struct vhost_export *e = opaque;
  uint64_t one = 1;

  if (write (e->runners[q->index].wake_fd, &one, sizeof one) == -1)
    vd_warning ("%s: queue %u: waking its thread: %s", e->socket_path,
                q->index, strerror (errno));
}

static const struct vhost_dev_ops export_ops = {
  .map = ops_map,
  .unmap = ops_unmap,
  .start = ops_start,
  .stop = ops_stop,
  .wake = ops_wake,
};

/* The socket. */

/* Wait until fd is readable (1), the export is stopping (0) or poll
 * fails (-1, raised).  If listen_fd >= 0, new connections meanwhile are
 * refused: one front end at a time.
 */
static int
wait_readable (struct vhost_export *e, int fd, int listen_fd)
{
  for (;;) {
    struct pollfd pfd[3] = {
      { .fd = fd, .events = POLLIN },
      { .fd = e->stop_fd, .events = POLLIN },
      { .fd = listen_fd, .events = POLLIN },
    };

    if (poll (pfd, listen_fd >= 0 ? 3 : 2, -1) == -1) {
      if (errno == EINTR)
        continue;
      vd_error (errno, "%s: poll", e->socket_path);
      return -1;
    }
    if (pfd[1].revents)
      return 0;
    if (listen_fd >= 0 && (pfd[2].revents & POLLIN)) {
      int c = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
      if (c >= 0) {
        vd_warning ("%s: refused a second front end: one is already "
                    "connected", e->socket_path);
        close (c);
      }
    }
    if (pfd[0].revents)
      return 1;
  }
}

static void
close_fds (int *fds, size_t n)
{
  for (size_t i = 0; i < n; ++i)
    if (fds[i] >= 0)
      close (fds[i]);
}

/* Read exactly len bytes from the connection, collecting descriptors.
 * Returns 1, 0 on end of file before the first byte (when eof_ok), or -1
 * (raised; also for the export stopping).
 */
static int
recv_full (struct vhost_export *e, int conn, uint8_t *buf, size_t len,
           int *fds, size_t *nfds, bool eof_ok)
{
  size_t got = 0;

  while (got < len) {
    union {
      struct cmsghdr h;
      char buf[CMSG_SPACE (VHOST_MSG_MAX_FDS * sizeof (int))];
    } control;
    struct iovec iov = { buf + got, len - got };
    struct msghdr mh = {
      .msg_iov = &iov, .msg_iovlen = 1,
      .msg_control = &control, .msg_controllen = sizeof control,
    };
    ssize_t n;
    int w = wait_readable (e, conn, e->listen_fd);

    if (w == -1)
      return -1;
    if (w == 0) {
      vd_error_msg (ECANCELED, "%s: the export is stopping", e->socket_path);
      return -1;
    }
    n = recvmsg (conn, &mh, MSG_CMSG_CLOEXEC);
    if (n == -1) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      vd_error (errno, "%s: reading from the front end", e->socket_path);
      return -1;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR (&mh); c; c = CMSG_NXTHDR (&mh, c)) {
      size_t k;
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
        continue;
      k = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);
      for (size_t i = 0; i < k; ++i) {
        int fd;
        memcpy (&fd, CMSG_DATA (c) + i * sizeof (int), sizeof fd);
        if (*nfds < VHOST_MSG_MAX_FDS)
          fds[(*nfds)++] = fd;
        else
          close (fd);
      }
    }
    if (mh.msg_flags & MSG_CTRUNC) {
      vd_error_msg (EPROTO, "%s: the front end sent more than %d file "
                    "descriptors with one message", e->socket_path,
                    VHOST_MSG_MAX_FDS);
      return -1;
    }
    if (n == 0) {
      if (got == 0 && eof_ok)
        return 0;
      vd_error_msg (ECONNRESET, "%s: the front end closed the connection "
                    "in the middle of a message", e->socket_path);
      return -1;
    }
    got += n;
  }
  return 1;
}

static int
send_full (struct vhost_export *e, int conn, const uint8_t *buf, size_t len)
{
  while (len > 0) {
    ssize_t n = send (conn, buf, len, MSG_NOSIGNAL);
    if (n == -1) {
      if (errno == EINTR)
        continue;
      vd_error (errno, "%s: writing to the front end", e->socket_path);
      return -1;
    }
    buf += n;
    len -= n;
  }
  return 0;
}

/* Serve one front end until it disconnects or the export stops. */
static void
session (struct vhost_export *e, int conn)
{
  static const size_t max_reply = VHOST_USER_HDR_SIZE +
    VHOST_MSG_MAX_PAYLOAD;
  uint8_t *payload = malloc (VHOST_MSG_MAX_PAYLOAD);
  uint8_t *reply = malloc (max_reply);

  atomic_fetch_add (&e->sessions, 1);
  atomic_store (&e->connected, true);
  info (e, "front end connected");
  if (payload == NULL || reply == NULL) {
    vd_warning ("%s: out of memory", e->socket_path);
    goto out;
  }

  for (;;) {
    uint8_t hdr[VHOST_USER_HDR_SIZE];
    int fds[VHOST_MSG_MAX_FDS];
    size_t nfds = 0, reply_len;
    struct vhost_msg m;
    int r;

    r = recv_full (e, conn, hdr, sizeof hdr, fds, &nfds, true);
    if (r == 0) {
      info (e, "front end disconnected");
      break;
    }
    if (r == -1 || vhost_msg_parse_header (hdr, &m) == -1 ||
        recv_full (e, conn, payload, m.size, fds, &nfds, false) == -1 ||
        vhost_msg_parse_payload (&m, payload, nfds) == -1) {
      close_fds (fds, nfds);
      if (vd_get_errno () != ECANCELED)
        vd_warning ("%s; closing the connection", vd_get_error ());
      break;
    }
    r = vhost_dev_handle (&e->dev, &m, fds, nfds, reply, &reply_len);
    if (r == -1) {
      vd_warning ("%s: %s; closing the connection", e->socket_path,
                  vd_get_error ());
      break;
    }
    if (r == 1)
      vd_warning ("%s: %s", e->socket_path, vd_get_error ());
    if (reply_len > 0 && send_full (e, conn, reply, reply_len) == -1) {
      vd_warning ("%s", vd_get_error ());
      break;
    }
  }

 out:
  /* Finish what is in flight, unmap, flush what the guest wrote. */
  vhost_dev_reset (&e->dev);
  if (vd_attachment_flush (e->a, 0) == -1) {
    vd_warning ("%s: flushing after the front end left: %s",
                e->socket_path, vd_get_error ());
    e->flush_failed = 1;
  }
  atomic_store (&e->connected, false);
  free (payload);
  free (reply);
}

static void *
export_thread (void *arg)
{
  struct vhost_export *e = arg;

  for (;;) {
    int conn, w = wait_readable (e, e->listen_fd, -1);

    if (w == -1) {
      vd_warning ("%s", vd_get_error ());
      break;
    }
    if (w == 0)
      break;
    conn = accept4 (e->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn == -1) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
        vd_warning ("%s: accept: %s", e->socket_path, strerror (errno));
      continue;
    }
    session (e, conn);
    close (conn);
  }
  return NULL;
}

/* Create, bind and listen.  A stale socket (nobody accepts) is
 * replaced; anything else at path is left alone.
 */
static int
listen_unix (const char *path)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  struct stat st;
  int fd;

  if (strlen (path) >= sizeof sun.sun_path) {
    vd_error_msg (ENAMETOOLONG, "%s: the socket path is too long (at most "
                  "%zu bytes)", path, sizeof sun.sun_path - 1);
    return -1;
  }
  memcpy (sun.sun_path, path, strlen (path) + 1);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1) {
    vd_error (errno, "%s: socket", path);
    return -1;
  }
  if (bind (fd, (struct sockaddr *) &sun, sizeof sun) == -1) {
    int probe;

    if (errno != EADDRINUSE || lstat (path, &st) == -1 ||
        !S_ISSOCK (st.st_mode)) {
      vd_error (errno, "%s", path);
      goto fail;
    }
    probe = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 &&
        connect (probe, (struct sockaddr *) &sun, sizeof sun) == 0) {
      close (probe);
      vd_error_msg (EADDRINUSE, "%s: another process is listening on this "
                    "socket", path);
      goto fail;
    }
    if (probe >= 0)
      close (probe);
    if (unlink (path) == -1 ||
        bind (fd, (struct sockaddr *) &sun, sizeof sun) == -1) {
      vd_error (errno, "%s", path);
      goto fail;
    }
  }
  if (listen (fd, 4) == -1) {
    vd_error (errno, "%s: listen", path);
    unlink (path);
    goto fail;
  }
  return fd;
 fail:
  close (fd);
  return -1;
}

static void
export_free (struct vhost_export *e)
{
  for (unsigned i = 0; i < VHOST_MAX_QUEUES; ++i)
    if (e->runners[i].wake_fd >= 0)
      close (e->runners[i].wake_fd);
  if (e->stop_fd >= 0)
    close (e->stop_fd);
  free (e->socket_path);
  free (e);
}

struct vhost_export *
vhost_export_start (struct vd_attachment *a,
                    const struct vhost_export_options *o)
{
  struct vhost_export *e;
  unsigned nq = o->num_queues ? o->num_queues : 1;
  unsigned nw = o->workers;
  int err;

  if (nq > VHOST_MAX_QUEUES) {
    vd_error_msg (EINVAL, "%u queues requested: between 1 and %d are "
                  "supported", nq, VHOST_MAX_QUEUES);
    return NULL;
  }
  if (nw == 0)
    nw = nq * WORKERS_PER_QUEUE;
  if (nw > MAX_WORKERS) {
    vd_error_msg (EINVAL, "%u worker threads requested: at most %d",
                  nw, MAX_WORKERS);
    return NULL;
  }
  if (vd_attachment_start (a) == -1)
    return NULL;

  e = calloc (1, sizeof *e);
  if (e == NULL) {
    vd_error (errno, "calloc");
    return NULL;
  }
  e->a = a;
  e->verbose = o->verbose;
  e->renotify_ms = o->renotify_ms ? (int) o->renotify_ms : 10;
  e->listen_fd = e->stop_fd = -1;
  for (unsigned i = 0; i < VHOST_MAX_QUEUES; ++i)
    e->runners[i].wake_fd = -1;
  atomic_init (&e->sessions, 0);
  atomic_init (&e->connected, false);
  e->socket_path = strdup (o->socket_path);
  if (e->socket_path == NULL) {
    vd_error (errno, "strdup");
    goto fail;
  }
  e->stop_fd = eventfd (0, EFD_CLOEXEC);
  if (e->stop_fd == -1) {
    vd_error (errno, "eventfd");
    goto fail;
  }
  for (unsigned i = 0; i < nq; ++i) {
    e->runners[i].e = e;
    e->runners[i].q = &e->dev.queues[i];
    e->runners[i].wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (e->runners[i].wake_fd == -1) {
      vd_error (errno, "eventfd");
      goto fail;
    }
  }
  if (vhost_blk_init (&e->blk, a, o->serial, o->read_only, nq) == -1)
    goto fail;
  if (vhost_dev_init (&e->dev, &e->blk, nq, &export_ops, e,
                      e->socket_path) == -1)
    goto fail;
  if (pool_start (&e->pool, nw) == -1) {
    pool_stop (&e->pool);
    vhost_dev_fini (&e->dev);
    goto fail;
  }
  e->listen_fd = listen_unix (e->socket_path);
  if (e->listen_fd == -1)
    goto fail_pool;
  err = pthread_create (&e->thread, NULL, export_thread, e);
  if (err != 0) {
    vd_error (err, "starting the export thread");
    close (e->listen_fd);
    unlink (e->socket_path);
    goto fail_pool;
  }
  info (e, "serving %s as a vhost-user-blk device (%u queue%s, %u "
        "workers)", vd_attachment_get_name (a), nq, nq == 1 ? "" : "s", nw);
  return e;

 fail_pool:
  pool_stop (&e->pool);
  vhost_dev_fini (&e->dev);
 fail:
  export_free (e);
  return NULL;
}

int
vhost_export_stop (struct vhost_export *e)
{
  uint64_t one = 1;
  int r;

  if (e == NULL)
    return 0;
  if (write (e->stop_fd, &one, sizeof one) == -1)
    vd_warning ("%s: stopping: %s", e->socket_path, strerror (errno));
  pthread_join (e->thread, NULL);
  vhost_dev_fini (&e->dev);
  pool_stop (&e->pool);
  close (e->listen_fd);
  unlink (e->socket_path);
  r = e->flush_failed ? -1 : 0;
  if (r == -1)
    vd_error_msg (EIO, "%s: flushing the attachment failed (see the "
                  "warnings above)", e->socket_path);
  export_free (e);
  return r;
}

void
vhost_export_get_stats (struct vhost_export *e, struct vhost_export_stats *s)
{
  memset (s, 0, sizeof *s);
  s->sessions = atomic_load (&e->sessions);
  s->connected = atomic_load (&e->connected);
  s->io_errors = atomic_load (&e->blk.io_errors);
  for (unsigned i = 0; i < e->dev.nqueues; ++i) {
    struct vhost_queue *q = &e->dev.queues[i];
    s->requests += atomic_load (&q->requests);
    s->bad_requests += atomic_load (&q->bad_requests);
    s->broken_queues += atomic_load (&q->broken_count);
    s->kicks += atomic_load (&q->kicks);
    s->interrupts += atomic_load (&q->interrupts);
  }
}
