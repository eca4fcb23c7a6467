/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The NBD client against a scriptable server (fake-server.c): every
 * negotiation path (extended headers, structured replies only, simple
 * replies, EXPORT_NAME fallback, non-fixed newstyle), block size
 * constraints (read-modify-write, splitting), fragmented and reordered
 * replies, the attachment options (forced read-only, sync modes, FUA
 * emulation, zero emulation, lazy connect, DISC at close, events), the
 * reconnect paths (ESHUTDOWN, dropped connections, an export that
 * changed) and every kind of server misbehaviour, which must end in a
 * clear error, never a crash or a hang.  The server counts every rule
 * the client breaks; each case asserts there were none.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nbd-protocol.h"
#include "fake-server.h"
#include "test.h"

#define MiB (1024 * 1024)

static char dir[4096];
static int nr_connected, nr_failed, nr_freed;
static int last_failed_err;

static int64_t size_in_event;

/* Events run on their own thread: the callback may call into the
 * attachment (here: its size, at the first connection, which happens
 * while the attachment is starting).
 */
static void
on_event (void *ud, struct vd_attachment *a, int event, int err,
          const char *msg)
{
  if (event == VD_EVENT_CONNECTED) {
    if (__atomic_add_fetch (&nr_connected, 1, __ATOMIC_SEQ_CST) == 1)
      size_in_event = vd_attachment_get_size (a);
  }
  else {
    __atomic_add_fetch (&nr_failed, 1, __ATOMIC_SEQ_CST);
    last_failed_err = err;
    CHECK (msg != NULL && *msg);
  }
}

static void
on_free (void *ud)
{
  __atomic_add_fetch (&nr_freed, 1, __ATOMIC_SEQ_CST);
}

static struct vd_attachment *
open_fake (struct fake_server *s, double timeout, uint32_t flags, int sync)
{
  struct vd_open_options o;
  char uri[512];
  struct vd_attachment *a;

  vd_open_options_init (&o);
  o.timeout = timeout;
  o.flags = flags;
  o.sync_mode = sync;
  o.events.callback = on_event;
  o.events.free = on_free;
  nr_connected = nr_failed = nr_freed = 0;
  size_in_event = -2;
  a = vd_attachment_open (fake_uri (s, uri, sizeof uri), &o);
  CHECK (a != NULL);
  return a;
}

static void
fill (char *buf, size_t n, unsigned seed)
{
  for (size_t i = 0; i < n; ++i)
    buf[i] = (char) ((i * 31 + seed * 7 + (i >> 9)) & 0xff);
}

static void
no_violations (struct fake_server *s)
{
  if (atomic_load (&s->st.violations) != 0) {
    fprintf (stderr, "the client broke a rule: %s\n", s->last_violation);
    exit (1);
  }
}

/* Parallel writers and readers over the whole export. */
struct par {
  struct vd_attachment *a;
  const char *src;
  uint64_t size, piece;
  int id, n;
  bool read;
};

static void *
par_thread (void *arg)
{
  struct par *p = arg;
  char *buf = malloc (p->piece);

  CHECK (buf != NULL);
  for (uint64_t off = p->id * p->piece; off < p->size;
       off += p->n * p->piece) {
    uint64_t len = p->size - off < p->piece ? p->size - off : p->piece;
    if (p->read) {
      CHECK (vd_attachment_pread (p->a, buf, len, off, 0) == 0);
      if (memcmp (buf, p->src + off, len) != 0) {
        fprintf (stderr, "data differs in [%" PRIu64 ", +%" PRIu64 ")\n",
                 off, len);
        exit (1);
      }
    }
    else
      CHECK (vd_attachment_pwrite (p->a, p->src + off, len, off,
                                   (off / p->piece) % 5 == 0
                                   ? VD_FLAG_FUA : 0) == 0);
  }
  free (buf);
  return NULL;
}

static void
parallel (struct vd_attachment *a, const char *src, uint64_t size,
          uint64_t piece, bool read)
{
  pthread_t t[6];
  struct par p[6];

  for (int i = 0; i < 6; ++i) {
    p[i] = (struct par) { a, src, size, piece, i, 6, read };
    CHECK (pthread_create (&t[i], NULL, par_thread, &p[i]) == 0);
  }
  for (int i = 0; i < 6; ++i)
    pthread_join (t[i], NULL);
}

struct ext {
  uint64_t off, len;
  uint32_t state;
};

static int
collect (void *ud, uint64_t off, uint64_t len, uint32_t state)
{
  struct ext *e = ud;
  if (e->len == 0) {
    e->off = off;
    e->len = len;
    e->state = state;
  }
  return 0;
}

/* A full workout on a well-behaved server with the given features. */
static void
workout (const char *what, struct fake_config *cfg)
{
  struct fake_server s;
  struct vd_attachment *a;
  uint64_t size = cfg->size;
  char *src = malloc (size), *buf = malloc (size);

  printf ("workout: %s\n", what);
  CHECK (src && buf);
  fill (src, size, 1);
  CHECK (fake_start (&s, cfg, dir) == 0);
  a = open_fake (&s, 5, 0, VD_SYNC_FULL);
  /* Lazy: nothing happened on the network yet. */
  CHECK (atomic_load (&s.st.connections) == 0);
  CHECK (vd_attachment_get_size (a) == (int64_t) size);
  CHECK (atomic_load (&s.st.connections) == 1);

  /* Aligned parallel I/O, odd piece sizes (split and RMW where needed). */
  parallel (a, src, size, 256 * 1024, false);
  CHECK (vd_attachment_flush (a, 0) == 0);
  parallel (a, src, size, 99999, true);
  /* Unaligned read and write across blocks. */
  fill (src + 5000, 70001, 2);
  CHECK (vd_attachment_pwrite (a, src + 5000, 70001, 5000, 0) == 0);
  fill (src + 1, 10, 3);
  CHECK (vd_attachment_pwrite (a, src + 1, 10, 1, VD_FLAG_FUA) == 0);
  CHECK (vd_attachment_pread (a, buf, 123457, 3, 0) == 0);
  CHECK (memcmp (buf, src + 3, 123457) == 0);
  CHECK (vd_attachment_pread (a, buf, size, 0, 0) == 0 ||
         size > vd_attachment_get_max_request (a));
  /* Zeroing: aligned and not. */
  CHECK (vd_attachment_write_zeroes (a, 200000, 300001, 0) == 0);
  memset (src + 300001, 0, 200000);
  CHECK (vd_attachment_write_zeroes (a, 65536, 1 * MiB, VD_FLAG_MAY_TRIM)
         == 0);
  memset (src + MiB, 0, 65536);
  parallel (a, src, size, 65536, true);
  /* Block status: what was zeroed at 1 MiB (a whole 64 KiB, 4 KiB
   * aligned) reads as a hole; the data before it is data.
   */
  if (vd_attachment_can_extents (a) == 1) {
    struct ext e = { 0 };
    CHECK (vd_attachment_block_status (a, 65536, MiB, 0, collect, &e) == 0);
    CHECK (e.off == MiB && e.state == (VD_STATE_HOLE | VD_STATE_ZERO));
    CHECK (e.len == 65536);
    memset (&e, 0, sizeof e);
    CHECK (vd_attachment_block_status (a, 4096, 12345, VD_FLAG_REQ_ONE,
                                       collect, &e) == 0);
    CHECK (e.off == 12345 && e.state == 0 && e.len <= 4096);
  }
  CHECK (vd_attachment_discard (a, 3 * 65536, 65536, 0) == 0);
  CHECK (vd_attachment_cache (a, 1000, 77, 0) == 0);
  no_violations (&s);
  CHECK (vd_attachment_close (a) == 0);
  /* Events are delivered by close at the latest; the callback called
   * into the attachment from the first one without deadlocking.
   */
  CHECK (nr_connected == 1 && nr_failed == 0 && nr_freed == 1);
  CHECK (size_in_event == (int64_t) size);
  /* Close flushed (sync full) and said goodbye (the server reads the
   * DISC on its own time).
   */
  for (int i = 0; i < 200 && atomic_load (&s.st.disc) == 0; ++i)
    usleep (10000);
  CHECK (atomic_load (&s.st.disc) == 1);
  fake_stop (&s);
  free (src);
  free (buf);
}

/* A server that misbehaves: the first READ must fail with err and a
 * message containing what; nothing crashes or hangs.
 */
static void
misbehave (const char *name, int how, bool sr, bool eh, int err,
           const char *what)
{
  struct fake_config cfg;
  struct fake_server s;
  struct vd_attachment *a;
  char buf[8192];
  time_t t0 = time (NULL);

  printf ("misbehave: %s\n", name);
  fake_config_default (&cfg, 4 * MiB);
  cfg.sr = sr;
  cfg.eh = eh;
  cfg.misbehave = how;
  CHECK (fake_start (&s, &cfg, dir) == 0);
  a = open_fake (&s, 0.6, 0, VD_SYNC_FULL);
  if (how == FAKE_HUGE_STATUS || how == FAKE_STATUS_WRONG_ID) {
    CHECK (vd_attachment_start (a) == 0);
    CHECK_FAILS (vd_attachment_block_status (a, 8192, 0, 0, collect,
                                             &(struct ext) { 0 }),
                 err, what);
  }
  else if (how == FAKE_NO_INFO_EXPORT || how == FAKE_BAD_BLOCK_SIZE ||
           how == FAKE_REP_TOO_BIG || how == FAKE_HUGE_SIZE)
    CHECK_FAILS (vd_attachment_start (a), err, what);
  else
    CHECK_FAILS (vd_attachment_pread (a, buf, sizeof buf, 4096, 0), err,
                 what);
  printf ("  -> %s\n", vd_get_error ());
  CHECK (time (NULL) - t0 < 10);
  vd_attachment_close (a);
  /* Protocol errors are retried within the window, then fail once. */
  if (err == ETIMEDOUT)
    CHECK (nr_failed == 1 && last_failed_err == ETIMEDOUT);
  fake_stop (&s);
}

int
main (void)
{
  struct fake_config cfg;

  snprintf (dir, sizeof dir, "%s", test_tmpdir ());

  /* Negotiation paths. */
  fake_config_default (&cfg, 6 * MiB + 4096);
  cfg.fragment_reads = cfg.reorder = true;
  workout ("extended headers, fragmented reordered replies", &cfg);

  fake_config_default (&cfg, 6 * MiB);
  cfg.eh = false;
  cfg.fragment_reads = cfg.reorder = cfg.alternate_simple = true;
  workout ("structured replies only", &cfg);

  fake_config_default (&cfg, 3 * MiB);
  cfg.eh = cfg.sr = cfg.meta = false;
  cfg.reorder = true;
  workout ("simple replies", &cfg);

  fake_config_default (&cfg, 3 * MiB);
  cfg.go = false;
  cfg.eh = false;
  cfg.no_zeroes = false;
  workout ("EXPORT_NAME fallback, with zero padding", &cfg);

  fake_config_default (&cfg, 2 * MiB);
  cfg.no_fixed_newstyle = true;
  cfg.export_name = "disk";
  workout ("non-fixed newstyle", &cfg);

  /* Block size constraints: 4 KiB minimum, 64 KiB maximum payload. */
  fake_config_default (&cfg, 4 * MiB);
  cfg.min_block = 4096;
  cfg.pref_block = 65536;
  cfg.max_payload = 65536;
  cfg.fragment_reads = cfg.reorder = true;
  workout ("minimum 4 KiB, maximum 64 KiB, extended", &cfg);
  cfg.eh = false;
  cfg.min_block = 512;
  workout ("minimum 512, maximum 64 KiB, structured", &cfg);

  /* Splitting: a 32 MiB read on a 64 KiB server never exceeds 64 KiB. */
  {
    struct fake_server s;
    struct vd_attachment *a;
    char *buf = malloc (32 * MiB);
    fake_config_default (&cfg, 40 * MiB);
    cfg.max_payload = 65536;
    CHECK (buf && fake_start (&s, &cfg, dir) == 0);
    a = open_fake (&s, 5, 0, VD_SYNC_FULL);
    CHECK (vd_attachment_get_max_request (a) == 32 * MiB);
    CHECK (vd_attachment_pread (a, buf, 32 * MiB, 4096, 0) == 0);
    CHECK (atomic_load (&s.st.max_len) <= 65536);
    CHECK (atomic_load (&s.st.reads) == 512);
    /* Payload-less commands are not bound by the payload limit. */
    CHECK (vd_attachment_write_zeroes (a, 8 * MiB, 0, 0) == 0);
    CHECK (atomic_load (&s.st.zeroes) == 1);
    no_violations (&s);
    vd_attachment_close (a);
    fake_stop (&s);
    free (buf);
  }

  /* Forced read-only: nothing written reaches the server. */
  {
    struct fake_server s;
    struct vd_attachment *a;
    char buf[4096] = { 0 };
    fake_config_default (&cfg, MiB);
    CHECK (fake_start (&s, &cfg, dir) == 0);
    a = open_fake (&s, 5, VD_OPEN_READ_ONLY, VD_SYNC_FULL);
    CHECK_FAILS (vd_attachment_pwrite (a, buf, 4096, 0, 0), EROFS,
                 "read-only");
    CHECK_FAILS (vd_attachment_write_zeroes (a, 4096, 0, 0), EROFS,
                 "read-only");
    CHECK_FAILS (vd_attachment_discard (a, 4096, 0, 0), EROFS, "read-only");
    CHECK (vd_attachment_is_read_only (a) == 1);
    CHECK (vd_attachment_pread (a, buf, 4096, 0, 0) == 0);
    CHECK (vd_attachment_close (a) == 0);
    CHECK (atomic_load (&s.st.writes) == 0 && atomic_load (&s.st.zeroes) == 0
           && atomic_load (&s.st.trims) == 0 &&
           atomic_load (&s.st.flushes) == 0);
    no_violations (&s);
    fake_stop (&s);
  }
  /* A read-only server: the attachment is read-only too. */
  {
    struct fake_server s;
    struct vd_attachment *a;
    char buf[512] = { 0 };
    fake_config_default (&cfg, MiB);
    cfg.eflags |= NBD_FLAG_READ_ONLY;
    CHECK (fake_start (&s, &cfg, dir) == 0);
    a = open_fake (&s, 5, 0, VD_SYNC_FULL);
    CHECK_FAILS (vd_attachment_pwrite (a, buf, 512, 0, 0), EROFS, "read-only");
    CHECK (vd_attachment_close (a) == 0);
    no_violations (&s);
    fake_stop (&s);
  }

  /* Sync modes: none drops flushes and FUA; full forwards them; FUA
   * without server FUA is a flush after the write.
   */
  {
    struct fake_server s;
    struct vd_attachment *a;
    char buf[4096] = { 1 };
    fake_config_default (&cfg, MiB);
    CHECK (fake_start (&s, &cfg, dir) == 0);
    a = open_fake (&s, 5, 0, VD_SYNC_NONE);
    CHECK (vd_attachment_pwrite (a, buf, 4096, 0, VD_FLAG_FUA) == 0);
    CHECK (vd_attachment_flush (a, 0) == 0);
    CHECK (vd_attachment_close (a) == 0);
    CHECK (atomic_load (&s.st.flushes) == 0 && atomic_load (&s.st.fua) == 0);
    a = open_fake (&s, 5, 0, VD_SYNC_FULL);
    CHECK (vd_attachment_pwrite (a, buf, 4096, 0, VD_FLAG_FUA) == 0);
    CHECK (vd_attachment_flush (a, 0) == 0);
    CHECK (atomic_load (&s.st.flushes) == 1 && atomic_load (&s.st.fua) == 1);
    CHECK (vd_attachment_close (a) == 0);
    CHECK (atomic_load (&s.st.flushes) == 2);   /* the close flush */
    no_violations (&s);
    fake_stop (&s);

    fake_config_default (&cfg, MiB);
    cfg.eflags &= ~(NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_WRITE_ZEROES |
                    NBD_FLAG_SEND_FAST_ZERO);
    CHECK (fake_start (&s, &cfg, dir) == 0);
    a = open_fake (&s, 5, 0, VD_SYNC_FULL);
    CHECK (vd_attachment_can_fua (a) == 1 && vd_attachment_can_zero (a) == 1);
    CHECK (vd_attachment_can_fast_zero (a) == 0);
    CHECK (vd_attachment_pwrite (a, buf, 4096, 0, VD_FLAG_FUA) == 0);
    CHECK (atomic_load (&s.st.flushes) == 1 && atomic_load (&s.st.fua) == 0);
    /* Zeroing by writing zeros. */
    CHECK (vd_attachment_write_zeroes (a, 4097, 100, 0) == 0);
    CHECK (atomic_load (&s.st.zeroes) == 0 && atomic_load (&s.st.writes) >= 2);
    CHECK (vd_attachment_pread (a, buf, 4096, 0, 0) == 0);
    for (int i = 100; i < 4096; ++i)
      CHECK (buf[i] == 0);
    CHECK_FAILS (vd_attachment_write_zeroes (a, 4096, 0, VD_FLAG_FAST_ZERO),
                 ENOTSUP, "fast zeroing");
    CHECK (vd_attachment_close (a) == 0);
    no_violations (&s);
    fake_stop (&s);
  }

  /* Reconnection: a server that says ESHUTDOWN once, then goes away. */
  {
    struct fake_server s;
    struct vd_attachment *a;
    char *src = malloc (2 * MiB), *buf = malloc (2 * MiB);
    fake_config_default (&cfg, 2 * MiB);
    cfg.misbehave = FAKE_ESHUTDOWN_ONCE;
    CHECK (src && buf && fake_start (&s, &cfg, dir) == 0);
    fill (src, 2 * MiB, 9);
    a = open_fake (&s, 5, 0, VD_SYNC_FULL);
    parallel (a, src, 2 * MiB, 65536, false);
    parallel (a, src, 2 * MiB, 65536, true);
    CHECK (atomic_load (&s.st.connections) == 2);
    CHECK (vd_attachment_close (a) == 0);
    CHECK (nr_connected == 2 && nr_failed == 0);
    no_violations (&s);
    fake_stop (&s);

    /* A server that drops the connection every 7 requests. */
    fake_config_default (&cfg, 2 * MiB);
    cfg.drop_after = 7;
    cfg.reorder = true;
    CHECK (fake_start (&s, &cfg, dir) == 0);
    a = open_fake (&s, 5, 0, VD_SYNC_FULL);
    parallel (a, src, 2 * MiB, 32768, false);
    CHECK (vd_attachment_flush (a, 0) == 0);
    parallel (a, src, 2 * MiB, 49152, true);
    CHECK (vd_attachment_close (a) == 0);
    /* About 110 requests; with reorder the server takes up to 16 in a
     * batch before it drops, so at least 5 connections.
     */
    printf ("drop every 7: %d connections\n", nr_connected);
    CHECK (nr_connected >= 5 && nr_failed == 0);
    no_violations (&s);
    fake_stop (&s);

    /* The export changes size while reconnecting: fail for good. */
    fake_config_default (&cfg, 2 * MiB);
    cfg.drop_after = 3;
    cfg.size_second = 4 * MiB;
    CHECK (fake_start (&s, &cfg, dir) == 0);
    a = open_fake (&s, 5, 0, VD_SYNC_FULL);
    for (int i = 0; i < 3; ++i)
      CHECK (vd_attachment_pread (a, buf, 4096, 0, 0) == 0);
    CHECK_FAILS (vd_attachment_pread (a, buf, 4096, 0, 0), ESTALE,
                 "size changed from 2097152 to 4194304 bytes");
    CHECK_FAILS (vd_attachment_pread (a, buf, 4096, 0, 0), ESHUTDOWN,
                 "has failed");
    vd_attachment_close (a);
    CHECK (nr_failed == 1 && last_failed_err == ESTALE && nr_freed == 1);
    fake_stop (&s);
    free (src);
    free (buf);
  }

  /* The wrong export name: an immediate, clear error. */
  {
    struct fake_server s;
    struct vd_attachment *a;
    char uri[512];
    struct vd_open_options o;
    time_t t0 = time (NULL);
    fake_config_default (&cfg, MiB);
    cfg.export_name = "right";
    CHECK (fake_start (&s, &cfg, dir) == 0);
    vd_open_options_init (&o);
    o.timeout = 20;
    snprintf (uri, sizeof uri, "nbd+unix:///wrong?socket=%s", s.path);
    a = vd_attachment_open (uri, &o);
    CHECK (a != NULL);
    CHECK_FAILS (vd_attachment_start (a), ENOENT,
                 "the server has no export named 'wrong' (server: \"no such "
                 "export\")");
    CHECK (time (NULL) - t0 < 5);
    /* Dead for good afterwards. */
    CHECK_FAILS (vd_attachment_get_size (a), ESHUTDOWN, "failed");
    vd_attachment_close (a);
    fake_stop (&s);
  }

  /* Events' user data is released when open fails. */
  {
    struct vd_open_options o;
    vd_open_options_init (&o);
    o.events.callback = on_event;
    o.events.free = on_free;
    nr_freed = 0;
    CHECK_NULL (vd_attachment_open ("nbd://h:0/", &o), EINVAL, "port 0");
    CHECK (nr_freed == 1);
    CHECK_NULL (vd_attachment_open ("nbds://h/?tls-type=anon", &o), ENOTSUP,
                "tls-type=anon is not supported");
    CHECK (nr_freed == 2);
  }

  /* Misbehaving servers. */
  misbehave ("bad magic", FAKE_BAD_MAGIC, true, false, ETIMEDOUT,
             "bad reply magic 0xdeadbeef");
  misbehave ("unknown cookie", FAKE_UNKNOWN_COOKIE, true, false, ETIMEDOUT,
             "reply for unknown cookie");
  misbehave ("overlapping chunks", FAKE_OVERLAP, true, false, ETIMEDOUT,
             "overlaps an earlier chunk");
  misbehave ("chunk outside", FAKE_OUTSIDE, true, true, ETIMEDOUT,
             "outside the READ");
  misbehave ("short read", FAKE_SHORT_READ, true, false, EIO,
             "covered 8191 of the 8192 bytes");
  misbehave ("unknown chunk type", FAKE_UNKNOWN_CHUNK, true, false, ETIMEDOUT,
             "unknown reply chunk type 99");
  misbehave ("error chunk", FAKE_ERROR_CHUNK, true, false, EIO,
             "failed NBD_CMD_READ at offset 12287: disk on fire");
  misbehave ("wrong offset echo", FAKE_WRONG_OFFSET, true, true, ETIMEDOUT,
             "echoes offset 4097");
  misbehave ("simple READ after SR", FAKE_SIMPLE_READ_SR, true, false,
             ETIMEDOUT, "simple reply with data to a READ");
  misbehave ("GO without INFO_EXPORT", FAKE_NO_INFO_EXPORT, true, false,
             EPROTO, "without sending NBD_INFO_EXPORT");
  misbehave ("bad block size", FAKE_BAD_BLOCK_SIZE, true, false, EPROTO,
             "minimum is not a power of 2");
  misbehave ("option reply too big", FAKE_REP_TOO_BIG, true, false,
             ETIMEDOUT, "bytes long (the limit is");
  misbehave ("huge status chunk", FAKE_HUGE_STATUS, true, false, ETIMEDOUT,
             "more than 2^20 extents");
  misbehave ("status for another context", FAKE_STATUS_WRONG_ID, true, true,
             EIO, "context 8, which vdisk did not select");
  misbehave ("a server that hangs", FAKE_HANG, true, false, ETIMEDOUT,
             "did not answer for 0.6 s");
  misbehave ("an export of 2^64 - 1 bytes", FAKE_HUGE_SIZE, true, false,
             EFBIG, "more than vdisk can address");
  printf ("all fake-server cases passed\n");
  return 0;
}
