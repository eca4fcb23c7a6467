/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * A small blocking NBD client for tests, built on proto/nbd-proto.h:
 * it can do everything a well-behaved client does (and, on purpose,
 * things a well-behaved client never does), with extended headers,
 * which the libnbd and qemu in Debian 12 lack.  Every call returns 0 or
 * -1 (with a message on stderr); tests decide what failure means.
 */
#ifndef VD_TEST_TCLIENT_H
#define VD_TEST_TCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nbd-proto.h"

struct tclient {
  int fd;
  uint16_t hflags;              /* server handshake flags */
  bool structured, extended;
  uint64_t size;                /* after GO / EXPORT_NAME */
  uint16_t tflags;              /* transmission flags */
  uint32_t min_block, pref_block, max_payload;
  uint32_t meta_id;             /* base:allocation id (0 = none) */
  int timeout_ms;               /* per read (default 10 s) */
};

/* Connect to a unix socket path, or "HOST:PORT" for TCP. */
int tc_connect (struct tclient *c, const char *where);
/* Use an already connected fd (socketpair). */
void tc_init_fd (struct tclient *c, int fd);
void tc_close (struct tclient *c);

/* Raw bytes. */
int tc_write (struct tclient *c, const void *buf, size_t len);
int tc_read (struct tclient *c, void *buf, size_t len);
/* 1 if the server closed the connection (read returns EOF) within the
 * timeout, 0 if data arrived instead, -1 on error.
 */
int tc_wait_eof (struct tclient *c, int timeout_ms);

/* Greeting + client flags (FIXED_NEWSTYLE | NO_ZEROES unless flags is
 * given explicitly: pass UINT32_MAX for the default).
 */
int tc_handshake_start (struct tclient *c, uint32_t flags);

/* Send an option; read one reply (payload into buf, up to cap, the
 * rest discarded; *len gets the payload length).
 */
int tc_send_option (struct tclient *c, uint32_t option, const void *data,
                    uint32_t len);
int tc_read_option_reply (struct tclient *c, struct vd_nbd_option_reply *r,
                          void *buf, size_t cap);
/* Send an option and read replies until a final one; returns the final
 * reply type (ACK or an error) or -1.  Non-final replies are passed to
 * fn (may be NULL).
 */
typedef void (*tc_reply_fn) (void *ud, const struct vd_nbd_option_reply *r,
                             const unsigned char *data);
int64_t tc_option (struct tclient *c, uint32_t option, const void *data,
                   uint32_t len, tc_reply_fn fn, void *ud);

/* Negotiate the usual way: [EXTENDED_HEADERS or STRUCTURED_REPLY],
 * [SET_META_CONTEXT base:allocation], GO with NAME and BLOCK_SIZE.
 * 0 or -1.
 */
#define TC_SR   1u
#define TC_EXT  2u
#define TC_META 4u
int tc_negotiate (struct tclient *c, const char *export, unsigned what);

/* Transmission. */
int tc_send_request (struct tclient *c, uint16_t type, uint16_t flags,
                     uint64_t cookie, uint64_t offset, uint64_t length,
                     const void *payload, size_t payload_len);

/* One reply (simple, or one chunk).  For READ replies in simple mode the
 * caller passes the expected data length in read_len (the protocol has
 * no length field); the data goes to data (must hold read_len).  Chunk
 * payloads go to data (cap bytes; larger payloads fail).
 */
struct tc_reply {
  struct vd_nbd_reply h;
  size_t payload_len;
};
int tc_read_reply (struct tclient *c, struct tc_reply *rep, void *data,
                   size_t cap, size_t read_len);

/* High level: whole commands, replies assembled (READ chunks placed
 * into buf).  Return the NBD error (0 = success) or -1 on a protocol
 * failure.  err_msg (optional, 256 bytes) gets the error chunk text.
 */
int tc_pread (struct tclient *c, void *buf, uint64_t len, uint64_t off,
              uint16_t flags, char *err_msg);
int tc_pwrite (struct tclient *c, const void *buf, uint64_t len,
               uint64_t off, uint16_t flags, char *err_msg);
int tc_cmd (struct tclient *c, uint16_t type, uint16_t flags, uint64_t off,
            uint64_t len, char *err_msg);
/* Block status: extents (length, status) into the arrays (cap entries). */
int tc_block_status (struct tclient *c, uint64_t len, uint64_t off,
                     uint16_t flags, uint64_t *lengths, uint64_t *status,
                     size_t cap, size_t *nr, char *err_msg);
/* Statistics of the last tc_pread: chunks seen by type. */
extern _Thread_local unsigned tc_last_data_chunks, tc_last_hole_chunks;

int tc_disconnect (struct tclient *c);

#endif
