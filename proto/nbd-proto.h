/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The NBD wire format as pure functions over buffers, for both
 * directions: the server (server/) encodes what the client (lib/nbd/)
 * decodes and the other way round.  No I/O, no allocation, no global
 * state, no errno: every function works on caller-provided memory, so
 * each one is directly unit-tested and fuzzed.
 *
 * Conventions:
 *  - Fixed-size encoders write exactly the documented number of bytes
 *    and return it.
 *  - Variable-size encoders take (buf, cap) and return the number of
 *    bytes the message needs; they write only when that fits in cap (as
 *    snprintf does), so a first call with cap 0 sizes the buffer.  They
 *    return -1 (with *why set) only for arguments the protocol cannot
 *    carry (a string longer than NBD_MAX_STRING, a count that overflows).
 *  - Decoders return 0, or -1 with *why set to a static English sentence
 *    fragment suitable for a log line ("bad request magic 0x...", no
 *    trailing period).  why may be NULL.  Decoded strings are pointers
 *    into the input buffer with an explicit length (NBD strings are not
 *    NUL-terminated on the wire).
 *  - Lengths and counts from the wire are checked against the buffer
 *    length with overflow-checked arithmetic; a decoder never reads past
 *    len.
 * Constants (NBD_*) are in nbd-protocol.h with the specification's
 * names.  Functions use the vd_nbd_ prefix (nbd_ belongs to libnbd).
 */
#ifndef VD_NBD_PROTO_H
#define VD_NBD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nbd-protocol.h"

/* ---- Handshake -------------------------------------------------------- */

/* Server greeting (fixed newstyle): u64 NBDMAGIC, u64 IHAVEOPT,
 * u16 handshake flags.
 */
#define VD_NBD_GREETING_SIZE 18
/* Client flags: u32. */
#define VD_NBD_CLIENT_FLAGS_SIZE 4

size_t vd_nbd_encode_greeting (void *buf, uint16_t handshake_flags);
/* Fails for the oldstyle greeting (with a message saying so) and for bad
 * magic.
 */
int vd_nbd_decode_greeting (const void *buf, size_t len,
                            uint16_t *handshake_flags, const char **why);

size_t vd_nbd_encode_client_flags (void *buf, uint32_t client_flags);
/* Checks that the client sets only bits the server offered
 * (server_flags is the greeting's handshake flags); a server MUST drop
 * the connection otherwise.
 */
int vd_nbd_decode_client_flags (const void *buf, size_t len,
                                uint16_t server_flags,
                                uint32_t *client_flags, const char **why);

/* ---- Option requests (client -> server) ------------------------------- */

struct vd_nbd_option {
  uint32_t option;              /* NBD_OPT_* */
  uint32_t length;              /* bytes of data that follow */
};

size_t vd_nbd_encode_option_header (void *buf, uint32_t option,
                                    uint32_t length);
int vd_nbd_decode_option_header (const void *buf, size_t len,
                                 struct vd_nbd_option *o, const char **why);

/* NBD_OPT_EXPORT_NAME data is just the name: no helper needed. */

/* NBD_OPT_INFO / NBD_OPT_GO data: u32 name length, name, u16 n,
 * n x u16 information requests.
 */
struct vd_nbd_info_request {
  const char *name;             /* into the buffer */
  uint32_t name_len;
  uint16_t nr_requests;
  const unsigned char *requests; /* nr_requests big-endian u16s */
};

ssize_t vd_nbd_encode_info_request (void *buf, size_t cap, const char *name,
                                    size_t name_len, const uint16_t *requests,
                                    uint16_t nr_requests, const char **why);
/* Checks the layout (the name and the list fill the data exactly) and the
 * string limit.  Duplicate or unknown information types are not errors
 * here (the server ignores unknown ones); see
 * vd_nbd_info_request_has_duplicates.
 */
int vd_nbd_decode_info_request (const void *data, size_t len,
                                struct vd_nbd_info_request *r,
                                const char **why);
uint16_t vd_nbd_info_request_get (const struct vd_nbd_info_request *r,
                                  uint16_t i);
bool vd_nbd_info_request_has (const struct vd_nbd_info_request *r,
                              uint16_t info_type);
bool vd_nbd_info_request_has_duplicates (const struct vd_nbd_info_request *r);

/* NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT data: u32 name
 * length, name, u32 number of queries, each u32 length + query.
 */
struct vd_nbd_meta_request {
  const char *name;             /* export name, into the buffer */
  uint32_t name_len;
  uint32_t nr_queries;
  const unsigned char *queries; /* the encoded queries */
  size_t queries_len;
};

ssize_t vd_nbd_encode_meta_request (void *buf, size_t cap, const char *name,
                                    size_t name_len,
                                    const char *const *queries,
                                    uint32_t nr_queries, const char **why);
/* Checks the whole layout up front: every query length fits, every query
 * is at most NBD_MAX_STRING, and nothing is left over.
 */
int vd_nbd_decode_meta_request (const void *data, size_t len,
                                struct vd_nbd_meta_request *r,
                                const char **why);
/* Iterate over the queries of a decoded request: *pos starts at 0.
 * Returns 1 with the next query, 0 at the end.
 */
int vd_nbd_meta_request_next (const struct vd_nbd_meta_request *r,
                              size_t *pos, const char **query,
                              uint32_t *query_len);

/* Split a context name or query "namespace:leaf" at the first colon.
 * Returns -1 if there is no colon or the namespace is empty.
 */
int vd_nbd_meta_split (const char *s, size_t len, size_t *ns_len,
                       const char **leaf, size_t *leaf_len);

/* ---- Option replies (server -> client) -------------------------------- */

struct vd_nbd_option_reply {
  uint32_t option;              /* the option being answered */
  uint32_t type;                /* NBD_REP_* */
  uint32_t length;              /* bytes of data that follow */
};

size_t vd_nbd_encode_option_reply_header (void *buf, uint32_t option,
                                          uint32_t reply_type,
                                          uint32_t length);
int vd_nbd_decode_option_reply_header (const void *buf, size_t len,
                                       struct vd_nbd_option_reply *r,
                                       const char **why);

/* NBD_REP_SERVER: u32 name length, name, optional description. */
ssize_t vd_nbd_encode_rep_server (void *buf, size_t cap, const char *name,
                                  size_t name_len, const char *desc,
                                  size_t desc_len, const char **why);
int vd_nbd_decode_rep_server (const void *data, size_t len,
                              const char **name, uint32_t *name_len,
                              const char **desc, uint32_t *desc_len,
                              const char **why);

/* NBD_REP_INFO payloads (the u16 type is part of the payload). */
#define VD_NBD_INFO_EXPORT_SIZE     12
#define VD_NBD_INFO_BLOCK_SIZE_SIZE 14
size_t vd_nbd_encode_info_export (void *buf, uint64_t size,
                                  uint16_t transmission_flags);
size_t vd_nbd_encode_info_block_size (void *buf, uint32_t minimum,
                                      uint32_t preferred, uint32_t maximum);
/* NBD_INFO_NAME or NBD_INFO_DESCRIPTION. */
ssize_t vd_nbd_encode_info_string (void *buf, size_t cap, uint16_t info_type,
                                   const char *s, size_t len,
                                   const char **why);

struct vd_nbd_info {
  uint16_t type;                /* NBD_INFO_* (unknown types are kept) */
  uint64_t size;                /* NBD_INFO_EXPORT */
  uint16_t transmission_flags;  /* NBD_INFO_EXPORT */
  uint32_t minimum, preferred, maximum; /* NBD_INFO_BLOCK_SIZE */
  const char *str;              /* NBD_INFO_NAME / DESCRIPTION, or the raw */
  uint32_t str_len;             /* payload of an unknown type */
};
/* Checks the exact length of known types, and for NBD_INFO_BLOCK_SIZE the
 * constraints of the specification (powers of two, min <= 64 KiB,
 * preferred >= max (min, 512), maximum >= preferred).
 */
int vd_nbd_decode_info (const void *data, size_t len, struct vd_nbd_info *i,
                        const char **why);

/* NBD_REP_META_CONTEXT: u32 context id, name. */
ssize_t vd_nbd_encode_rep_meta_context (void *buf, size_t cap,
                                        uint32_t context_id, const char *name,
                                        size_t name_len, const char **why);
int vd_nbd_decode_rep_meta_context (const void *data, size_t len,
                                    uint32_t *context_id, const char **name,
                                    uint32_t *name_len, const char **why);

/* Error replies (NBD_REP_ERR_*) carry an optional human-readable message
 * as their whole payload: no helper needed beyond the header.
 */

/* Reply to NBD_OPT_EXPORT_NAME: u64 size, u16 transmission flags, then
 * 124 zero bytes unless NO_ZEROES was negotiated.
 */
size_t vd_nbd_export_name_reply_size (bool no_zeroes);
size_t vd_nbd_encode_export_name_reply (void *buf, uint64_t size,
                                        uint16_t transmission_flags,
                                        bool no_zeroes);
int vd_nbd_decode_export_name_reply (const void *buf, size_t len,
                                     uint64_t *size,
                                     uint16_t *transmission_flags,
                                     const char **why);

/* ---- Requests (client -> server) -------------------------------------- */

struct vd_nbd_request {
  uint16_t flags;               /* NBD_CMD_FLAG_* */
  uint16_t type;                /* NBD_CMD_* */
  uint64_t cookie;
  uint64_t offset;
  uint64_t length;              /* compact: 32 bits on the wire */
};

/* 28 (compact) or 32 (extended headers). */
size_t vd_nbd_request_size (bool extended);
/* Returns 0 (nothing written) if a compact request's length does not fit
 * in 32 bits.
 */
size_t vd_nbd_encode_request (void *buf, bool extended,
                              const struct vd_nbd_request *r);
/* Checks the magic only (semantics: vd_nbd_validate_request). */
int vd_nbd_decode_request (const void *buf, size_t len, bool extended,
                           struct vd_nbd_request *r, const char **why);
/* Bytes of payload that follow the header: the length of a compact
 * NBD_CMD_WRITE, or of any extended request with NBD_CMD_FLAG_PAYLOAD_LEN;
 * else 0.
 */
uint64_t vd_nbd_request_payload_length (const struct vd_nbd_request *r,
                                        bool extended);

/* What the server knows when it checks a request: the negotiated state
 * of the connection and the export.
 */
struct vd_nbd_tx_state {
  uint64_t export_size;
  uint16_t transmission_flags;  /* as sent to the client */
  bool structured_replies;      /* NBD_OPT_STRUCTURED_REPLY acked */
  bool extended_headers;        /* NBD_OPT_EXTENDED_HEADERS acked */
  uint32_t nr_meta_contexts;    /* contexts selected for this export */
  uint32_t min_block;           /* advertised minimum (1 if none) */
  uint32_t max_payload;         /* advertised maximum payload */
};

/* Check a decoded request against the protocol and the negotiated state,
 * as a server must before acting on it.  Returns 0 if the request is
 * valid, or -1 with *nbd_error set to the NBD_E* error to reply with and
 * *why to a description for the log.  Checks: known command, flags valid
 * for the command and offered by the server (FUA, NO_HOLE, DF, REQ_ONE,
 * FAST_ZERO, PAYLOAD_LEN), read-only export, advertised capabilities,
 * range (offset + length within the export, overflow-checked; ENOSPC for
 * writes), alignment to min_block, payload and effect length limits
 * (EINVAL for payloads, EOVERFLOW for payload-less commands), zero offset
 * and length for FLUSH and DISC, and a selected context for
 * BLOCK_STATUS.  Zero-length requests (other than FLUSH and DISC) are
 * accepted: the specification leaves them to the server.
 *
 * Note: NBD_CMD_CACHE is accepted even when NBD_FLAG_SEND_CACHE was not
 * advertised (the specification notes clients that do so).
 */
int vd_nbd_validate_request (const struct vd_nbd_request *r,
                             const struct vd_nbd_tx_state *st,
                             uint32_t *nbd_error, const char **why);

/* ---- Replies (server -> client) --------------------------------------- */

/* Simple reply (16 bytes), then READ data when error is 0. */
size_t vd_nbd_encode_simple_reply (void *buf, uint64_t cookie,
                                   uint32_t nbd_error);

/* Structured (20 bytes) or extended (32 bytes) chunk header.  For a
 * structured header length must fit in 32 bits (else 0 is returned and
 * nothing written); offset is only on the wire with extended headers
 * (the request's offset, echoed).
 */
size_t vd_nbd_chunk_header_size (bool extended);
size_t vd_nbd_encode_chunk_header (void *buf, bool extended, uint16_t flags,
                                   uint16_t type, uint64_t cookie,
                                   uint64_t offset, uint64_t length);

/* The kind of reply from its magic (first 4 bytes). */
enum vd_nbd_reply_kind {
  VD_NBD_REPLY_SIMPLE = 1,      /* 16-byte header */
  VD_NBD_REPLY_STRUCTURED = 2,  /* 20-byte header */
  VD_NBD_REPLY_EXTENDED = 3,    /* 32-byte header */
};
struct vd_nbd_reply {
  int kind;                     /* enum vd_nbd_reply_kind */
  uint32_t error;               /* simple replies */
  uint16_t flags;               /* chunks */
  uint16_t type;                /* chunks */
  uint64_t cookie;
  uint64_t offset;              /* extended chunks */
  uint64_t length;              /* chunks: payload length */
};
/* From the magic alone: the header size (16, 20 or 32), or 0 for an
 * unknown magic.  len must be at least 4.
 */
size_t vd_nbd_reply_header_size (const void *buf, size_t len);
/* Decode a whole reply header.  A client passes what it negotiated: a
 * simple reply is valid unless extended headers were negotiated, a
 * structured chunk only with structured replies, an extended chunk only
 * with extended headers.  Also checks that a structured/extended chunk's
 * flags and the NONE chunk's length are sane.
 */
int vd_nbd_decode_reply (const void *buf, size_t len, bool structured,
                         bool extended, struct vd_nbd_reply *r,
                         const char **why);

/* Chunk payloads. */
#define VD_NBD_OFFSET_DATA_PREFIX_SIZE 8
#define VD_NBD_OFFSET_HOLE_SIZE       12
size_t vd_nbd_encode_offset_data_prefix (void *buf, uint64_t offset);
size_t vd_nbd_encode_offset_hole (void *buf, uint64_t offset,
                                  uint32_t hole_len);
/* NBD_REPLY_TYPE_ERROR (with_offset false) or ERROR_OFFSET (true).  The
 * message is truncated to NBD_MAX_STRING bytes (and never split inside a
 * UTF-8 sequence).
 */
ssize_t vd_nbd_encode_error_chunk (void *buf, size_t cap, uint32_t nbd_error,
                                   const char *msg, size_t msg_len,
                                   bool with_offset, uint64_t offset);

/* Block status chunk: a header (ctx id [+ count]) then descriptors. */
size_t vd_nbd_block_status_header_size (bool extended);
size_t vd_nbd_block_descriptor_size (bool extended);
size_t vd_nbd_encode_block_status_header (void *buf, bool extended,
                                          uint32_t context_id,
                                          uint32_t nr_descriptors);
/* Compact descriptors carry 32-bit lengths and flags: returns 0 (nothing
 * written) if they do not fit.
 */
size_t vd_nbd_encode_block_descriptor (void *buf, bool extended,
                                       uint64_t length, uint64_t status);

/* Decoded chunk payloads (for the client).  The checks are those a
 * client must make on what a server sent, against the request it made
 * (req_offset, req_length).
 */
struct vd_nbd_offset_data {
  uint64_t offset;
  const unsigned char *data;    /* into the buffer */
  size_t data_len;
};
int vd_nbd_decode_offset_data (const void *payload, size_t len,
                               uint64_t req_offset, uint64_t req_length,
                               struct vd_nbd_offset_data *d,
                               const char **why);
int vd_nbd_decode_offset_hole (const void *payload, size_t len,
                               uint64_t req_offset, uint64_t req_length,
                               uint64_t *offset, uint32_t *hole_len,
                               const char **why);

struct vd_nbd_error_chunk {
  uint32_t error;               /* NBD_E* (nonzero) */
  const char *msg;              /* into the buffer, msg_len bytes */
  uint16_t msg_len;
  bool has_offset;
  uint64_t offset;
};
/* type is the chunk type (any type with bit 15 set is accepted; for
 * unknown error types the common prefix is decoded and has_offset is
 * false).
 */
int vd_nbd_decode_error_chunk (const void *payload, size_t len, uint16_t type,
                               struct vd_nbd_error_chunk *e,
                               const char **why);

struct vd_nbd_block_status {
  uint32_t context_id;
  uint32_t nr_descriptors;
  bool extended;
  const unsigned char *descriptors; /* into the buffer */
};
/* Checks the payload layout for the chunk type (BLOCK_STATUS or
 * BLOCK_STATUS_EXT), at least one descriptor, the count field of the
 * extended form, and nonzero extent lengths.
 */
int vd_nbd_decode_block_status (const void *payload, size_t len,
                                uint16_t type, struct vd_nbd_block_status *bs,
                                const char **why);
void vd_nbd_block_status_get (const struct vd_nbd_block_status *bs,
                              uint32_t i, uint64_t *length,
                              uint64_t *status);

/* ---- Errors ------------------------------------------------------------ */

/* The one mapping from a host errno to the NBD error sent on the wire:
 *   0                                 -> 0
 *   EPERM, EROFS, EACCES              -> NBD_EPERM
 *   ENOSPC, EFBIG, EDQUOT             -> NBD_ENOSPC
 *   EINVAL                            -> NBD_EINVAL
 *   EOVERFLOW                         -> NBD_EOVERFLOW
 *   ENOTSUP (== EOPNOTSUPP on Linux)  -> NBD_ENOTSUP for a WRITE_ZEROES
 *                                        with FAST_ZERO (fast_zero true),
 *                                        else NBD_EINVAL (the
 *                                        specification allows ENOTSUP
 *                                        only there; elsewhere "not
 *                                        supported" is a bad request)
 *   ESHUTDOWN                         -> NBD_ESHUTDOWN
 *   ENOMEM                            -> NBD_ENOMEM
 *   anything else (EIO, EBUSY, ...)   -> NBD_EIO
 */
uint32_t vd_nbd_errno_to_wire (int err, bool fast_zero);
/* The reverse, for the client.  Unknown values become EINVAL, as the
 * specification asks of clients.
 */
int vd_nbd_wire_to_errno (uint32_t nbd_error);

/* ---- Names, for logs and debugging ------------------------------------ */

/* "NBD_OPT_GO", ... or "unknown" for values without a name. */
const char *vd_nbd_opt_name (uint32_t option);
const char *vd_nbd_rep_name (uint32_t reply_type);
const char *vd_nbd_info_name (uint16_t info_type);
const char *vd_nbd_cmd_name (uint16_t command);
const char *vd_nbd_reply_type_name (uint16_t chunk_type);
const char *vd_nbd_error_name (uint32_t nbd_error);
/* "FUA|NO_HOLE" style lists into buf (unknown bits as 0x...); returns buf. */
const char *vd_nbd_cmd_flags_string (uint16_t flags, char *buf, size_t len);
const char *vd_nbd_tx_flags_string (uint16_t flags, char *buf, size_t len);

#endif
