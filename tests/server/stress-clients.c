/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * stress-clients: many concurrent NBD clients with mixed I/O against one
 * export, every byte verified.
 *
 *   stress-clients WHERE --clients N --seconds S [--depth D]
 *                  [--slow N] [--dead N] [--expect FILE] [--seed S]
 *                  [--max-latency SECONDS] [--export NAME]
 *
 * WHERE is a unix socket path or HOST:PORT.  Client i owns region i of
 * the export (size / N bytes) and keeps a shadow copy of it: it sends
 * batches of up to D requests at once on disjoint slots of its region
 * (writes of random data and sizes, reads checked against the shadow,
 * trims and write-zeroes (which read back as zeros on RAW and ASIF),
 * block status checked against the shadow, cache, flush), and matches the
 * replies, which may come in any order, by cookie.  Clients use simple
 * replies, structured replies with base:allocation, and extended headers
 * in turn.  At the end each client reads its whole region back, and
 * --expect writes the expected image (the shadows end to end) so the
 * caller can compare the file on the host.
 *
 * --slow N adds N clients that fill the server with large reads and
 * never read the replies; --dead N adds N clients that connect and never
 * finish the handshake.  Neither may slow the others down: a batch that
 * takes longer than --max-latency (default 10 s) is a failure.
 *
 * Exit status 0 if every check passed.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tclient.h"
#include "byte-order.h"

static const char *where, *export_name = "";
static int nr_clients = 32, nr_slow, nr_dead, depth = 8;
static double seconds = 5, max_latency = 10;
static uint64_t seed = 1, export_size, region;
static unsigned char **shadows;
static atomic_int failures;
static atomic_ullong total_ops, total_bytes;
static atomic_bool stop_slow;
static double worst_latency;
static pthread_mutex_t worst_lock = PTHREAD_MUTEX_INITIALIZER;

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define FAIL(...) do {                                                  \
    fprintf (stderr, "stress: client %d: ", id);                        \
    fprintf (stderr, __VA_ARGS__);                                      \
    fputc ('\n', stderr);                                               \
    failures++;                                                         \
    goto out;                                                           \
  } while (0)

static uint64_t
rnd (uint64_t *s)
{
  /* xorshift64* */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * UINT64_C (2685821657736338717);
}

enum op_type { OP_WRITE, OP_READ, OP_TRIM, OP_ZERO, OP_STATUS, OP_CACHE,
               OP_FLUSH };

struct op {
  enum op_type type;
  uint64_t off, len;            /* relative to the region */
  unsigned char *buf;           /* write data / read result */
  bool done;
  uint32_t error;
  uint64_t status_covered;      /* block status: bytes described */
  bool status_bad;
};

/* Handle one reply (chunk) for the batch.  Returns 0 or -1. */
static int
handle_reply (int id, struct tclient *c, struct op *ops, int n,
              uint64_t base, const struct tc_reply *rep,
              const unsigned char *p)
{
  struct op *o;
  const char *why;

  if (rep->h.cookie >= (uint64_t) n) {
    fprintf (stderr, "stress: client %d: unknown cookie %" PRIu64 "\n", id,
             rep->h.cookie);
    return -1;
  }
  o = &ops[rep->h.cookie];
  if (o->done) {
    fprintf (stderr, "stress: client %d: reply after DONE\n", id);
    return -1;
  }
  if (rep->h.kind == VD_NBD_REPLY_SIMPLE) {
    o->error = rep->h.error;
    if (o->type == OP_READ && rep->h.error == 0)
      memcpy (o->buf, p, o->len);
    o->done = true;
    return 0;
  }
  if (c->extended &&
      rep->h.offset != (o->type == OP_FLUSH ? 0 : base + o->off)) {
    fprintf (stderr, "stress: client %d: offset not echoed\n", id);
    return -1;
  }
  switch (rep->h.type) {
  case NBD_REPLY_TYPE_NONE:
    break;
  case NBD_REPLY_TYPE_OFFSET_DATA: {
    struct vd_nbd_offset_data d;
    if (o->type != OP_READ ||
        vd_nbd_decode_offset_data (p, rep->payload_len, base + o->off,
                                   o->len, &d, &why) == -1) {
      fprintf (stderr, "stress: client %d: bad data chunk\n", id);
      return -1;
    }
    memcpy (o->buf + (d.offset - base - o->off), d.data, d.data_len);
    break;
  }
  case NBD_REPLY_TYPE_OFFSET_HOLE: {
    uint64_t ho;
    uint32_t hl;
    if (o->type != OP_READ ||
        vd_nbd_decode_offset_hole (p, rep->payload_len, base + o->off,
                                   o->len, &ho, &hl, &why) == -1) {
      fprintf (stderr, "stress: client %d: bad hole chunk\n", id);
      return -1;
    }
    memset (o->buf + (ho - base - o->off), 0, hl);
    break;
  }
  case NBD_REPLY_TYPE_BLOCK_STATUS:
  case NBD_REPLY_TYPE_BLOCK_STATUS_EXT: {
    struct vd_nbd_block_status bs;
    uint64_t pos = o->off;
    if (o->type != OP_STATUS ||
        vd_nbd_decode_block_status (p, rep->payload_len, rep->h.type, &bs,
                                    &why) == -1) {
      fprintf (stderr, "stress: client %d: bad status chunk\n", id);
      return -1;
    }
    for (uint32_t i = 0; i < bs.nr_descriptors; ++i) {
      uint64_t l, s;
      vd_nbd_block_status_get (&bs, i, &l, &s);
      if (pos + l > o->off + o->len)
        l = o->off + o->len - pos;  /* the last may run past */
      /* A range said to read as zeros must be zeros in the shadow. */
      if (s & NBD_STATE_ZERO) {
        const unsigned char *sh = shadows[id] + pos;
        for (uint64_t k = 0; k < l; ++k)
          if (sh[k]) {
            o->status_bad = true;
            break;
          }
      }
      pos += l;
      if (pos >= o->off + o->len)
        break;
    }
    o->status_covered = pos - o->off;
    break;
  }
  default:
    if (NBD_REPLY_TYPE_IS_ERR (rep->h.type)) {
      struct vd_nbd_error_chunk ec;
      if (vd_nbd_decode_error_chunk (p, rep->payload_len, rep->h.type, &ec,
                                     &why) == -1)
        return -1;
      o->error = ec.error;
      fprintf (stderr, "stress: client %d: error: %.*s\n", id,
               (int) ec.msg_len, ec.msg);
      break;
    }
    fprintf (stderr, "stress: client %d: unexpected chunk %u\n", id,
             rep->h.type);
    return -1;
  }
  if (rep->h.flags & NBD_REPLY_FLAG_DONE)
    o->done = true;
  return 0;
}

static void *
client (void *arg)
{
  const int id = (int) (intptr_t) arg;
  const unsigned mode = id % 3 == 0 ? 0 : id % 3 == 1 ? (TC_SR | TC_META)
    : (TC_EXT | TC_META);
  const uint64_t base = (uint64_t) id * region;
  const uint64_t slot = region / depth;
  const uint64_t maxlen = slot < 65536 ? slot : 65536;
  unsigned char *shadow = shadows[id];
  unsigned char *payload = malloc (65536 + 64);
  struct op ops[64];
  struct tclient c;
  uint64_t s = seed * 7919 + id + 1;
  const double end = now () + seconds;
  unsigned long nops = 0;

  memset (ops, 0, sizeof ops);
  for (int i = 0; i < depth; ++i)
    ops[i].buf = malloc (maxlen);
  if (tc_connect (&c, where) == -1)
    FAIL ("cannot connect");
  c.timeout_ms = (int) (max_latency * 1000) + 5000;
  if (tc_negotiate (&c, export_name, mode) == -1)
    FAIL ("negotiation failed");
  if (c.size != export_size)
    FAIL ("export size %" PRIu64 ", expected %" PRIu64, c.size, export_size);

  while (now () < end) {
    const double t0 = now ();
    int n = 1 + rnd (&s) % depth;
    int pending = 0;

    /* One op per slot, on disjoint ranges. */
    for (int i = 0; i < n; ++i) {
      struct op *o = &ops[i];
      uint64_t r = rnd (&s) % 100;
      o->done = false;
      o->error = 0;
      o->status_bad = false;
      o->len = 1 + rnd (&s) % maxlen;
      if (rnd (&s) % 2)         /* often aligned, sometimes not */
        o->len = (o->len + 511) & ~UINT64_C (511);
      if (o->len > slot)
        o->len = slot;
      o->off = i * slot + rnd (&s) % (slot - o->len + 1);
      if (r < 40)
        o->type = OP_WRITE;
      else if (r < 75)
        o->type = OP_READ;
      else if (r < 80)
        o->type = OP_TRIM;
      else if (r < 87)
        o->type = OP_ZERO;
      else if (r < 94)
        o->type = mode & TC_META ? OP_STATUS : OP_READ;
      else if (r < 97)
        o->type = OP_CACHE;
      else
        o->type = OP_FLUSH;
    }
    for (int i = 0; i < n; ++i) {
      struct op *o = &ops[i];
      uint16_t flags = rnd (&s) % 8 == 0 ? NBD_CMD_FLAG_FUA : 0;
      int r = 0;
      switch (o->type) {
      case OP_WRITE:
        for (uint64_t k = 0; k < o->len; ++k)
          o->buf[k] = (unsigned char) rnd (&s);
        if (c.extended)
          flags |= NBD_CMD_FLAG_PAYLOAD_LEN;
        r = tc_send_request (&c, NBD_CMD_WRITE, flags, i, base + o->off,
                             o->len, o->buf, o->len);
        break;
      case OP_READ:
        r = tc_send_request (&c, NBD_CMD_READ, 0, i, base + o->off, o->len,
                             NULL, 0);
        break;
      case OP_TRIM:
        r = tc_send_request (&c, NBD_CMD_TRIM, flags, i, base + o->off,
                             o->len, NULL, 0);
        break;
      case OP_ZERO:
        if (rnd (&s) % 2)
          flags |= NBD_CMD_FLAG_NO_HOLE;
        r = tc_send_request (&c, NBD_CMD_WRITE_ZEROES, flags, i,
                             base + o->off, o->len, NULL, 0);
        break;
      case OP_STATUS:
        r = tc_send_request (&c, NBD_CMD_BLOCK_STATUS,
                             rnd (&s) % 4 ? 0 : NBD_CMD_FLAG_REQ_ONE, i,
                             base + o->off, o->len, NULL, 0);
        break;
      case OP_CACHE:
        r = tc_send_request (&c, NBD_CMD_CACHE, 0, i, base + o->off, o->len,
                             NULL, 0);
        break;
      case OP_FLUSH:
        r = tc_send_request (&c, NBD_CMD_FLUSH, 0, i, 0, 0, NULL, 0);
        break;
      }
      if (r == -1)
        FAIL ("sending a request failed");
      pending++;
    }
    while (pending) {
      struct tc_reply rep;
      /* The simple-reply READ case needs the length before reading the
       * data: peek at the header first.
       */
      unsigned char *p = payload;
      if (!c.structured && !c.extended) {
        unsigned char h[16];
        const char *why;
        if (tc_read (&c, h, 16) == -1)
          FAIL ("reading a reply failed");
        if (vd_nbd_decode_reply (h, 16, false, false, &rep.h, &why) == -1 ||
            rep.h.cookie >= (uint64_t) n)
          FAIL ("bad simple reply");
        rep.payload_len = 0;
        if (ops[rep.h.cookie].type == OP_READ && rep.h.error == 0) {
          rep.payload_len = ops[rep.h.cookie].len;
          if (tc_read (&c, p, rep.payload_len) == -1)
            FAIL ("reading read data failed");
        }
      }
      else if (tc_read_reply (&c, &rep, p, 65536 + 64, 0) == -1)
        FAIL ("reading a reply failed");
      if (handle_reply (id, &c, ops, n, base, &rep, p) == -1)
        FAIL ("bad reply");
      if (ops[rep.h.cookie].done)
        pending--;
    }
    /* Check and apply. */
    for (int i = 0; i < n; ++i) {
      struct op *o = &ops[i];
      if (o->error)
        FAIL ("op %d (type %d) at %" PRIu64 "+%" PRIu64 " failed: %s", i,
              o->type, base + o->off, o->len, vd_nbd_error_name (o->error));
      switch (o->type) {
      case OP_WRITE:
        memcpy (shadow + o->off, o->buf, o->len);
        break;
      case OP_READ:
        if (memcmp (o->buf, shadow + o->off, o->len) != 0) {
          uint64_t k = 0;
          while (o->buf[k] == shadow[o->off + k])
            k++;
          FAIL ("read at %" PRIu64 "+%" PRIu64 " differs at byte %" PRIu64
                " (got %02x, expected %02x)", base + o->off, o->len, k,
                o->buf[k], shadow[o->off + k]);
        }
        total_bytes += o->len;
        break;
      case OP_TRIM:
      case OP_ZERO:
        memset (shadow + o->off, 0, o->len);
        break;
      case OP_STATUS:
        if (o->status_bad)
          FAIL ("block status says zero where data is, at %" PRIu64 "+%"
                PRIu64, base + o->off, o->len);
        if (o->status_covered == 0)
          FAIL ("block status described nothing");
        break;
      default:
        break;
      }
    }
    nops += n;
    {
      double lat = now () - t0;
      pthread_mutex_lock (&worst_lock);
      if (lat > worst_latency)
        worst_latency = lat;
      pthread_mutex_unlock (&worst_lock);
      if (lat > max_latency)
        FAIL ("a batch took %.2f s (limit %.1f s)", lat, max_latency);
    }
  }

  /* Read the whole region back. */
  for (uint64_t off = 0; off < region; off += 65536) {
    uint64_t len = region - off < 65536 ? region - off : 65536;
    int r = tc_pread (&c, payload, len, base + off, 0, NULL);
    if (r != 0)
      FAIL ("final read at %" PRIu64 " failed", base + off);
    if (memcmp (payload, shadow + off, len) != 0)
      FAIL ("final read at %" PRIu64 " differs", base + off);
  }
  if (tc_cmd (&c, NBD_CMD_FLUSH, 0, 0, 0, NULL) != 0)
    FAIL ("final flush failed");
  tc_disconnect (&c);
  total_ops += nops;
 out:
  for (int i = 0; i < depth; ++i)
    free (ops[i].buf);
  free (payload);
  return NULL;
}

/* Requests large reads and never reads the replies. */
static void *
slow_client (void *arg)
{
  const int id = (int) (intptr_t) arg;
  struct tclient c;

  if (tc_connect (&c, where) == -1 ||
      tc_negotiate (&c, export_name, TC_SR) == -1)
    FAIL ("slow client: cannot connect");
  for (int i = 0; i < 256 && !atomic_load (&stop_slow); ++i) {
    /* Once the server stops reading our requests (its budget for us is
     * used up), send blocks: use a short timeout per send attempt.
     */
    struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
    setsockopt (c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (tc_send_request (&c, NBD_CMD_READ, 0, i, 0, 1 << 20, NULL, 0) == -1)
      break;
  }
  while (!atomic_load (&stop_slow))
    usleep (100000);
  tc_close (&c);
 out:
  return NULL;
}

/* Connects, reads the greeting, then says nothing. */
static void *
dead_client (void *arg)
{
  const int id = (int) (intptr_t) arg;
  struct tclient c;

  if (tc_connect (&c, where) == -1)
    FAIL ("dead client: cannot connect");
  while (!atomic_load (&stop_slow))
    usleep (100000);
  tc_close (&c);
 out:
  return NULL;
}

static int
probe_size (void)
{
  struct tclient c;

  if (tc_connect (&c, where) == -1 ||
      tc_negotiate (&c, export_name, TC_SR) == -1)
    return -1;
  export_size = c.size;
  tc_disconnect (&c);
  return 0;
}

int
main (int argc, char **argv)
{
  const char *expect = NULL;
  pthread_t *th;
  int n_all;
  double t0;

  if (argc < 2) {
    fprintf (stderr, "usage: stress-clients WHERE [options]\n");
    return 2;
  }
  where = argv[1];
  for (int i = 2; i < argc; ++i) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
    if (strcmp (a, "--clients") == 0) nr_clients = strtol (v, NULL, 10), i++;
    else if (strcmp (a, "--seconds") == 0) seconds = strtod (v, NULL), i++;
    else if (strcmp (a, "--depth") == 0) depth = strtol (v, NULL, 10), i++;
    else if (strcmp (a, "--slow") == 0) nr_slow = strtol (v, NULL, 10), i++;
    else if (strcmp (a, "--dead") == 0) nr_dead = strtol (v, NULL, 10), i++;
    else if (strcmp (a, "--expect") == 0) expect = v, i++;
    else if (strcmp (a, "--seed") == 0) seed = strtoull (v, NULL, 10), i++;
    else if (strcmp (a, "--export") == 0) export_name = v, i++;
    else if (strcmp (a, "--max-latency") == 0)
      max_latency = strtod (v, NULL), i++;
    else {
      fprintf (stderr, "stress-clients: unknown option %s\n", a);
      return 2;
    }
  }
  if (nr_clients < 1 || nr_clients > 1024 || depth < 1 || depth > 64) {
    fprintf (stderr, "stress-clients: bad --clients or --depth\n");
    return 2;
  }
  if (probe_size () == -1)
    return 1;
  region = export_size / nr_clients;
  if (region < (uint64_t) depth * 1024) {
    fprintf (stderr, "stress-clients: export too small\n");
    return 2;
  }
  /* The shadows start as the current contents: zeros is what the test
   * expects of a fresh image.
   */
  shadows = calloc (nr_clients, sizeof *shadows);
  for (int i = 0; i < nr_clients; ++i)
    shadows[i] = calloc (1, region);

  n_all = nr_clients + nr_slow + nr_dead;
  th = calloc (n_all, sizeof *th);
  t0 = now ();
  for (int i = 0; i < nr_slow; ++i)
    pthread_create (&th[nr_clients + i], NULL, slow_client,
                    (void *) (intptr_t) (1000 + i));
  for (int i = 0; i < nr_dead; ++i)
    pthread_create (&th[nr_clients + nr_slow + i], NULL, dead_client,
                    (void *) (intptr_t) (2000 + i));
  if (nr_slow || nr_dead)
    usleep (300000);            /* let them get in the way first */
  for (int i = 0; i < nr_clients; ++i)
    pthread_create (&th[i], NULL, client, (void *) (intptr_t) i);
  for (int i = 0; i < nr_clients; ++i)
    pthread_join (th[i], NULL);
  atomic_store (&stop_slow, true);
  for (int i = nr_clients; i < n_all; ++i)
    pthread_join (th[i], NULL);

  printf ("stress: %d clients (+%d slow, +%d dead), %.1f s: %llu ops, "
          "%llu MiB verified by reads, worst batch %.3f s, %d failures\n",
          nr_clients, nr_slow, nr_dead, now () - t0,
          (unsigned long long) total_ops,
          (unsigned long long) (total_bytes >> 20), worst_latency,
          (int) failures);
  if (expect && failures == 0) {
    FILE *fp = fopen (expect, "wb");
    if (fp == NULL) {
      perror (expect);
      return 1;
    }
    for (int i = 0; i < nr_clients; ++i)
      fwrite (shadows[i], 1, region, fp);
    /* The tail no client owns stays zero. */
    for (uint64_t k = region * nr_clients; k < export_size; ++k)
      fputc (0, fp);
    if (fclose (fp) != 0) {
      perror (expect);
      return 1;
    }
  }
  for (int i = 0; i < nr_clients; ++i)
    free (shadows[i]);
  free (shadows);
  free (th);
  return failures ? 1 : 0;
}
