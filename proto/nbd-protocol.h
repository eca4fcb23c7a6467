/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * NBD wire constants, with the names of the protocol specification
 * (NetworkBlockDevice/nbd doc/proto.md, including the extended-headers
 * extension).  This is the only place that defines NBD_* names; they are
 * constants only (functions never use the nbd_ prefix, which belongs to
 * libnbd).  Message layouts are documented here as byte offsets; code
 * encodes and decodes them with common/byte-order.h, never by casting
 * packed structs over buffers.
 */
#ifndef VD_NBD_PROTOCOL_H
#define VD_NBD_PROTOCOL_H

#include <stdint.h>

/* Handshake. */
#define NBD_MAGIC               UINT64_C (0x4e42444d41474943) /* "NBDMAGIC" */
#define NBD_OLD_VERSION         UINT64_C (0x0000420281861253)
#define NBD_IHAVEOPT            UINT64_C (0x49484156454F5054) /* "IHAVEOPT" */
#define NBD_REP_MAGIC           UINT64_C (0x0003e889045565a9)

/* Handshake flags (server, u16). */
#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES      (1u << 1)

/* Client flags (u32). */
#define NBD_FLAG_C_FIXED_NEWSTYLE NBD_FLAG_FIXED_NEWSTYLE
#define NBD_FLAG_C_NO_ZEROES      NBD_FLAG_NO_ZEROES

/* Option request: u64 IHAVEOPT, u32 option, u32 length, data. */
#define NBD_OPTION_HEADER_SIZE  16

/* Options. */
#define NBD_OPT_EXPORT_NAME       1
#define NBD_OPT_ABORT             2
#define NBD_OPT_LIST              3
#define NBD_OPT_PEEK_EXPORT       4  /* withdrawn */
#define NBD_OPT_STARTTLS          5
#define NBD_OPT_INFO              6
#define NBD_OPT_GO                7
#define NBD_OPT_STRUCTURED_REPLY  8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT  10
#define NBD_OPT_EXTENDED_HEADERS  11

/* Option reply: u64 REP_MAGIC, u32 option, u32 reply type, u32 length,
 * data.
 */
#define NBD_OPTION_REPLY_HEADER_SIZE 20

#define NBD_REP_ERR(v)          (UINT32_C (0x80000000) | (v))
#define NBD_REP_IS_ERR(v)       (((v) & UINT32_C (0x80000000)) != 0)

#define NBD_REP_ACK             1
#define NBD_REP_SERVER          2
#define NBD_REP_INFO            3
#define NBD_REP_META_CONTEXT    4
#define NBD_REP_ERR_UNSUP         NBD_REP_ERR (1)
#define NBD_REP_ERR_POLICY        NBD_REP_ERR (2)
#define NBD_REP_ERR_INVALID       NBD_REP_ERR (3)
#define NBD_REP_ERR_PLATFORM      NBD_REP_ERR (4)
#define NBD_REP_ERR_TLS_REQD      NBD_REP_ERR (5)
#define NBD_REP_ERR_UNKNOWN       NBD_REP_ERR (6)
#define NBD_REP_ERR_SHUTDOWN      NBD_REP_ERR (7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD NBD_REP_ERR (8)
#define NBD_REP_ERR_TOO_BIG       NBD_REP_ERR (9)
#define NBD_REP_ERR_EXT_HEADER_REQD NBD_REP_ERR (10)

/* NBD_REP_INFO types (u16). */
#define NBD_INFO_EXPORT         0  /* u64 size, u16 transmission flags */
#define NBD_INFO_NAME           1
#define NBD_INFO_DESCRIPTION    2
#define NBD_INFO_BLOCK_SIZE     3  /* u32 min, u32 preferred, u32 max */

/* Reply to NBD_OPT_EXPORT_NAME: u64 size, u16 flags, 124 zeroes unless
 * NO_ZEROES.
 */
#define NBD_EXPORT_NAME_REPLY_SIZE 10
#define NBD_EXPORT_NAME_PADDING    124

/* Transmission flags (u16). */
#define NBD_FLAG_HAS_FLAGS         (1u << 0)
#define NBD_FLAG_READ_ONLY         (1u << 1)
#define NBD_FLAG_SEND_FLUSH        (1u << 2)
#define NBD_FLAG_SEND_FUA          (1u << 3)
#define NBD_FLAG_ROTATIONAL        (1u << 4)
#define NBD_FLAG_SEND_TRIM         (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF           (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN    (1u << 8)
#define NBD_FLAG_SEND_RESIZE       (1u << 9)
#define NBD_FLAG_SEND_CACHE        (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO    (1u << 11)
#define NBD_FLAG_BLOCK_STAT_PAYLOAD (1u << 12)

/* Requests.
 * Compact (28 bytes): u32 magic, u16 flags, u16 type, u64 cookie,
 *   u64 offset, u32 length.
 * Extended (32 bytes): u32 magic, u16 flags, u16 type, u64 cookie,
 *   u64 offset, u64 length.
 */
#define NBD_REQUEST_MAGIC          UINT32_C (0x25609513)
#define NBD_EXTENDED_REQUEST_MAGIC UINT32_C (0x21e41c71)
#define NBD_REQUEST_SIZE           28
#define NBD_EXTENDED_REQUEST_SIZE  32

/* Command flags (u16). */
#define NBD_CMD_FLAG_FUA         (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE     (1u << 1)
#define NBD_CMD_FLAG_DF          (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE     (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO   (1u << 4)
#define NBD_CMD_FLAG_PAYLOAD_LEN (1u << 5)

/* Commands (u16). */
#define NBD_CMD_READ            0
#define NBD_CMD_WRITE           1
#define NBD_CMD_DISC            2
#define NBD_CMD_FLUSH           3
#define NBD_CMD_TRIM            4
#define NBD_CMD_CACHE           5
#define NBD_CMD_WRITE_ZEROES    6
#define NBD_CMD_BLOCK_STATUS    7
#define NBD_CMD_RESIZE          8

/* Replies.
 * Simple (16 bytes): u32 magic, u32 error, u64 cookie [, data].
 * Structured chunk (20 bytes): u32 magic, u16 flags, u16 type,
 *   u64 cookie, u32 length, payload.
 * Extended chunk (32 bytes): u32 magic, u16 flags, u16 type, u64 cookie,
 *   u64 offset, u64 length, payload.
 */
#define NBD_SIMPLE_REPLY_MAGIC     UINT32_C (0x67446698)
#define NBD_STRUCTURED_REPLY_MAGIC UINT32_C (0x668e33ef)
#define NBD_EXTENDED_REPLY_MAGIC   UINT32_C (0x6e8a278c)
#define NBD_SIMPLE_REPLY_SIZE      16
#define NBD_STRUCTURED_REPLY_SIZE  20
#define NBD_EXTENDED_REPLY_SIZE    32

/* Structured reply flags (u16). */
#define NBD_REPLY_FLAG_DONE     (1u << 0)

/* Structured reply chunk types (u16). */
#define NBD_REPLY_TYPE_ERR(v)   ((1u << 15) | (v))
#define NBD_REPLY_TYPE_IS_ERR(t) (((t) & (1u << 15)) != 0)
#define NBD_REPLY_TYPE_NONE             0
#define NBD_REPLY_TYPE_OFFSET_DATA      1  /* u64 offset, data */
#define NBD_REPLY_TYPE_OFFSET_HOLE      2  /* u64 offset, u32 length */
#define NBD_REPLY_TYPE_BLOCK_STATUS     5  /* u32 ctx id, n x {u32 len, u32 flags} */
#define NBD_REPLY_TYPE_BLOCK_STATUS_EXT 6  /* u32 ctx id, u32 count,
                                              n x {u64 len, u64 flags} */
#define NBD_REPLY_TYPE_ERROR        NBD_REPLY_TYPE_ERR (1) /* u32 error, u16 len, msg */
#define NBD_REPLY_TYPE_ERROR_OFFSET NBD_REPLY_TYPE_ERR (2) /* ... then u64 offset */

/* base:allocation states. */
#define NBD_STATE_HOLE          (1u << 0)
#define NBD_STATE_ZERO          (1u << 1)

/* Error values on the wire. */
#define NBD_SUCCESS     0
#define NBD_EPERM       1
#define NBD_EIO         5
#define NBD_ENOMEM      12
#define NBD_EINVAL      22
#define NBD_ENOSPC      28
#define NBD_EOVERFLOW   75
#define NBD_ENOTSUP     95
#define NBD_ESHUTDOWN   108

/* Limits. */
#define NBD_MAX_STRING          4096   /* names, messages, context names */
#define NBD_DEFAULT_PORT        10809
#define NBD_DEFAULT_MAX_PAYLOAD (32u * 1024 * 1024)
#define NBD_MAX_DF_READ         (64u * 1024)   /* DF must work up to this */

#define NBD_META_BASE_ALLOCATION "base:allocation"

#endif
