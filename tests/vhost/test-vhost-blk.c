/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The vhost-user-blk export end to end over its unix socket, driven by
 * the test front end (vu-frontend.c) playing QEMU and the guest driver:
 * negotiation and config space, every request type and how it lands in
 * the image, descriptor layouts (split, indirect, crossing regions),
 * EVENT_IDX and interrupt suppression, several queues, many requests in
 * flight, stopping and restarting rings, reconnection with the flush on
 * disconnect, write-through mode, read-only exports, I/O errors mapped
 * to IOERR/UNSUPP, protocol errors, and malicious descriptor chains and
 * rings (which must fail the request or stop the queue, never crash or
 * write outside the table: this runs under ASan in CI).
 */
#include "config.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "test.h"
#include "backend.h"
#include "faults.h"
#include "vhost.h"
#include "vhost-user-protocol.h"
#include "vu-frontend.h"

#define DISK_SIZE (16u << 20)
#define NQUEUES 2
#define SERIAL "vdisk-serial-01"
#define F(bit) (UINT64_C (1) << (bit))
#define ALL (~UINT64_C (0))

static char img[256], sock[256];
static struct vd_attachment *att;
static struct vhost_export *exp_;

/* (Re)start the export on img, optionally read-only or wrapped in the
 * fault injector.
 */
static void
start_export (bool read_only, const struct vd_fault_config *faults)
{
  struct vhost_export_options o = {
    .socket_path = sock, .num_queues = NQUEUES, .serial = SERIAL,
    .read_only = read_only, .renotify_ms = 300,
  };
  struct vd_open_options oo;

  vd_open_options_init (&oo);
  att = vd_attachment_open (img, &oo);
  CHECK (att != NULL);
  if (faults) {
    att = vd_faults_wrap (att, faults);
    CHECK (att != NULL);
  }
  exp_ = vhost_export_start (att, &o);
  CHECK (exp_ != NULL);
}

static void
stop_export (void)
{
  CHECK (vhost_export_stop (exp_) == 0);
  CHECK (vd_attachment_close (att) == 0);
  exp_ = NULL;
  att = NULL;
}

static void
file_read (uint64_t off, void *buf, size_t len)
{
  int fd = open (img, O_RDONLY);
  CHECK (fd >= 0);
  CHECK (pread (fd, buf, len, off) == (ssize_t) len);
  close (fd);
}

static void
file_write (uint64_t off, const void *buf, size_t len)
{
  int fd = open (img, O_WRONLY);
  CHECK (fd >= 0);
  CHECK (pwrite (fd, buf, len, off) == (ssize_t) len);
  CHECK (fsync (fd) == 0);
  close (fd);
}

static void
fill (uint8_t *p, size_t len, unsigned seed)
{
  for (size_t i = 0; i < len; ++i)
    p[i] = (uint8_t) (seed * 131 + i * 7 + (i >> 9));
}

static bool
is_zero (const uint8_t *p, size_t len)
{
  for (size_t i = 0; i < len; ++i)
    if (p[i])
      return false;
  return true;
}

/* Wait until the export has no front end (the session ended). */
static void
wait_disconnected (void)
{
  struct vhost_export_stats s;
  for (int i = 0; i < 500; ++i) {
    vhost_export_get_stats (exp_, &s);
    if (!s.connected)
      return;
    usleep (10000);
  }
  CHECK (!"the export did not notice the disconnection");
}

static void
standard_connect (struct vu *vu)
{
  vu_connect (vu, sock, ALL, ALL);
  vu_queue_start (vu, 0, 64);
}

/* Negotiation and the config space. */
static void
test_negotiation (void)
{
  struct vu vu;
  uint64_t f, pf, want;
  uint8_t cfg[60], part[4];
  uint32_t u32;

  vu_connect_raw (&vu, sock);
  f = vu_get_u64 (&vu, VHOST_USER_GET_FEATURES);
  want = F (VIRTIO_F_VERSION_1) | F (VIRTIO_RING_F_INDIRECT_DESC) |
    F (VIRTIO_RING_F_EVENT_IDX) | F (VHOST_USER_F_PROTOCOL_FEATURES) |
    F (VIRTIO_BLK_F_SEG_MAX) | F (VIRTIO_BLK_F_BLK_SIZE) |
    F (VIRTIO_BLK_F_FLUSH) | F (VIRTIO_BLK_F_TOPOLOGY) |
    F (VIRTIO_BLK_F_CONFIG_WCE) | F (VIRTIO_BLK_F_MQ) |
    F (VIRTIO_BLK_F_DISCARD) | F (VIRTIO_BLK_F_WRITE_ZEROES);
  CHECK (f == want);
  pf = vu_get_u64 (&vu, VHOST_USER_GET_PROTOCOL_FEATURES);
  CHECK (pf == (F (VHOST_USER_PROTOCOL_F_MQ) |
                F (VHOST_USER_PROTOCOL_F_REPLY_ACK) |
                F (VHOST_USER_PROTOCOL_F_CONFIG) |
                F (VHOST_USER_PROTOCOL_F_RESET_DEVICE)));
  vu_set_u64 (&vu, VHOST_USER_SET_PROTOCOL_FEATURES, pf);
  CHECK (vu_get_u64 (&vu, VHOST_USER_GET_QUEUE_NUM) == NQUEUES);

  vu_get_config (&vu, cfg, sizeof cfg);
  CHECK (le64toh (*(uint64_t *) cfg) == DISK_SIZE / 512);
  memcpy (&u32, cfg + 12, 4);
  CHECK (le32toh (u32) == 510);                 /* seg_max */
  memcpy (&u32, cfg + 20, 4);
  CHECK (le32toh (u32) == 512);                 /* blk_size */
  CHECK (cfg[24] == 3);                         /* 4 KiB physical */
  CHECK (cfg[32] == 1);                         /* writeback */
  CHECK (cfg[34] == NQUEUES && cfg[35] == 0);
  memcpy (&u32, cfg + 36, 4);
  CHECK (le32toh (u32) == 1u << 22);            /* max_discard_sectors */
  memcpy (&u32, cfg + 40, 4);
  CHECK (le32toh (u32) == 32);                  /* max_discard_seg */
  memcpy (&u32, cfg + 44, 4);
  CHECK (le32toh (u32) == 1);                   /* discard alignment */
  memcpy (&u32, cfg + 48, 4);
  CHECK (le32toh (u32) == 1u << 22);
  memcpy (&u32, cfg + 52, 4);
  CHECK (le32toh (u32) == 32);
  CHECK (cfg[56] == 1);                         /* may unmap */

  /* A part of the config space. */
  {
    uint8_t buf[12 + 4] = { 0 };
    uint32_t hdr[3] = { 20, 4, 0 };
    memcpy (buf, hdr, 12);
    vu_send (&vu, VHOST_USER_GET_CONFIG, 0, buf, sizeof buf, NULL, 0);
    CHECK (vu_recv_reply (&vu, VHOST_USER_GET_CONFIG, buf, sizeof buf) == 16);
    memcpy (part, buf + 12, 4);
    CHECK (memcmp (part, cfg + 20, 4) == 0);
  }
  /* Outside the config space: an empty reply, and the session goes on. */
  {
    uint8_t buf[12 + 10] = { 0 };
    uint32_t hdr[3] = { 250, 10, 0 };
    memcpy (buf, hdr, 12);
    vu_send (&vu, VHOST_USER_GET_CONFIG, 0, buf, sizeof buf, NULL, 0);
    CHECK (vu_recv_reply (&vu, VHOST_USER_GET_CONFIG, buf, sizeof buf) == 0);
    CHECK (vu_get_u64 (&vu, VHOST_USER_GET_QUEUE_NUM) == NQUEUES);
  }
  vu_close (&vu);
  wait_disconnected ();
}

/* Reads and writes in every layout, checked against the file. */
static void
test_read_write (void)
{
  struct vu vu;
  const uint32_t len = 12288;
  uint8_t *want = malloc (6 << 20), *got = malloc (6 << 20);
  uint64_t b = VU_GPA_B + 4096, cross = VU_GPA_C - 6000;
  uint32_t used;

  CHECK (want && got);
  standard_connect (&vu);

  /* OUT split in 3 descriptors, IN split in 5, both directions. */
  fill (want, len, 1);
  memcpy (vu_ptr (&vu, b), want, len);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_OUT, 8, b, len, 3, false, &used) == 0);
  CHECK (used == 1);
  file_read (8 * 512, got, len);
  CHECK (memcmp (got, want, len) == 0);
  /* Read into a buffer that crosses from region B into C: contiguous
   * in guest memory, not at host.
   */
  memset (vu_ptr (&vu, cross), 0, 6000);
  memset (vu_ptr (&vu, VU_GPA_C), 0, len - 6000);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 8, cross, len, 5, false, &used) == 0);
  CHECK (used == len + 1);
  CHECK (memcmp (vu_ptr (&vu, cross), want, 6000) == 0);
  CHECK (memcmp (vu_ptr (&vu, VU_GPA_C), want + 6000, len - 6000) == 0);

  /* Indirect, single data segment (the direct path). */
  fill (want, 4096, 2);
  memcpy (vu_ptr (&vu, b), want, 4096);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_OUT, 100, b, 4096, 1, true, &used) == 0);
  memset (vu_ptr (&vu, b), 0, 4096);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 100, b, 4096, 1, true, &used) == 0);
  CHECK (memcmp (vu_ptr (&vu, b), want, 4096) == 0);
  file_read (100 * 512, got, 4096);
  CHECK (memcmp (got, want, 4096) == 0);

  /* 6 MiB across B and C: bigger than the bounce buffer, chunked. */
  fill (want, 6 << 20, 3);
  memcpy (vu_ptr (&vu, VU_GPA_B), want, 4 << 20);
  memcpy (vu_ptr (&vu, VU_GPA_C), want + (4 << 20), 2 << 20);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_OUT, 2048, VU_GPA_B, 6 << 20, 48, true,
                 &used) == 0);
  file_read (2048 * 512, got, 6 << 20);
  CHECK (memcmp (got, want, 6 << 20) == 0);
  memset (vu_ptr (&vu, VU_GPA_B), 0, 4 << 20);
  memset (vu_ptr (&vu, VU_GPA_C), 0, 4 << 20);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 2048, VU_GPA_B, 6 << 20, 60, false,
                 &used) == 0);
  CHECK (memcmp (vu_ptr (&vu, VU_GPA_B), want, 4 << 20) == 0);
  CHECK (memcmp (vu_ptr (&vu, VU_GPA_C), want + (4 << 20), 2 << 20) == 0);

  /* Any layout: header and data in one descriptor (OUT); data and
   * status in one descriptor (IN).
   */
  {
    uint64_t buf = vu_alloc_a (&vu, 16 + 1024, 16), st = vu_alloc_a (&vu, 1, 1);
    uint8_t *p = vu_ptr (&vu, buf);
    uint16_t i0, i1, head, h;
    uint32_t l;
    uint16_t idx[2];

    *(uint32_t *) p = htole32 (VIRTIO_BLK_T_OUT);
    *(uint32_t *) (p + 4) = 0;
    *(uint64_t *) (p + 8) = htole64 (300);
    fill (p + 16, 1024, 4);
    memcpy (want, p + 16, 1024);
    *vu_ptr (&vu, st) = 0xff;
    i0 = vu_desc_get (&vu, 0);
    i1 = vu_desc_get (&vu, 0);
    vu_desc_write (&vu, 0, i0, buf, 16 + 1024, VIRTQ_DESC_F_NEXT, i1);
    vu_desc_write (&vu, 0, i1, st, 1, VIRTQ_DESC_F_WRITE, 0);
    idx[0] = i0; idx[1] = i1;
    vu_desc_chain (&vu, 0, i0, idx, 2);
    vu_publish (&vu, 0, i0);
    vu_kick (&vu, 0);
    CHECK (vu_wait_used (&vu, 0, &h, &l, 10000) == 1 && h == i0);
    vu_free_chain (&vu, 0, i0);
    CHECK (*vu_ptr (&vu, st) == 0);
    file_read (300 * 512, got, 1024);
    CHECK (memcmp (got, want, 1024) == 0);

    /* IN: header alone, then one writable descriptor of data + status. */
    memset (p + 16, 0, 1024);
    *(uint32_t *) p = htole32 (VIRTIO_BLK_T_IN);
    {
      uint64_t ds = vu_alloc_a (&vu, 1025, 16);
      uint8_t *dsp = vu_ptr (&vu, ds);
      memset (dsp, 0xee, 1025);
      i0 = vu_desc_get (&vu, 0);
      i1 = vu_desc_get (&vu, 0);
      vu_desc_write (&vu, 0, i0, buf, 16, VIRTQ_DESC_F_NEXT, i1);
      vu_desc_write (&vu, 0, i1, ds, 1025, VIRTQ_DESC_F_WRITE, 0);
      idx[0] = i0; idx[1] = i1;
      vu_desc_chain (&vu, 0, i0, idx, 2);
      vu_publish (&vu, 0, i0);
      vu_kick (&vu, 0);
      CHECK (vu_wait_used (&vu, 0, &h, &l, 10000) == 1 && h == i0);
      vu_free_chain (&vu, 0, i0);
      CHECK (l == 1025);
      CHECK (memcmp (dsp, want, 1024) == 0);
      CHECK (dsp[1024] == 0);
    }
    (void) head;
  }
  vu_close (&vu);
  wait_disconnected ();
  free (want);
  free (got);
}

static void
test_flush_getid (void)
{
  struct vu vu;
  uint64_t buf;
  uint32_t used;
  uint8_t *p;

  standard_connect (&vu);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, false, &used) == 0);
  CHECK (used == 1);
  buf = vu_alloc_b (&vu, 32, 8);
  p = vu_ptr (&vu, buf);
  memset (p, 0xaa, 32);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_GET_ID, 0, buf, 20, 1, false, &used) == 0);
  CHECK (used == 21);
  CHECK (memcmp (p, SERIAL, strlen (SERIAL)) == 0);
  CHECK (is_zero (p + strlen (SERIAL), 20 - strlen (SERIAL)));
  CHECK (p[20] == 0xaa);
  /* A short buffer gets the start of the serial. */
  memset (p, 0xaa, 32);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_GET_ID, 0, buf, 8, 1, false, &used) == 0);
  CHECK (used == 9);
  CHECK (memcmp (p, SERIAL, 8) == 0 && p[8] == 0xaa);
  vu_close (&vu);
  wait_disconnected ();
}

/* A DISCARD or WRITE_ZEROES request with the given segments. */
static int
dwz (struct vu *vu, uint32_t type, const uint64_t (*segs)[3], unsigned n)
{
  uint64_t d = vu_alloc_a (vu, 16 * (size_t) (n ? n : 1), 16);
  uint8_t *p = vu_ptr (vu, d);
  uint32_t used;

  for (unsigned i = 0; i < n; ++i) {
    uint64_t s = htole64 (segs[i][0]);
    uint32_t ns = htole32 (segs[i][1]), fl = htole32 (segs[i][2]);
    memcpy (p + 16 * i, &s, 8);
    memcpy (p + 16 * i + 8, &ns, 4);
    memcpy (p + 16 * i + 12, &fl, 4);
  }
  /* The segments are device-readable data: reuse vu_blk with an OUT
   * shaped request by writing the type into the header.
   */
  return vu_blk (vu, 0, type, 0, d, 16 * n, 1, false, &used);
}

static void
test_discard_zero (void)
{
  struct vu vu;
  uint8_t *pat = malloc (1 << 20), *got = malloc (1 << 20);
  const uint64_t base = 8 << 20;   /* byte offset in the disk */

  CHECK (pat && got);
  fill (pat, 1 << 20, 9);
  file_write (base, pat, 1 << 20);
  standard_connect (&vu);

  /* DISCARD 64 KiB at base: zeros (RAW punches a hole). */
  {
    const uint64_t s[1][3] = { { base / 512, 128, 0 } };
    CHECK (dwz (&vu, VIRTIO_BLK_T_DISCARD, s, 1) == 0);
    file_read (base, got, 1 << 20);
    CHECK (is_zero (got, 65536));
    CHECK (memcmp (got + 65536, pat + 65536, (1 << 20) - 65536) == 0);
  }
  /* WRITE_ZEROES without and with unmap, two segments in one request. */
  {
    const uint64_t s[2][3] = {
      { (base + 131072) / 512, 64, 0 },
      { (base + 262144) / 512, 64, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP },
    };
    CHECK (dwz (&vu, VIRTIO_BLK_T_WRITE_ZEROES, s, 2) == 0);
    file_read (base, got, 1 << 20);
    CHECK (is_zero (got + 131072, 32768));
    CHECK (memcmp (got + 163840, pat + 163840, 262144 - 163840) == 0);
    CHECK (is_zero (got + 262144, 32768));
    CHECK (memcmp (got + 294912, pat + 294912, (1 << 20) - 294912) == 0);
  }
  /* Flags the spec makes UNSUPP: unmap on DISCARD, unknown bits. */
  {
    const uint64_t s1[1][3] = { { base / 512 + 1024, 8, 1 } };
    const uint64_t s2[1][3] = { { base / 512 + 1024, 8, 2 } };
    CHECK (dwz (&vu, VIRTIO_BLK_T_DISCARD, s1, 1) == VIRTIO_BLK_S_UNSUPP);
    CHECK (dwz (&vu, VIRTIO_BLK_T_WRITE_ZEROES, s2, 1) == VIRTIO_BLK_S_UNSUPP);
  }
  /* Checked before anything is done: a valid segment followed by one
   * past the end changes nothing.
   */
  {
    const uint64_t s[2][3] = {
      { base / 512 + 1024, 8, 0 },
      { DISK_SIZE / 512 - 4, 8, 0 },
    };
    CHECK (dwz (&vu, VIRTIO_BLK_T_WRITE_ZEROES, s, 2) == VIRTIO_BLK_S_IOERR);
    file_read (base + 1024 * 512, got, 4096);
    CHECK (memcmp (got, pat + 1024 * 512, 4096) == 0);
  }
  /* Malformed: no segment, too many segments, too many sectors. */
  {
    uint64_t many[33][3];
    const uint64_t big[1][3] = { { 0, (1u << 22) + 1, 0 } };
    for (int i = 0; i < 33; ++i) {
      many[i][0] = i; many[i][1] = 1; many[i][2] = 0;
    }
    CHECK (dwz (&vu, VIRTIO_BLK_T_DISCARD, many, 0) == VIRTIO_BLK_S_IOERR);
    CHECK (dwz (&vu, VIRTIO_BLK_T_DISCARD, (const uint64_t (*)[3]) many, 33)
           == VIRTIO_BLK_S_IOERR);
    CHECK (dwz (&vu, VIRTIO_BLK_T_DISCARD, big, 1) == VIRTIO_BLK_S_IOERR);
  }
  vu_close (&vu);
  wait_disconnected ();
  free (pat);
  free (got);
}

static void
test_request_errors (void)
{
  struct vu vu;
  uint64_t b;
  uint32_t used;

  standard_connect (&vu);
  b = vu_alloc_b (&vu, 8192, 4096);
  /* Past the end, straddling the end, misaligned, overflowing. */
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, DISK_SIZE / 512, b, 512, 1, false,
                 &used) == VIRTIO_BLK_S_IOERR);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_OUT, DISK_SIZE / 512 - 1, b, 1024, 1,
                 false, &used) == VIRTIO_BLK_S_IOERR);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, b, 100, 1, false, &used)
         == VIRTIO_BLK_S_IOERR);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_OUT, UINT64_MAX / 256, b, 512, 1, false,
                 &used) == VIRTIO_BLK_S_IOERR);
  /* Unknown and unsupported types. */
  CHECK (vu_blk (&vu, 0, 99, 0, 0, 0, 0, false, &used) == VIRTIO_BLK_S_UNSUPP);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_GET_LIFETIME, 0, b, 16, 1, false, &used)
         == VIRTIO_BLK_S_UNSUPP);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_SECURE_ERASE, 0, b, 16, 1, false, &used)
         == VIRTIO_BLK_S_UNSUPP);
  /* A header shorter than 16 bytes. */
  {
    uint64_t h = vu_alloc_a (&vu, 8, 8), st = vu_alloc_a (&vu, 1, 1);
    struct vu_seg s[2] = { { h, 8, false }, { st, 1, true } };
    uint16_t head, got;
    uint32_t l;
    *vu_ptr (&vu, st) = 0xff;
    head = vu_add (&vu, 0, s, 2, false);
    vu_kick (&vu, 0);
    CHECK (vu_wait_used (&vu, 0, &got, &l, 10000) == 1 && got == head);
    vu_free_chain (&vu, 0, head);
    CHECK (*vu_ptr (&vu, st) == VIRTIO_BLK_S_IOERR && l == 1);
  }
  /* The queue still works. */
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, b, 4096, 2, false, &used) == 0);
  vu_close (&vu);
  wait_disconnected ();
}

/* Publish a hand-made chain and expect it to be failed: used length 0,
 * status byte st left alone.
 */
static void
expect_failed (struct vu *vu, uint16_t head, const uint16_t *idx, unsigned n,
               uint64_t st)
{
  uint16_t got;
  uint32_t l;

  vu_desc_chain (vu, 0, head, idx, n);
  *vu_ptr (vu, st) = 0xff;
  vu_publish (vu, 0, head);
  vu_kick (vu, 0);
  CHECK (vu_wait_used (vu, 0, &got, &l, 10000) == 1);
  CHECK (got == head);
  CHECK (l == 0);
  CHECK (*vu_ptr (vu, st) == 0xff);
  vu_free_chain (vu, 0, head);
}

static void
write_hdr (struct vu *vu, uint64_t h, uint32_t type, uint64_t sector)
{
  uint8_t *p = vu_ptr (vu, h);
  uint32_t t = htole32 (type);
  uint64_t s = htole64 (sector);
  memset (p, 0, 16);
  memcpy (p, &t, 4);
  memcpy (p + 8, &s, 8);
}

static void
test_malicious_chains (void)
{
  struct vu vu;
  struct vhost_export_stats s0, s1;
  uint64_t h, st, d, tbl;
  uint16_t a, b, c, idx[3];
  uint32_t used;
  uint8_t before[4096], after[4096];

  vhost_export_get_stats (exp_, &s0);
  file_read (0, before, sizeof before);
  standard_connect (&vu);
  h = vu_alloc_a (&vu, 16, 16);
  st = vu_alloc_a (&vu, 1, 1);
  d = vu_alloc_b (&vu, 4096, 4096);
  write_hdr (&vu, h, VIRTIO_BLK_T_OUT, 0);
  memset (vu_ptr (&vu, d), 0x5a, 4096);

  /* 1. A loop: a -> b -> a. */
  a = vu_desc_get (&vu, 0); b = vu_desc_get (&vu, 0);
  vu_desc_write (&vu, 0, a, h, 16, VIRTQ_DESC_F_NEXT, b);
  vu_desc_write (&vu, 0, b, d, 4096, VIRTQ_DESC_F_NEXT, a);
  idx[0] = a; idx[1] = b;
  expect_failed (&vu, a, idx, 2, st);

  /* 2. next out of range. */
  a = vu_desc_get (&vu, 0);
  vu_desc_write (&vu, 0, a, h, 16, VIRTQ_DESC_F_NEXT, 5000);
  expect_failed (&vu, a, &a, 1, st);

  /* 3. A buffer outside guest memory, 4. one running off the end of
   * region A into the hole, 5. one wrapping around 2^64.
   */
  {
    const uint64_t bad[3][2] = {
      { 0x50000000, 512 },
      { VU_GPA_A + VU_REGION_SIZE - 8, 16 },
      { UINT64_C (0xfffffffffffffff0), 32 },
    };
    for (int i = 0; i < 3; ++i) {
      a = vu_desc_get (&vu, 0); b = vu_desc_get (&vu, 0);
      c = vu_desc_get (&vu, 0);
      vu_desc_write (&vu, 0, a, h, 16, VIRTQ_DESC_F_NEXT, b);
      vu_desc_write (&vu, 0, b, bad[i][0], bad[i][1], VIRTQ_DESC_F_NEXT, c);
      vu_desc_write (&vu, 0, c, st, 1, VIRTQ_DESC_F_WRITE, 0);
      idx[0] = a; idx[1] = b; idx[2] = c;
      expect_failed (&vu, a, idx, 3, st);
    }
  }

  /* 6. A device-readable buffer after a device-writable one. */
  a = vu_desc_get (&vu, 0); b = vu_desc_get (&vu, 0); c = vu_desc_get (&vu, 0);
  vu_desc_write (&vu, 0, a, h, 16, VIRTQ_DESC_F_NEXT, b);
  vu_desc_write (&vu, 0, b, st, 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, c);
  vu_desc_write (&vu, 0, c, d, 4096, 0, 0);
  idx[0] = a; idx[1] = b; idx[2] = c;
  expect_failed (&vu, a, idx, 3, st);

  /* 7. No device-writable byte at all: nothing to put a status in. */
  a = vu_desc_get (&vu, 0); b = vu_desc_get (&vu, 0);
  vu_desc_write (&vu, 0, a, h, 16, VIRTQ_DESC_F_NEXT, b);
  vu_desc_write (&vu, 0, b, d, 4096, 0, 0);
  idx[0] = a; idx[1] = b;
  expect_failed (&vu, a, idx, 2, st);

  /* Indirect tables: 8. with NEXT, 9. bad sizes, 10. outside memory,
   * 11. nested, 12. a loop inside the table.
   */
  tbl = vu_alloc_a (&vu, 16 * 4, 16);
  {
    uint8_t *t = vu_ptr (&vu, tbl);
    uint64_t v;
    uint32_t l;
    uint16_t fl, nx;
    /* A valid-looking table: hdr, data, status. */
    const uint64_t ent[3][4] = {
      { h, 16, VIRTQ_DESC_F_NEXT, 1 },
      { d, 4096, VIRTQ_DESC_F_NEXT, 2 },
      { st, 1, VIRTQ_DESC_F_WRITE, 0 },
    };
    for (int i = 0; i < 3; ++i) {
      v = htole64 (ent[i][0]); memcpy (t + 16 * i, &v, 8);
      l = htole32 (ent[i][1]); memcpy (t + 16 * i + 8, &l, 4);
      fl = htole16 (ent[i][2]); memcpy (t + 16 * i + 12, &fl, 2);
      nx = htole16 (ent[i][3]); memcpy (t + 16 * i + 14, &nx, 2);
    }
    a = vu_desc_get (&vu, 0); b = vu_desc_get (&vu, 0);
    vu_desc_write (&vu, 0, a, tbl, 48, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, b);
    vu_desc_write (&vu, 0, b, st, 1, VIRTQ_DESC_F_WRITE, 0);
    idx[0] = a; idx[1] = b;
    expect_failed (&vu, a, idx, 2, st);

    {
      const uint32_t sizes[3] = { 0, 47, 16 * 1025 };
      for (int i = 0; i < 3; ++i) {
        a = vu_desc_get (&vu, 0);
        vu_desc_write (&vu, 0, a, tbl, sizes[i], VIRTQ_DESC_F_INDIRECT, 0);
        expect_failed (&vu, a, &a, 1, st);
      }
    }
    a = vu_desc_get (&vu, 0);
    vu_desc_write (&vu, 0, a, 0x70000000, 48, VIRTQ_DESC_F_INDIRECT, 0);
    expect_failed (&vu, a, &a, 1, st);

    /* Nested: entry 1 becomes an indirect descriptor. */
    fl = htole16 (VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT);
    memcpy (t + 16 + 12, &fl, 2);
    a = vu_desc_get (&vu, 0);
    vu_desc_write (&vu, 0, a, tbl, 48, VIRTQ_DESC_F_INDIRECT, 0);
    expect_failed (&vu, a, &a, 1, st);

    /* Loop: entry 1 -> entry 0. */
    fl = htole16 (VIRTQ_DESC_F_NEXT);
    memcpy (t + 16 + 12, &fl, 2);
    nx = htole16 (0);
    memcpy (t + 16 + 14, &nx, 2);
    a = vu_desc_get (&vu, 0);
    vu_desc_write (&vu, 0, a, tbl, 48, VIRTQ_DESC_F_INDIRECT, 0);
    expect_failed (&vu, a, &a, 1, st);
  }

  /* Nothing reached the disk, and the queue still serves requests. */
  file_read (0, after, sizeof after);
  CHECK (memcmp (before, after, sizeof before) == 0);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 4096, 1, false, &used) == 0);
  vhost_export_get_stats (exp_, &s1);
  CHECK (s1.bad_requests - s0.bad_requests == 14);
  CHECK (s1.broken_queues == s0.broken_queues);
  vu_close (&vu);
  wait_disconnected ();

  /* Indirect descriptors the driver did not negotiate. */
  vu_connect (&vu, sock, ALL & ~F (VIRTIO_RING_F_INDIRECT_DESC), ALL);
  vu_queue_start (&vu, 0, 64);
  h = vu_alloc_a (&vu, 16, 16);
  st = vu_alloc_a (&vu, 1, 1);
  d = vu_alloc_b (&vu, 4096, 4096);
  write_hdr (&vu, h, VIRTIO_BLK_T_IN, 0);
  {
    struct vu_seg sg[3] = { { h, 16, false }, { d, 4096, true }, { st, 1, true } };
    uint16_t got;
    uint32_t l;
    uint16_t head = vu_add (&vu, 0, sg, 3, true);
    *vu_ptr (&vu, st) = 0xff;
    vu_kick (&vu, 0);
    CHECK (vu_wait_used (&vu, 0, &got, &l, 10000) == 1);
    CHECK (got == head && l == 0 && *vu_ptr (&vu, st) == 0xff);
    vu_free_chain (&vu, 0, head);
  }
  vu_close (&vu);
  wait_disconnected ();
}

/* A corrupt ring stops the queue (error eventfd) until it is restarted. */
static void
test_broken_ring (void)
{
  struct vu vu;
  struct vhost_export_stats s0, s1;
  uint64_t d;
  uint32_t used;
  uint16_t head, got, base;
  uint32_t l;

  vhost_export_get_stats (exp_, &s0);
  standard_connect (&vu);
  d = vu_alloc_b (&vu, 4096, 4096);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 4096, 1, false, &used) == 0);

  /* The available index runs ahead by more than the ring size. */
  {
    struct vu_queue *q = &vu.q[0];
    uint16_t bogus = q->avail_idx + 65;
    __atomic_store_n ((uint16_t *) (q->avail + 2), htole16 (bogus),
                      __ATOMIC_RELEASE);
    vu_kick (&vu, 0);
    CHECK (vu_errored (&vu, 0, 10000));
    /* Repair the index: the queue stays stopped anyway. */
    __atomic_store_n ((uint16_t *) (q->avail + 2), htole16 (q->avail_idx),
                      __ATOMIC_RELEASE);
    {
      uint64_t st = vu_alloc_a (&vu, 1, 1), h = vu_alloc_a (&vu, 16, 16);
      struct vu_seg sg[3] = { { h, 16, false }, { d, 512, true }, { st, 1, true } };
      write_hdr (&vu, h, VIRTIO_BLK_T_IN, 0);
      head = vu_add (&vu, 0, sg, 3, false);
      vu_kick (&vu, 0);
      CHECK (vu_wait_used (&vu, 0, &got, &l, 300) == 0);
      /* Restart the ring (what QEMU does when the guest resets the
       * device): it resumes where it stopped and takes the request.
       */
      base = vu_queue_stop (&vu, 0);
      CHECK (base == q->avail_idx - 1);
      vu_queue_start (&vu, 0, 64);
      CHECK (vu_wait_used (&vu, 0, &got, &l, 10000) == 1 && got == head);
      vu_free_chain (&vu, 0, head);
      CHECK (*vu_ptr (&vu, st) == 0);
    }
  }

  /* A head that is not a descriptor index. */
  {
    struct vu_queue *q = &vu.q[0];
    vu_publish (&vu, 0, 64);
    vu_kick (&vu, 0);
    CHECK (vu_errored (&vu, 0, 10000));
    /* Take the bogus entry back and restart. */
    q->avail_idx--;
    __atomic_store_n ((uint16_t *) (q->avail + 2), htole16 (q->avail_idx),
                      __ATOMIC_RELEASE);
    base = vu_queue_stop (&vu, 0);
    CHECK (base == q->avail_idx);
    vu_queue_start (&vu, 0, 64);
    CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 4096, 1, false, &used) == 0);
  }
  vhost_export_get_stats (exp_, &s1);
  CHECK (s1.broken_queues - s0.broken_queues == 2);
  vu_close (&vu);
  wait_disconnected ();
}

/* EVENT_IDX and the flags that suppress interrupts and kicks. */
static void
test_notifications (void)
{
  struct vu vu;
  uint64_t d;
  uint32_t used;
  struct vu_queue *q;

  /* With EVENT_IDX. */
  standard_connect (&vu);
  vu.manual_used_event = true;
  CHECK (vu.features & F (VIRTIO_RING_F_EVENT_IDX));
  q = &vu.q[0];
  d = vu_alloc_b (&vu, 4096, 4096);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 512, 1, false, &used) == 0);
  usleep (50000);
  /* The device asks for the next kick at its avail index. */
  CHECK (le16toh (*(uint16_t *) (q->used + 4 + 8 * q->num)) == q->avail_idx);
  vu_called (&vu, 0);
  /* used_event far ahead: no interrupt. */
  *(uint16_t *) (q->avail + 4 + 2 * q->num) = htole16 (q->used_seen + 100);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 512, 1, false, &used) == 0);
  usleep (100000);
  CHECK (!vu_called (&vu, 0));
  /* used_event at the next completion: an interrupt. */
  *(uint16_t *) (q->avail + 4 + 2 * q->num) = htole16 (q->used_seen);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 512, 1, false, &used) == 0);
  usleep (100000);
  CHECK (vu_called (&vu, 0));

  /* A driver whose used_event store reached us late (a TCG guest
   * without barriers, virtq.c "Method"): no interrupt at completion N,
   * then used_event says "after N-1".  The next completion interrupts
   * although it did not itself cross used_event...
   */
  *(uint16_t *) (q->avail + 4 + 2 * q->num) = htole16 (q->used_seen + 100);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 512, 1, false, &used) == 0);
  *(uint16_t *) (q->avail + 4 + 2 * q->num) = htole16 (q->used_seen - 1);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 512, 1, false, &used) == 0);
  usleep (50000);
  CHECK (vu_called (&vu, 0));
  /* ... and without a next completion, the export looks again after
   * renotify_ms (300 ms here) and interrupts.
   */
  usleep (400000);
  *(uint16_t *) (q->avail + 4 + 2 * q->num) = htole16 (q->used_seen + 100);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 512, 1, false, &used) == 0);
  *(uint16_t *) (q->avail + 4 + 2 * q->num) = htole16 (q->used_seen - 1);
  CHECK (!vu_called (&vu, 0));
  usleep (600000);
  CHECK (vu_called (&vu, 0));
  vu_close (&vu);
  wait_disconnected ();

  /* Without EVENT_IDX: VIRTQ_AVAIL_F_NO_INTERRUPT. */
  vu_connect (&vu, sock, ALL & ~F (VIRTIO_RING_F_EVENT_IDX), ALL);
  vu_queue_start (&vu, 0, 64);
  q = &vu.q[0];
  d = vu_alloc_b (&vu, 4096, 4096);
  *(uint16_t *) q->avail = htole16 (VIRTQ_AVAIL_F_NO_INTERRUPT);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 512, 1, false, &used) == 0);
  usleep (100000);
  CHECK (!vu_called (&vu, 0));
  *(uint16_t *) q->avail = 0;
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 512, 1, false, &used) == 0);
  usleep (100000);
  CHECK (vu_called (&vu, 0));
  /* The flag cleared only after the completion: the look-again after
   * renotify_ms interrupts.
   */
  *(uint16_t *) q->avail = htole16 (VIRTQ_AVAIL_F_NO_INTERRUPT);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 512, 1, false, &used) == 0);
  *(uint16_t *) q->avail = 0;
  CHECK (!vu_called (&vu, 0));
  usleep (600000);
  CHECK (vu_called (&vu, 0));
  /* Kicks are wanted again once the device is idle. */
  CHECK ((le16toh (*(uint16_t *) q->used) & VIRTQ_USED_F_NO_NOTIFY) == 0);
  vu_close (&vu);
  wait_disconnected ();
}

/* A driver whose available index reached us after it decided not to
 * kick (the kick-side twin of the late used_event): a request published
 * without a kick right after a burst is still taken, by the look-again
 * renotify_ms after the burst.
 */
static void
test_late_kick (void)
{
  struct vu vu;
  uint64_t d, h, st;
  uint32_t used, l;
  uint16_t head, got;

  standard_connect (&vu);
  d = vu_alloc_b (&vu, 4096, 4096);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 512, 1, false, &used) == 0);
  h = vu_alloc_a (&vu, 16, 16);
  st = vu_alloc_a (&vu, 1, 1);
  write_hdr (&vu, h, VIRTIO_BLK_T_IN, 8);
  *vu_ptr (&vu, st) = 0xff;
  {
    struct vu_seg sg[3] = { { h, 16, false }, { d, 512, true }, { st, 1, true } };
    head = vu_add (&vu, 0, sg, 3, false);   /* no vu_kick */
  }
  CHECK (vu_wait_used (&vu, 0, &got, &l, 5000) == 1);
  CHECK (got == head && *vu_ptr (&vu, st) == 0);
  vu_free_chain (&vu, 0, head);
  vu_close (&vu);
  wait_disconnected ();
}

/* While the poll loop runs a request itself (the only one in flight),
 * kicks stay off: the loop looks at the ring again when it is done, so
 * a request published meanwhile needs no kick (under TCG each kick is
 * an exit from the guest's translated code).  It is taken as soon as
 * the first one is done, not at the look-again renotify_ms later.
 */
static void
test_no_kick_while_busy (void)
{
  struct vd_fault_config fc = { .write_delay_ms = 300 };
  struct vu vu;
  uint64_t d, h[2], st[2];
  uint16_t head[2], got;
  uint32_t l;
  struct timespec t0, t1;

  stop_export ();
  start_export (false, &fc);
  standard_connect (&vu);
  d = vu_alloc_b (&vu, 4096, 4096);
  for (int i = 0; i < 2; ++i) {
    h[i] = vu_alloc_a (&vu, 16, 16);
    st[i] = vu_alloc_a (&vu, 1, 1);
    write_hdr (&vu, h[i], VIRTIO_BLK_T_OUT, 8 * i);
    *vu_ptr (&vu, st[i]) = 0xff;
  }
  {
    struct vu_seg sg[3] = { { h[0], 16, false }, { d, 4096, false },
                            { st[0], 1, true } };
    uint16_t old = vu.q[0].avail_idx;
    head[0] = vu_add (&vu, 0, sg, 3, false);
    CHECK (vu_kick_needed (&vu, 0, old));
    vu_kick (&vu, 0);
  }
  usleep (100000);              /* the write is now sleeping in the injector */
  clock_gettime (CLOCK_MONOTONIC, &t0);
  {
    struct vu_seg sg[3] = { { h[1], 16, false }, { d, 4096, false },
                            { st[1], 1, true } };
    uint16_t old = vu.q[0].avail_idx;
    head[1] = vu_add (&vu, 0, sg, 3, false);
    CHECK (!vu_kick_needed (&vu, 0, old));   /* and we do not kick */
  }
  for (int i = 0; i < 2; ++i) {
    CHECK (vu_wait_used (&vu, 0, &got, &l, 5000) == 1);
    CHECK (got == head[i] && *vu_ptr (&vu, st[i]) == 0);
  }
  clock_gettime (CLOCK_MONOTONIC, &t1);
  /* 200 ms left of the first write, 300 ms for the second: 500 ms.
   * Waiting for the look-again would add renotify_ms (300 ms): 800 ms.
   */
  CHECK ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000
         < 650);
  for (int i = 0; i < 2; ++i)
    vu_free_chain (&vu, 0, head[i]);
  /* Idle again: the next request will want a kick (avail_event is at
   * the available index).
   */
  usleep (50000);
  CHECK (le16toh (*(uint16_t *) (vu.q[0].used + 4 + 8 * vu.q[0].num))
         == vu.q[0].avail_idx);
  vu_close (&vu);
  wait_disconnected ();
  stop_export ();
  start_export (false, NULL);
}

/* Several queues, and many requests in flight at once. */
static void
test_queues_and_concurrency (void)
{
  struct vu vu;
  enum { N = 120 };
  uint64_t data, hdrs, sts;
  uint16_t heads[N];
  bool done[N];
  uint32_t used;

  vu_connect (&vu, sock, ALL, ALL);
  CHECK (vu.nqueues == NQUEUES);
  vu_queue_start (&vu, 0, 256);
  vu_queue_start (&vu, 1, 256);
  data = vu_alloc_b (&vu, N * 4096, 4096);
  hdrs = vu_alloc_a (&vu, N * 16, 16);
  sts = vu_alloc_a (&vu, N, 1);
  /* N writes of 8 sectors each, alternating queues, direct and
   * indirect, all published before a single kick per queue.
   */
  for (int i = 0; i < N; ++i) {
    struct vu_seg sg[4] = {
      { hdrs + 16 * i, 16, false },
      { data + 4096 * (uint64_t) i, 2048, false },
      { data + 4096 * (uint64_t) i + 2048, 2048, false },
      { sts + i, 1, true },
    };
    fill (vu_ptr (&vu, data + 4096 * (uint64_t) i), 4096, 100 + i);
    write_hdr (&vu, hdrs + 16 * i, VIRTIO_BLK_T_OUT, 4096 + 8 * i);
    *vu_ptr (&vu, sts + i) = 0xff;
    heads[i] = vu_add (&vu, i % 2, sg, 4, i % 3 == 0);
    done[i] = false;
  }
  vu_kick (&vu, 0);
  vu_kick (&vu, 1);
  for (int k = 0; k < N; ++k) {
    uint16_t h;
    uint32_t l;
    unsigned qi = k % 2;
    int i;
    CHECK (vu_wait_used (&vu, qi, &h, &l, 20000) == 1);
    for (i = qi; i < N; i += 2)
      if (heads[i] == h && !done[i])
        break;
    CHECK (i < N);
    done[i] = true;
    CHECK (l == 1 && *vu_ptr (&vu, sts + i) == 0);
    vu_free_chain (&vu, qi, h);
  }
  for (int i = 0; i < N; ++i) {
    uint8_t want[4096], got[4096];
    fill (want, 4096, 100 + i);
    file_read ((4096 + 8 * (uint64_t) i) * 512, got, 4096);
    CHECK (memcmp (want, got, 4096) == 0);
  }
  /* Stopping a ring reports where it stopped: after every request. */
  CHECK (vu_queue_stop (&vu, 1) == vu.q[1].avail_idx);
  vu_queue_start (&vu, 1, 256);
  CHECK (vu_blk (&vu, 1, VIRTIO_BLK_T_IN, 4096, data, 4096, 1, false, &used)
         == 0);
  vu_close (&vu);
  wait_disconnected ();
}

/* A full ring (as many requests as entries, indirect) in one kick:
 * taken a ring's worth at a time, all completed.
 */
static void
test_full_ring (void)
{
  struct vu vu;
  enum { NUM = 8 };
  uint64_t data, hdrs, sts;
  bool done[NUM] = { false };
  uint16_t heads[NUM];

  vu_connect (&vu, sock, ALL, ALL);
  vu_queue_start (&vu, 0, NUM);
  data = vu_alloc_b (&vu, NUM * 512, 512);
  hdrs = vu_alloc_a (&vu, NUM * 16, 16);
  sts = vu_alloc_a (&vu, NUM, 1);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < NUM; ++i) {
      struct vu_seg sg[3] = {
        { hdrs + 16 * i, 16, false },
        { data + 512 * (uint64_t) i, 512, true },
        { sts + i, 1, true },
      };
      write_hdr (&vu, hdrs + 16 * i, VIRTIO_BLK_T_IN, i);
      *vu_ptr (&vu, sts + i) = 0xff;
      heads[i] = vu_add (&vu, 0, sg, 3, true);
      done[i] = false;
    }
    vu_kick (&vu, 0);
    for (int k = 0; k < NUM; ++k) {
      uint16_t h;
      uint32_t l;
      int i;
      CHECK (vu_wait_used (&vu, 0, &h, &l, 10000) == 1);
      for (i = 0; i < NUM && (heads[i] != h || done[i]); ++i)
        ;
      CHECK (i < NUM);
      done[i] = true;
      CHECK (*vu_ptr (&vu, sts + i) == 0 && l == 513);
      vu_free_chain (&vu, 0, h);
    }
  }
  vu_close (&vu);
  wait_disconnected ();
}

/* Disconnecting flushes; a second front end is refused meanwhile;
 * the next one is served.
 */
static void
test_reconnect_flush (void)
{
  struct vd_fault_config fc = { .write_cache = true };
  struct vu vu, vu2;
  uint8_t want[4096], got[4096];
  uint64_t d;
  uint32_t used;

  stop_export ();
  start_export (false, &fc);
  standard_connect (&vu);
  d = vu_alloc_b (&vu, 4096, 4096);
  fill (want, sizeof want, 77);
  memcpy (vu_ptr (&vu, d), want, sizeof want);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_OUT, 5000, d, 4096, 1, false, &used)
         == 0);
  /* Held in the (emulated) volatile cache: not in the file yet. */
  file_read (5000 * 512, got, sizeof got);
  CHECK (memcmp (got, want, sizeof want) != 0);

  vu_connect_raw (&vu2, sock);
  CHECK (vu_wait_closed (&vu2));
  vu_close (&vu2);

  vu_close (&vu);
  wait_disconnected ();
  file_read (5000 * 512, got, sizeof got);
  CHECK (memcmp (got, want, sizeof want) == 0);

  /* A new front end sees the data. */
  standard_connect (&vu);
  d = vu_alloc_b (&vu, 4096, 4096);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 5000, d, 4096, 2, false, &used)
         == 0);
  CHECK (memcmp (vu_ptr (&vu, d), want, sizeof want) == 0);

  /* Write-through (the guest turned its write cache off): writes
   * reach the file without FLUSH.
   */
  {
    uint8_t buf[12 + 1] = { 0 };
    uint32_t hdr[3] = { 32, 1, 0 };
    uint8_t cfg[60];
    memcpy (buf, hdr, 12);
    buf[12] = 0;
    CHECK (vu_request_ack (&vu, VHOST_USER_SET_CONFIG, buf, sizeof buf,
                           NULL, 0) == 0);
    vu_get_config (&vu, cfg, sizeof cfg);
    CHECK (cfg[32] == 0);
    /* Only the writeback byte is writable. */
    hdr[0] = 0;
    memcpy (buf, hdr, 12);
    CHECK (vu_request_ack (&vu, VHOST_USER_SET_CONFIG, buf, sizeof buf,
                           NULL, 0) == 1);
  }
  fill (want, sizeof want, 78);
  memcpy (vu_ptr (&vu, d), want, sizeof want);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_OUT, 6000, d, 4096, 1, false, &used)
         == 0);
  file_read (6000 * 512, got, sizeof got);
  CHECK (memcmp (got, want, sizeof want) == 0);
  vu_close (&vu);
  wait_disconnected ();
  stop_export ();
  start_export (false, NULL);
}

static void
test_read_only (void)
{
  struct vu vu;
  uint64_t f, d;
  uint32_t used;
  uint8_t before[4096], after[4096];

  stop_export ();
  start_export (true, NULL);
  file_read (0, before, sizeof before);
  vu_connect (&vu, sock, ALL, ALL);
  f = vu.features;
  CHECK (f & F (VIRTIO_BLK_F_RO));
  CHECK (!(f & F (VIRTIO_BLK_F_DISCARD)) && !(f & F (VIRTIO_BLK_F_WRITE_ZEROES)));
  vu_queue_start (&vu, 0, 64);
  d = vu_alloc_b (&vu, 4096, 4096);
  memset (vu_ptr (&vu, d), 0x11, 4096);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_OUT, 0, d, 4096, 1, false, &used)
         == VIRTIO_BLK_S_IOERR);
  {
    const uint64_t s[1][3] = { { 0, 8, 0 } };
    CHECK (dwz (&vu, VIRTIO_BLK_T_DISCARD, s, 1) == VIRTIO_BLK_S_IOERR);
    CHECK (dwz (&vu, VIRTIO_BLK_T_WRITE_ZEROES, s, 1) == VIRTIO_BLK_S_IOERR);
  }
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 4096, 1, false, &used) == 0);
  CHECK (memcmp (vu_ptr (&vu, d), before, 4096) == 0);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, false, &used) == 0);
  file_read (0, after, sizeof after);
  CHECK (memcmp (before, after, sizeof before) == 0);
  vu_close (&vu);
  wait_disconnected ();
  stop_export ();
  start_export (false, NULL);
}

/* Attachment errors: EIO -> IOERR, EOPNOTSUPP -> UNSUPP. */
static void
test_io_errors (void)
{
  struct vd_fault_config fc = {
    .fail_ops = VD_FAULT_OP_READ, .fail_at = 1, .fail_errno = EIO,
    .fail_sticky = true,
  };
  struct vu vu;
  uint64_t d;
  uint32_t used;

  stop_export ();
  start_export (false, &fc);
  standard_connect (&vu);
  d = vu_alloc_b (&vu, 4096, 4096);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 4096, 1, false, &used)
         == VIRTIO_BLK_S_IOERR);
  CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_OUT, 0, d, 4096, 1, false, &used) == 0);
  vu_close (&vu);
  wait_disconnected ();
  stop_export ();

  fc = (struct vd_fault_config) {
    .fail_ops = VD_FAULT_OP_DISCARD, .fail_at = 1, .fail_errno = EOPNOTSUPP,
    .fail_sticky = true,
  };
  start_export (false, &fc);
  standard_connect (&vu);
  {
    const uint64_t s[1][3] = { { 0, 8, 0 } };
    CHECK (dwz (&vu, VIRTIO_BLK_T_DISCARD, s, 1) == VIRTIO_BLK_S_UNSUPP);
  }
  vu_close (&vu);
  wait_disconnected ();
  stop_export ();
  start_export (false, NULL);
}

/* Protocol errors: answered with a failure when the front end asked for
 * an acknowledgement, else the session ends; the export survives.
 */
static void
test_protocol_errors (void)
{
  struct vu vu;
  uint32_t state[2];
  uint64_t v;
  int efd = eventfd (0, EFD_CLOEXEC);

  CHECK (efd >= 0);
  vu_connect (&vu, sock, ALL, ALL);
  CHECK (vu.reply_ack);
  state[0] = 0; state[1] = 3;
  CHECK (vu_request_ack (&vu, VHOST_USER_SET_VRING_NUM, state, 8, NULL, 0) == 1);
  state[0] = 99; state[1] = 64;
  CHECK (vu_request_ack (&vu, VHOST_USER_SET_VRING_NUM, state, 8, NULL, 0) == 1);
  state[0] = 0; state[1] = 2;
  CHECK (vu_request_ack (&vu, VHOST_USER_SET_VRING_ENABLE, state, 8, NULL, 0)
         == 1);
  v = 0;
  CHECK (vu_request_ack (&vu, VHOST_USER_SET_LOG_BASE, &v, 8, NULL, 0) == 1);
  CHECK (vu_request_ack (&vu, VHOST_USER_VRING_KICK, state, 8, NULL, 0) == 1);
  v = F (VIRTIO_F_RING_PACKED);
  CHECK (vu_request_ack (&vu, VHOST_USER_SET_FEATURES, &v, 8, NULL, 0) == 1);
  v = F (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD);
  CHECK (vu_request_ack (&vu, VHOST_USER_SET_PROTOCOL_FEATURES, &v, 8, NULL,
                         0) == 1);
  v = 0 | VHOST_USER_VRING_NOFD_MASK;
  CHECK (vu_request_ack (&vu, VHOST_USER_SET_VRING_KICK, &v, 8, NULL, 0) == 1);
  /* Rings that are not inside guest memory: the start fails. */
  {
    uint8_t addr[40] = { 0 };
    uint64_t u = 0x12345000;
    int fd = eventfd (0, EFD_CLOEXEC);
    state[0] = 0; state[1] = 64;
    CHECK (vu_request_ack (&vu, VHOST_USER_SET_VRING_NUM, state, 8, NULL, 0)
           == 0);
    memcpy (addr + 8, &u, 8); memcpy (addr + 16, &u, 8); memcpy (addr + 24, &u, 8);
    CHECK (vu_request_ack (&vu, VHOST_USER_SET_VRING_ADDR, addr, 40, NULL, 0)
           == 0);
    v = 0;
    CHECK (vu_request_ack (&vu, VHOST_USER_SET_VRING_KICK, &v, 8, &fd, 1) == 1);
    close (fd);
  }
  /* A region past the end of its file. */
  {
    uint8_t buf[8 + 32];
    uint64_t reg[4] = { 0, 64 << 20, VU_UVA_BASE, 0 };
    uint32_t n = 1, pad = 0;
    int fd = vu.memfd;
    memcpy (buf, &n, 4); memcpy (buf + 4, &pad, 4); memcpy (buf + 8, reg, 32);
    CHECK (vu_request_ack (&vu, VHOST_USER_SET_MEM_TABLE, buf, sizeof buf,
                           &fd, 1) == 1);
    /* and an empty region */
    reg[1] = 0;
    memcpy (buf + 8, reg, 32);
    CHECK (vu_request_ack (&vu, VHOST_USER_SET_MEM_TABLE, buf, sizeof buf,
                           &fd, 1) == 1);
  }
  /* Still usable. */
  CHECK (vu_get_u64 (&vu, VHOST_USER_GET_QUEUE_NUM) == NQUEUES);
  vu_send_mem_table (&vu);
  vu_queue_start (&vu, 0, 64);
  {
    uint64_t d = vu_alloc_b (&vu, 4096, 4096);
    uint32_t used;
    CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 4096, 1, false, &used) == 0);
  }
  /* Rings that overlap (the used ring over the available one, where our
   * completions would make new requests appear): queue 1 does not start,
   * queue 0 goes on.
   */
  {
    uint8_t addr[40] = { 0 };
    uint64_t desc = vu_alloc_a (&vu, 16 * 64, 16);
    uint64_t ring = vu_alloc_a (&vu, 6 + 8 * 64, 4);
    uint64_t u;
    uint32_t qi = 1;
    int fd = eventfd (0, EFD_CLOEXEC);
    state[0] = 1; state[1] = 64;
    CHECK (vu_request_ack (&vu, VHOST_USER_SET_VRING_NUM, state, 8, NULL, 0)
           == 0);
    memcpy (addr, &qi, 4);
    u = VU_UVA_BASE + (desc - VU_GPA_A); memcpy (addr + 8, &u, 8);
    u = VU_UVA_BASE + (ring - VU_GPA_A); memcpy (addr + 16, &u, 8);
    memcpy (addr + 24, &u, 8);
    CHECK (vu_request_ack (&vu, VHOST_USER_SET_VRING_ADDR, addr, 40, NULL, 0)
           == 0);
    v = 1;
    CHECK (vu_request_ack (&vu, VHOST_USER_SET_VRING_KICK, &v, 8, &fd, 1) == 1);
    close (fd);
    {
      uint64_t d = vu_alloc_b (&vu, 4096, 4096);
      uint32_t used;
      CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 4096, 1, false, &used)
             == 0);
    }
  }
  /* Memory table replaced under running queues: they carry on. */
  vu_send_mem_table (&vu);
  {
    uint64_t d = vu_alloc_b (&vu, 4096, 4096);
    uint32_t used;
    CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 4096, 1, false, &used) == 0);
  }
  /* RESET_DEVICE, then set everything up again. */
  CHECK (vu_request_ack (&vu, VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0) == 0);
  vu_set_u64 (&vu, VHOST_USER_SET_PROTOCOL_FEATURES, vu.protocol_features);
  vu_set_u64 (&vu, VHOST_USER_SET_FEATURES, vu.features);
  vu_send_mem_table (&vu);
  vu.q[0].avail_idx = vu.q[0].used_seen = vu.q[0].base = 0;
  memset (vu.q[0].avail, 0, 6 + 2 * 64);
  memset (vu.q[0].used, 0, 6 + 8 * 64);
  vu_queue_start (&vu, 0, 64);
  {
    uint64_t d = vu_alloc_b (&vu, 4096, 4096);
    uint32_t used;
    CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 4096, 1, false, &used) == 0);
  }
  vu_close (&vu);
  wait_disconnected ();

  /* Without REPLY_ACK, a failure ends the session. */
  vu_connect (&vu, sock, ALL, ALL & ~F (VHOST_USER_PROTOCOL_F_REPLY_ACK));
  state[0] = 0; state[1] = 3;
  vu_send (&vu, VHOST_USER_SET_VRING_NUM, 0, state, 8, NULL, 0);
  CHECK (vu_wait_closed (&vu));
  vu_close (&vu);
  wait_disconnected ();

  /* Malformed messages end the session. */
  {
    static const struct {
      uint32_t request, flags, size;
      size_t nfds;
    } bad[] = {
      { VHOST_USER_SET_FEATURES, 0, 4, 0 },          /* short payload */
      { VHOST_USER_GET_FEATURES, 2, 0, 0 },          /* version 2 */
      { VHOST_USER_GET_FEATURES, VHOST_USER_REPLY_MASK, 0, 0 },
      { VHOST_USER_SET_VRING_CALL, 0, 8, 2 },        /* extra fd */
      { VHOST_USER_SET_VRING_KICK, 0, 8, 0 },        /* missing fd */
      { VHOST_USER_SET_VRING_NUM, 0, 12, 0 },        /* long payload */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
      uint8_t zero[16] = { 0 };
      int fds[2] = { efd, efd };
      vu_connect_raw (&vu, sock);
      if (bad[i].flags == 2) {
        /* vu_send always sets version 1: build the header by hand. */
        uint32_t hdr[3] = { bad[i].request, 2, 0 };
        CHECK (write (vu.sock, hdr, 12) == 12);
      }
      else
        vu_send (&vu, bad[i].request, bad[i].flags, zero, bad[i].size, fds,
                 bad[i].nfds);
      CHECK (vu_wait_closed (&vu));
      vu_close (&vu);
      wait_disconnected ();
    }
    /* A payload size beyond what we accept. */
    vu_connect_raw (&vu, sock);
    {
      uint32_t hdr[3] = { VHOST_USER_SET_FEATURES, 1, 1u << 20 };
      CHECK (write (vu.sock, hdr, 12) == 12);
    }
    CHECK (vu_wait_closed (&vu));
    vu_close (&vu);
    wait_disconnected ();
  }
  /* The export still serves. */
  standard_connect (&vu);
  {
    uint64_t d = vu_alloc_b (&vu, 4096, 4096);
    uint32_t used;
    CHECK (vu_blk (&vu, 0, VIRTIO_BLK_T_IN, 0, d, 4096, 1, false, &used) == 0);
  }
  vu_close (&vu);
  wait_disconnected ();
  close (efd);
}

static void
test_serial_and_options (void)
{
  struct vhost_export_options o = { .socket_path = sock };
  char path2[300];

  CHECK (vhost_validate_serial ("") == 0);
  CHECK (vhost_validate_serial ("12345678901234567890") == 0);
  CHECK_FAILS (vhost_validate_serial ("123456789012345678901"), EINVAL,
               "at most 20 bytes");
  CHECK_FAILS (vhost_validate_serial ("caf\xc3\xa9"), EINVAL, "non-ASCII");
  o.serial = "this-serial-is-far-too-long";
  CHECK_NULL (vhost_export_start (att, &o), EINVAL, "at most 20 bytes");
  o.serial = NULL;
  o.num_queues = 33;
  CHECK_NULL (vhost_export_start (att, &o), EINVAL, "between 1 and 32");
  /* The socket is in use by the running export. */
  o.num_queues = 1;
  CHECK_NULL (vhost_export_start (att, &o), EADDRINUSE, "another process");
  /* That check connected to the running export, which took the probe
   * for a front end: wait until it has seen it go, or the next test's
   * connection is refused as a second front end (1 run in ~40).
   */
  wait_disconnected ();
  /* A regular file at the path is never replaced. */
  snprintf (path2, sizeof path2, "%s.file", sock);
  {
    int fd = open (path2, O_CREAT | O_WRONLY, 0600);
    CHECK (fd >= 0);
    close (fd);
  }
  o.socket_path = path2;
  CHECK_NULL (vhost_export_start (att, &o), EADDRINUSE, path2);
  unlink (path2);
}

int
main (void)
{
  test_tmpname (img, sizeof img, "vhost-blk.img");
  test_tmpname (sock, sizeof sock, "vhost-blk.sock");
  CHECK (vd_image_create (img, VD_FORMAT_RAW, DISK_SIZE, 0) == 0);
  start_export (false, NULL);

  test_serial_and_options ();
  test_negotiation ();
  test_read_write ();
  test_flush_getid ();
  test_discard_zero ();
  test_request_errors ();
  test_malicious_chains ();
  test_broken_ring ();
  test_notifications ();
  test_late_kick ();
  test_no_kick_while_busy ();
  test_queues_and_concurrency ();
  test_full_ring ();
  test_reconnect_flush ();
  test_read_only ();
  test_io_errors ();
  test_protocol_errors ();

  stop_export ();
  {
    struct stat st;
    CHECK (stat (sock, &st) == -1 && errno == ENOENT);
  }
  unlink (img);
  printf ("test-vhost-blk: OK\n");
  return 0;
}
