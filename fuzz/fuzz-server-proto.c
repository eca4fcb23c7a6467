/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Fuzz target: every decoder of proto/nbd-proto.c, on both sides of the
 * wire (what a server parses from a client and what a client parses
 * from a server).  The first byte picks the decoder, the rest is the
 * message.  Decoded results are re-encoded where an encoder exists and
 * must decode to the same values.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-proto.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static unsigned char out[2 * 65536 + 64];

static void
check_meta (const unsigned char *p, size_t len)
{
  struct vd_nbd_meta_request mr;
  const char *q, *leaf;
  uint32_t ql;
  size_t pos = 0, n = 0, nsl, ll;

  if (vd_nbd_decode_meta_request (p, len, &mr, NULL) == -1)
    return;
  while (vd_nbd_meta_request_next (&mr, &pos, &q, &ql)) {
    if (q + ql > (const char *) p + len)
      abort ();
    vd_nbd_meta_split (q, ql, &nsl, &leaf, &ll);
    n++;
  }
  if (n != mr.nr_queries)
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const unsigned char *p = data + 1;
  size_t len;
  const char *s1, *s2;
  uint32_t l1, l2, u32;
  uint64_t u64;
  uint16_t u16;

  if (size < 1)
    return 0;
  len = size - 1;
  switch (data[0] % 16) {
  case 0:
    vd_nbd_decode_greeting (p, len, &u16, NULL);
    vd_nbd_decode_client_flags (p, len, 3, &u32, NULL);
    break;
  case 1: {
    struct vd_nbd_option o;
    vd_nbd_decode_option_header (p, len, &o, NULL);
    break;
  }
  case 2: {
    struct vd_nbd_info_request ir;
    if (vd_nbd_decode_info_request (p, len, &ir, NULL) == 0) {
      uint16_t reqs[256];
      uint16_t n = ir.nr_requests < 256 ? ir.nr_requests : 256;
      struct vd_nbd_info_request ir2;
      ssize_t m;
      for (uint16_t i = 0; i < n; ++i)
        reqs[i] = vd_nbd_info_request_get (&ir, i);
      vd_nbd_info_request_has_duplicates (&ir);
      m = vd_nbd_encode_info_request (out, sizeof out, ir.name, ir.name_len,
                                      reqs, n, NULL);
      if (m < 0 || (size_t) m > sizeof out ||
          vd_nbd_decode_info_request (out, m, &ir2, NULL) == -1 ||
          ir2.name_len != ir.name_len ||
          memcmp (ir2.name, ir.name, ir.name_len) != 0)
        abort ();
    }
    break;
  }
  case 3:
    check_meta (p, len);
    break;
  case 4: {
    struct vd_nbd_option_reply r;
    vd_nbd_decode_option_reply_header (p, len, &r, NULL);
    vd_nbd_decode_rep_server (p, len, &s1, &l1, &s2, &l2, NULL);
    vd_nbd_decode_rep_meta_context (p, len, &u32, &s1, &l1, NULL);
    break;
  }
  case 5: {
    struct vd_nbd_info i;
    vd_nbd_decode_info (p, len, &i, NULL);
    vd_nbd_decode_export_name_reply (p, len, &u64, &u16, NULL);
    break;
  }
  case 6:
  case 7: {
    const bool ext = data[0] % 16 == 7;
    struct vd_nbd_request r, r2;
    if (vd_nbd_decode_request (p, len, ext, &r, NULL) == 0) {
      struct vd_nbd_tx_state st = {
        .export_size = 1 << 20, .transmission_flags = p[0] | (p[1] << 8),
        .structured_replies = p[2] & 1, .extended_headers = ext,
        .nr_meta_contexts = p[3] & 1, .min_block = 1u << (p[4] % 13),
        .max_payload = 65536,
      };
      uint32_t err;
      size_t n;
      vd_nbd_request_payload_length (&r, ext);
      if (vd_nbd_validate_request (&r, &st, &err, NULL) == -1 && err == 0)
        abort ();
      n = vd_nbd_encode_request (out, ext, &r);
      if (n == 0 || vd_nbd_decode_request (out, n, ext, &r2, NULL) == -1 ||
          r2.length != r.length || r2.offset != r.offset ||
          r2.cookie != r.cookie || r2.flags != r.flags || r2.type != r.type)
        abort ();
    }
    break;
  }
  case 8: {
    struct vd_nbd_reply r;
    vd_nbd_reply_header_size (p, len);
    vd_nbd_decode_reply (p, len, data[0] & 16, data[0] & 32, &r, NULL);
    break;
  }
  case 9: {
    struct vd_nbd_offset_data d;
    vd_nbd_decode_offset_data (p, len, 0, len * 2, &d, NULL);
    vd_nbd_decode_offset_hole (p, len, 100, 1 << 20, &u64, &u32, NULL);
    break;
  }
  case 10: {
    struct vd_nbd_error_chunk e;
    vd_nbd_decode_error_chunk (p, len, NBD_REPLY_TYPE_ERROR, &e, NULL);
    vd_nbd_decode_error_chunk (p, len, NBD_REPLY_TYPE_ERROR_OFFSET, &e, NULL);
    vd_nbd_decode_error_chunk (p, len, NBD_REPLY_TYPE_ERR (9), &e, NULL);
    if (len <= 4096 &&
        vd_nbd_encode_error_chunk (out, sizeof out, 5, (const char *) p, len,
                                   true, 7) > (ssize_t) sizeof out)
      abort ();
    break;
  }
  case 11:
  case 12: {
    struct vd_nbd_block_status bs;
    const uint16_t t = data[0] % 16 == 11 ? NBD_REPLY_TYPE_BLOCK_STATUS
      : NBD_REPLY_TYPE_BLOCK_STATUS_EXT;
    if (vd_nbd_decode_block_status (p, len, t, &bs, NULL) == 0)
      for (uint32_t i = 0; i < bs.nr_descriptors; ++i) {
        uint64_t l, st;
        vd_nbd_block_status_get (&bs, i, &l, &st);
        if (l == 0)
          abort ();
      }
    break;
  }
  default: {
    char buf[64];
    uint32_t v = len >= 4 ? (uint32_t) p[0] << 24 | p[1] << 16 | p[2] << 8 |
      p[3] : 0;
    vd_nbd_opt_name (v);
    vd_nbd_rep_name (v);
    vd_nbd_cmd_name (v);
    vd_nbd_error_name (v);
    vd_nbd_cmd_flags_string (v, buf, sizeof buf);
    vd_nbd_tx_flags_string (v, buf, 1 + v % sizeof buf);
    vd_nbd_wire_to_errno (v);
    vd_nbd_errno_to_wire ((int) v, v & 1);
    break;
  }
  }
  return 0;
}
