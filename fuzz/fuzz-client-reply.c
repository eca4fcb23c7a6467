/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Fuzz target: the NBD client's handshake and reply parsing, against a
 * fake server whose every byte comes from the fuzz input.
 *
 * Method:
 *   The connection state machine (lib/nbd/conn.c) runs over an
 *   in-memory transport: recv hands out the input (in pieces of a size
 *   the first byte picks, so every resumption point is reached), send
 *   accepts everything.  Input byte 0: bits 0-3 are handshake choices
 *   (VD_NBD_NO_EXTENDED_HEADERS ...), bits 4-5 the piece size.  The rest
 *   is what the server says.  Six commands (READ, WRITE, BLOCK_STATUS,
 *   FLUSH, a second READ, TRIM) are submitted before the handshake; the
 *   connection sends them once it is done, and reads the replies.
 *   Cookies are deterministic (command i has (i+1) << 32 | i), so
 *   the seed corpus (fuzz/make-client-reply-corpus.py) holds valid
 *   replies.  Checks: no crash, no leak, no hang, every command
 *   completed exactly once, a failed connection fails everything.
 *   FUZZ_CLIENT_DEBUG=1 prints how each input ended (for the corpus).
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-internal.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

struct mem {
  const uint8_t *data;
  size_t len, pos;
  unsigned piece;
  unsigned step;
};

static ssize_t
mem_recv (void *t, void *buf, size_t len)
{
  struct mem *m = t;
  size_t n;

  if (m->pos == m->len)
    return 0;
  n = m->len - m->pos;
  if (n > len)
    n = len;
  if (m->piece && n > m->piece)
    n = m->piece + (m->step++ % 3);
  if (n > len)
    n = len;
  if (n > m->len - m->pos)
    n = m->len - m->pos;
  memcpy (buf, m->data + m->pos, n);
  m->pos += n;
  return n;
}

static ssize_t
mem_send (void *t, const struct iovec *iov, int iovcnt, bool more)
{
  struct mem *m = t;
  size_t total = 0;

  for (int i = 0; i < iovcnt; ++i)
    total += iov[i].iov_len;
  /* Partial sends too, when the pieces are small. */
  if (m->piece && total > m->piece * 7)
    total = m->piece * 7;
  return total;
}

static int mem_get_fd (void *t) { return -1; }
static bool mem_pending (void *t) { return false; }
static void mem_shut_wr (void *t) { }
static void mem_close (void *t) { }

static const struct vd_nbd_transport_ops mem_ops = {
  .name = "memory",
  .recv = mem_recv,
  .send = mem_send,
  .get_fd = mem_get_fd,
  .pending = mem_pending,
  .shut_wr = mem_shut_wr,
  .close = mem_close,
};

#define NR_CMDS 6

static int done_count[NR_CMDS];

static void
on_done (struct vd_nbd_cmd *cmd)
{
  int i = (int) (intptr_t) cmd->user;

  done_count[i]++;
  if (done_count[i] != 1)
    abort ();
  /* A failure always explains itself. */
  if (cmd->err && cmd->errmsg[0] == '\0')
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const unsigned pieces[] = { 0, 1, 5, 64 };
  struct vd_nbd_conn c;
  struct vd_nbd_transport t;
  struct mem m = { 0 };
  struct vd_nbd_cmd cmds[NR_CMDS];
  char *rbuf = calloc (1, 65536), *wbuf = calloc (1, 4096);
  bool debug = getenv ("FUZZ_CLIENT_DEBUG") != NULL;

  if (size < 1 || rbuf == NULL || wbuf == NULL) {
    free (rbuf);
    free (wbuf);
    return 0;
  }
  m.data = data + 1;
  m.len = size - 1;
  m.piece = pieces[(data[0] >> 4) & 3];
  t.ops = &mem_ops;
  t.handle = &m;
  if (vd_nbd_conn_init (&c, t, "fuzz", "", data[0] & 0x0f) == -1)
    abort ();
  memset (done_count, 0, sizeof done_count);

  {
    const struct { uint16_t type; uint64_t off, count; void *buf; } spec[] = {
      { NBD_CMD_READ, 0, 4096, rbuf },
      { NBD_CMD_WRITE, 4096, 512, wbuf },
      { NBD_CMD_BLOCK_STATUS, 0, 65536, NULL },
      { NBD_CMD_FLUSH, 0, 0, NULL },
      { NBD_CMD_READ, 8192, 20000, rbuf + 4096 },
      { NBD_CMD_TRIM, 0, 4096, NULL },
    };
    for (int i = 0; i < NR_CMDS; ++i) {
      memset (&cmds[i], 0, sizeof cmds[i]);
      cmds[i].type = spec[i].type;
      cmds[i].offset = spec[i].off;
      cmds[i].count = spec[i].count;
      cmds[i].data = spec[i].buf;
      cmds[i].done = on_done;
      cmds[i].user = (void *) (intptr_t) i;
      vd_nbd_conn_submit (&c, &cmds[i]);
    }
  }
  for (int i = 0; i < 100000 && !vd_nbd_conn_dead (&c) &&
         vd_nbd_conn_busy (&c) > 0; ++i)
    vd_nbd_conn_run (&c, POLLIN | POLLOUT);
  if (!vd_nbd_conn_dead (&c)) {
    /* Everything answered: say goodbye. */
    vd_nbd_conn_disconnect (&c);
    for (int i = 0; i < 1000 && !vd_nbd_conn_dead (&c); ++i)
      vd_nbd_conn_run (&c, POLLIN | POLLOUT);
  }
  if (debug)
    fprintf (stderr, "fuzz-client-reply: connection: %s\n",
             c.state == VD_NBD_STATE_DEAD ? c.errmsg : "alive");
  vd_nbd_conn_fini (&c);
  for (int i = 0; i < NR_CMDS; ++i) {
    if (done_count[i] != 1)
      abort ();
    if (debug)
      fprintf (stderr, "  command %d: %s (%zu extents)\n", i,
               cmds[i].err ? cmds[i].errmsg : "ok", cmds[i].nr_extents);
    free (cmds[i].extents);
  }
  free (rbuf);
  free (wbuf);
  return 0;
}
