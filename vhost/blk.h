/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The virtio-blk device model over an attachment: the features and the
 * config space we offer, and the execution of one request (a walked
 * descriptor chain) with the attachment API.
 *
 * Request mapping:
 *   IN            vd_attachment_pread into the device-writable buffers
 *   OUT           vd_attachment_pwrite from the device-readable buffers
 *                 (write-through mode, set by the guest through
 *                 CONFIG_WCE: followed by a flush)
 *   FLUSH         vd_attachment_flush
 *   GET_ID        the serial (blockDeviceIdentifier), zero padded
 *   DISCARD       vd_attachment_discard per segment
 *   WRITE_ZEROES  vd_attachment_write_zeroes per segment, with
 *                 VD_FLAG_MAY_TRIM when the segment has the unmap flag
 * Status: OK; UNSUPP for unknown request types, operations the
 * attachment cannot do (EOPNOTSUPP/ENOTSUP from the library) and flags
 * the spec makes UNSUPP; IOERR for everything else (I/O errors,
 * out-of-range or misaligned requests, writes to a read-only disk,
 * malformed requests).
 *
 * Buffers: the attachment reads and writes guest memory directly.  When
 * the data buffers of a request are contiguous at host (hugepage-backed
 * guests, or single-segment requests) that is one vd_attachment_pread
 * or pwrite; guests otherwise scatter 4 KiB pages, and the segments go
 * to vd_attachment_preadv or pwritev as they are: one preadv on a RAW
 * image or a block device, where a bounce buffer would cost a copy of
 * every byte (other attachment kinds gather and scatter inside
 * libvdisk).
 */
#ifndef VD_VHOST_BLK_H
#define VD_VHOST_BLK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdisk/attachment.h"
#include "virtq.h"

/* What we advertise in the config space. */
#define VHOST_BLK_SEG_MAX            510   /* data segments per request */
#define VHOST_BLK_MAX_DWZ_SEG        32    /* discard / write-zeroes
                                              segments per request */
#define VHOST_BLK_MAX_DWZ_SECTORS    (UINT32_C (1) << 22) /* 2 GiB */
/* Largest serial (blockDeviceIdentifier), as Apple validates it. */
#define VHOST_BLK_SERIAL_MAX         VIRTIO_BLK_ID_BYTES

struct vhost_blk {
  struct vd_attachment *a;      /* borrowed, started */
  uint64_t size;                /* bytes */
  uint32_t blk_size;            /* logical block size */
  uint32_t pref_size;           /* preferred I/O size */
  uint32_t max_request;         /* largest pread/pwrite */
  bool read_only;
  bool can_discard;
  bool can_zero;
  char serial[VHOST_BLK_SERIAL_MAX];
  size_t serial_len;
  uint16_t num_queues;
  atomic_bool writeback;        /* guest's write cache setting */
  atomic_uint_fast64_t io_errors; /* requests failed with IOERR */
};

/* Check a serial as Apple's validateBlockDeviceIdentifier does: ASCII,
 * at most 20 bytes.  0, or -1 with EINVAL and a message saying why.
 */
int vhost_blk_validate_serial (const char *serial);

/* Describe attachment a (started) as a virtio-blk device.  serial may be
 * NULL (empty, Apple's default).  0, or -1 (raised).
 */
int vhost_blk_init (struct vhost_blk *b, struct vd_attachment *a,
                    const char *serial, bool read_only,
                    uint16_t num_queues);

/* Virtio feature bits of the device (without the transport's). */
uint64_t vhost_blk_features (const struct vhost_blk *b);

/* Fill cfg (VHOST_USER_MAX_CONFIG_SIZE bytes) with the config space. */
void vhost_blk_config (const struct vhost_blk *b, uint8_t *cfg);

/* A write to the config space from the front end.  Only the writeback
 * byte is writable (when CONFIG_WCE was negotiated, wce true).  0, or
 * -1 with EINVAL raised.
 */
int vhost_blk_set_config (struct vhost_blk *b, bool wce, uint32_t offset,
                          const uint8_t *data, uint32_t size,
                          uint32_t flags);

/* Execute the request in c (its segments may be modified).  Returns the
 * status written into the request's status byte, with *used_len the
 * bytes written to device-writable buffers; or -1 when the request has
 * no device-writable byte to hold a status (nothing written, *used_len
 * 0).  Blocks for the duration of the I/O.
 */
int vhost_blk_handle (struct vhost_blk *b, struct virtq_chain *c,
                      uint32_t *used_len);

#endif
