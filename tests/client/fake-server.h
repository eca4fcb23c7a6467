/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * A scriptable NBD server for client tests: an in-memory export on a
 * Unix socket, served by a thread, with switches for every feature the
 * client negotiates (extended headers, structured replies, meta
 * contexts, GO, block size constraints) and for ways to misbehave.  It
 * checks what the client sends (alignment, payload limits, flags it
 * may not use) and counts violations, so a test can assert the client
 * kept every rule.  Built on the wire module (proto/nbd-proto.h).
 */
#ifndef VD_TEST_FAKE_SERVER_H
#define VD_TEST_FAKE_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum fake_misbehave {
  FAKE_OK = 0,
  FAKE_BAD_MAGIC,               /* garbage reply magic */
  FAKE_UNKNOWN_COOKIE,          /* reply for a cookie never sent */
  FAKE_OVERLAP,                 /* two READ chunks covering the same bytes */
  FAKE_OUTSIDE,                 /* a READ chunk outside the request */
  FAKE_SHORT_READ,              /* READ done without covering everything */
  FAKE_UNKNOWN_CHUNK,           /* chunk type 99 */
  FAKE_ERROR_CHUNK,             /* READ: ERROR_OFFSET chunk, EIO + message */
  FAKE_ESHUTDOWN_ONCE,          /* first request of the first connection:
                                   ESHUTDOWN, then close after draining */
  FAKE_WRONG_OFFSET,            /* extended reply echoing a wrong offset */
  FAKE_SIMPLE_READ_SR,          /* simple reply with data after SR */
  FAKE_NO_INFO_EXPORT,          /* GO acked without NBD_INFO_EXPORT */
  FAKE_HUGE_STATUS,             /* block status chunk claiming 100 MiB */
  FAKE_STATUS_WRONG_ID,         /* block status for another context id */
  FAKE_HANG,                    /* never reply to READ */
  FAKE_BAD_BLOCK_SIZE,          /* INFO_BLOCK_SIZE with min 3 */
  FAKE_REP_TOO_BIG,             /* an option reply of 1 MiB */
  FAKE_HUGE_SIZE,               /* an export of 2^64 - 1 bytes */
};

struct fake_config {
  uint64_t size;
  bool no_fixed_newstyle;       /* plain newstyle: EXPORT_NAME only */
  bool no_zeroes;               /* offer NO_ZEROES */
  bool go, sr, eh, meta;        /* features offered */
  bool block_size;              /* send NBD_INFO_BLOCK_SIZE */
  uint32_t min_block, pref_block, max_payload;
  uint16_t eflags;              /* transmission flags (HAS_FLAGS added) */
  bool fragment_reads;          /* READ: several chunks, out of order,
                                   zero runs as holes */
  bool reorder;                 /* answer batches in reverse order */
  bool alternate_simple;        /* SR: payload-less replies alternate
                                   between simple and NONE chunks */
  int misbehave;                /* enum fake_misbehave */
  int drop_after;               /* close after N requests (0: never) */
  uint64_t size_second;         /* != 0: size from the 2nd connection on */
  const char *export_name;      /* the only export ("" default) */
};

struct fake_stats {
  atomic_int connections;
  atomic_int violations;        /* client broke a rule (see below) */
  atomic_int reads, writes, flushes, trims, zeroes, status, caches;
  atomic_int fua;               /* requests with FUA */
  atomic_int disc;              /* NBD_CMD_DISC received */
  atomic_uint_fast64_t max_len; /* largest request length seen */
};

struct fake_server {
  struct fake_config cfg;
  struct fake_stats st;
  char path[256];               /* the socket */
  int lfd;
  pthread_t thread;
  unsigned char *data;          /* the export */
  unsigned char *written;       /* per 4 KiB block: ever written nonzero */
  pthread_mutex_t lock;         /* protects data, written */
  atomic_bool quit;
  char last_violation[256];
};

/* Fill cfg with a well-behaved, fully featured server of size bytes. */
void fake_config_default (struct fake_config *cfg, uint64_t size);
/* Start serving at a fresh socket under dir; 0 or -1. */
int fake_start (struct fake_server *s, const struct fake_config *cfg,
                const char *dir);
/* "nbd+unix:///EXPORT?socket=PATH" into buf. */
const char *fake_uri (struct fake_server *s, char *buf, size_t len);
void fake_stop (struct fake_server *s);

#endif
