/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Fuzz target: descriptor tables, rings and virtio-blk requests.  A
 * session is set up the way QEMU does it (features, a two-region memory
 * table, one 16-entry queue started and enabled); the input is the
 * content of guest memory, so the fuzzer writes the descriptor table,
 * the available ring, indirect tables, request headers, discard segments
 * and data.  The queue is then kicked: every chain is walked and every
 * request executed against a RAW image, synchronously.
 *
 * Input: byte 0 selects features (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC,
 * bit 2 guest write cache off, bits 3-4 how often to kick); the rest is
 * copied into guest memory from offset 0.
 *
 * Guest memory (64 KiB buffer):
 *   region 0: guest physical 0x10000, 32 KiB, buffer offset 0
 *             (descriptor table at 0, available ring at 0x400, used ring
 *             at 0x800)
 *   region 1: guest physical 0x30000, 32 KiB, buffer offset 32 KiB
 */
#include "config.h"

#include "fuzz-vhost-common.h"
#include "le.h"

#define F(bit) (UINT64_C (1) << (bit))
#define UVA0 UINT64_C (0x7f0000000000)
#define QSIZE 16

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
msg (struct vhost_dev *d, uint32_t request, const void *payload,
     uint32_t psize, size_t nfds)
{
  uint8_t hdr[VHOST_USER_HDR_SIZE];
  uint8_t buf[VHOST_MSG_MAX_PAYLOAD] = { 0 };

  store_ne32 (hdr, request);
  store_ne32 (hdr + 4, VHOST_USER_VERSION);
  store_ne32 (hdr + 8, psize);
  memcpy (buf, payload, psize);
  if (fuzz_deliver (d, hdr, buf, nfds) != 0)
    abort ();                   /* the setup itself must work */
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct vhost_dev d;
  uint8_t flags = size > 0 ? data[0] : 0;
  uint64_t features;
  uint8_t mem[8 + 2 * 32] = { 0 };
  uint8_t addr[40] = { 0 };
  uint32_t state[2];
  uint64_t u;
  unsigned kicks = 1 + ((flags >> 3) & 3);

  fuzz_vhost_init ();
  if (vhost_dev_init (&d, &fuzz_blk, 1, &fake_ops, NULL, "fuzz") == -1)
    abort ();
  atomic_store (&fuzz_blk.writeback, true);

  features = vhost_blk_features (&fuzz_blk) | F (VIRTIO_F_VERSION_1) |
    F (VHOST_USER_F_PROTOCOL_FEATURES);
  if (flags & 1)
    features |= F (VIRTIO_RING_F_EVENT_IDX);
  if (flags & 2)
    features |= F (VIRTIO_RING_F_INDIRECT_DESC);
  msg (&d, VHOST_USER_SET_FEATURES, &features, 8, 0);
  if (flags & 4) {
    uint8_t cfg[13] = { 0 };
    store_ne32 (cfg, VIRTIO_BLK_CFG_WRITEBACK);
    store_ne32 (cfg + 4, 1);
    msg (&d, VHOST_USER_SET_CONFIG, cfg, sizeof cfg, 0);
  }

  {
    const uint64_t r[2][4] = {
      { 0x10000, 0x8000, UVA0, 0 },
      { 0x30000, 0x8000, UVA0 + 0x100000, 0x8000 },
    };
    store_ne32 (mem, 2);
    memcpy (mem + 8, r, sizeof r);
    msg (&d, VHOST_USER_SET_MEM_TABLE, mem, sizeof mem, 2);
  }

  /* Guest memory, then the ring setup (which reads used->idx). */
  memset (fake_mem, 0, FAKE_MEM_SIZE);
  if (size > 1)
    memcpy (fake_mem, data + 1,
            size - 1 < FAKE_MEM_SIZE ? size - 1 : FAKE_MEM_SIZE);

  state[0] = 0; state[1] = QSIZE;
  msg (&d, VHOST_USER_SET_VRING_NUM, state, 8, 0);
  state[1] = 0;
  msg (&d, VHOST_USER_SET_VRING_BASE, state, 8, 0);
  u = UVA0;          memcpy (addr + 8, &u, 8);
  u = UVA0 + 0x800;  memcpy (addr + 16, &u, 8);
  u = UVA0 + 0x400;  memcpy (addr + 24, &u, 8);
  msg (&d, VHOST_USER_SET_VRING_ADDR, addr, sizeof addr, 0);
  u = 0;
  msg (&d, VHOST_USER_SET_VRING_CALL, &u, 8, 1);
  msg (&d, VHOST_USER_SET_VRING_KICK, &u, 8, 1);
  state[1] = 1;
  msg (&d, VHOST_USER_SET_VRING_ENABLE, state, 8, 0);

  for (unsigned i = 0; i < kicks; ++i)
    kick_all (&d);

  /* Stop the ring as QEMU would; it must report a sane index. */
  state[1] = 0;
  {
    uint8_t hdr[VHOST_USER_HDR_SIZE];
    uint8_t buf[VHOST_MSG_MAX_PAYLOAD] = { 0 };
    store_ne32 (hdr, VHOST_USER_GET_VRING_BASE);
    store_ne32 (hdr + 4, VHOST_USER_VERSION);
    store_ne32 (hdr + 8, 8);
    memcpy (buf, state, 8);
    if (fuzz_deliver (&d, hdr, buf, 0) != 0)
      abort ();
  }
  vhost_dev_fini (&d);
  return 0;
}
