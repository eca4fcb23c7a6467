/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Fixture shared by the vhost fuzz targets (fuzz-vhost-msg.c,
 * fuzz-vhost-vq.c): a fake guest memory (a 64 KiB buffer that memory
 * regions are "mapped" into by offset, without mmap), a vhost-user
 * session over a RAW image in a temporary file, and synchronous queues
 * (a kick processes the ring at once and executes each request on the
 * spot), so one thread drives the real protocol, ring and request code.
 * ASan then sees any access outside the buffer.
 */
#ifndef VD_FUZZ_VHOST_COMMON_H
#define VD_FUZZ_VHOST_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vdisk/vdisk.h"
#include "device.h"

#define FAKE_MEM_SIZE (64 * 1024)
#define FUZZ_DISK_SIZE (1024 * 1024)

/* The guest memory, over-allocated so that region pointers stay inside
 * one object; only FAKE_MEM_SIZE bytes are ever "mapped".
 */
static uint8_t *fake_mem;
static struct vd_attachment *fuzz_att;
static struct vhost_blk fuzz_blk;

static int
fake_map (void *opaque, int fd, uint64_t off, uint64_t size,
          struct vhost_mem_region *r)
{
  if (off > FAKE_MEM_SIZE || size > FAKE_MEM_SIZE - off)
    return -1;
  r->host = fake_mem + off;
  r->map_base = NULL;
  r->map_len = 0;
  return 0;
}

static void
fake_unmap (void *opaque, struct vhost_mem_region *r)
{
  r->host = NULL;
}

static int
fake_start (void *opaque, struct vhost_queue *q)
{
  return 0;
}

static void
fake_stop (void *opaque, struct vhost_queue *q)
{
  vhost_queue_wait_idle (q);
}

static void
fake_wake (void *opaque, struct vhost_queue *q)
{
}

static const struct vhost_dev_ops fake_ops = {
  .map = fake_map, .unmap = fake_unmap, .start = fake_start,
  .stop = fake_stop, .wake = fake_wake,
};

static void
submit_sync (void *opaque, struct vhost_req *r)
{
  vhost_req_execute (r);
}

/* Process every started queue, as if each had been kicked. */
static void
kick_all (struct vhost_dev *d)
{
  for (unsigned i = 0; i < d->nqueues; ++i) {
    bool more = d->queues[i].started;
    for (int k = 0; more && k < 4; ++k)
      vhost_queue_process (&d->queues[i], submit_sync, NULL, NULL, &more);
  }
}

static void
fuzz_vhost_init (void)
{
  char path[] = "/tmp/vdisk-fuzz-vhost-XXXXXX";
  struct vd_open_options o;
  int fd;

  if (fake_mem != NULL)
    return;
  fake_mem = aligned_alloc (4096, FAKE_MEM_SIZE);
  fd = mkstemp (path);
  if (fake_mem == NULL || fd == -1 || ftruncate (fd, FUZZ_DISK_SIZE) == -1) {
    perror ("fuzz-vhost: setup");
    exit (EXIT_FAILURE);
  }
  close (fd);
  vd_open_options_init (&o);
  o.sync_mode = VD_SYNC_NONE;
  fuzz_att = vd_attachment_open (path, &o);
  unlink (path);
  if (fuzz_att == NULL ||
      vhost_blk_init (&fuzz_blk, fuzz_att, "fuzz-serial", false, 2) == -1) {
    fprintf (stderr, "fuzz-vhost: %s\n", vd_get_error ());
    exit (EXIT_FAILURE);
  }
}

/* A vhost_msg as the session would receive it, with n fresh eventfds
 * (the device owns and closes them).
 */
static int
fuzz_deliver (struct vhost_dev *d, const uint8_t *hdr, const uint8_t *payload,
              size_t nfds)
{
  struct vhost_msg m;
  int fds[VHOST_MSG_MAX_FDS];
  uint8_t reply[VHOST_USER_HDR_SIZE + VHOST_MSG_MAX_PAYLOAD];
  size_t reply_len;
  int r;

  if (nfds > VHOST_MSG_MAX_FDS)
    nfds = VHOST_MSG_MAX_FDS;
  if (vhost_msg_parse_header (hdr, &m) == -1)
    return -1;
  for (size_t i = 0; i < nfds; ++i)
    fds[i] = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (vhost_msg_parse_payload (&m, payload, nfds) == -1) {
    for (size_t i = 0; i < nfds; ++i)
      if (fds[i] >= 0)
        close (fds[i]);
    return -1;
  }
  r = vhost_dev_handle (d, &m, fds, nfds, reply, &reply_len);
  if (reply_len > sizeof reply)
    abort ();
  return r;
}

#endif
