/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * NBD wire format: encoders, decoders and validators for every message
 * of the fixed newstyle handshake and the transmission phase (compact
 * and extended headers).  See nbd-proto.h for the conventions; the
 * layouts are those of NetworkBlockDevice/nbd doc/proto.md (extended
 * headers: the extension-ext-header branch).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "nbd-proto.h"
#include "byte-order.h"
#include "checked-overflow.h"

#define WHY(s) do { if (why) *why = (s); } while (0)
#define FAIL(s) do { WHY (s); return -1; } while (0)

/* ---- Handshake -------------------------------------------------------- */

size_t
vd_nbd_encode_greeting (void *buf, uint16_t handshake_flags)
{
  unsigned char *p = buf;

  store_be64 (p, NBD_MAGIC);
  store_be64 (p + 8, NBD_IHAVEOPT);
  store_be16 (p + 16, handshake_flags);
  return VD_NBD_GREETING_SIZE;
}

int
vd_nbd_decode_greeting (const void *buf, size_t len,
                        uint16_t *handshake_flags, const char **why)
{
  const unsigned char *p = buf;
  uint64_t v;

  if (len < 16)
    FAIL ("short server greeting");
  if (load_be64 (p) != NBD_MAGIC)
    FAIL ("not an NBD server (bad greeting magic)");
  v = load_be64 (p + 8);
  if (v == NBD_OLD_VERSION)
    FAIL ("the server speaks the oldstyle handshake, which is not "
          "supported");
  if (v != NBD_IHAVEOPT)
    FAIL ("bad newstyle greeting magic");
  if (len < VD_NBD_GREETING_SIZE)
    FAIL ("short server greeting");
  *handshake_flags = load_be16 (p + 16);
  return 0;
}

size_t
vd_nbd_encode_client_flags (void *buf, uint32_t client_flags)
{
  store_be32 (buf, client_flags);
  return VD_NBD_CLIENT_FLAGS_SIZE;
}

int
vd_nbd_decode_client_flags (const void *buf, size_t len,
                            uint16_t server_flags, uint32_t *client_flags,
                            const char **why)
{
  uint32_t f;

  if (len < VD_NBD_CLIENT_FLAGS_SIZE)
    FAIL ("short client flags");
  f = load_be32 (buf);
  *client_flags = f;
  if (f & ~(uint32_t) (NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
    FAIL ("the client set unknown client flags");
  if ((f & NBD_FLAG_C_FIXED_NEWSTYLE) &&
      !(server_flags & NBD_FLAG_FIXED_NEWSTYLE))
    FAIL ("the client set FIXED_NEWSTYLE, which the server did not offer");
  if ((f & NBD_FLAG_C_NO_ZEROES) && !(server_flags & NBD_FLAG_NO_ZEROES))
    FAIL ("the client set NO_ZEROES, which the server did not offer");
  return 0;
}

/* ---- Option requests -------------------------------------------------- */

size_t
vd_nbd_encode_option_header (void *buf, uint32_t option, uint32_t length)
{
  unsigned char *p = buf;

  store_be64 (p, NBD_IHAVEOPT);
  store_be32 (p + 8, option);
  store_be32 (p + 12, length);
  return NBD_OPTION_HEADER_SIZE;
}

int
vd_nbd_decode_option_header (const void *buf, size_t len,
                             struct vd_nbd_option *o, const char **why)
{
  const unsigned char *p = buf;

  if (len < NBD_OPTION_HEADER_SIZE)
    FAIL ("short option header");
  if (load_be64 (p) != NBD_IHAVEOPT)
    FAIL ("bad option magic (expected IHAVEOPT)");
  o->option = load_be32 (p + 8);
  o->length = load_be32 (p + 12);
  return 0;
}

static int
check_string_len (size_t len, const char **why)
{
  if (len > NBD_MAX_STRING)
    FAIL ("string longer than 4096 bytes");
  return 0;
}

ssize_t
vd_nbd_encode_info_request (void *buf, size_t cap, const char *name,
                            size_t name_len, const uint16_t *requests,
                            uint16_t nr_requests, const char **why)
{
  unsigned char *p = buf;
  size_t need;

  if (check_string_len (name_len, why) == -1)
    return -1;
  need = 4 + name_len + 2 + 2 * (size_t) nr_requests;
  if (need > cap)
    return need;
  store_be32 (p, name_len);
  if (name_len)
    memcpy (p + 4, name, name_len);
  p += 4 + name_len;
  store_be16 (p, nr_requests);
  p += 2;
  for (uint16_t i = 0; i < nr_requests; ++i, p += 2)
    store_be16 (p, requests[i]);
  return need;
}

int
vd_nbd_decode_info_request (const void *data, size_t len,
                            struct vd_nbd_info_request *r, const char **why)
{
  const unsigned char *p = data;
  uint32_t name_len;
  uint16_t n;
  size_t rest;

  if (len < 6)
    FAIL ("option data too short for an export name and request count");
  name_len = load_be32 (p);
  /* The spec: the name length MUST be no larger than the data length
   * minus 6.
   */
  if (name_len > len - 6)
    FAIL ("export name length runs past the option data");
  if (name_len > NBD_MAX_STRING)
    FAIL ("export name longer than 4096 bytes");
  rest = len - 6 - name_len;
  n = load_be16 (p + 4 + name_len);
  if (rest != 2 * (size_t) n)
    FAIL ("information request count does not match the option length");
  r->name = (const char *) p + 4;
  r->name_len = name_len;
  r->nr_requests = n;
  r->requests = p + 6 + name_len;
  return 0;
}

uint16_t
vd_nbd_info_request_get (const struct vd_nbd_info_request *r, uint16_t i)
{
  return load_be16 (r->requests + 2 * (size_t) i);
}

bool
vd_nbd_info_request_has (const struct vd_nbd_info_request *r,
                         uint16_t info_type)
{
  for (uint16_t i = 0; i < r->nr_requests; ++i)
    if (vd_nbd_info_request_get (r, i) == info_type)
      return true;
  return false;
}

bool
vd_nbd_info_request_has_duplicates (const struct vd_nbd_info_request *r)
{
  /* n is at most 65535; quadratic only in what the client sent, which the
   * server bounds by its option length limit.
   */
  for (uint16_t i = 0; i < r->nr_requests; ++i)
    for (uint16_t j = i + 1; j < r->nr_requests; ++j)
      if (vd_nbd_info_request_get (r, i) == vd_nbd_info_request_get (r, j))
        return true;
  return false;
}

ssize_t
vd_nbd_encode_meta_request (void *buf, size_t cap, const char *name,
                            size_t name_len, const char *const *queries,
                            uint32_t nr_queries, const char **why)
{
  unsigned char *p = buf;
  size_t need, q;

  if (check_string_len (name_len, why) == -1)
    return -1;
  need = 4 + name_len + 4;
  for (uint32_t i = 0; i < nr_queries; ++i) {
    q = strlen (queries[i]);
    if (check_string_len (q, why) == -1)
      return -1;
    if (ADD_OVERFLOW (need, 4 + q, &need) || need > SSIZE_MAX) {
      WHY ("too many metadata context queries");
      return -1;
    }
  }
  if (need > cap)
    return need;
  store_be32 (p, name_len);
  if (name_len)
    memcpy (p + 4, name, name_len);
  p += 4 + name_len;
  store_be32 (p, nr_queries);
  p += 4;
  for (uint32_t i = 0; i < nr_queries; ++i) {
    q = strlen (queries[i]);
    store_be32 (p, q);
    memcpy (p + 4, queries[i], q);
    p += 4 + q;
  }
  return need;
}

int
vd_nbd_decode_meta_request (const void *data, size_t len,
                            struct vd_nbd_meta_request *r, const char **why)
{
  const unsigned char *p = data;
  uint32_t name_len, n, qlen;
  size_t pos;

  if (len < 8)
    FAIL ("option data too short for an export name and query count");
  name_len = load_be32 (p);
  if (name_len > len - 8)
    FAIL ("export name length runs past the option data");
  if (name_len > NBD_MAX_STRING)
    FAIL ("export name longer than 4096 bytes");
  n = load_be32 (p + 4 + name_len);
  pos = 8 + name_len;
  /* Walk every query now so that iteration later cannot fail. */
  for (uint32_t i = 0; i < n; ++i) {
    if (len - pos < 4)
      FAIL ("metadata context query count does not match the option "
            "length");
    qlen = load_be32 (p + pos);
    pos += 4;
    if (qlen > len - pos)
      FAIL ("metadata context query runs past the option data");
    if (qlen > NBD_MAX_STRING)
      FAIL ("metadata context query longer than 4096 bytes");
    pos += qlen;
  }
  if (pos != len)
    FAIL ("trailing bytes after the metadata context queries");
  r->name = (const char *) p + 4;
  r->name_len = name_len;
  r->nr_queries = n;
  r->queries = p + 8 + name_len;
  r->queries_len = len - 8 - name_len;
  return 0;
}

int
vd_nbd_meta_request_next (const struct vd_nbd_meta_request *r, size_t *pos,
                          const char **query, uint32_t *query_len)
{
  uint32_t qlen;

  /* The layout was checked by vd_nbd_decode_meta_request. */
  if (*pos + 4 > r->queries_len)
    return 0;
  qlen = load_be32 (r->queries + *pos);
  *query = (const char *) r->queries + *pos + 4;
  *query_len = qlen;
  *pos += 4 + (size_t) qlen;
  return 1;
}

int
vd_nbd_meta_split (const char *s, size_t len, size_t *ns_len,
                   const char **leaf, size_t *leaf_len)
{
  const char *colon = memchr (s, ':', len);

  if (colon == NULL || colon == s)
    return -1;
  *ns_len = colon - s;
  *leaf = colon + 1;
  *leaf_len = len - *ns_len - 1;
  return 0;
}

/* ---- Option replies --------------------------------------------------- */

size_t
vd_nbd_encode_option_reply_header (void *buf, uint32_t option,
                                   uint32_t reply_type, uint32_t length)
{
  unsigned char *p = buf;

  store_be64 (p, NBD_REP_MAGIC);
  store_be32 (p + 8, option);
  store_be32 (p + 12, reply_type);
  store_be32 (p + 16, length);
  return NBD_OPTION_REPLY_HEADER_SIZE;
}

int
vd_nbd_decode_option_reply_header (const void *buf, size_t len,
                                   struct vd_nbd_option_reply *r,
                                   const char **why)
{
  const unsigned char *p = buf;

  if (len < NBD_OPTION_REPLY_HEADER_SIZE)
    FAIL ("short option reply header");
  if (load_be64 (p) != NBD_REP_MAGIC)
    FAIL ("bad option reply magic");
  r->option = load_be32 (p + 8);
  r->type = load_be32 (p + 12);
  r->length = load_be32 (p + 16);
  return 0;
}

ssize_t
vd_nbd_encode_rep_server (void *buf, size_t cap, const char *name,
                          size_t name_len, const char *desc, size_t desc_len,
                          const char **why)
{
  unsigned char *p = buf;
  size_t need;

  if (check_string_len (name_len, why) == -1 ||
      check_string_len (desc_len, why) == -1)
    return -1;
  need = 4 + name_len + desc_len;
  if (need > cap)
    return need;
  store_be32 (p, name_len);
  if (name_len)
    memcpy (p + 4, name, name_len);
  if (desc_len)
    memcpy (p + 4 + name_len, desc, desc_len);
  return need;
}

int
vd_nbd_decode_rep_server (const void *data, size_t len, const char **name,
                          uint32_t *name_len, const char **desc,
                          uint32_t *desc_len, const char **why)
{
  const unsigned char *p = data;
  uint32_t n;

  if (len < 4)
    FAIL ("NBD_REP_SERVER reply too short");
  n = load_be32 (p);
  if (n > len - 4)
    FAIL ("NBD_REP_SERVER name length runs past the reply");
  if (n > NBD_MAX_STRING || len - 4 - n > NBD_MAX_STRING)
    FAIL ("NBD_REP_SERVER string longer than 4096 bytes");
  *name = (const char *) p + 4;
  *name_len = n;
  *desc = (const char *) p + 4 + n;
  *desc_len = len - 4 - n;
  return 0;
}

size_t
vd_nbd_encode_info_export (void *buf, uint64_t size,
                           uint16_t transmission_flags)
{
  unsigned char *p = buf;

  store_be16 (p, NBD_INFO_EXPORT);
  store_be64 (p + 2, size);
  store_be16 (p + 10, transmission_flags);
  return VD_NBD_INFO_EXPORT_SIZE;
}

size_t
vd_nbd_encode_info_block_size (void *buf, uint32_t minimum,
                               uint32_t preferred, uint32_t maximum)
{
  unsigned char *p = buf;

  store_be16 (p, NBD_INFO_BLOCK_SIZE);
  store_be32 (p + 2, minimum);
  store_be32 (p + 6, preferred);
  store_be32 (p + 10, maximum);
  return VD_NBD_INFO_BLOCK_SIZE_SIZE;
}

ssize_t
vd_nbd_encode_info_string (void *buf, size_t cap, uint16_t info_type,
                           const char *s, size_t len, const char **why)
{
  unsigned char *p = buf;

  if (check_string_len (len, why) == -1)
    return -1;
  if (2 + len > cap)
    return 2 + len;
  store_be16 (p, info_type);
  if (len)
    memcpy (p + 2, s, len);
  return 2 + len;
}

static bool
is_pow2 (uint32_t v)
{
  return v && (v & (v - 1)) == 0;
}

int
vd_nbd_decode_info (const void *data, size_t len, struct vd_nbd_info *i,
                    const char **why)
{
  const unsigned char *p = data;

  memset (i, 0, sizeof *i);
  if (len < 2)
    FAIL ("NBD_REP_INFO reply too short");
  i->type = load_be16 (p);
  switch (i->type) {
  case NBD_INFO_EXPORT:
    if (len != VD_NBD_INFO_EXPORT_SIZE)
      FAIL ("NBD_INFO_EXPORT has the wrong length");
    i->size = load_be64 (p + 2);
    i->transmission_flags = load_be16 (p + 10);
    return 0;
  case NBD_INFO_NAME:
  case NBD_INFO_DESCRIPTION:
    if (len - 2 > NBD_MAX_STRING)
      FAIL ("NBD_INFO string longer than 4096 bytes");
    i->str = (const char *) p + 2;
    i->str_len = len - 2;
    return 0;
  case NBD_INFO_BLOCK_SIZE:
    if (len != VD_NBD_INFO_BLOCK_SIZE_SIZE)
      FAIL ("NBD_INFO_BLOCK_SIZE has the wrong length");
    i->minimum = load_be32 (p + 2);
    i->preferred = load_be32 (p + 6);
    i->maximum = load_be32 (p + 10);
    if (!is_pow2 (i->minimum) || i->minimum > 65536)
      FAIL ("NBD_INFO_BLOCK_SIZE minimum is not a power of 2 up to 64 KiB");
    if (!is_pow2 (i->preferred) || i->preferred < 512 ||
        i->preferred < i->minimum)
      FAIL ("NBD_INFO_BLOCK_SIZE preferred size is not a power of 2 at "
            "least max (minimum, 512)");
    if (i->maximum < i->preferred)
      FAIL ("NBD_INFO_BLOCK_SIZE maximum is smaller than the preferred "
            "size");
    return 0;
  default:
    /* Unknown information types are ignored by clients: keep the raw
     * payload.
     */
    i->str = (const char *) p + 2;
    i->str_len = len - 2 > UINT32_MAX ? UINT32_MAX : (uint32_t) (len - 2);
    return 0;
  }
}

ssize_t
vd_nbd_encode_rep_meta_context (void *buf, size_t cap, uint32_t context_id,
                                const char *name, size_t name_len,
                                const char **why)
{
  unsigned char *p = buf;

  if (check_string_len (name_len, why) == -1)
    return -1;
  if (4 + name_len > cap)
    return 4 + name_len;
  store_be32 (p, context_id);
  if (name_len)
    memcpy (p + 4, name, name_len);
  return 4 + name_len;
}

int
vd_nbd_decode_rep_meta_context (const void *data, size_t len,
                                uint32_t *context_id, const char **name,
                                uint32_t *name_len, const char **why)
{
  const unsigned char *p = data;

  if (len < 5)
    FAIL ("NBD_REP_META_CONTEXT reply too short");
  if (len - 4 > NBD_MAX_STRING)
    FAIL ("metadata context name longer than 4096 bytes");
  *context_id = load_be32 (p);
  *name = (const char *) p + 4;
  *name_len = len - 4;
  return 0;
}

size_t
vd_nbd_export_name_reply_size (bool no_zeroes)
{
  return NBD_EXPORT_NAME_REPLY_SIZE +
    (no_zeroes ? 0 : NBD_EXPORT_NAME_PADDING);
}

size_t
vd_nbd_encode_export_name_reply (void *buf, uint64_t size,
                                 uint16_t transmission_flags, bool no_zeroes)
{
  unsigned char *p = buf;

  store_be64 (p, size);
  store_be16 (p + 8, transmission_flags);
  if (!no_zeroes)
    memset (p + NBD_EXPORT_NAME_REPLY_SIZE, 0, NBD_EXPORT_NAME_PADDING);
  return vd_nbd_export_name_reply_size (no_zeroes);
}

int
vd_nbd_decode_export_name_reply (const void *buf, size_t len, uint64_t *size,
                                 uint16_t *transmission_flags,
                                 const char **why)
{
  const unsigned char *p = buf;

  if (len < NBD_EXPORT_NAME_REPLY_SIZE)
    FAIL ("short reply to NBD_OPT_EXPORT_NAME");
  *size = load_be64 (p);
  *transmission_flags = load_be16 (p + 8);
  if (!(*transmission_flags & NBD_FLAG_HAS_FLAGS))
    FAIL ("transmission flags without HAS_FLAGS");
  return 0;
}

/* ---- Requests --------------------------------------------------------- */

size_t
vd_nbd_request_size (bool extended)
{
  return extended ? NBD_EXTENDED_REQUEST_SIZE : NBD_REQUEST_SIZE;
}

size_t
vd_nbd_encode_request (void *buf, bool extended,
                       const struct vd_nbd_request *r)
{
  unsigned char *p = buf;

  if (!extended && r->length > UINT32_MAX)
    return 0;
  store_be32 (p, extended ? NBD_EXTENDED_REQUEST_MAGIC : NBD_REQUEST_MAGIC);
  store_be16 (p + 4, r->flags);
  store_be16 (p + 6, r->type);
  store_be64 (p + 8, r->cookie);
  store_be64 (p + 16, r->offset);
  if (extended)
    store_be64 (p + 24, r->length);
  else
    store_be32 (p + 24, (uint32_t) r->length);
  return vd_nbd_request_size (extended);
}

int
vd_nbd_decode_request (const void *buf, size_t len, bool extended,
                       struct vd_nbd_request *r, const char **why)
{
  const unsigned char *p = buf;
  uint32_t magic;

  if (len < vd_nbd_request_size (extended))
    FAIL ("short request header");
  magic = load_be32 (p);
  if (magic != (extended ? NBD_EXTENDED_REQUEST_MAGIC : NBD_REQUEST_MAGIC)) {
    if (magic == NBD_EXTENDED_REQUEST_MAGIC)
      FAIL ("extended request without negotiated extended headers");
    if (magic == NBD_REQUEST_MAGIC)
      FAIL ("compact request after negotiating extended headers");
    FAIL ("bad request magic");
  }
  r->flags = load_be16 (p + 4);
  r->type = load_be16 (p + 6);
  r->cookie = load_be64 (p + 8);
  r->offset = load_be64 (p + 16);
  r->length = extended ? load_be64 (p + 24) : load_be32 (p + 24);
  return 0;
}

uint64_t
vd_nbd_request_payload_length (const struct vd_nbd_request *r, bool extended)
{
  if (extended)
    return (r->flags & NBD_CMD_FLAG_PAYLOAD_LEN) ? r->length : 0;
  return r->type == NBD_CMD_WRITE ? r->length : 0;
}

#define REJECT(err, msg) do {                   \
    *nbd_error = (err);                         \
    WHY (msg);                                  \
    return -1;                                  \
  } while (0)

int
vd_nbd_validate_request (const struct vd_nbd_request *r,
                         const struct vd_nbd_tx_state *st,
                         uint32_t *nbd_error, const char **why)
{
  const uint16_t tf = st->transmission_flags;
  const bool ro = (tf & NBD_FLAG_READ_ONLY) != 0;
  uint16_t allowed = 0;
  uint64_t end, effect_len = r->length;
  bool is_write_cmd = false, payload_flag;

  *nbd_error = 0;
  payload_flag = (r->flags & NBD_CMD_FLAG_PAYLOAD_LEN) != 0;

  /* Flags each command may carry (when the server offered them). */
  switch (r->type) {
  case NBD_CMD_READ:
    if (tf & NBD_FLAG_SEND_DF)
      allowed |= NBD_CMD_FLAG_DF;
    break;
  case NBD_CMD_WRITE:
    is_write_cmd = true;
    if (st->extended_headers)
      allowed |= NBD_CMD_FLAG_PAYLOAD_LEN;
    break;
  case NBD_CMD_WRITE_ZEROES:
    is_write_cmd = true;
    allowed |= NBD_CMD_FLAG_NO_HOLE;
    if (tf & NBD_FLAG_SEND_FAST_ZERO)
      allowed |= NBD_CMD_FLAG_FAST_ZERO;
    break;
  case NBD_CMD_TRIM:
    is_write_cmd = true;
    break;
  case NBD_CMD_BLOCK_STATUS:
    allowed |= NBD_CMD_FLAG_REQ_ONE;
    break;
  case NBD_CMD_FLUSH:
  case NBD_CMD_CACHE:
  case NBD_CMD_DISC:
    break;
  default:
    REJECT (NBD_EINVAL, "unknown command");
  }
  /* FUA is valid on any command when offered (servers accept and ignore
   * it where it means nothing).
   */
  if (tf & NBD_FLAG_SEND_FUA)
    allowed |= NBD_CMD_FLAG_FUA;
  if (r->flags & NBD_CMD_FLAG_PAYLOAD_LEN & ~allowed)
    REJECT (NBD_EINVAL, "PAYLOAD_LEN flag on a command that takes no "
            "payload");
  if (r->flags & ~allowed)
    REJECT (NBD_EINVAL, "command flags not valid for this command or not "
            "offered by the server");
  if (st->extended_headers && r->type == NBD_CMD_WRITE && !payload_flag)
    REJECT (NBD_EINVAL, "extended NBD_CMD_WRITE without the PAYLOAD_LEN "
            "flag");

  /* Capabilities the server did not advertise. */
  switch (r->type) {
  case NBD_CMD_FLUSH:
    if (!(tf & NBD_FLAG_SEND_FLUSH))
      REJECT (NBD_EINVAL, "NBD_CMD_FLUSH was not offered");
    break;
  case NBD_CMD_TRIM:
    if (!(tf & NBD_FLAG_SEND_TRIM) && !ro)
      REJECT (NBD_EINVAL, "NBD_CMD_TRIM was not offered");
    break;
  case NBD_CMD_WRITE_ZEROES:
    if (!(tf & NBD_FLAG_SEND_WRITE_ZEROES) && !ro)
      REJECT (NBD_EINVAL, "NBD_CMD_WRITE_ZEROES was not offered");
    break;
  case NBD_CMD_BLOCK_STATUS:
    if (!st->structured_replies && !st->extended_headers)
      REJECT (NBD_EINVAL, "NBD_CMD_BLOCK_STATUS without structured replies");
    if (st->nr_meta_contexts == 0)
      REJECT (NBD_EINVAL, "NBD_CMD_BLOCK_STATUS without a selected "
              "metadata context");
    break;
  default:
    break;
  }
  if (is_write_cmd && ro)
    REJECT (NBD_EPERM, "write to a read-only export");

  if (r->type == NBD_CMD_FLUSH || r->type == NBD_CMD_DISC) {
    if (r->offset != 0 || r->length != 0)
      REJECT (NBD_EINVAL, "offset and length must be zero");
    return 0;
  }

  /* Payload and effect lengths. */
  if (r->type == NBD_CMD_WRITE || (r->type == NBD_CMD_READ &&
                                   !st->structured_replies &&
                                   !st->extended_headers)) {
    if (r->length > st->max_payload)
      REJECT (NBD_EINVAL, "payload larger than the maximum request size");
  }
  else if (r->type == NBD_CMD_READ) {
    /* Structured reads are split by the server, but it never reads more
     * than the maximum payload at once: refuse up front.
     */
    if (r->length > st->max_payload)
      REJECT (NBD_EOVERFLOW, "read larger than the maximum request size");
  }
  else if (r->type == NBD_CMD_BLOCK_STATUS) {
    /* The length is only a hint: any value is fine. */
  }
  else if (!st->extended_headers && effect_len > UINT32_MAX) {
    /* Cannot happen on the wire (compact lengths are 32 bits). */
    REJECT (NBD_EINVAL, "length too large");
  }

  if (r->type == NBD_CMD_BLOCK_STATUS && r->length == 0)
    REJECT (NBD_EINVAL, "NBD_CMD_BLOCK_STATUS with length 0");

  /* Range, overflow-checked: writes past the end are ENOSPC (as the
   * specification asks), everything else EINVAL.
   */
  if (ADD_OVERFLOW (r->offset, effect_len, &end) || end > st->export_size) {
    if (r->type == NBD_CMD_WRITE || r->type == NBD_CMD_WRITE_ZEROES)
      REJECT (NBD_ENOSPC, "request beyond the end of the export");
    REJECT (NBD_EINVAL, "request beyond the end of the export");
  }
  if (st->min_block > 1 &&
      (r->offset % st->min_block != 0 || r->length % st->min_block != 0))
    REJECT (NBD_EINVAL, "request not aligned to the minimum block size");
  return 0;
}

/* ---- Replies ---------------------------------------------------------- */

size_t
vd_nbd_encode_simple_reply (void *buf, uint64_t cookie, uint32_t nbd_error)
{
  unsigned char *p = buf;

  store_be32 (p, NBD_SIMPLE_REPLY_MAGIC);
  store_be32 (p + 4, nbd_error);
  store_be64 (p + 8, cookie);
  return NBD_SIMPLE_REPLY_SIZE;
}

size_t
vd_nbd_chunk_header_size (bool extended)
{
  return extended ? NBD_EXTENDED_REPLY_SIZE : NBD_STRUCTURED_REPLY_SIZE;
}

size_t
vd_nbd_encode_chunk_header (void *buf, bool extended, uint16_t flags,
                            uint16_t type, uint64_t cookie, uint64_t offset,
                            uint64_t length)
{
  unsigned char *p = buf;

  if (!extended && length > UINT32_MAX)
    return 0;
  store_be32 (p, extended ? NBD_EXTENDED_REPLY_MAGIC
              : NBD_STRUCTURED_REPLY_MAGIC);
  store_be16 (p + 4, flags);
  store_be16 (p + 6, type);
  store_be64 (p + 8, cookie);
  if (extended) {
    store_be64 (p + 16, offset);
    store_be64 (p + 24, length);
  }
  else
    store_be32 (p + 16, (uint32_t) length);
  return vd_nbd_chunk_header_size (extended);
}

size_t
vd_nbd_reply_header_size (const void *buf, size_t len)
{
  if (len < 4)
    return 0;
  switch (load_be32 (buf)) {
  case NBD_SIMPLE_REPLY_MAGIC: return NBD_SIMPLE_REPLY_SIZE;
  case NBD_STRUCTURED_REPLY_MAGIC: return NBD_STRUCTURED_REPLY_SIZE;
  case NBD_EXTENDED_REPLY_MAGIC: return NBD_EXTENDED_REPLY_SIZE;
  default: return 0;
  }
}

int
vd_nbd_decode_reply (const void *buf, size_t len, bool structured,
                     bool extended, struct vd_nbd_reply *r, const char **why)
{
  const unsigned char *p = buf;
  size_t hsize = vd_nbd_reply_header_size (buf, len);

  memset (r, 0, sizeof *r);
  if (len < 4)
    FAIL ("short reply header");
  if (hsize == 0)
    FAIL ("bad reply magic");
  if (len < hsize)
    FAIL ("short reply header");
  switch (load_be32 (p)) {
  case NBD_SIMPLE_REPLY_MAGIC:
    if (extended)
      FAIL ("simple reply after negotiating extended headers");
    r->kind = VD_NBD_REPLY_SIMPLE;
    r->error = load_be32 (p + 4);
    r->cookie = load_be64 (p + 8);
    return 0;
  case NBD_STRUCTURED_REPLY_MAGIC:
    if (extended)
      FAIL ("structured reply after negotiating extended headers");
    if (!structured)
      FAIL ("structured reply without negotiating structured replies");
    r->kind = VD_NBD_REPLY_STRUCTURED;
    r->flags = load_be16 (p + 4);
    r->type = load_be16 (p + 6);
    r->cookie = load_be64 (p + 8);
    r->length = load_be32 (p + 16);
    break;
  default:                      /* NBD_EXTENDED_REPLY_MAGIC */
    if (!extended)
      FAIL ("extended reply without negotiating extended headers");
    r->kind = VD_NBD_REPLY_EXTENDED;
    r->flags = load_be16 (p + 4);
    r->type = load_be16 (p + 6);
    r->cookie = load_be64 (p + 8);
    r->offset = load_be64 (p + 16);
    r->length = load_be64 (p + 24);
    break;
  }
  if (r->type == NBD_REPLY_TYPE_NONE) {
    if (r->length != 0)
      FAIL ("NBD_REPLY_TYPE_NONE chunk with a payload");
    if (!(r->flags & NBD_REPLY_FLAG_DONE))
      FAIL ("NBD_REPLY_TYPE_NONE chunk without the DONE flag");
  }
  return 0;
}

size_t
vd_nbd_encode_offset_data_prefix (void *buf, uint64_t offset)
{
  store_be64 (buf, offset);
  return VD_NBD_OFFSET_DATA_PREFIX_SIZE;
}

size_t
vd_nbd_encode_offset_hole (void *buf, uint64_t offset, uint32_t hole_len)
{
  unsigned char *p = buf;

  store_be64 (p, offset);
  store_be32 (p + 8, hole_len);
  return VD_NBD_OFFSET_HOLE_SIZE;
}

/* Length of msg cut to at most max bytes without splitting a UTF-8
 * sequence.
 */
static size_t
utf8_truncate (const char *msg, size_t len, size_t max)
{
  if (len <= max)
    return len;
  len = max;
  while (len > 0 && ((unsigned char) msg[len] & 0xc0) == 0x80)
    len--;
  return len;
}

ssize_t
vd_nbd_encode_error_chunk (void *buf, size_t cap, uint32_t nbd_error,
                           const char *msg, size_t msg_len, bool with_offset,
                           uint64_t offset)
{
  unsigned char *p = buf;
  size_t need;

  msg_len = utf8_truncate (msg, msg_len, NBD_MAX_STRING);
  need = 6 + msg_len + (with_offset ? 8 : 0);
  if (need > cap)
    return need;
  store_be32 (p, nbd_error);
  store_be16 (p + 4, msg_len);
  if (msg_len)
    memcpy (p + 6, msg, msg_len);
  if (with_offset)
    store_be64 (p + 6 + msg_len, offset);
  return need;
}

size_t
vd_nbd_block_status_header_size (bool extended)
{
  return extended ? 8 : 4;
}

size_t
vd_nbd_block_descriptor_size (bool extended)
{
  return extended ? 16 : 8;
}

size_t
vd_nbd_encode_block_status_header (void *buf, bool extended,
                                   uint32_t context_id,
                                   uint32_t nr_descriptors)
{
  unsigned char *p = buf;

  store_be32 (p, context_id);
  if (extended)
    store_be32 (p + 4, nr_descriptors);
  return vd_nbd_block_status_header_size (extended);
}

size_t
vd_nbd_encode_block_descriptor (void *buf, bool extended, uint64_t length,
                                uint64_t status)
{
  unsigned char *p = buf;

  if (extended) {
    store_be64 (p, length);
    store_be64 (p + 8, status);
    return 16;
  }
  if (length > UINT32_MAX || status > UINT32_MAX)
    return 0;
  store_be32 (p, (uint32_t) length);
  store_be32 (p + 4, (uint32_t) status);
  return 8;
}

/* Is [off, off + len) within [req_off, req_off + req_len)? */
static bool
within (uint64_t off, uint64_t len, uint64_t req_off, uint64_t req_len)
{
  uint64_t end, req_end;

  if (ADD_OVERFLOW (off, len, &end) || ADD_OVERFLOW (req_off, req_len,
                                                      &req_end))
    return false;
  return off >= req_off && end <= req_end;
}

int
vd_nbd_decode_offset_data (const void *payload, size_t len,
                           uint64_t req_offset, uint64_t req_length,
                           struct vd_nbd_offset_data *d, const char **why)
{
  const unsigned char *p = payload;

  if (len < 9)
    FAIL ("NBD_REPLY_TYPE_OFFSET_DATA chunk shorter than 9 bytes");
  d->offset = load_be64 (p);
  d->data = p + 8;
  d->data_len = len - 8;
  if (!within (d->offset, d->data_len, req_offset, req_length))
    FAIL ("NBD_REPLY_TYPE_OFFSET_DATA chunk outside the request");
  return 0;
}

int
vd_nbd_decode_offset_hole (const void *payload, size_t len,
                           uint64_t req_offset, uint64_t req_length,
                           uint64_t *offset, uint32_t *hole_len,
                           const char **why)
{
  const unsigned char *p = payload;

  if (len != VD_NBD_OFFSET_HOLE_SIZE)
    FAIL ("NBD_REPLY_TYPE_OFFSET_HOLE chunk is not 12 bytes");
  *offset = load_be64 (p);
  *hole_len = load_be32 (p + 8);
  if (*hole_len == 0)
    FAIL ("NBD_REPLY_TYPE_OFFSET_HOLE chunk with a zero length");
  if (!within (*offset, *hole_len, req_offset, req_length))
    FAIL ("NBD_REPLY_TYPE_OFFSET_HOLE chunk outside the request");
  return 0;
}

int
vd_nbd_decode_error_chunk (const void *payload, size_t len, uint16_t type,
                           struct vd_nbd_error_chunk *e, const char **why)
{
  const unsigned char *p = payload;
  uint16_t mlen;

  memset (e, 0, sizeof *e);
  if (!NBD_REPLY_TYPE_IS_ERR (type))
    FAIL ("not an error chunk type");
  if (len < 6)
    FAIL ("error chunk shorter than 6 bytes");
  e->error = load_be32 (p);
  mlen = load_be16 (p + 4);
  if (e->error == 0)
    FAIL ("error chunk with error 0");
  if (mlen > len - 6)
    FAIL ("error chunk message runs past the chunk");
  if (mlen > NBD_MAX_STRING)
    FAIL ("error chunk message longer than 4096 bytes");
  e->msg = (const char *) p + 6;
  e->msg_len = mlen;
  if (type == NBD_REPLY_TYPE_ERROR_OFFSET) {
    if (len - 6 - mlen != 8)
      FAIL ("NBD_REPLY_TYPE_ERROR_OFFSET chunk has the wrong length");
    e->has_offset = true;
    e->offset = load_be64 (p + 6 + mlen);
  }
  else if (type == NBD_REPLY_TYPE_ERROR && len - 6 - mlen != 0)
    FAIL ("NBD_REPLY_TYPE_ERROR chunk has trailing bytes");
  return 0;
}

int
vd_nbd_decode_block_status (const void *payload, size_t len, uint16_t type,
                            struct vd_nbd_block_status *bs, const char **why)
{
  const unsigned char *p = payload;
  size_t n;

  memset (bs, 0, sizeof *bs);
  if (type == NBD_REPLY_TYPE_BLOCK_STATUS) {
    if (len < 12 || (len - 4) % 8 != 0)
      FAIL ("NBD_REPLY_TYPE_BLOCK_STATUS chunk length is not 4 + 8n "
            "(n >= 1)");
    n = (len - 4) / 8;
    if (n > UINT32_MAX)
      FAIL ("too many block status descriptors");
    bs->context_id = load_be32 (p);
    bs->nr_descriptors = (uint32_t) n;
    bs->descriptors = p + 4;
  }
  else if (type == NBD_REPLY_TYPE_BLOCK_STATUS_EXT) {
    if (len < 24 || (len - 8) % 16 != 0)
      FAIL ("NBD_REPLY_TYPE_BLOCK_STATUS_EXT chunk length is not 8 + 16n "
            "(n >= 1)");
    n = (len - 8) / 16;
    bs->context_id = load_be32 (p);
    if (load_be32 (p + 4) != n)
      FAIL ("NBD_REPLY_TYPE_BLOCK_STATUS_EXT descriptor count does not "
            "match the chunk length");
    bs->nr_descriptors = (uint32_t) n;
    bs->extended = true;
    bs->descriptors = p + 8;
  }
  else
    FAIL ("not a block status chunk type");
  for (uint32_t i = 0; i < bs->nr_descriptors; ++i) {
    uint64_t l, s;
    vd_nbd_block_status_get (bs, i, &l, &s);
    if (l == 0)
      FAIL ("block status descriptor with a zero length");
  }
  return 0;
}

void
vd_nbd_block_status_get (const struct vd_nbd_block_status *bs, uint32_t i,
                         uint64_t *length, uint64_t *status)
{
  if (bs->extended) {
    *length = load_be64 (bs->descriptors + 16 * (size_t) i);
    *status = load_be64 (bs->descriptors + 16 * (size_t) i + 8);
  }
  else {
    *length = load_be32 (bs->descriptors + 8 * (size_t) i);
    *status = load_be32 (bs->descriptors + 8 * (size_t) i + 4);
  }
}

/* ---- Errors ------------------------------------------------------------ */

uint32_t
vd_nbd_errno_to_wire (int err, bool fast_zero)
{
  switch (err) {
  case 0: return 0;
  case EPERM:
  case EROFS:
  case EACCES:
    return NBD_EPERM;
  case ENOSPC:
  case EFBIG:
  case EDQUOT:
    return NBD_ENOSPC;
  case EINVAL: return NBD_EINVAL;
  case EOVERFLOW: return NBD_EOVERFLOW;
#if EOPNOTSUPP != ENOTSUP
  case EOPNOTSUPP:
#endif
  case ENOTSUP:
    return fast_zero ? NBD_ENOTSUP : NBD_EINVAL;
  case ESHUTDOWN: return NBD_ESHUTDOWN;
  case ENOMEM: return NBD_ENOMEM;
  default: return NBD_EIO;
  }
}

int
vd_nbd_wire_to_errno (uint32_t nbd_error)
{
  switch (nbd_error) {
  case 0: return 0;
  case NBD_EPERM: return EPERM;
  case NBD_EIO: return EIO;
  case NBD_ENOMEM: return ENOMEM;
  case NBD_EINVAL: return EINVAL;
  case NBD_ENOSPC: return ENOSPC;
  case NBD_EOVERFLOW: return EOVERFLOW;
  case NBD_ENOTSUP: return ENOTSUP;
  case NBD_ESHUTDOWN: return ESHUTDOWN;
  default: return EINVAL;
  }
}

/* ---- Names ------------------------------------------------------------- */

const char *
vd_nbd_opt_name (uint32_t option)
{
  switch (option) {
  case NBD_OPT_EXPORT_NAME: return "NBD_OPT_EXPORT_NAME";
  case NBD_OPT_ABORT: return "NBD_OPT_ABORT";
  case NBD_OPT_LIST: return "NBD_OPT_LIST";
  case NBD_OPT_PEEK_EXPORT: return "NBD_OPT_PEEK_EXPORT";
  case NBD_OPT_STARTTLS: return "NBD_OPT_STARTTLS";
  case NBD_OPT_INFO: return "NBD_OPT_INFO";
  case NBD_OPT_GO: return "NBD_OPT_GO";
  case NBD_OPT_STRUCTURED_REPLY: return "NBD_OPT_STRUCTURED_REPLY";
  case NBD_OPT_LIST_META_CONTEXT: return "NBD_OPT_LIST_META_CONTEXT";
  case NBD_OPT_SET_META_CONTEXT: return "NBD_OPT_SET_META_CONTEXT";
  case NBD_OPT_EXTENDED_HEADERS: return "NBD_OPT_EXTENDED_HEADERS";
  default: return "unknown";
  }
}

const char *
vd_nbd_rep_name (uint32_t reply_type)
{
  switch (reply_type) {
  case NBD_REP_ACK: return "NBD_REP_ACK";
  case NBD_REP_SERVER: return "NBD_REP_SERVER";
  case NBD_REP_INFO: return "NBD_REP_INFO";
  case NBD_REP_META_CONTEXT: return "NBD_REP_META_CONTEXT";
  case NBD_REP_ERR_UNSUP: return "NBD_REP_ERR_UNSUP";
  case NBD_REP_ERR_POLICY: return "NBD_REP_ERR_POLICY";
  case NBD_REP_ERR_INVALID: return "NBD_REP_ERR_INVALID";
  case NBD_REP_ERR_PLATFORM: return "NBD_REP_ERR_PLATFORM";
  case NBD_REP_ERR_TLS_REQD: return "NBD_REP_ERR_TLS_REQD";
  case NBD_REP_ERR_UNKNOWN: return "NBD_REP_ERR_UNKNOWN";
  case NBD_REP_ERR_SHUTDOWN: return "NBD_REP_ERR_SHUTDOWN";
  case NBD_REP_ERR_BLOCK_SIZE_REQD: return "NBD_REP_ERR_BLOCK_SIZE_REQD";
  case NBD_REP_ERR_TOO_BIG: return "NBD_REP_ERR_TOO_BIG";
  case NBD_REP_ERR_EXT_HEADER_REQD: return "NBD_REP_ERR_EXT_HEADER_REQD";
  default: return "unknown";
  }
}

const char *
vd_nbd_info_name (uint16_t info_type)
{
  switch (info_type) {
  case NBD_INFO_EXPORT: return "NBD_INFO_EXPORT";
  case NBD_INFO_NAME: return "NBD_INFO_NAME";
  case NBD_INFO_DESCRIPTION: return "NBD_INFO_DESCRIPTION";
  case NBD_INFO_BLOCK_SIZE: return "NBD_INFO_BLOCK_SIZE";
  default: return "unknown";
  }
}

const char *
vd_nbd_cmd_name (uint16_t command)
{
  switch (command) {
  case NBD_CMD_READ: return "NBD_CMD_READ";
  case NBD_CMD_WRITE: return "NBD_CMD_WRITE";
  case NBD_CMD_DISC: return "NBD_CMD_DISC";
  case NBD_CMD_FLUSH: return "NBD_CMD_FLUSH";
  case NBD_CMD_TRIM: return "NBD_CMD_TRIM";
  case NBD_CMD_CACHE: return "NBD_CMD_CACHE";
  case NBD_CMD_WRITE_ZEROES: return "NBD_CMD_WRITE_ZEROES";
  case NBD_CMD_BLOCK_STATUS: return "NBD_CMD_BLOCK_STATUS";
  case NBD_CMD_RESIZE: return "NBD_CMD_RESIZE";
  default: return "unknown";
  }
}

const char *
vd_nbd_reply_type_name (uint16_t chunk_type)
{
  switch (chunk_type) {
  case NBD_REPLY_TYPE_NONE: return "NBD_REPLY_TYPE_NONE";
  case NBD_REPLY_TYPE_OFFSET_DATA: return "NBD_REPLY_TYPE_OFFSET_DATA";
  case NBD_REPLY_TYPE_OFFSET_HOLE: return "NBD_REPLY_TYPE_OFFSET_HOLE";
  case NBD_REPLY_TYPE_BLOCK_STATUS: return "NBD_REPLY_TYPE_BLOCK_STATUS";
  case NBD_REPLY_TYPE_BLOCK_STATUS_EXT:
    return "NBD_REPLY_TYPE_BLOCK_STATUS_EXT";
  case NBD_REPLY_TYPE_ERROR: return "NBD_REPLY_TYPE_ERROR";
  case NBD_REPLY_TYPE_ERROR_OFFSET: return "NBD_REPLY_TYPE_ERROR_OFFSET";
  default: return "unknown";
  }
}

const char *
vd_nbd_error_name (uint32_t nbd_error)
{
  switch (nbd_error) {
  case 0: return "success";
  case NBD_EPERM: return "NBD_EPERM";
  case NBD_EIO: return "NBD_EIO";
  case NBD_ENOMEM: return "NBD_ENOMEM";
  case NBD_EINVAL: return "NBD_EINVAL";
  case NBD_ENOSPC: return "NBD_ENOSPC";
  case NBD_EOVERFLOW: return "NBD_EOVERFLOW";
  case NBD_ENOTSUP: return "NBD_ENOTSUP";
  case NBD_ESHUTDOWN: return "NBD_ESHUTDOWN";
  default: return "unknown";
  }
}

static const char *
flags_string (uint16_t flags, const char *const names[16], char *buf,
              size_t len)
{
  size_t pos = 0;
  uint16_t unknown = 0;

  if (len == 0)
    return buf;
  buf[0] = '\0';
  for (int i = 0; i < 16; ++i) {
    if (!(flags & (1u << i)))
      continue;
    if (names[i] == NULL) {
      unknown |= 1u << i;
      continue;
    }
    int n = snprintf (buf + pos, len - pos, "%s%s", pos ? "|" : "", names[i]);
    if (n < 0 || (size_t) n >= len - pos)
      return buf;
    pos += n;
  }
  if (unknown)
    snprintf (buf + pos, len - pos, "%s0x%" PRIx16, pos ? "|" : "", unknown);
  else if (pos == 0)
    snprintf (buf, len, "0");
  return buf;
}

const char *
vd_nbd_cmd_flags_string (uint16_t flags, char *buf, size_t len)
{
  static const char *const names[16] = {
    "FUA", "NO_HOLE", "DF", "REQ_ONE", "FAST_ZERO", "PAYLOAD_LEN",
  };
  return flags_string (flags, names, buf, len);
}

const char *
vd_nbd_tx_flags_string (uint16_t flags, char *buf, size_t len)
{
  static const char *const names[16] = {
    "HAS_FLAGS", "READ_ONLY", "SEND_FLUSH", "SEND_FUA", "ROTATIONAL",
    "SEND_TRIM", "SEND_WRITE_ZEROES", "SEND_DF", "CAN_MULTI_CONN",
    "SEND_RESIZE", "SEND_CACHE", "SEND_FAST_ZERO", "BLOCK_STAT_PAYLOAD",
  };
  return flags_string (flags, names, buf, len);
}
