/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vhost-user message decoding (see msg.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "errors.h"
#include "le.h"
#include "msg.h"

const char *
vhost_msg_name (uint32_t request)
{
  switch (request) {
  case VHOST_USER_GET_FEATURES: return "GET_FEATURES";
  case VHOST_USER_SET_FEATURES: return "SET_FEATURES";
  case VHOST_USER_SET_OWNER: return "SET_OWNER";
  case VHOST_USER_RESET_OWNER: return "RESET_OWNER";
  case VHOST_USER_SET_MEM_TABLE: return "SET_MEM_TABLE";
  case VHOST_USER_SET_LOG_BASE: return "SET_LOG_BASE";
  case VHOST_USER_SET_LOG_FD: return "SET_LOG_FD";
  case VHOST_USER_SET_VRING_NUM: return "SET_VRING_NUM";
  case VHOST_USER_SET_VRING_ADDR: return "SET_VRING_ADDR";
  case VHOST_USER_SET_VRING_BASE: return "SET_VRING_BASE";
  case VHOST_USER_GET_VRING_BASE: return "GET_VRING_BASE";
  case VHOST_USER_SET_VRING_KICK: return "SET_VRING_KICK";
  case VHOST_USER_SET_VRING_CALL: return "SET_VRING_CALL";
  case VHOST_USER_SET_VRING_ERR: return "SET_VRING_ERR";
  case VHOST_USER_GET_PROTOCOL_FEATURES: return "GET_PROTOCOL_FEATURES";
  case VHOST_USER_SET_PROTOCOL_FEATURES: return "SET_PROTOCOL_FEATURES";
  case VHOST_USER_GET_QUEUE_NUM: return "GET_QUEUE_NUM";
  case VHOST_USER_SET_VRING_ENABLE: return "SET_VRING_ENABLE";
  case VHOST_USER_SEND_RARP: return "SEND_RARP";
  case VHOST_USER_NET_SET_MTU: return "NET_SET_MTU";
  case VHOST_USER_SET_BACKEND_REQ_FD: return "SET_BACKEND_REQ_FD";
  case VHOST_USER_IOTLB_MSG: return "IOTLB_MSG";
  case VHOST_USER_SET_VRING_ENDIAN: return "SET_VRING_ENDIAN";
  case VHOST_USER_GET_CONFIG: return "GET_CONFIG";
  case VHOST_USER_SET_CONFIG: return "SET_CONFIG";
  case VHOST_USER_CREATE_CRYPTO_SESSION: return "CREATE_CRYPTO_SESSION";
  case VHOST_USER_CLOSE_CRYPTO_SESSION: return "CLOSE_CRYPTO_SESSION";
  case VHOST_USER_POSTCOPY_ADVISE: return "POSTCOPY_ADVISE";
  case VHOST_USER_POSTCOPY_LISTEN: return "POSTCOPY_LISTEN";
  case VHOST_USER_POSTCOPY_END: return "POSTCOPY_END";
  case VHOST_USER_GET_INFLIGHT_FD: return "GET_INFLIGHT_FD";
  case VHOST_USER_SET_INFLIGHT_FD: return "SET_INFLIGHT_FD";
  case VHOST_USER_GPU_SET_SOCKET: return "GPU_SET_SOCKET";
  case VHOST_USER_RESET_DEVICE: return "RESET_DEVICE";
  case VHOST_USER_VRING_KICK: return "VRING_KICK";
  case VHOST_USER_GET_MAX_MEM_SLOTS: return "GET_MAX_MEM_SLOTS";
  case VHOST_USER_ADD_MEM_REG: return "ADD_MEM_REG";
  case VHOST_USER_REM_MEM_REG: return "REM_MEM_REG";
  case VHOST_USER_SET_STATUS: return "SET_STATUS";
  case VHOST_USER_GET_STATUS: return "GET_STATUS";
  default: return "unknown";
  }
}

bool
vhost_msg_has_reply (uint32_t request)
{
  switch (request) {
  case VHOST_USER_GET_FEATURES:
  case VHOST_USER_GET_PROTOCOL_FEATURES:
  case VHOST_USER_GET_VRING_BASE:
  case VHOST_USER_GET_QUEUE_NUM:
  case VHOST_USER_GET_CONFIG:
  case VHOST_USER_GET_INFLIGHT_FD:
  case VHOST_USER_GET_MAX_MEM_SLOTS:
  case VHOST_USER_GET_STATUS:
  case VHOST_USER_IOTLB_MSG:
  case VHOST_USER_POSTCOPY_ADVISE:
  case VHOST_USER_POSTCOPY_END:
    return true;
  default:
    return false;
  }
}

int
vhost_msg_parse_header (const uint8_t *hdr, struct vhost_msg *m)
{
  memset (m, 0, sizeof *m);
  m->request = load_ne32 (hdr);
  m->flags = load_ne32 (hdr + 4);
  m->size = load_ne32 (hdr + 8);
  if ((m->flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION) {
    vd_error_msg (EPROTO, "vhost-user message %s has protocol version %"
                  PRIu32 " (expected %d)", vhost_msg_name (m->request),
                  m->flags & VHOST_USER_VERSION_MASK, VHOST_USER_VERSION);
    return -1;
  }
  if (m->flags & VHOST_USER_REPLY_MASK) {
    vd_error_msg (EPROTO, "vhost-user message %s is marked as a reply",
                  vhost_msg_name (m->request));
    return -1;
  }
  if (m->size > VHOST_MSG_MAX_PAYLOAD) {
    vd_error_msg (EPROTO, "vhost-user message %s has a %" PRIu32 "-byte "
                  "payload (at most %d accepted)",
                  vhost_msg_name (m->request), m->size,
                  VHOST_MSG_MAX_PAYLOAD);
    return -1;
  }
  return 0;
}

/* Payload size check helpers. */
static int
want_size (const struct vhost_msg *m, uint32_t size)
{
  if (m->size != size) {
    vd_error_msg (EPROTO, "vhost-user message %s has a %" PRIu32 "-byte "
                  "payload (expected %" PRIu32 ")",
                  vhost_msg_name (m->request), m->size, size);
    return -1;
  }
  return 0;
}

size_t
vhost_msg_expected_fds (const struct vhost_msg *m)
{
  switch (m->request) {
  case VHOST_USER_SET_MEM_TABLE:
    return m->u.mem.nregions;
  case VHOST_USER_SET_VRING_KICK:
  case VHOST_USER_SET_VRING_CALL:
  case VHOST_USER_SET_VRING_ERR:
    return m->u.vring_fd.nofd ? 0 : 1;
  default:
    return 0;
  }
}

int
vhost_msg_parse_payload (struct vhost_msg *m, const uint8_t *p, size_t nfds)
{
  switch (m->request) {
  case VHOST_USER_GET_FEATURES:
  case VHOST_USER_GET_PROTOCOL_FEATURES:
  case VHOST_USER_GET_QUEUE_NUM:
  case VHOST_USER_SET_OWNER:
  case VHOST_USER_RESET_OWNER:
  case VHOST_USER_RESET_DEVICE:
    /* No payload is defined; QEMU sends none, some front ends send a
     * zero u64.  Accept both.
     */
    if (m->size != 0 && want_size (m, VHOST_USER_U64_SIZE) == -1)
      return -1;
    break;

  case VHOST_USER_SET_FEATURES:
  case VHOST_USER_SET_PROTOCOL_FEATURES:
    if (want_size (m, VHOST_USER_U64_SIZE) == -1)
      return -1;
    m->u.u64 = load_ne64 (p);
    break;

  case VHOST_USER_SET_VRING_NUM:
  case VHOST_USER_SET_VRING_BASE:
  case VHOST_USER_GET_VRING_BASE:
  case VHOST_USER_SET_VRING_ENABLE:
    if (want_size (m, VHOST_USER_STATE_SIZE) == -1)
      return -1;
    m->u.state.index = load_ne32 (p);
    m->u.state.num = load_ne32 (p + 4);
    break;

  case VHOST_USER_SET_VRING_ADDR:
    if (want_size (m, VHOST_USER_ADDR_SIZE) == -1)
      return -1;
    m->u.addr.index = load_ne32 (p);
    m->u.addr.flags = load_ne32 (p + 4);
    m->u.addr.desc = load_ne64 (p + VHOST_USER_ADDR_DESC_OFF);
    m->u.addr.used = load_ne64 (p + VHOST_USER_ADDR_USED_OFF);
    m->u.addr.avail = load_ne64 (p + VHOST_USER_ADDR_AVAIL_OFF);
    m->u.addr.log = load_ne64 (p + VHOST_USER_ADDR_LOG_OFF);
    break;

  case VHOST_USER_SET_VRING_KICK:
  case VHOST_USER_SET_VRING_CALL:
  case VHOST_USER_SET_VRING_ERR: {
    uint64_t v;
    if (want_size (m, VHOST_USER_U64_SIZE) == -1)
      return -1;
    v = load_ne64 (p);
    if (v & ~(uint64_t) (VHOST_USER_VRING_IDX_MASK |
                         VHOST_USER_VRING_NOFD_MASK)) {
      vd_error_msg (EPROTO, "vhost-user message %s has unknown bits set "
                    "(0x%" PRIx64 ")", vhost_msg_name (m->request), v);
      return -1;
    }
    m->u.vring_fd.index = v & VHOST_USER_VRING_IDX_MASK;
    m->u.vring_fd.nofd = (v & VHOST_USER_VRING_NOFD_MASK) != 0;
    break;
  }

  case VHOST_USER_SET_MEM_TABLE: {
    uint32_t n;
    if (m->size < VHOST_USER_MEM_HDR_SIZE) {
      vd_error_msg (EPROTO, "vhost-user message SET_MEM_TABLE is too short "
                    "(%" PRIu32 " bytes)", m->size);
      return -1;
    }
    n = load_ne32 (p);
    if (n == 0 || n > VHOST_MEMORY_BASELINE_NREGIONS) {
      vd_error_msg (EPROTO, "vhost-user message SET_MEM_TABLE has %" PRIu32
                    " regions (1 to %d accepted)", n,
                    VHOST_MEMORY_BASELINE_NREGIONS);
      return -1;
    }
    /* QEMU sends the full 8-slot table whatever n is; others send only
     * n regions.  Either way the n regions must be there.
     */
    if (m->size < VHOST_USER_MEM_HDR_SIZE + n * VHOST_USER_MEM_REGION_SIZE ||
        m->size > VHOST_USER_MEM_HDR_SIZE +
        VHOST_MEMORY_BASELINE_NREGIONS * VHOST_USER_MEM_REGION_SIZE) {
      vd_error_msg (EPROTO, "vhost-user message SET_MEM_TABLE has a %" PRIu32
                    "-byte payload for %" PRIu32 " regions", m->size, n);
      return -1;
    }
    m->u.mem.nregions = n;
    for (uint32_t i = 0; i < n; ++i) {
      const uint8_t *r = p + VHOST_USER_MEM_HDR_SIZE +
        i * VHOST_USER_MEM_REGION_SIZE;
      m->u.mem.r[i].gpa = load_ne64 (r);
      m->u.mem.r[i].size = load_ne64 (r + 8);
      m->u.mem.r[i].uva = load_ne64 (r + 16);
      m->u.mem.r[i].mmap_offset = load_ne64 (r + 24);
    }
    break;
  }

  case VHOST_USER_GET_CONFIG:
  case VHOST_USER_SET_CONFIG: {
    uint32_t off, sz;
    if (m->size < VHOST_USER_CONFIG_HDR_SIZE) {
      vd_error_msg (EPROTO, "vhost-user message %s is too short (%" PRIu32
                    " bytes)", vhost_msg_name (m->request), m->size);
      return -1;
    }
    off = load_ne32 (p);
    sz = load_ne32 (p + 4);
    /* The payload must hold sz bytes; whether offset + size fits the
     * config space is the session's to answer (GET_CONFIG then replies
     * with an empty payload, as the spec says).
     */
    if (sz > VHOST_USER_MAX_CONFIG_SIZE) {
      vd_error_msg (EPROTO, "vhost-user message %s accesses %" PRIu32
                    " config bytes (the config space has %d)",
                    vhost_msg_name (m->request), sz,
                    VHOST_USER_MAX_CONFIG_SIZE);
      return -1;
    }
    if (want_size (m, VHOST_USER_CONFIG_HDR_SIZE + sz) == -1)
      return -1;
    m->u.config.offset = off;
    m->u.config.size = sz;
    m->u.config.flags = load_ne32 (p + 8);
    memcpy (m->u.config.data, p + VHOST_USER_CONFIG_HDR_SIZE, sz);
    break;
  }

  default:
    /* Unknown or unsupported: the session answers with an error. */
    return 0;
  }

  if (nfds != vhost_msg_expected_fds (m)) {
    vd_error_msg (EPROTO, "vhost-user message %s came with %zu file "
                  "descriptors (expected %zu)", vhost_msg_name (m->request),
                  nfds, vhost_msg_expected_fds (m));
    return -1;
  }
  return 0;
}

void
vhost_msg_reply_header (uint8_t *out, uint32_t request, uint32_t size)
{
  store_ne32 (out, request);
  store_ne32 (out + 4, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK);
  store_ne32 (out + 8, size);
}
