/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Unit tests for proto/nbd-proto.c: every encoder against its decoder,
 * the exact bytes of a few messages (checked against the layouts in the
 * specification), every decoder against malformed input, the request
 * validator, the errno mapping (table-driven) and the name helpers.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-proto.h"

static int failures;

#define T(expr) do {                                                    \
    if (!(expr)) {                                                      \
      fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
               #expr);                                                  \
      failures++;                                                       \
    }                                                                   \
  } while (0)

/* A decoder call must fail with a message containing substr. */
#define T_FAILS(call, substr) do {                                      \
    why = NULL;                                                         \
    int _r = call;                                                      \
    if (_r != -1 || why == NULL || strstr (why, (substr)) == NULL) {    \
      fprintf (stderr, "%s:%d: expected failure \"%s\": %s returned %d " \
               "(%s)\n", __FILE__, __LINE__, (substr), #call, _r,       \
               why ? why : "no message");                               \
      failures++;                                                       \
    }                                                                   \
  } while (0)

static void
test_greeting (void)
{
  unsigned char b[64];
  uint16_t hf;
  uint32_t cf;
  const char *why = NULL;
  static const unsigned char expect[18] = {
    'N', 'B', 'D', 'M', 'A', 'G', 'I', 'C',
    'I', 'H', 'A', 'V', 'E', 'O', 'P', 'T', 0, 3
  };

  T (vd_nbd_encode_greeting (b, NBD_FLAG_FIXED_NEWSTYLE |
                             NBD_FLAG_NO_ZEROES) == 18);
  T (memcmp (b, expect, 18) == 0);
  T (vd_nbd_decode_greeting (b, 18, &hf, &why) == 0 && hf == 3);
  T_FAILS (vd_nbd_decode_greeting (b, 17, &hf, &why), "short");
  b[0] = 'X';
  T_FAILS (vd_nbd_decode_greeting (b, 18, &hf, &why), "bad greeting magic");
  memcpy (b, "NBDMAGIC\0\0\x42\x02\x81\x86\x12\x53", 16);
  T_FAILS (vd_nbd_decode_greeting (b, 18, &hf, &why), "oldstyle");

  T (vd_nbd_encode_client_flags (b, 3) == 4);
  T (b[3] == 3 && b[0] == 0);
  T (vd_nbd_decode_client_flags (b, 4, 3, &cf, &why) == 0 && cf == 3);
  T_FAILS (vd_nbd_decode_client_flags (b, 4, NBD_FLAG_FIXED_NEWSTYLE, &cf,
                                       &why), "NO_ZEROES");
  T_FAILS (vd_nbd_decode_client_flags (b, 4, 0, &cf, &why),
           "FIXED_NEWSTYLE");
  vd_nbd_encode_client_flags (b, 4);
  T_FAILS (vd_nbd_decode_client_flags (b, 4, 3, &cf, &why), "unknown");
  T_FAILS (vd_nbd_decode_client_flags (b, 3, 3, &cf, &why), "short");
}

static void
test_options (void)
{
  unsigned char b[256];
  struct vd_nbd_option o;
  struct vd_nbd_info_request ir;
  struct vd_nbd_meta_request mr;
  const char *why = NULL;
  uint16_t reqs[] = { NBD_INFO_NAME, NBD_INFO_BLOCK_SIZE };
  const char *queries[] = { "base:allocation", "qemu:" };
  const char *q;
  uint32_t ql;
  size_t pos, nsl, leafl;
  const char *leaf;
  ssize_t n;

  T (vd_nbd_encode_option_header (b, NBD_OPT_GO, 42) == 16);
  T (vd_nbd_decode_option_header (b, 16, &o, &why) == 0);
  T (o.option == NBD_OPT_GO && o.length == 42);
  b[0] ^= 1;
  T_FAILS (vd_nbd_decode_option_header (b, 16, &o, &why), "IHAVEOPT");
  T_FAILS (vd_nbd_decode_option_header (b, 15, &o, &why), "short");

  /* INFO/GO: sizing call, then the real one. */
  n = vd_nbd_encode_info_request (NULL, 0, "disk", 4, reqs, 2, &why);
  T (n == 4 + 4 + 2 + 4);
  T (vd_nbd_encode_info_request (b, sizeof b, "disk", 4, reqs, 2, &why) == n);
  T (vd_nbd_decode_info_request (b, n, &ir, &why) == 0);
  T (ir.name_len == 4 && memcmp (ir.name, "disk", 4) == 0);
  T (ir.nr_requests == 2);
  T (vd_nbd_info_request_get (&ir, 1) == NBD_INFO_BLOCK_SIZE);
  T (vd_nbd_info_request_has (&ir, NBD_INFO_NAME));
  T (!vd_nbd_info_request_has (&ir, NBD_INFO_EXPORT));
  T (!vd_nbd_info_request_has_duplicates (&ir));
  reqs[1] = NBD_INFO_NAME;
  vd_nbd_encode_info_request (b, sizeof b, "disk", 4, reqs, 2, &why);
  T (vd_nbd_decode_info_request (b, n, &ir, &why) == 0);
  T (vd_nbd_info_request_has_duplicates (&ir));
  T_FAILS (vd_nbd_decode_info_request (b, n - 1, &ir, &why), "count");
  T_FAILS (vd_nbd_decode_info_request (b, 5, &ir, &why), "too short");
  /* A name length that points past the data (and one that would overflow
   * a naive 4 + len computation).
   */
  memcpy (b, "\xff\xff\xff\xfe", 4);
  T_FAILS (vd_nbd_decode_info_request (b, n, &ir, &why), "runs past");
  /* Empty name, no requests. */
  n = vd_nbd_encode_info_request (b, sizeof b, "", 0, NULL, 0, &why);
  T (n == 6);
  T (vd_nbd_decode_info_request (b, 6, &ir, &why) == 0 && ir.name_len == 0
     && ir.nr_requests == 0);
  {
    static char big[NBD_MAX_STRING + 2];
    memset (big, 'a', sizeof big);
    T_FAILS ((int) vd_nbd_encode_info_request (NULL, 0, big, sizeof big,
                                               NULL, 0, &why), "4096");
  }

  /* META_CONTEXT requests. */
  n = vd_nbd_encode_meta_request (b, sizeof b, "e", 1, queries, 2, &why);
  T (n == 4 + 1 + 4 + 4 + 15 + 4 + 5);
  T (vd_nbd_decode_meta_request (b, n, &mr, &why) == 0);
  T (mr.nr_queries == 2 && mr.name_len == 1 && mr.name[0] == 'e');
  pos = 0;
  T (vd_nbd_meta_request_next (&mr, &pos, &q, &ql) == 1);
  T (ql == 15 && memcmp (q, "base:allocation", 15) == 0);
  T (vd_nbd_meta_request_next (&mr, &pos, &q, &ql) == 1);
  T (ql == 5 && memcmp (q, "qemu:", 5) == 0);
  T (vd_nbd_meta_request_next (&mr, &pos, &q, &ql) == 0);
  T_FAILS (vd_nbd_decode_meta_request (b, n - 1, &mr, &why),
           "runs past");
  T_FAILS (vd_nbd_decode_meta_request (b, 7, &mr, &why), "too short");
  /* Trailing garbage. */
  b[n] = 0;
  T_FAILS (vd_nbd_decode_meta_request (b, n + 1, &mr, &why), "trailing");
  /* Query count larger than what follows. */
  b[8] = 9;
  T_FAILS (vd_nbd_decode_meta_request (b, n, &mr, &why), "");
  /* Huge query count with no queries. */
  n = vd_nbd_encode_meta_request (b, sizeof b, "", 0, NULL, 0, &why);
  T (n == 8);
  memcpy (b + 4, "\xff\xff\xff\xff", 4);
  T_FAILS (vd_nbd_decode_meta_request (b, n, &mr, &why), "count");

  T (vd_nbd_meta_split ("base:allocation", 15, &nsl, &leaf, &leafl) == 0);
  T (nsl == 4 && leafl == 10 && memcmp (leaf, "allocation", 10) == 0);
  T (vd_nbd_meta_split ("base:", 5, &nsl, &leaf, &leafl) == 0 && leafl == 0);
  T (vd_nbd_meta_split ("nocolon", 7, &nsl, &leaf, &leafl) == -1);
  T (vd_nbd_meta_split (":x", 2, &nsl, &leaf, &leafl) == -1);
}

static void
test_option_replies (void)
{
  unsigned char b[256];
  struct vd_nbd_option_reply r;
  struct vd_nbd_info i;
  const char *why = NULL, *s1, *s2;
  uint32_t l1, l2, id;
  uint64_t size;
  uint16_t tf;
  ssize_t n;

  T (vd_nbd_encode_option_reply_header (b, NBD_OPT_LIST, NBD_REP_SERVER, 9)
     == 20);
  T (vd_nbd_decode_option_reply_header (b, 20, &r, &why) == 0);
  T (r.option == NBD_OPT_LIST && r.type == NBD_REP_SERVER && r.length == 9);
  T (b[0] == 0 && b[1] == 3 && b[2] == 0xe8 && b[7] == 0xa9);
  b[7] = 0;
  T_FAILS (vd_nbd_decode_option_reply_header (b, 20, &r, &why), "magic");

  n = vd_nbd_encode_rep_server (b, sizeof b, "disk", 4, "a disk", 6, &why);
  T (n == 14);
  T (vd_nbd_decode_rep_server (b, n, &s1, &l1, &s2, &l2, &why) == 0);
  T (l1 == 4 && l2 == 6 && memcmp (s2, "a disk", 6) == 0);
  b[3] = 99;
  T_FAILS (vd_nbd_decode_rep_server (b, n, &s1, &l1, &s2, &l2, &why),
           "runs past");

  T (vd_nbd_encode_info_export (b, 1ull << 40, 0x1234) == 12);
  T (vd_nbd_decode_info (b, 12, &i, &why) == 0);
  T (i.type == NBD_INFO_EXPORT && i.size == 1ull << 40 &&
     i.transmission_flags == 0x1234);
  T_FAILS (vd_nbd_decode_info (b, 11, &i, &why), "wrong length");

  T (vd_nbd_encode_info_block_size (b, 1, 4096, 32 << 20) == 14);
  T (vd_nbd_decode_info (b, 14, &i, &why) == 0);
  T (i.minimum == 1 && i.preferred == 4096 && i.maximum == 32 << 20);
  vd_nbd_encode_info_block_size (b, 3, 4096, 32 << 20);
  T_FAILS (vd_nbd_decode_info (b, 14, &i, &why), "minimum");
  vd_nbd_encode_info_block_size (b, 512, 256, 32 << 20);
  T_FAILS (vd_nbd_decode_info (b, 14, &i, &why), "preferred");
  vd_nbd_encode_info_block_size (b, 512, 4096, 1024);
  T_FAILS (vd_nbd_decode_info (b, 14, &i, &why), "maximum");

  n = vd_nbd_encode_info_string (b, sizeof b, NBD_INFO_DESCRIPTION, "hi", 2,
                                 &why);
  T (n == 4);
  T (vd_nbd_decode_info (b, n, &i, &why) == 0);
  T (i.type == NBD_INFO_DESCRIPTION && i.str_len == 2);
  /* Unknown information types decode (clients ignore them). */
  b[1] = 77;
  T (vd_nbd_decode_info (b, n, &i, &why) == 0 && i.type == 77);
  T_FAILS (vd_nbd_decode_info (b, 1, &i, &why), "too short");

  n = vd_nbd_encode_rep_meta_context (b, sizeof b, 7, "base:allocation", 15,
                                      &why);
  T (n == 19);
  T (vd_nbd_decode_rep_meta_context (b, n, &id, &s1, &l1, &why) == 0);
  T (id == 7 && l1 == 15);
  T_FAILS (vd_nbd_decode_rep_meta_context (b, 4, &id, &s1, &l1, &why),
           "too short");

  T (vd_nbd_export_name_reply_size (false) == 134);
  T (vd_nbd_export_name_reply_size (true) == 10);
  memset (b, 0xff, sizeof b);
  T (vd_nbd_encode_export_name_reply (b, 512, 1, false) == 134);
  T (b[133] == 0 && b[134] == 0xff);
  T (vd_nbd_decode_export_name_reply (b, 10, &size, &tf, &why) == 0);
  T (size == 512 && tf == 1);
  vd_nbd_encode_export_name_reply (b, 512, 0, true);
  T_FAILS (vd_nbd_decode_export_name_reply (b, 10, &size, &tf, &why),
           "HAS_FLAGS");
}

static void
test_requests (void)
{
  unsigned char b[64];
  struct vd_nbd_request r = {
    .flags = NBD_CMD_FLAG_FUA, .type = NBD_CMD_WRITE,
    .cookie = 0x0102030405060708, .offset = 1ull << 33, .length = 4096,
  }, d;
  const char *why = NULL;
  static const unsigned char expect[28] = {
    0x25, 0x60, 0x95, 0x13, 0, 1, 0, 1,
    1, 2, 3, 4, 5, 6, 7, 8,
    0, 0, 0, 2, 0, 0, 0, 0,
    0, 0, 0x10, 0,
  };

  T (vd_nbd_encode_request (b, false, &r) == 28);
  T (memcmp (b, expect, 28) == 0);
  T (vd_nbd_decode_request (b, 28, false, &d, &why) == 0);
  T (d.flags == r.flags && d.type == r.type && d.cookie == r.cookie &&
     d.offset == r.offset && d.length == r.length);
  T (vd_nbd_request_payload_length (&d, false) == 4096);
  T_FAILS (vd_nbd_decode_request (b, 32, true, &d, &why),
           "compact request after");
  T_FAILS (vd_nbd_decode_request (b, 27, false, &d, &why), "short");

  r.length = 1ull << 40;
  T (vd_nbd_encode_request (b, false, &r) == 0);
  r.flags |= NBD_CMD_FLAG_PAYLOAD_LEN;
  T (vd_nbd_encode_request (b, true, &r) == 32);
  T (b[0] == 0x21 && b[3] == 0x71);
  T (vd_nbd_decode_request (b, 32, true, &d, &why) == 0);
  T (d.length == 1ull << 40 && d.flags == r.flags);
  T (vd_nbd_request_payload_length (&d, true) == 1ull << 40);
  d.flags &= ~NBD_CMD_FLAG_PAYLOAD_LEN;
  T (vd_nbd_request_payload_length (&d, true) == 0);
  T_FAILS (vd_nbd_decode_request (b, 32, false, &d, &why),
           "without negotiated");
  b[0] = 0;
  T_FAILS (vd_nbd_decode_request (b, 32, true, &d, &why), "bad request magic");

  /* A read never has a request payload. */
  r.type = NBD_CMD_READ;
  r.flags = 0;
  r.length = 512;
  T (vd_nbd_request_payload_length (&r, false) == 0);
}

/* One validator case. */
struct vcase {
  const char *name;
  uint16_t type, flags;
  uint64_t offset, length;
  uint32_t expect;              /* 0 = valid */
};

static void
run_vcases (const struct vd_nbd_tx_state *st, const struct vcase *c,
            size_t n)
{
  for (size_t i = 0; i < n; ++i) {
    struct vd_nbd_request r = {
      .flags = c[i].flags, .type = c[i].type, .cookie = i,
      .offset = c[i].offset, .length = c[i].length,
    };
    uint32_t err = 12345;
    const char *why = NULL;
    int ret = vd_nbd_validate_request (&r, st, &err, &why);
    if ((c[i].expect == 0 && (ret != 0 || err != 0)) ||
        (c[i].expect != 0 && (ret != -1 || err != c[i].expect ||
                              why == NULL))) {
      fprintf (stderr, "validate case \"%s\": got %d/%s (%s), expected %s\n",
               c[i].name, ret, vd_nbd_error_name (err), why ? why : "",
               vd_nbd_error_name (c[i].expect));
      failures++;
    }
  }
}

static void
test_validate (void)
{
  const uint16_t all = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
    NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
    NBD_FLAG_SEND_DF | NBD_FLAG_SEND_CACHE | NBD_FLAG_SEND_FAST_ZERO;
  struct vd_nbd_tx_state st = {
    .export_size = 1 << 20, .transmission_flags = all,
    .structured_replies = true, .nr_meta_contexts = 1, .min_block = 1,
    .max_payload = 65536,
  };
  const uint64_t M = 1 << 20;
  static const struct vcase rw[] = {
    { "read", NBD_CMD_READ, 0, 0, 4096, 0 },
    { "read to end", NBD_CMD_READ, 0, (1 << 20) - 512, 512, 0 },
    { "read zero length", NBD_CMD_READ, 0, 0, 0, 0 },
    { "read past end", NBD_CMD_READ, 0, (1 << 20) - 511, 512, NBD_EINVAL },
    { "read offset past end", NBD_CMD_READ, 0, 1 << 21, 1, NBD_EINVAL },
    { "read overflow", NBD_CMD_READ, 0, UINT64_MAX, 2, NBD_EINVAL },
    { "read DF", NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 4096, 0 },
    { "read FUA", NBD_CMD_READ, NBD_CMD_FLAG_FUA, 0, 4096, 0 },
    { "read REQ_ONE", NBD_CMD_READ, NBD_CMD_FLAG_REQ_ONE, 0, 1, NBD_EINVAL },
    { "read oversize", NBD_CMD_READ, 0, 0, 65537, NBD_EOVERFLOW },
    { "write", NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 512, 512, 0 },
    { "write past end", NBD_CMD_WRITE, 0, (1 << 20) - 1, 2, NBD_ENOSPC },
    { "write oversize", NBD_CMD_WRITE, 0, 0, 65537, NBD_EINVAL },
    { "write NO_HOLE", NBD_CMD_WRITE, NBD_CMD_FLAG_NO_HOLE, 0, 1, NBD_EINVAL },
    { "write PAYLOAD_LEN compact", NBD_CMD_WRITE, NBD_CMD_FLAG_PAYLOAD_LEN,
      0, 1, NBD_EINVAL },
    { "zero", NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE, 0, 1 << 20, 0 },
    { "zero fast", NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FAST_ZERO, 0, 1, 0 },
    { "zero past end", NBD_CMD_WRITE_ZEROES, 0, 1, 1 << 20, NBD_ENOSPC },
    { "trim", NBD_CMD_TRIM, 0, 0, 1 << 20, 0 },
    { "trim past end", NBD_CMD_TRIM, 0, 1, 1 << 20, NBD_EINVAL },
    { "trim DF", NBD_CMD_TRIM, NBD_CMD_FLAG_DF, 0, 1, NBD_EINVAL },
    { "flush", NBD_CMD_FLUSH, 0, 0, 0, 0 },
    { "flush with offset", NBD_CMD_FLUSH, 0, 1, 0, NBD_EINVAL },
    { "flush with length", NBD_CMD_FLUSH, 0, 0, 1, NBD_EINVAL },
    { "cache", NBD_CMD_CACHE, 0, 0, 4096, 0 },
    { "cache past end", NBD_CMD_CACHE, 0, 0, (1 << 20) + 1, NBD_EINVAL },
    { "block status", NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 0,
      1 << 20, 0 },
    { "block status zero", NBD_CMD_BLOCK_STATUS, 0, 0, 0, NBD_EINVAL },
    { "block status past end", NBD_CMD_BLOCK_STATUS, 0, 1, 1 << 20,
      NBD_EINVAL },
    { "disc", NBD_CMD_DISC, 0, 0, 0, 0 },
    { "disc with length", NBD_CMD_DISC, 0, 0, 1, NBD_EINVAL },
    { "resize", NBD_CMD_RESIZE, 0, 0, 0, NBD_EINVAL },
    { "unknown command", 99, 0, 0, 0, NBD_EINVAL },
    { "unknown flag", NBD_CMD_READ, 1 << 9, 0, 1, NBD_EINVAL },
  };
  static const struct vcase ro[] = {
    { "ro read", NBD_CMD_READ, 0, 0, 4096, 0 },
    { "ro write", NBD_CMD_WRITE, 0, 0, 4096, NBD_EPERM },
    { "ro zero", NBD_CMD_WRITE_ZEROES, 0, 0, 4096, NBD_EPERM },
    { "ro trim", NBD_CMD_TRIM, 0, 0, 4096, NBD_EPERM },
    { "ro flush not offered", NBD_CMD_FLUSH, 0, 0, 0, NBD_EINVAL },
    { "ro fua not offered", NBD_CMD_READ, NBD_CMD_FLAG_FUA, 0, 1,
      NBD_EINVAL },
    { "ro no DF", NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 1, NBD_EINVAL },
    { "ro cache not offered is fine", NBD_CMD_CACHE, 0, 0, 1, 0 },
  };
  static const struct vcase simple[] = {
    { "simple oversize read", NBD_CMD_READ, 0, 0, 65537, NBD_EINVAL },
    { "simple block status", NBD_CMD_BLOCK_STATUS, 0, 0, 1, NBD_EINVAL },
  };
  static const struct vcase aligned[] = {
    { "aligned", NBD_CMD_READ, 0, 512, 1024, 0 },
    { "misaligned offset", NBD_CMD_READ, 0, 1, 512, NBD_EINVAL },
    { "misaligned length", NBD_CMD_WRITE, 0, 0, 513, NBD_EINVAL },
  };
  static const struct vcase ext[] = {
    { "ext write", NBD_CMD_WRITE, NBD_CMD_FLAG_PAYLOAD_LEN, 0, 4096, 0 },
    { "ext write no PAYLOAD_LEN", NBD_CMD_WRITE, 0, 0, 4096, NBD_EINVAL },
    { "ext read PAYLOAD_LEN", NBD_CMD_READ, NBD_CMD_FLAG_PAYLOAD_LEN, 0, 8,
      NBD_EINVAL },
    { "ext huge zero", NBD_CMD_WRITE_ZEROES, 0, 0, 1ull << 40, NBD_ENOSPC },
    { "ext 64-bit trim", NBD_CMD_TRIM, 0, 0, 1ull << 33, 0 },
    { "ext 64-bit block status", NBD_CMD_BLOCK_STATUS, 0, 0, 1ull << 33, 0 },
  };

  (void) M;
  run_vcases (&st, rw, sizeof rw / sizeof rw[0]);
  st.transmission_flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY;
  run_vcases (&st, ro, sizeof ro / sizeof ro[0]);
  st.transmission_flags = all & ~NBD_FLAG_SEND_DF;
  st.structured_replies = false;
  run_vcases (&st, simple, sizeof simple / sizeof simple[0]);
  st.structured_replies = true;
  st.min_block = 512;
  run_vcases (&st, aligned, sizeof aligned / sizeof aligned[0]);
  st.min_block = 1;
  st.extended_headers = true;
  st.structured_replies = false;
  st.export_size = 1ull << 34;
  run_vcases (&st, ext, sizeof ext / sizeof ext[0]);
  /* No selected context. */
  st.nr_meta_contexts = 0;
  {
    static const struct vcase c[] = {
      { "no context", NBD_CMD_BLOCK_STATUS, 0, 0, 1, NBD_EINVAL },
    };
    run_vcases (&st, c, 1);
  }
}

static void
test_replies (void)
{
  unsigned char b[1024];
  struct vd_nbd_reply r;
  struct vd_nbd_offset_data od;
  struct vd_nbd_error_chunk ec;
  struct vd_nbd_block_status bs;
  const char *why = NULL;
  uint64_t off, l, s;
  uint32_t hl;
  ssize_t n;
  size_t p;

  T (vd_nbd_encode_simple_reply (b, 77, NBD_EIO) == 16);
  T (vd_nbd_reply_header_size (b, 4) == 16);
  T (vd_nbd_decode_reply (b, 16, false, false, &r, &why) == 0);
  T (r.kind == VD_NBD_REPLY_SIMPLE && r.error == NBD_EIO && r.cookie == 77);
  T_FAILS (vd_nbd_decode_reply (b, 16, false, true, &r, &why),
           "extended headers");
  T_FAILS (vd_nbd_decode_reply (b, 15, false, false, &r, &why), "short");

  T (vd_nbd_encode_chunk_header (b, false, NBD_REPLY_FLAG_DONE,
                                 NBD_REPLY_TYPE_NONE, 5, 0, 0) == 20);
  T (vd_nbd_reply_header_size (b, 20) == 20);
  T (vd_nbd_decode_reply (b, 20, true, false, &r, &why) == 0);
  T (r.kind == VD_NBD_REPLY_STRUCTURED && r.cookie == 5 &&
     r.flags == NBD_REPLY_FLAG_DONE);
  T_FAILS (vd_nbd_decode_reply (b, 20, false, false, &r, &why),
           "without negotiating structured");
  vd_nbd_encode_chunk_header (b, false, 0, NBD_REPLY_TYPE_NONE, 5, 0, 0);
  T_FAILS (vd_nbd_decode_reply (b, 20, true, false, &r, &why), "DONE");
  vd_nbd_encode_chunk_header (b, false, 1, NBD_REPLY_TYPE_NONE, 5, 0, 3);
  T_FAILS (vd_nbd_decode_reply (b, 20, true, false, &r, &why), "payload");
  T (vd_nbd_encode_chunk_header (b, false, 0, 1, 5, 0, 1ull << 32) == 0);

  T (vd_nbd_encode_chunk_header (b, true, 0, NBD_REPLY_TYPE_OFFSET_DATA, 9,
                                 4096, 1ull << 33) == 32);
  T (vd_nbd_reply_header_size (b, 32) == 32);
  T (vd_nbd_decode_reply (b, 32, false, true, &r, &why) == 0);
  T (r.kind == VD_NBD_REPLY_EXTENDED && r.offset == 4096 &&
     r.length == 1ull << 33);
  T_FAILS (vd_nbd_decode_reply (b, 32, true, false, &r, &why),
           "without negotiating extended");
  memset (b, 0, 4);
  T (vd_nbd_reply_header_size (b, 4) == 0);
  T_FAILS (vd_nbd_decode_reply (b, 32, true, true, &r, &why), "magic");

  /* Content chunks against a request [1000, 2000). */
  vd_nbd_encode_offset_data_prefix (b, 1500);
  memset (b + 8, 'x', 500);
  T (vd_nbd_decode_offset_data (b, 8 + 500, 1000, 1000, &od, &why) == 0);
  T (od.offset == 1500 && od.data_len == 500);
  T_FAILS (vd_nbd_decode_offset_data (b, 8 + 501, 1000, 1000, &od, &why),
           "outside");
  T_FAILS (vd_nbd_decode_offset_data (b, 8, 1000, 1000, &od, &why),
           "shorter");
  vd_nbd_encode_offset_data_prefix (b, UINT64_MAX - 1);
  T_FAILS (vd_nbd_decode_offset_data (b, 12, 1000, 1000, &od, &why),
           "outside");

  T (vd_nbd_encode_offset_hole (b, 1000, 1000) == 12);
  T (vd_nbd_decode_offset_hole (b, 12, 1000, 1000, &off, &hl, &why) == 0);
  T (off == 1000 && hl == 1000);
  T_FAILS (vd_nbd_decode_offset_hole (b, 12, 1001, 1000, &off, &hl, &why),
           "outside");
  T_FAILS (vd_nbd_decode_offset_hole (b, 13, 1000, 1000, &off, &hl, &why),
           "12");
  vd_nbd_encode_offset_hole (b, 1000, 0);
  T_FAILS (vd_nbd_decode_offset_hole (b, 12, 1000, 1000, &off, &hl, &why),
           "zero");

  /* Error chunks. */
  n = vd_nbd_encode_error_chunk (b, sizeof b, NBD_EIO, "bad", 3, false, 0);
  T (n == 9);
  T (vd_nbd_decode_error_chunk (b, n, NBD_REPLY_TYPE_ERROR, &ec, &why) == 0);
  T (ec.error == NBD_EIO && ec.msg_len == 3 && !ec.has_offset);
  T_FAILS (vd_nbd_decode_error_chunk (b, n + 1, NBD_REPLY_TYPE_ERROR, &ec,
                                      &why), "trailing");
  T_FAILS (vd_nbd_decode_error_chunk (b, n, NBD_REPLY_TYPE_NONE, &ec, &why),
           "not an error");
  /* An unknown error type decodes its common prefix. */
  T (vd_nbd_decode_error_chunk (b, n, NBD_REPLY_TYPE_ERR (77), &ec, &why)
     == 0 && ec.error == NBD_EIO);
  n = vd_nbd_encode_error_chunk (b, sizeof b, NBD_EIO, "x", 1, true, 4096);
  T (n == 15);
  T (vd_nbd_decode_error_chunk (b, n, NBD_REPLY_TYPE_ERROR_OFFSET, &ec,
                                &why) == 0);
  T (ec.has_offset && ec.offset == 4096);
  T_FAILS (vd_nbd_decode_error_chunk (b, n - 1, NBD_REPLY_TYPE_ERROR_OFFSET,
                                      &ec, &why), "wrong length");
  b[5] = 200;
  T_FAILS (vd_nbd_decode_error_chunk (b, n, NBD_REPLY_TYPE_ERROR_OFFSET, &ec,
                                      &why), "runs past");
  vd_nbd_encode_error_chunk (b, sizeof b, 0, "", 0, false, 0);
  T_FAILS (vd_nbd_decode_error_chunk (b, 6, NBD_REPLY_TYPE_ERROR, &ec, &why),
           "error 0");
  /* Long messages are cut at 4096 bytes, never inside a UTF-8 sequence. */
  {
    static char msg[5000];
    static unsigned char big[6000];
    memset (msg, 'a', sizeof msg);
    memcpy (msg + 4095, "\xc3\xa9", 2);   /* 'é' across the limit */
    n = vd_nbd_encode_error_chunk (big, sizeof big, NBD_EIO, msg, sizeof msg,
                                   false, 0);
    T (n == 6 + 4095);
  }

  /* Block status, both forms. */
  p = vd_nbd_encode_block_status_header (b, false, 3, 2);
  T (p == 4);
  p += vd_nbd_encode_block_descriptor (b + p, false, 4096, NBD_STATE_HOLE);
  p += vd_nbd_encode_block_descriptor (b + p, false, 512, 0);
  T (p == 20);
  T (vd_nbd_encode_block_descriptor (b + p, false, 1ull << 32, 0) == 0);
  T (vd_nbd_decode_block_status (b, p, NBD_REPLY_TYPE_BLOCK_STATUS, &bs,
                                 &why) == 0);
  T (bs.context_id == 3 && bs.nr_descriptors == 2);
  vd_nbd_block_status_get (&bs, 1, &l, &s);
  T (l == 512 && s == 0);
  T_FAILS (vd_nbd_decode_block_status (b, p - 1, NBD_REPLY_TYPE_BLOCK_STATUS,
                                       &bs, &why), "4 + 8n");
  T_FAILS (vd_nbd_decode_block_status (b, 4, NBD_REPLY_TYPE_BLOCK_STATUS,
                                       &bs, &why), "4 + 8n");
  vd_nbd_encode_block_descriptor (b + 12, false, 0, 0);
  T_FAILS (vd_nbd_decode_block_status (b, p, NBD_REPLY_TYPE_BLOCK_STATUS,
                                       &bs, &why), "zero length");

  p = vd_nbd_encode_block_status_header (b, true, 1, 1);
  T (p == 8);
  p += vd_nbd_encode_block_descriptor (b + p, true, 1ull << 40, 3);
  T (p == 24);
  T (vd_nbd_decode_block_status (b, p, NBD_REPLY_TYPE_BLOCK_STATUS_EXT, &bs,
                                 &why) == 0);
  vd_nbd_block_status_get (&bs, 0, &l, &s);
  T (l == 1ull << 40 && s == 3 && bs.extended);
  T_FAILS (vd_nbd_decode_block_status (b, p, NBD_REPLY_TYPE_BLOCK_STATUS,
                                       &bs, &why), "");
  b[7] = 2;
  T_FAILS (vd_nbd_decode_block_status (b, p, NBD_REPLY_TYPE_BLOCK_STATUS_EXT,
                                       &bs, &why), "count");
  T_FAILS (vd_nbd_decode_block_status (b, p, NBD_REPLY_TYPE_NONE, &bs, &why),
           "not a block status");
}

static void
test_errno_mapping (void)
{
  static const struct {
    int err;
    bool fast_zero;
    uint32_t wire;
  } table[] = {
    { 0, false, 0 },
    { EPERM, false, NBD_EPERM },
    { EROFS, false, NBD_EPERM },
    { EACCES, false, NBD_EPERM },
    { ENOSPC, false, NBD_ENOSPC },
    { EFBIG, false, NBD_ENOSPC },
    { EDQUOT, false, NBD_ENOSPC },
    { EINVAL, false, NBD_EINVAL },
    { EOVERFLOW, false, NBD_EOVERFLOW },
    { ENOTSUP, true, NBD_ENOTSUP },
    { EOPNOTSUPP, true, NBD_ENOTSUP },
    { ENOTSUP, false, NBD_EINVAL },
    { EOPNOTSUPP, false, NBD_EINVAL },
    { ESHUTDOWN, false, NBD_ESHUTDOWN },
    { ENOMEM, false, NBD_ENOMEM },
    { EIO, false, NBD_EIO },
    { EBUSY, false, NBD_EIO },
    { ECONNRESET, false, NBD_EIO },
    { ETIMEDOUT, false, NBD_EIO },
    { ECANCELED, false, NBD_EIO },
    { EAGAIN, false, NBD_EIO },
    { EIO, true, NBD_EIO },
    { ENOSPC, true, NBD_ENOSPC },
    { -1, false, NBD_EIO },
    { 99999, false, NBD_EIO },
  };
  static const struct {
    uint32_t wire;
    int err;
  } back[] = {
    { 0, 0 }, { NBD_EPERM, EPERM }, { NBD_EIO, EIO }, { NBD_ENOMEM, ENOMEM },
    { NBD_EINVAL, EINVAL }, { NBD_ENOSPC, ENOSPC },
    { NBD_EOVERFLOW, EOVERFLOW }, { NBD_ENOTSUP, ENOTSUP },
    { NBD_ESHUTDOWN, ESHUTDOWN }, { 2, EINVAL }, { 0xffffffff, EINVAL },
  };

  for (size_t i = 0; i < sizeof table / sizeof table[0]; ++i) {
    uint32_t w = vd_nbd_errno_to_wire (table[i].err, table[i].fast_zero);
    if (w != table[i].wire) {
      fprintf (stderr, "errno %d (fast_zero %d) -> %" PRIu32 ", expected %"
               PRIu32 "\n", table[i].err, table[i].fast_zero, w,
               table[i].wire);
      failures++;
    }
  }
  for (size_t i = 0; i < sizeof back / sizeof back[0]; ++i)
    T (vd_nbd_wire_to_errno (back[i].wire) == back[i].err);
  /* Every errno maps onto one of the eight values the spec allows. */
  for (int e = 0; e < 200; ++e) {
    uint32_t w = vd_nbd_errno_to_wire (e, e & 1);
    T (w == 0 || strcmp (vd_nbd_error_name (w), "unknown") != 0);
  }
}

static void
test_names (void)
{
  char buf[128];

  T (strcmp (vd_nbd_opt_name (NBD_OPT_GO), "NBD_OPT_GO") == 0);
  T (strcmp (vd_nbd_opt_name (NBD_OPT_EXTENDED_HEADERS),
             "NBD_OPT_EXTENDED_HEADERS") == 0);
  T (strcmp (vd_nbd_opt_name (1234), "unknown") == 0);
  T (strcmp (vd_nbd_rep_name (NBD_REP_ERR_TOO_BIG), "NBD_REP_ERR_TOO_BIG")
     == 0);
  T (strcmp (vd_nbd_info_name (NBD_INFO_BLOCK_SIZE), "NBD_INFO_BLOCK_SIZE")
     == 0);
  T (strcmp (vd_nbd_cmd_name (NBD_CMD_BLOCK_STATUS), "NBD_CMD_BLOCK_STATUS")
     == 0);
  T (strcmp (vd_nbd_reply_type_name (NBD_REPLY_TYPE_ERROR_OFFSET),
             "NBD_REPLY_TYPE_ERROR_OFFSET") == 0);
  T (strcmp (vd_nbd_error_name (NBD_ESHUTDOWN), "NBD_ESHUTDOWN") == 0);
  T (strcmp (vd_nbd_cmd_flags_string (NBD_CMD_FLAG_FUA |
                                      NBD_CMD_FLAG_REQ_ONE, buf, sizeof buf),
             "FUA|REQ_ONE") == 0);
  T (strcmp (vd_nbd_cmd_flags_string (0, buf, sizeof buf), "0") == 0);
  T (strcmp (vd_nbd_cmd_flags_string (0x8001, buf, sizeof buf),
             "FUA|0x8000") == 0);
  T (strcmp (vd_nbd_tx_flags_string (NBD_FLAG_HAS_FLAGS |
                                     NBD_FLAG_CAN_MULTI_CONN, buf,
                                     sizeof buf),
             "HAS_FLAGS|CAN_MULTI_CONN") == 0);
  /* Truncation never overflows. */
  vd_nbd_tx_flags_string (0xffff, buf, 10);
  T (strlen (buf) < 10);
}

int
main (void)
{
  test_greeting ();
  test_options ();
  test_option_replies ();
  test_requests ();
  test_validate ();
  test_replies ();
  test_errno_mapping ();
  test_names ();
  if (failures) {
    fprintf (stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf ("test-nbd-proto: all checks passed\n");
  return 0;
}
