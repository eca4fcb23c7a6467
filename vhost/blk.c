/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * virtio-blk device model over an attachment (see blk.h).
 *
 * Method (request layout): virtio 1.x lets the driver frame a request
 * any way it likes across descriptors, so the request is treated as two
 * byte streams: the device-readable one starts with the 16-byte header
 * (then OUT data, or discard/write-zeroes segments), the device-writable
 * one ends with the status byte (after IN data or the serial).  The
 * header and segments are copied out of guest memory before they are
 * checked; data moves straight between guest memory and the attachment
 * (one call for a run of contiguous memory, else vectored calls over the
 * segments; no copy here).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "errors.h"
#include "checked-overflow.h"
#include "minmax.h"
#include "le.h"
#include "vhost-user-protocol.h"
#include "blk.h"

#define F(bit) (UINT64_C (1) << (bit))

int
vhost_blk_validate_serial (const char *serial)
{
  size_t len = strlen (serial);

  for (size_t i = 0; i < len; ++i)
    if ((unsigned char) serial[i] > 0x7f) {
      vd_error_msg (EINVAL, "the block device identifier '%s' is invalid: "
                    "it contains a non-ASCII byte (0x%02x at offset %zu)",
                    serial, (unsigned char) serial[i], i);
      return -1;
    }
  if (len > VHOST_BLK_SERIAL_MAX) {
    vd_error_msg (EINVAL, "the block device identifier '%s' is invalid: it "
                  "is %zu bytes long, and at most %d bytes are allowed",
                  serial, len, VHOST_BLK_SERIAL_MAX);
    return -1;
  }
  return 0;
}

int
vhost_blk_init (struct vhost_blk *b, struct vd_attachment *a,
                const char *serial, bool read_only, uint16_t num_queues)
{
  int64_t size;
  int ro;

  memset (b, 0, sizeof *b);
  if (serial == NULL)
    serial = "";
  if (vhost_blk_validate_serial (serial) == -1)
    return -1;
  size = vd_attachment_get_size (a);
  ro = vd_attachment_is_read_only (a);
  if (size == -1 || ro == -1)
    return -1;
  b->a = a;
  b->size = size;
  b->blk_size = vd_attachment_get_block_size (a);
  b->pref_size = vd_attachment_get_preferred_block_size (a);
  b->max_request = vd_attachment_get_max_request (a);
  if (b->blk_size < VIRTIO_BLK_SECTOR_SIZE || b->max_request == 0) {
    vd_error_msg (EINVAL, "%s: unusable block size %" PRIu32 " or maximum "
                  "request %" PRIu32, vd_attachment_get_name (a),
                  b->blk_size, b->max_request);
    return -1;
  }
  b->read_only = read_only || ro;
  b->can_discard = !b->read_only && vd_attachment_can_discard (a) == 1;
  b->can_zero = !b->read_only && vd_attachment_can_zero (a) == 1;
  b->serial_len = strlen (serial);
  memcpy (b->serial, serial, b->serial_len);
  b->num_queues = num_queues;
  atomic_init (&b->writeback, true);
  atomic_init (&b->io_errors, 0);
  return 0;
}

uint64_t
vhost_blk_features (const struct vhost_blk *b)
{
  uint64_t f = F (VIRTIO_BLK_F_SEG_MAX) | F (VIRTIO_BLK_F_BLK_SIZE) |
    F (VIRTIO_BLK_F_TOPOLOGY) | F (VIRTIO_BLK_F_FLUSH) |
    F (VIRTIO_BLK_F_CONFIG_WCE) | F (VIRTIO_BLK_F_MQ);

  if (b->read_only)
    f |= F (VIRTIO_BLK_F_RO);
  if (b->can_discard)
    f |= F (VIRTIO_BLK_F_DISCARD);
  if (b->can_zero)
    f |= F (VIRTIO_BLK_F_WRITE_ZEROES);
  return f;
}

static unsigned
log2u (uint32_t v)
{
  unsigned n = 0;

  while (v > 1) {
    v >>= 1;
    n++;
  }
  return n;
}

void
vhost_blk_config (const struct vhost_blk *b, uint8_t *cfg)
{
  uint32_t lbs = b->blk_size;
  uint32_t phys = lbs, opt = 0;
  uint32_t dwz_align = lbs >> VIRTIO_BLK_SECTOR_SHIFT;

  memset (cfg, 0, VHOST_USER_MAX_CONFIG_SIZE);
  store_le64 (cfg + VIRTIO_BLK_CFG_CAPACITY,
              b->size >> VIRTIO_BLK_SECTOR_SHIFT);
  store_le32 (cfg + VIRTIO_BLK_CFG_SEG_MAX, VHOST_BLK_SEG_MAX);
  store_le32 (cfg + VIRTIO_BLK_CFG_BLK_SIZE, lbs);
  /* Topology: the preferred I/O size (ASIF: the chunk) is the optimal
   * size; the physical block is that too when it is a power-of-two
   * multiple of the logical block, up to 4 KiB (file systems dislike
   * larger physical blocks).
   */
  if (b->pref_size >= lbs && b->pref_size % lbs == 0) {
    opt = b->pref_size / lbs;
    uint32_t cap = lbs > 4096 ? lbs : 4096;
    if ((b->pref_size & (b->pref_size - 1)) == 0)
      phys = MIN (b->pref_size, cap);
  }
  cfg[VIRTIO_BLK_CFG_PHYSICAL_BLOCK_EXP] = log2u (phys / lbs);
  cfg[VIRTIO_BLK_CFG_ALIGNMENT_OFFSET] = 0;
  store_le16 (cfg + VIRTIO_BLK_CFG_MIN_IO_SIZE, phys / lbs);
  store_le32 (cfg + VIRTIO_BLK_CFG_OPT_IO_SIZE, opt);
  cfg[VIRTIO_BLK_CFG_WRITEBACK] = atomic_load (&b->writeback) ? 1 : 0;
  store_le16 (cfg + VIRTIO_BLK_CFG_NUM_QUEUES, b->num_queues);
  if (b->can_discard) {
    store_le32 (cfg + VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS,
                VHOST_BLK_MAX_DWZ_SECTORS);
    store_le32 (cfg + VIRTIO_BLK_CFG_MAX_DISCARD_SEG, VHOST_BLK_MAX_DWZ_SEG);
    store_le32 (cfg + VIRTIO_BLK_CFG_DISCARD_SECTOR_ALIGNMENT, dwz_align);
  }
  if (b->can_zero) {
    store_le32 (cfg + VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS,
                VHOST_BLK_MAX_DWZ_SECTORS);
    store_le32 (cfg + VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG,
                VHOST_BLK_MAX_DWZ_SEG);
    cfg[VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP] = 1;
  }
}

int
vhost_blk_set_config (struct vhost_blk *b, bool wce, uint32_t offset,
                      const uint8_t *data, uint32_t size, uint32_t flags)
{
  if (flags != VHOST_SET_CONFIG_TYPE_FRONTEND &&
      flags != VHOST_SET_CONFIG_TYPE_MIGRATION) {
    vd_error_msg (EINVAL, "SET_CONFIG: unknown flags 0x%" PRIx32, flags);
    return -1;
  }
  if (!wce || offset != VIRTIO_BLK_CFG_WRITEBACK || size != 1) {
    vd_error_msg (EINVAL, "SET_CONFIG: bytes %" PRIu32 "-%" PRIu64 " of the "
                  "config space are read-only", offset,
                  (uint64_t) offset + size);
    return -1;
  }
  if (data[0] > 1) {
    vd_error_msg (EINVAL, "SET_CONFIG: invalid writeback value %u", data[0]);
    return -1;
  }
  atomic_store (&b->writeback, data[0] == 1);
  return 0;
}

/* Segment lists. */

/* Drop n bytes from the front of (*iov, *niov). */
static void
iov_drop_front (struct vhost_iov **iov, unsigned *niov, uint64_t n)
{
  while (n > 0 && *niov > 0) {
    struct vhost_iov *v = *iov;
    if (v->len > n) {
      v->base += n;
      v->len -= n;
      return;
    }
    n -= v->len;
    (*iov)++;
    (*niov)--;
  }
}

/* If the segments form one run of host memory, its start. */
static uint8_t *
iov_single_run (const struct vhost_iov *iov, unsigned niov)
{
  uint8_t *start = NULL, *end = NULL;

  for (unsigned i = 0; i < niov; ++i) {
    if (iov[i].len == 0)
      continue;
    if (start == NULL)
      start = iov[i].base;
    else if (iov[i].base != end)
      return NULL;
    end = iov[i].base + iov[i].len;
  }
  return start;
}

struct cursor {
  const struct vhost_iov *iov;
  unsigned niov;
  unsigned i;
  size_t off;
};

/* Copy between the segments at the cursor and buf (to_guest: buf ->
 * guest), advancing.  Returns the bytes copied (less than len only when
 * the segments end).
 */
static size_t
cursor_copy (struct cursor *c, void *buf, size_t len, bool to_guest)
{
  uint8_t *p = buf;
  size_t done = 0;

  while (done < len && c->i < c->niov) {
    const struct vhost_iov *v = &c->iov[c->i];
    size_t n = MIN (v->len - c->off, len - done);

    if (to_guest)
      memcpy (v->base + c->off, p + done, n);
    else
      memcpy (p + done, v->base + c->off, n);
    done += n;
    c->off += n;
    if (c->off == v->len) {
      c->i++;
      c->off = 0;
    }
  }
  return done;
}

/* Segments per vectored call: a request within seg_max
 * (VHOST_BLK_SEG_MAX) takes one call, a longer chain several.
 */
#define VEC_MAX 512

/* Describe in v (at most VEC_MAX entries, *cnt of them used) the next
 * bytes at the cursor, at most len of them, advancing.  Returns the
 * bytes described.
 */
static size_t
cursor_vec (struct cursor *c, struct iovec *v, int *cnt, size_t len)
{
  size_t done = 0;
  int k = 0;

  while (done < len && k < VEC_MAX && c->i < c->niov) {
    const struct vhost_iov *s = &c->iov[c->i];
    size_t n = MIN (s->len - c->off, len - done);

    if (n > 0) {
      v[k].iov_base = s->base + c->off;
      v[k].iov_len = n;
      k++;
    }
    done += n;
    c->off += n;
    if (c->off == s->len) {
      c->i++;
      c->off = 0;
    }
  }
  *cnt = k;
  return done;
}

/* Requests. */

static uint8_t
status_from_errno (struct vhost_blk *b)
{
  int e = vd_get_errno ();

  if (e == EOPNOTSUPP || e == ENOTSUP)
    return VIRTIO_BLK_S_UNSUPP;
  atomic_fetch_add (&b->io_errors, 1);
  return VIRTIO_BLK_S_IOERR;
}

static uint8_t
ioerr (struct vhost_blk *b)
{
  atomic_fetch_add (&b->io_errors, 1);
  return VIRTIO_BLK_S_IOERR;
}

/* The byte range of an IN or OUT request, if valid: aligned to sectors
 * and inside the disk.
 */
static bool
rw_range_ok (struct vhost_blk *b, uint64_t sector, uint64_t len,
             uint64_t *offset)
{
  uint64_t end;

  if (len % VIRTIO_BLK_SECTOR_SIZE != 0)
    return false;
  if (sector > (UINT64_MAX >> VIRTIO_BLK_SECTOR_SHIFT))
    return false;
  *offset = sector << VIRTIO_BLK_SECTOR_SHIFT;
  return !ADD_OVERFLOW (*offset, len, &end) && end <= b->size;
}

/* IN and OUT data: len bytes at off, between the segments and the
 * attachment, in calls of at most the attachment's maximum request.
 */
static uint8_t
do_rw (struct vhost_blk *b, struct vhost_iov *iov, unsigned niov,
       uint64_t len, uint64_t off, bool write)
{
  uint8_t *run = iov_single_run (iov, niov);
  struct cursor cur = { iov, niov, 0, 0 };
  struct iovec v[VEC_MAX];

  while (len > 0) {
    size_t n = MIN (len, (uint64_t) b->max_request);
    int r, cnt;

    if (run) {
      r = write ? vd_attachment_pwrite (b->a, run, n, off, 0)
        : vd_attachment_pread (b->a, run, n, off, 0);
      run += n;
    }
    else {
      n = cursor_vec (&cur, v, &cnt, n);
      if (n == 0)
        return ioerr (b);       /* len is the segments' total: not reached */
      r = write ? vd_attachment_pwritev (b->a, v, cnt, off, 0)
        : vd_attachment_preadv (b->a, v, cnt, off, 0);
    }
    if (r == -1)
      return status_from_errno (b);
    off += n;
    len -= n;
  }
  return VIRTIO_BLK_S_OK;
}

static uint8_t
do_write (struct vhost_blk *b, struct vhost_iov *iov, unsigned niov,
          uint64_t len, uint64_t off)
{
  bool wt = !atomic_load (&b->writeback);
  uint8_t st = do_rw (b, iov, niov, len, off, true);

  /* Write-through, as QEMU does it: a flush once the data is written
   * (one flush for the whole request, rather than FUA on each piece).
   */
  if (st == VIRTIO_BLK_S_OK && wt && vd_attachment_flush (b->a, 0) == -1)
    return status_from_errno (b);
  return st;
}

/* DISCARD and WRITE_ZEROES: the data is an array of segments. */
static uint8_t
do_dwz (struct vhost_blk *b, uint32_t type, struct vhost_iov *iov,
        unsigned niov, uint64_t len)
{
  uint8_t segs[VHOST_BLK_MAX_DWZ_SEG * VIRTIO_BLK_DWZ_SEG_SIZE];
  struct cursor cur = { iov, niov, 0, 0 };
  bool discard = type == VIRTIO_BLK_T_DISCARD;
  size_t nsegs;

  if ((discard && !b->can_discard) || (!discard && !b->can_zero))
    return b->read_only ? ioerr (b) : VIRTIO_BLK_S_UNSUPP;
  if (len == 0 || len % VIRTIO_BLK_DWZ_SEG_SIZE != 0 ||
      len / VIRTIO_BLK_DWZ_SEG_SIZE > VHOST_BLK_MAX_DWZ_SEG)
    return ioerr (b);
  nsegs = len / VIRTIO_BLK_DWZ_SEG_SIZE;
  cursor_copy (&cur, segs, len, false);

  /* Check every segment before doing any. */
  for (size_t i = 0; i < nsegs; ++i) {
    const uint8_t *s = segs + i * VIRTIO_BLK_DWZ_SEG_SIZE;
    uint32_t nsec = load_le32 (s + 8), flags = load_le32 (s + 12);
    uint32_t allowed = discard ? 0 : VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
    uint64_t off;

    if (flags & ~allowed)
      return VIRTIO_BLK_S_UNSUPP;
    if (nsec > VHOST_BLK_MAX_DWZ_SECTORS ||
        !rw_range_ok (b, load_le64 (s),
                      (uint64_t) nsec << VIRTIO_BLK_SECTOR_SHIFT, &off))
      return ioerr (b);
  }
  for (size_t i = 0; i < nsegs; ++i) {
    const uint8_t *s = segs + i * VIRTIO_BLK_DWZ_SEG_SIZE;
    uint64_t off = load_le64 (s) << VIRTIO_BLK_SECTOR_SHIFT;
    uint64_t count = (uint64_t) load_le32 (s + 8) << VIRTIO_BLK_SECTOR_SHIFT;
    uint32_t flags = load_le32 (s + 12);
    int r;

    if (count == 0)
      continue;
    if (discard)
      r = vd_attachment_discard (b->a, count, off, 0);
    else
      r = vd_attachment_write_zeroes (b->a, count, off,
                                      (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
                                      ? VD_FLAG_MAY_TRIM : 0);
    if (r == -1)
      return status_from_errno (b);
  }
  if (!atomic_load (&b->writeback) && vd_attachment_flush (b->a, 0) == -1)
    return status_from_errno (b);
  return VIRTIO_BLK_S_OK;
}

int
vhost_blk_handle (struct vhost_blk *b, struct virtq_chain *c,
                  uint32_t *used_len)
{
  struct vhost_iov *out = c->iov, *in = c->iov + c->n_out;
  unsigned n_out = c->n_out, n_in = c->n_in;
  uint64_t out_len = c->out_bytes, in_len;
  uint8_t hdr[VIRTIO_BLK_OUTHDR_SIZE];
  uint8_t *status;
  uint8_t st;
  uint32_t type;
  uint64_t sector, off;
  struct cursor cur;

  *used_len = 0;
  if (c->in_bytes == 0)
    return -1;
  /* The status is the last device-writable byte; the data before it. */
  status = in[n_in - 1].base + in[n_in - 1].len - 1;
  in[n_in - 1].len--;
  in_len = c->in_bytes - 1;

  if (out_len < VIRTIO_BLK_OUTHDR_SIZE) {
    st = ioerr (b);
    *used_len = 1;
    goto done;
  }
  cur = (struct cursor) { out, n_out, 0, 0 };
  cursor_copy (&cur, hdr, sizeof hdr, false);
  type = load_le32 (hdr);
  sector = load_le64 (hdr + 8);
  iov_drop_front (&out, &n_out, VIRTIO_BLK_OUTHDR_SIZE);
  out_len -= VIRTIO_BLK_OUTHDR_SIZE;
  *used_len = 1;

  switch (type) {
  case VIRTIO_BLK_T_IN:
    if (!rw_range_ok (b, sector, in_len, &off))
      st = ioerr (b);
    else
      st = do_rw (b, in, n_in, in_len, off, false);
    /* As QEMU: the whole data area counts as written. */
    *used_len = in_len + 1 > UINT32_MAX ? UINT32_MAX : in_len + 1;
    break;

  case VIRTIO_BLK_T_OUT:
    if (b->read_only || !rw_range_ok (b, sector, out_len, &off))
      st = ioerr (b);
    else
      st = do_write (b, out, n_out, out_len, off);
    break;

  case VIRTIO_BLK_T_FLUSH:
    st = vd_attachment_flush (b->a, 0) == -1 ? status_from_errno (b)
      : VIRTIO_BLK_S_OK;
    break;

  case VIRTIO_BLK_T_GET_ID: {
    uint8_t id[VIRTIO_BLK_ID_BYTES] = { 0 };
    size_t n = MIN (in_len, (uint64_t) sizeof id);

    memcpy (id, b->serial, b->serial_len);
    cur = (struct cursor) { in, n_in, 0, 0 };
    cursor_copy (&cur, id, n, true);
    *used_len = n + 1;
    st = VIRTIO_BLK_S_OK;
    break;
  }

  case VIRTIO_BLK_T_DISCARD:
  case VIRTIO_BLK_T_WRITE_ZEROES:
    st = do_dwz (b, type, out, n_out, out_len);
    break;

  default:
    st = VIRTIO_BLK_S_UNSUPP;
    break;
  }

 done:
  *status = st;
  return st;
}
