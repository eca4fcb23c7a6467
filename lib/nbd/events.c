/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Delivery of an NBD attachment's connection events (VD_EVENT_CONNECTED,
 * VD_EVENT_FAILED) to the user's callback.
 *
 * Method:
 *   Events are posted into a small ring and delivered, in order, by a
 *   thread of their own, started with the first event.  So a callback
 *   never runs under any lock of ours or of the core: the first
 *   CONNECTED (and a FAILED at start) is noticed inside ops->start, where
 *   the core holds the attachment's start lock, and a callback that asked
 *   for the size would deadlock if it ran there.  A callback may call any
 *   attachment function except vd_attachment_close, including blocking
 *   I/O (which then delays later events, not the I/O of other threads).
 *   Close delivers what is pending, then stops the thread, before the
 *   core releases the callback's user data.  If the thread cannot be
 *   created, events are delivered by the posting thread instead.
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "nbd-internal.h"

#define RING 16

struct event {
  int event;
  int err;
  bool has_msg;
  char msg[VD_NBD_ERRMSG_LEN + 256];
};

struct vd_nbd_events {
  struct vd_attachment *a;
  pthread_mutex_t lock;
  pthread_cond_t cond;          /* queue changed */
  struct event ring[RING];
  unsigned head, count;
  bool started, stopping, inline_only;
  pthread_t thread;
};

struct vd_nbd_events *
vd_nbd_events_new (struct vd_attachment *a)
{
  struct vd_nbd_events *ev = calloc (1, sizeof *ev);

  if (ev == NULL)
    return NULL;
  ev->a = a;
  pthread_mutex_init (&ev->lock, NULL);
  pthread_cond_init (&ev->cond, NULL);
  return ev;
}

static void *
event_thread (void *arg)
{
  struct vd_nbd_events *ev = arg;

  pthread_mutex_lock (&ev->lock);
  for (;;) {
    struct event e;
    while (ev->count == 0 && !ev->stopping)
      pthread_cond_wait (&ev->cond, &ev->lock);
    if (ev->count == 0)
      break;
    e = ev->ring[ev->head];
    pthread_mutex_unlock (&ev->lock);
    vd_attachment_emit_event (ev->a, e.event, e.err,
                              e.has_msg ? e.msg : NULL);
    pthread_mutex_lock (&ev->lock);
    ev->head = (ev->head + 1) % RING;
    ev->count--;
    pthread_cond_broadcast (&ev->cond);
  }
  pthread_mutex_unlock (&ev->lock);
  return NULL;
}

void
vd_nbd_events_post (struct vd_nbd_events *ev, int event, int err,
                    const char *msg)
{
  struct event *e;

  if (ev == NULL || ev->a->events.callback == NULL)
    return;
  pthread_mutex_lock (&ev->lock);
  if (!ev->started && !ev->inline_only) {
    if (pthread_create (&ev->thread, NULL, event_thread, ev) == 0)
      ev->started = true;
    else
      ev->inline_only = true;
  }
  if (ev->inline_only) {
    pthread_mutex_unlock (&ev->lock);
    vd_attachment_emit_event (ev->a, event, err, msg);
    return;
  }
  while (ev->count == RING)     /* a slow callback: wait for room */
    pthread_cond_wait (&ev->cond, &ev->lock);
  e = &ev->ring[(ev->head + ev->count) % RING];
  e->event = event;
  e->err = err;
  e->has_msg = msg != NULL;
  if (msg)
    vd_nbd_copy_str (e->msg, sizeof e->msg, msg);
  ev->count++;
  pthread_cond_broadcast (&ev->cond);
  pthread_mutex_unlock (&ev->lock);
}

void
vd_nbd_events_free (struct vd_nbd_events *ev)
{
  if (ev == NULL)
    return;
  pthread_mutex_lock (&ev->lock);
  ev->stopping = true;
  pthread_cond_broadcast (&ev->cond);
  pthread_mutex_unlock (&ev->lock);
  if (ev->started)
    pthread_join (ev->thread, NULL);
  pthread_cond_destroy (&ev->cond);
  pthread_mutex_destroy (&ev->lock);
  free (ev);
}
