/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vhost-user messages: decode and check one front-end message (header,
 * payload and the file descriptors that came with it), encode replies.
 * Every size, count and index from the wire is checked here before the
 * session looks at it.  Pure: no I/O (the session reads the socket and
 * owns the descriptors).
 */
#ifndef VD_VHOST_MSG_H
#define VD_VHOST_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhost-user-protocol.h"

/* Largest payload we accept: the biggest message we handle is a memory
 * table with 8 regions (264 bytes) or a config access (268).
 */
#define VHOST_MSG_MAX_PAYLOAD 4096
/* Most descriptors one message may carry (a memory table's). */
#define VHOST_MSG_MAX_FDS     VHOST_MEMORY_BASELINE_NREGIONS

struct vhost_msg_region {
  uint64_t gpa, size, uva, mmap_offset;
};

struct vhost_msg {
  uint32_t request;
  uint32_t flags;
  uint32_t size;                /* payload bytes */
  union {
    uint64_t u64;
    struct {
      uint32_t index;
      uint32_t num;
    } state;
    struct {
      uint32_t index;
      uint32_t flags;
      uint64_t desc, used, avail, log;
    } addr;
    struct {
      uint32_t index;
      bool nofd;
    } vring_fd;                 /* SET_VRING_KICK / CALL / ERR */
    struct {
      uint32_t nregions;
      struct vhost_msg_region r[VHOST_MEMORY_BASELINE_NREGIONS];
    } mem;
    struct {
      uint32_t offset, size, flags;
      uint8_t data[VHOST_USER_MAX_CONFIG_SIZE];
    } config;
  } u;
};

/* Decode the 12-byte header.  0, or -1 (raised) when the version is
 * wrong, the reply bit is set or the payload is larger than
 * VHOST_MSG_MAX_PAYLOAD.
 */
int vhost_msg_parse_header (const uint8_t *hdr, struct vhost_msg *m);

/* Decode the payload of m (m->size bytes at payload) that arrived with
 * nfds descriptors, checking its size and the number of descriptors
 * against the request type.  Unknown requests decode (the session
 * rejects them); their payload and descriptors are ignored.  0, or -1
 * (raised).
 */
int vhost_msg_parse_payload (struct vhost_msg *m, const uint8_t *payload,
                             size_t nfds);

/* Number of descriptors request m must carry after decoding. */
size_t vhost_msg_expected_fds (const struct vhost_msg *m);

/* Whether the front end waits for a reply to this request whatever the
 * need_reply flag says (GET_* and the like).
 */
bool vhost_msg_has_reply (uint32_t request);

/* Name of a request for messages ("SET_MEM_TABLE"), or "unknown". */
const char *vhost_msg_name (uint32_t request);

/* Encode a reply header for request into out (12 bytes). */
void vhost_msg_reply_header (uint8_t *out, uint32_t request, uint32_t size);

#endif
