/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The server against a client that does everything, right and wrong:
 * runs the server library in this process (so ASan and UBSan see both
 * sides) on a unix socket, and drives it with tests/server/tclient.c.
 *
 * Covered: the handshake (every option, unknown and oversized options
 * with the stream staying in step, STARTTLS refusal, LIST, INFO/GO with
 * every information type, meta contexts, EXPORT_NAME with and without
 * zero padding, ABORT, bad client flags, the handshake time limit),
 * transmission with simple, structured and extended headers (every
 * command, FUA, DF, REQ_ONE, NO_HOLE, FAST_ZERO, sparse reads as
 * OFFSET_HOLE, 32- and 64-bit block status, payload rules of extended
 * headers), errors (read past end, oversize requests with the stream in
 * step, unknown commands and flags, writes to a read-only export), many
 * requests in flight with replies matched by cookie, and hard
 * disconnects for a bad magic or an oversized extended payload; and the
 * alignment of the server's request buffers.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "server.h"
#include "internal.h"
#include "tclient.h"
#include "byte-order.h"

static char sock_path[256], disk_path[256], ro_path[256], big_path[256];
static struct vd_server *srv;
static pthread_t srv_thread;

#define DISK_SIZE (64u << 20)
#define RO_SIZE   (1u << 20)
#define BIG_SIZE  (UINT64_C (8) << 30)

#define T(expr) do {                                                    \
    if (!(expr)) {                                                      \
      fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
               #expr);                                                  \
      exit (1);                                                         \
    }                                                                   \
  } while (0)

static void *
run_server (void *arg)
{
  if (vd_server_run (srv) == -1) {
    fprintf (stderr, "server: %s\n", vd_get_error ());
    exit (1);
  }
  return NULL;
}

static void
make_image (const char *path, uint64_t size)
{
  int fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  T (fd >= 0);
  T (ftruncate (fd, size) == 0);
  close (fd);
}

static void
start_server (void)
{
  struct vd_server_config cfg;
  struct vd_open_options o;
  struct vd_attachment *a;

  test_tmpname (sock_path, sizeof sock_path, "proto.sock");
  test_tmpname (disk_path, sizeof disk_path, "proto-disk.img");
  test_tmpname (ro_path, sizeof ro_path, "proto-ro.img");
  test_tmpname (big_path, sizeof big_path, "proto-big.img");
  make_image (disk_path, DISK_SIZE);
  make_image (ro_path, RO_SIZE);
  make_image (big_path, BIG_SIZE);
  {
    /* Some data in the read-only export and the big one. */
    char b[4096];
    int fd = open (ro_path, O_WRONLY);
    memset (b, 'R', sizeof b);
    T (pwrite (fd, b, sizeof b, 8192) == (ssize_t) sizeof b);
    close (fd);
    fd = open (big_path, O_WRONLY);
    T (pwrite (fd, b, sizeof b, UINT64_C (6) << 30) == (ssize_t) sizeof b);
    close (fd);
  }

  vd_server_config_init (&cfg);
  cfg.threads = 4;
  cfg.handshake_timeout = 2;
  cfg.max_request = 1 << 20;
  srv = vd_server_new (&cfg);
  T (srv);
  vd_open_options_init (&o);
  a = vd_attachment_open (disk_path, &o);
  T (a);
  T (vd_server_add_export (srv, "disk", "the test disk", a) == 0);
  o.flags = VD_OPEN_READ_ONLY;
  a = vd_attachment_open (ro_path, &o);
  T (a);
  T (vd_server_add_export (srv, "ro", NULL, a) == 0);
  a = vd_attachment_open (big_path, &o);
  T (a);
  T (vd_server_add_export (srv, "big", NULL, a) == 0);
  /* A second export of the same name is refused. */
  a = vd_attachment_open (ro_path, &o);
  T (a);
  CHECK_FAILS (vd_server_add_export (srv, "ro", NULL, a), EINVAL,
               "two exports");
  T (vd_server_listen_unix (srv, sock_path) == 0);
  T (vd_server_nr_uris (srv) == 1);
  T (strstr (vd_server_uri (srv, 0), "nbd+unix:///disk?socket=") != NULL);
  T (pthread_create (&srv_thread, NULL, run_server, NULL) == 0);
}

static void
stop_server (void)
{
  vd_server_stop (srv);
  T (pthread_join (srv_thread, NULL) == 0);
  T (vd_server_free (srv) == 0);
  unlink (disk_path);
  unlink (ro_path);
  unlink (big_path);
}

static void
conn (struct tclient *c)
{
  T (tc_connect (c, sock_path) == 0);
}

/* ---- Handshake ---------------------------------------------------------- */

struct collect {
  int n;
  char names[8][64];
  uint32_t ids[8];
  uint16_t info_types[8];
  struct vd_nbd_info info[8];
  char strs[8][64];
};

static void
collect_reply (void *ud, const struct vd_nbd_option_reply *r,
               const unsigned char *data)
{
  struct collect *k = ud;
  const char *why, *s1, *s2;
  uint32_t l1, l2, id;

  if (k->n >= 8)
    return;
  switch (r->type) {
  case NBD_REP_SERVER:
    T (vd_nbd_decode_rep_server (data, r->length, &s1, &l1, &s2, &l2, &why)
       == 0);
    snprintf (k->names[k->n], 64, "%.*s|%.*s", (int) l1, s1, (int) l2, s2);
    break;
  case NBD_REP_META_CONTEXT:
    T (vd_nbd_decode_rep_meta_context (data, r->length, &id, &s1, &l1, &why)
       == 0);
    snprintf (k->names[k->n], 64, "%.*s", (int) l1, s1);
    k->ids[k->n] = id;
    break;
  case NBD_REP_INFO:
    T (vd_nbd_decode_info (data, r->length, &k->info[k->n], &why) == 0);
    k->info_types[k->n] = k->info[k->n].type;
    if (k->info[k->n].str)
      snprintf (k->strs[k->n], 64, "%.*s", (int) k->info[k->n].str_len,
                k->info[k->n].str);
    break;
  default:
    fprintf (stderr, "unexpected reply %s\n", vd_nbd_rep_name (r->type));
    exit (1);
  }
  k->n++;
}

static void
test_handshake_options (void)
{
  struct tclient c;
  struct collect k;
  unsigned char buf[70000];
  const uint16_t all[] = { NBD_INFO_EXPORT, NBD_INFO_NAME,
                           NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE, 999 };
  ssize_t n;

  conn (&c);
  T (tc_handshake_start (&c, UINT32_MAX) == 0);
  T (c.hflags == (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES));

  /* Unknown options, small and large, and the withdrawn PEEK_EXPORT:
   * ERR_UNSUP, and the stream stays in step.
   */
  memset (buf, 'x', sizeof buf);
  T (tc_option (&c, 99, buf, 10, NULL, NULL) == NBD_REP_ERR_UNSUP);
  T (tc_option (&c, 0x12345678, buf, sizeof buf, NULL, NULL)
     == NBD_REP_ERR_UNSUP);
  T (tc_option (&c, NBD_OPT_PEEK_EXPORT, NULL, 0, NULL, NULL)
     == NBD_REP_ERR_UNSUP);
  /* A known option with too much data: ERR_TOO_BIG, still in step. */
  T (tc_option (&c, NBD_OPT_INFO, buf, sizeof buf, NULL, NULL)
     == NBD_REP_ERR_TOO_BIG);

  /* STARTTLS: refused by policy; with data: invalid. */
  T (tc_option (&c, NBD_OPT_STARTTLS, NULL, 0, NULL, NULL)
     == NBD_REP_ERR_POLICY);
  T (tc_option (&c, NBD_OPT_STARTTLS, buf, 1, NULL, NULL)
     == NBD_REP_ERR_INVALID);

  /* LIST. */
  memset (&k, 0, sizeof k);
  T (tc_option (&c, NBD_OPT_LIST, NULL, 0, collect_reply, &k) == NBD_REP_ACK);
  T (k.n == 3);
  T (strcmp (k.names[0], "disk|the test disk") == 0);
  T (strcmp (k.names[1], "ro|") == 0);
  T (tc_option (&c, NBD_OPT_LIST, buf, 4, NULL, NULL) == NBD_REP_ERR_INVALID);

  /* INFO: every type, plus an unknown one (ignored). */
  memset (&k, 0, sizeof k);
  n = vd_nbd_encode_info_request (buf, sizeof buf, "disk", 4, all, 5, NULL);
  T (tc_option (&c, NBD_OPT_INFO, buf, n, collect_reply, &k) == NBD_REP_ACK);
  T (k.n == 4);
  for (int i = 0; i < k.n; ++i) {
    switch (k.info_types[i]) {
    case NBD_INFO_EXPORT:
      T (k.info[i].size == DISK_SIZE);
      T (k.info[i].transmission_flags & NBD_FLAG_HAS_FLAGS);
      T (!(k.info[i].transmission_flags & NBD_FLAG_READ_ONLY));
      T (k.info[i].transmission_flags & NBD_FLAG_CAN_MULTI_CONN);
      T (k.info[i].transmission_flags & NBD_FLAG_SEND_FAST_ZERO);
      /* No structured replies yet: no DF. */
      T (!(k.info[i].transmission_flags & NBD_FLAG_SEND_DF));
      break;
    case NBD_INFO_NAME: T (strcmp (k.strs[i], "disk") == 0); break;
    case NBD_INFO_DESCRIPTION:
      T (strcmp (k.strs[i], "the test disk") == 0);
      break;
    case NBD_INFO_BLOCK_SIZE:
      T (k.info[i].minimum == 1 && k.info[i].preferred == 4096 &&
         k.info[i].maximum == 1 << 20);
      break;
    default: T (!"unexpected info type");
    }
  }
  /* The default export ("") is the first one: its canonical name. */
  memset (&k, 0, sizeof k);
  n = vd_nbd_encode_info_request (buf, sizeof buf, "", 0, all + 1, 1, NULL);
  T (tc_option (&c, NBD_OPT_INFO, buf, n, collect_reply, &k) == NBD_REP_ACK);
  T (k.n == 3 && strcmp (k.strs[1], "disk") == 0);
  /* Errors: unknown export, duplicates, bad layout, name too long. */
  n = vd_nbd_encode_info_request (buf, sizeof buf, "nope", 4, NULL, 0, NULL);
  T (tc_option (&c, NBD_OPT_INFO, buf, n, NULL, NULL) == NBD_REP_ERR_UNKNOWN);
  {
    const uint16_t dup[] = { NBD_INFO_NAME, NBD_INFO_NAME };
    n = vd_nbd_encode_info_request (buf, sizeof buf, "disk", 4, dup, 2, NULL);
    T (tc_option (&c, NBD_OPT_GO, buf, n, NULL, NULL) == NBD_REP_ERR_INVALID);
  }
  n = vd_nbd_encode_info_request (buf, sizeof buf, "disk", 4, NULL, 0, NULL);
  T (tc_option (&c, NBD_OPT_GO, buf, n - 1, NULL, NULL)
     == NBD_REP_ERR_INVALID);
  store_be32 (buf, 5000);
  memset (buf + 4, 'a', 5000);
  store_be16 (buf + 5004, 0);
  T (tc_option (&c, NBD_OPT_INFO, buf, 5006, NULL, NULL)
     == NBD_REP_ERR_INVALID);

  /* Meta contexts need structured replies first. */
  {
    const char *q[] = { "base:allocation" };
    n = vd_nbd_encode_meta_request (buf, sizeof buf, "disk", 4, q, 1, NULL);
    T (tc_option (&c, NBD_OPT_SET_META_CONTEXT, buf, n, NULL, NULL)
       == NBD_REP_ERR_INVALID);
  }
  T (tc_option (&c, NBD_OPT_STRUCTURED_REPLY, buf, 1, NULL, NULL)
     == NBD_REP_ERR_INVALID);
  T (tc_option (&c, NBD_OPT_STRUCTURED_REPLY, NULL, 0, NULL, NULL)
     == NBD_REP_ACK);
  c.structured = true;
  {
    /* List everything, list "base:", list an unknown namespace. */
    const char *q1[] = { "base:" };
    const char *q2[] = { "x-foo:bar", "qemu:dirty-bitmap:b", "base:nope" };
    const char *q3[] = { "nonamespace" };
    memset (&k, 0, sizeof k);
    n = vd_nbd_encode_meta_request (buf, sizeof buf, "disk", 4, NULL, 0,
                                    NULL);
    T (tc_option (&c, NBD_OPT_LIST_META_CONTEXT, buf, n, collect_reply, &k)
       == NBD_REP_ACK);
    T (k.n == 1 && strcmp (k.names[0], "base:allocation") == 0);
    memset (&k, 0, sizeof k);
    n = vd_nbd_encode_meta_request (buf, sizeof buf, "disk", 4, q1, 1, NULL);
    T (tc_option (&c, NBD_OPT_LIST_META_CONTEXT, buf, n, collect_reply, &k)
       == NBD_REP_ACK);
    T (k.n == 1 && k.ids[0] == 0);
    memset (&k, 0, sizeof k);
    n = vd_nbd_encode_meta_request (buf, sizeof buf, "disk", 4, q2, 3, NULL);
    T (tc_option (&c, NBD_OPT_SET_META_CONTEXT, buf, n, collect_reply, &k)
       == NBD_REP_ACK);
    T (k.n == 0);
    /* "base:" selects nothing with SET. */
    n = vd_nbd_encode_meta_request (buf, sizeof buf, "disk", 4, q1, 1, NULL);
    T (tc_option (&c, NBD_OPT_SET_META_CONTEXT, buf, n, collect_reply, &k)
       == NBD_REP_ACK);
    T (k.n == 0);
    n = vd_nbd_encode_meta_request (buf, sizeof buf, "disk", 4, q3, 1, NULL);
    T (tc_option (&c, NBD_OPT_SET_META_CONTEXT, buf, n, NULL, NULL)
       == NBD_REP_ERR_INVALID);
    n = vd_nbd_encode_meta_request (buf, sizeof buf, "zzz", 3, q1, 1, NULL);
    T (tc_option (&c, NBD_OPT_LIST_META_CONTEXT, buf, n, NULL, NULL)
       == NBD_REP_ERR_UNKNOWN);
    /* Malformed: a query length past the end. */
    n = vd_nbd_encode_meta_request (buf, sizeof buf, "disk", 4, q1, 1, NULL);
    T (tc_option (&c, NBD_OPT_LIST_META_CONTEXT, buf, n - 1, NULL, NULL)
       == NBD_REP_ERR_INVALID);
  }

  /* ABORT: ACK, then the server closes. */
  T (tc_option (&c, NBD_OPT_ABORT, NULL, 0, NULL, NULL) == NBD_REP_ACK);
  T (tc_wait_eof (&c, 5000) == 1);
  tc_close (&c);
}

static void
test_export_name (void)
{
  struct tclient c;
  unsigned char buf[200];
  uint64_t size;
  uint16_t flags;

  /* With zeroes (client did not ask for NO_ZEROES). */
  conn (&c);
  T (tc_handshake_start (&c, NBD_FLAG_C_FIXED_NEWSTYLE) == 0);
  T (tc_send_option (&c, NBD_OPT_EXPORT_NAME, "ro", 2) == 0);
  T (tc_read (&c, buf, 134) == 0);
  T (vd_nbd_decode_export_name_reply (buf, 134, &size, &flags, NULL) == 0);
  T (size == RO_SIZE && (flags & NBD_FLAG_READ_ONLY));
  for (int i = 10; i < 134; ++i)
    T (buf[i] == 0);
  c.size = size;
  c.tflags = flags;
  {
    char data[4096];
    T (tc_pread (&c, data, 4096, 8192, 0, NULL) == 0);
    T (data[0] == 'R' && data[4095] == 'R');
  }
  T (tc_disconnect (&c) == 0);

  /* Without fixed newstyle: EXPORT_NAME still works (NO_ZEROES). */
  conn (&c);
  T (tc_handshake_start (&c, NBD_FLAG_C_NO_ZEROES) == 0);
  T (tc_send_option (&c, NBD_OPT_EXPORT_NAME, "", 0) == 0);
  T (tc_read (&c, buf, 10) == 0);
  T (vd_nbd_decode_export_name_reply (buf, 10, &size, &flags, NULL) == 0);
  T (size == DISK_SIZE);
  T (tc_disconnect (&c) == 0);

  /* ... but any other option then closes (the server cannot reply). */
  conn (&c);
  T (tc_handshake_start (&c, 0) == 0);
  T (tc_send_option (&c, NBD_OPT_LIST, NULL, 0) == 0);
  T (tc_wait_eof (&c, 5000) == 1);
  tc_close (&c);

  /* Unknown export: EXPORT_NAME cannot fail politely: the server closes. */
  conn (&c);
  T (tc_handshake_start (&c, UINT32_MAX) == 0);
  T (tc_send_option (&c, NBD_OPT_EXPORT_NAME, "nope", 4) == 0);
  T (tc_wait_eof (&c, 5000) == 1);
  tc_close (&c);

  /* EXPORT_NAME after EXTENDED_HEADERS is forbidden. */
  conn (&c);
  T (tc_handshake_start (&c, UINT32_MAX) == 0);
  T (tc_option (&c, NBD_OPT_EXTENDED_HEADERS, NULL, 0, NULL, NULL)
     == NBD_REP_ACK);
  T (tc_send_option (&c, NBD_OPT_EXPORT_NAME, "disk", 4) == 0);
  T (tc_wait_eof (&c, 5000) == 1);
  tc_close (&c);
}

static void
test_bad_handshakes (void)
{
  struct tclient c;
  unsigned char buf[32];
  double t0;

  /* Client flags with an unknown bit: disconnect. */
  conn (&c);
  T (tc_handshake_start (&c, 0x80) == 0);
  T (tc_wait_eof (&c, 5000) == 1);
  tc_close (&c);

  /* Bad option magic: disconnect. */
  conn (&c);
  T (tc_handshake_start (&c, UINT32_MAX) == 0);
  memset (buf, 0x55, 16);
  T (tc_write (&c, buf, 16) == 0);
  T (tc_wait_eof (&c, 5000) == 1);
  tc_close (&c);

  /* A client that says nothing is dropped after the time limit (2 s
   * here), and others are served meanwhile.
   */
  conn (&c);
  t0 = time (NULL);
  {
    struct tclient other;
    char data[512];
    conn (&other);
    T (tc_negotiate (&other, "disk", TC_SR) == 0);
    T (tc_pread (&other, data, 512, 0, 0, NULL) == 0);
    T (tc_disconnect (&other) == 0);
  }
  T (tc_read (&c, buf, VD_NBD_GREETING_SIZE) == 0);
  T (tc_wait_eof (&c, 8000) == 1);
  T (time (NULL) - t0 <= 6);
  tc_close (&c);
}

/* ---- Transmission ------------------------------------------------------- */

static void
fill (char *buf, size_t len, uint64_t seed)
{
  for (size_t i = 0; i < len; ++i)
    buf[i] = (char) ((seed * 131 + i * 7 + (i >> 9)) & 0xff);
}

/* The common command set, in the mode c was negotiated with. */
static void
exercise (struct tclient *c, const char *mode)
{
  static char w[1 << 20], r[1 << 20];
  char msg[256];
  uint64_t L[64], S[64];
  size_t nr;
  const bool chunked = c->structured || c->extended;

  fprintf (stderr, "exercise: %s\n", mode);
  T (c->size == DISK_SIZE);
  T (c->max_payload == 1 << 20);

  /* Write, read back. */
  fill (w, sizeof w, 1);
  T (tc_pwrite (c, w, 65536, 4096, 0, NULL) == 0);
  T (tc_pwrite (c, w + 65536, 512, 1 << 20, NBD_CMD_FLAG_FUA, NULL) == 0);
  T (tc_pread (c, r, 65536, 4096, 0, NULL) == 0);
  T (memcmp (r, w, 65536) == 0);
  T (tc_pread (c, r, 512, 1 << 20, 0, NULL) == 0);
  T (memcmp (r, w + 65536, 512) == 0);
  /* Unaligned I/O is fine (minimum block size 1). */
  T (tc_pwrite (c, "hello", 5, 1000001, 0, NULL) == 0);
  T (tc_pread (c, r, 5, 1000001, 0, NULL) == 0 && memcmp (r, "hello", 5) == 0);
  /* Zero-length read. */
  T (tc_pread (c, r, 0, 0, 0, NULL) == 0);

  /* A hole reads as zeros, sent as one OFFSET_HOLE chunk. */
  memset (r, 'q', 8192);
  T (tc_pread (c, r, 8192, 32 << 20, 0, NULL) == 0);
  for (int i = 0; i < 8192; ++i)
    T (r[i] == 0);
  if (chunked)
    T (tc_last_hole_chunks == 1 && tc_last_data_chunks == 0);

  /* A large read over data and holes: sparse chunks, correct bytes. */
  T (tc_cmd (c, NBD_CMD_TRIM, 0, 16 << 20, 4 << 20, NULL) == 0);
  T (tc_pwrite (c, w, 65536, (16 << 20) + 262144, 0, NULL) == 0);
  T (tc_pread (c, r, 1 << 20, 16 << 20, 0, NULL) == 0);
  for (int i = 0; i < 262144; ++i)
    T (r[i] == 0);
  T (memcmp (r + 262144, w, 65536) == 0);
  for (int i = 262144 + 65536; i < (1 << 20); ++i)
    T (r[i] == 0);
  if (chunked)
    T (tc_last_hole_chunks >= 2 && tc_last_data_chunks >= 1);
  /* DF: one content chunk. */
  if (chunked) {
    T (c->tflags & NBD_FLAG_SEND_DF);
    T (tc_pread (c, r, 1 << 20, 16 << 20, NBD_CMD_FLAG_DF, NULL) == 0);
    T (tc_last_hole_chunks + tc_last_data_chunks == 1);
    T (memcmp (r + 262144, w, 65536) == 0);
  }
  else
    T (!(c->tflags & NBD_FLAG_SEND_DF));

  /* Flush, cache, trim, write zeroes (NO_HOLE, FAST_ZERO). */
  T (tc_cmd (c, NBD_CMD_FLUSH, 0, 0, 0, NULL) == 0);
  T (tc_cmd (c, NBD_CMD_CACHE, 0, 0, 1 << 20, NULL) == 0);
  T (tc_cmd (c, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE, 4096, 4096,
             NULL) == 0);
  T (tc_cmd (c, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FAST_ZERO |
             NBD_CMD_FLAG_FUA, 8192, 8192, NULL) == 0);
  T (tc_pread (c, r, 16384, 0, 0, NULL) == 0);
  for (int i = 4096; i < 16384; ++i)
    T (r[i] == 0);
  T (tc_cmd (c, NBD_CMD_TRIM, NBD_CMD_FLAG_FUA, 0, 65536, NULL) == 0);
  T (tc_pread (c, r, 65536, 4096, 0, NULL) == 0);

  /* Errors, with the stream in step after each. */
  T (tc_pread (c, r, 512, DISK_SIZE - 511, 0, msg) == NBD_EINVAL);
  if (chunked)
    T (strstr (msg, "beyond the end") != NULL);
  T (tc_pwrite (c, w, 512, DISK_SIZE - 1, 0, NULL) == NBD_ENOSPC);
  T (tc_cmd (c, NBD_CMD_WRITE_ZEROES, 0, DISK_SIZE, 1, NULL) == NBD_ENOSPC);
  T (tc_cmd (c, NBD_CMD_TRIM, 0, DISK_SIZE - 1, 2, NULL) == NBD_EINVAL);
  T (tc_cmd (c, NBD_CMD_FLUSH, 0, 1, 0, NULL) == NBD_EINVAL);
  T (tc_cmd (c, 77, 0, 0, 1, NULL) == NBD_EINVAL);
  T (tc_cmd (c, NBD_CMD_RESIZE, 0, 0, 0, NULL) == NBD_EINVAL);
  T (tc_pread (c, r, 512, 0, NBD_CMD_FLAG_REQ_ONE, NULL) == NBD_EINVAL);
  T (tc_pread (c, r, 512, 0, 1 << 10, NULL) == NBD_EINVAL);
  if (!c->extended) {
    /* An oversize compact write: payload skipped, EINVAL, still in step. */
    static char big[(1 << 20) + 4096];
    T (tc_pwrite (c, big, sizeof big, 0, 0, NULL) == NBD_EINVAL);
  }
  T (tc_pread (c, r, (1 << 20) + 1, 0, 0, NULL) ==
     (chunked ? NBD_EOVERFLOW : NBD_EINVAL));
  T (tc_pread (c, r, 512, 4096 * 3, 0, NULL) == 0);

  /* Block status. */
  if (chunked && c->meta_id) {
    T (tc_block_status (c, 2 << 20, 16 << 20, 0, L, S, 64, &nr, NULL) == 0);
    T (nr >= 3);
    T (L[0] == 262144 && S[0] == (NBD_STATE_HOLE | NBD_STATE_ZERO));
    T (S[1] == 0);
    {
      uint64_t sum = 0;
      for (size_t i = 0; i < nr; ++i)
        sum += L[i];
      T (sum <= 2 << 20);
    }
    /* REQ_ONE: exactly one extent, no longer than asked. */
    T (tc_block_status (c, 1000, 16 << 20, NBD_CMD_FLAG_REQ_ONE, L, S, 64,
                        &nr, NULL) == 0);
    T (nr == 1 && L[0] == 1000 && S[0] == 3);
    T (tc_block_status (c, 4 << 20, (16 << 20) + 262144,
                        NBD_CMD_FLAG_REQ_ONE, L, S, 64, &nr, NULL) == 0);
    T (nr == 1 && L[0] == 65536 && S[0] == 0);
    /* Past the end: EINVAL. */
    T (tc_block_status (c, 2, DISK_SIZE - 1, 0, L, S, 64, &nr, NULL)
       == NBD_EINVAL);
  }
  else
    T (tc_block_status (c, 512, 0, 0, L, S, 64, &nr, NULL) == NBD_EINVAL);
}

static void
test_modes (void)
{
  struct tclient c;

  conn (&c);
  T (tc_negotiate (&c, "disk", 0) == 0);
  exercise (&c, "simple replies");
  T (tc_disconnect (&c) == 0);

  conn (&c);
  T (tc_negotiate (&c, "disk", TC_SR) == 0);
  exercise (&c, "structured replies, no contexts");
  T (tc_disconnect (&c) == 0);

  conn (&c);
  T (tc_negotiate (&c, "disk", TC_SR | TC_META) == 0);
  T (c.meta_id == 1);
  exercise (&c, "structured replies + base:allocation");
  T (tc_disconnect (&c) == 0);

  conn (&c);
  T (tc_negotiate (&c, "disk", TC_EXT | TC_META) == 0);
  exercise (&c, "extended headers + base:allocation");
  T (tc_disconnect (&c) == 0);
}

static void
test_extended (void)
{
  struct tclient c;
  uint64_t L[16], S[16];
  size_t nr;
  char buf[8192];
  struct tc_reply rep;
  unsigned char p[256];

  memset (buf, 0, sizeof buf);
  conn (&c);
  T (tc_negotiate (&c, "big", TC_EXT | TC_META) == 0);
  T (c.size == BIG_SIZE);
  /* STRUCTURED_REPLY after EXTENDED_HEADERS is refused (tested on a
   * fresh connection below); here: 64-bit block status.
   */
  T (tc_block_status (&c, BIG_SIZE, 0, 0, L, S, 16, &nr, NULL) == 0);
  T (nr == 3);
  T (L[0] == UINT64_C (6) << 30 && S[0] == 3);
  T (L[1] == 4096 && S[1] == 0);
  T (L[0] + L[1] + L[2] == BIG_SIZE);
  T (tc_block_status (&c, BIG_SIZE, 0, NBD_CMD_FLAG_REQ_ONE, L, S, 16, &nr,
                      NULL) == 0);
  T (nr == 1 && L[0] == UINT64_C (6) << 30);
  /* Write to a read-only export: EPERM. */
  T (tc_pwrite (&c, buf, 512, 0, 0, NULL) == NBD_EPERM);
  T (tc_cmd (&c, NBD_CMD_TRIM, 0, 0, 512, NULL) == NBD_EPERM);
  T (tc_cmd (&c, NBD_CMD_WRITE_ZEROES, 0, 0, 512, NULL) == NBD_EPERM);
  /* A payload on a read: consumed, EINVAL, in step. */
  memset (buf, 0, sizeof buf);
  T (tc_send_request (&c, NBD_CMD_READ, NBD_CMD_FLAG_PAYLOAD_LEN, 5, 0, 4096,
                      buf, 4096) == 0);
  T (tc_read_reply (&c, &rep, p, sizeof p, 0) == 0);
  T (rep.h.cookie == 5 && rep.h.type == NBD_REPLY_TYPE_ERROR &&
     load_be32 (p) == NBD_EINVAL);
  /* A write without PAYLOAD_LEN: no payload follows, EINVAL. */
  T (tc_send_request (&c, NBD_CMD_WRITE, 0, 6, 0, 4096, NULL, 0) == 0);
  T (tc_read_reply (&c, &rep, p, sizeof p, 0) == 0);
  T (rep.h.cookie == 6 && rep.h.type == NBD_REPLY_TYPE_ERROR &&
     load_be32 (p) == NBD_EINVAL);
  /* Success replies are NONE chunks that echo the offset. */
  T (tc_send_request (&c, NBD_CMD_CACHE, 0, 7, 12345, 100, NULL, 0) == 0);
  T (tc_read_reply (&c, &rep, p, sizeof p, 0) == 0);
  T (rep.h.kind == VD_NBD_REPLY_EXTENDED && rep.h.type == NBD_REPLY_TYPE_NONE
     && rep.h.offset == 12345 && (rep.h.flags & NBD_REPLY_FLAG_DONE));
  /* A payload beyond the maximum: hard disconnect. */
  T (tc_send_request (&c, NBD_CMD_WRITE, NBD_CMD_FLAG_PAYLOAD_LEN, 8, 0,
                      UINT64_C (1) << 40, NULL, 0) == 0);
  T (tc_wait_eof (&c, 5000) == 1);
  tc_close (&c);

  conn (&c);
  T (tc_handshake_start (&c, UINT32_MAX) == 0);
  T (tc_option (&c, NBD_OPT_EXTENDED_HEADERS, buf, 3, NULL, NULL)
     == NBD_REP_ERR_INVALID);
  T (tc_option (&c, NBD_OPT_EXTENDED_HEADERS, NULL, 0, NULL, NULL)
     == NBD_REP_ACK);
  T (tc_option (&c, NBD_OPT_STRUCTURED_REPLY, NULL, 0, NULL, NULL)
     == NBD_REP_ERR_EXT_HEADER_REQD);
  T (tc_option (&c, NBD_OPT_ABORT, NULL, 0, NULL, NULL) == NBD_REP_ACK);
  tc_close (&c);
}

/* Many requests in flight; replies come back in any order and are
 * matched by cookie.
 */
static void
test_inflight (void)
{
  enum { N = 200 };
  struct tclient c;
  static char w[N][4096], r[65536 + 64];
  bool seen[N] = { false };
  struct tc_reply rep;

  conn (&c);
  T (tc_negotiate (&c, "disk", TC_SR) == 0);
  for (int i = 0; i < N; ++i) {
    fill (w[i], 4096, 100 + i);
    T (tc_send_request (&c, NBD_CMD_WRITE, 0, i, (uint64_t) i * 4096 +
                        (40 << 20), 4096, w[i], 4096) == 0);
  }
  for (int i = 0; i < N; ++i) {
    T (tc_read_reply (&c, &rep, r, sizeof r, 0) == 0);
    T (rep.h.cookie < N && !seen[rep.h.cookie]);
    T (rep.h.kind == VD_NBD_REPLY_SIMPLE && rep.h.error == 0);
    seen[rep.h.cookie] = true;
  }
  /* A flush and reads interleaved. */
  T (tc_send_request (&c, NBD_CMD_FLUSH, 0, 9999, 0, 0, NULL, 0) == 0);
  for (int i = 0; i < N; ++i)
    T (tc_send_request (&c, NBD_CMD_READ, 0, i, (uint64_t) i * 4096 +
                        (40 << 20), 4096, NULL, 0) == 0);
  memset (seen, 0, sizeof seen);
  for (int i = 0; i < N + 1; ++i) {
    T (tc_read_reply (&c, &rep, r, sizeof r, 0) == 0);
    if (rep.h.cookie == 9999)
      continue;
    T (rep.h.cookie < N && !seen[rep.h.cookie]);
    T (rep.h.type == NBD_REPLY_TYPE_OFFSET_DATA &&
       (rep.h.flags & NBD_REPLY_FLAG_DONE));
    T (load_be64 (r) == rep.h.cookie * 4096 + (40 << 20));
    T (memcmp (r + 8, w[rep.h.cookie], 4096) == 0);
    seen[rep.h.cookie] = true;
  }
  /* Bad request magic: hard disconnect. */
  memset (r, 0x77, 28);
  T (tc_write (&c, r, 28) == 0);
  T (tc_wait_eof (&c, 5000) == 1);
  tc_close (&c);
}

/* Request and reply buffers are aligned for O_DIRECT (512 bytes) and
 * large ones to a page, fresh or reused from the cache (server/buf.c).
 */
static void
test_buffer_alignment (void)
{
  static const size_t sizes[] = {
    1, 28, 511, 512, 4096, 65537, (128u << 10) - 1, 128u << 10,
    (1u << 20) + 1, 4u << 20,
  };
  void *p[2][sizeof sizes / sizeof sizes[0]];

  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
      uintptr_t align = sizes[i] >= (128u << 10) ? 4096 : 512;
      p[round][i] = srv_buf_alloc (sizes[i]);
      T (p[round][i] != NULL);
      T ((uintptr_t) p[round][i] % align == 0);
      memset (p[round][i], 0x5a, sizes[i]);
    }
    /* Freed large buffers go to the cache; the second round takes them
     * back.
     */
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i)
      srv_buf_free (p[round][i]);
  }
  srv_buf_free (NULL);
  srv_buf_cache_drop ();
}

int
main (void)
{
  test_buffer_alignment ();
  start_server ();
  test_handshake_options ();
  test_export_name ();
  test_bad_handshakes ();
  test_modes ();
  test_extended ();
  test_inflight ();
  stop_server ();
  printf ("test-server-protocol: OK\n");
  return 0;
}
