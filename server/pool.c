/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The worker pool shared by all connections.  Each connection keeps its
 * own FIFO of jobs; the pool keeps a FIFO of connections that have jobs
 * and serves them round robin (one job, then the connection goes to the
 * back), so a client with many slow requests cannot starve the others.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define WORKER_STACK_SIZE (1u << 20)

static void *
worker (void *arg)
{
  struct pool *p = arg;

  for (;;) {
    struct request *req;
    struct conn *c;

    pthread_mutex_lock (&p->lock);
    while (!p->stop && p->ready_head == NULL)
      pthread_cond_wait (&p->cond, &p->lock);
    if (p->ready_head == NULL) {
      pthread_mutex_unlock (&p->lock);
      return NULL;
    }
    c = p->ready_head;
    p->ready_head = c->next_ready;
    if (p->ready_head == NULL)
      p->ready_tail = NULL;
    c->next_ready = NULL;
    req = c->job_head;
    c->job_head = req->next;
    if (c->job_head == NULL) {
      c->job_tail = NULL;
      c->in_pool_queue = false;
    }
    else {
      /* More work: back of the line. */
      if (p->ready_tail)
        p->ready_tail->next_ready = c;
      else
        p->ready_head = c;
      p->ready_tail = c;
    }
    pthread_mutex_unlock (&p->lock);

    req->next = NULL;
    request_execute (req);
  }
}

int
pool_start (struct pool *p, unsigned nr_threads)
{
  pthread_attr_t attr;
  int err;

  p->threads = calloc (nr_threads, sizeof *p->threads);
  if (p->threads == NULL)
    return -1;
  pthread_attr_init (&attr);
  pthread_attr_setstacksize (&attr, WORKER_STACK_SIZE);
  for (p->nr_threads = 0; p->nr_threads < nr_threads; p->nr_threads++) {
    err = pthread_create (&p->threads[p->nr_threads], &attr, worker, p);
    if (err) {
      pthread_attr_destroy (&attr);
      errno = err;
      return -1;
    }
  }
  pthread_attr_destroy (&attr);
  return 0;
}

void
pool_submit (struct pool *p, struct request *req)
{
  struct conn *c = req->c;

  req->next = NULL;
  pthread_mutex_lock (&p->lock);
  if (c->job_tail)
    c->job_tail->next = req;
  else
    c->job_head = req;
  c->job_tail = req;
  if (!c->in_pool_queue) {
    c->in_pool_queue = true;
    c->next_ready = NULL;
    if (p->ready_tail)
      p->ready_tail->next_ready = c;
    else
      p->ready_head = c;
    p->ready_tail = c;
  }
  pthread_mutex_unlock (&p->lock);
  /* After the unlock: signalled under the lock, the woken worker ran at
   * once into the lock we still held and slept again on it (a third of
   * the pool's futex calls in a 4-connection sequential read).  Waiters
   * test the queue under the lock, so no wakeup is lost.
   */
  pthread_cond_signal (&p->cond);
}

void
pool_stop (struct pool *p)
{
  pthread_mutex_lock (&p->lock);
  p->stop = true;
  pthread_cond_broadcast (&p->cond);
  pthread_mutex_unlock (&p->lock);
  for (unsigned i = 0; i < p->nr_threads; ++i)
    pthread_join (p->threads[i], NULL);
  free (p->threads);
  p->threads = NULL;
  p->nr_threads = 0;
}
