/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Fuzz target: vhost-user message sequences into the session state
 * machine (vhost/msg.c, vhost/device.c), with a fake memory table, plus
 * writes into guest memory and kicks that run the rings (vhost/virtq.c,
 * vhost/queue.c, vhost/blk.c) synchronously.  A failing message ends the
 * "connection" the way the export does (the session is reset) and the
 * input goes on as the next front end.
 *
 * Input: records, each starting with a tag byte:
 *   tag % 3 == 0   message: nfds (byte, % 9), 12-byte header, then up
 *                  to the header's size bytes of payload
 *   tag % 3 == 1   poke: offset (u16 LE, % 64 KiB), length (byte), bytes
 *                  written into guest memory
 *   tag % 3 == 2   kick every started queue
 */
#include "config.h"

#include "fuzz-vhost-common.h"
#include "le.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static uint8_t payload[VHOST_MSG_MAX_PAYLOAD];
  struct vhost_dev d;

  fuzz_vhost_init ();
  memset (fake_mem, 0, FAKE_MEM_SIZE);
  if (vhost_dev_init (&d, &fuzz_blk, 2, &fake_ops, NULL, "fuzz") == -1)
    abort ();

  while (size > 0) {
    uint8_t tag = data[0];
    data++;
    size--;
    switch (tag % 3) {
    case 0: {
      const uint8_t *hdr;
      size_t nfds, take;
      uint32_t msize;

      if (size < 1 + VHOST_USER_HDR_SIZE)
        goto out;
      nfds = data[0] % (VHOST_MSG_MAX_FDS + 1);
      hdr = data + 1;
      data += 1 + VHOST_USER_HDR_SIZE;
      size -= 1 + VHOST_USER_HDR_SIZE;
      msize = load_ne32 (hdr + 8);
      take = msize < size ? msize : size;
      if (take > sizeof payload)
        take = sizeof payload;
      memset (payload, 0, sizeof payload);
      memcpy (payload, data, take);
      data += take;
      size -= take;
      if (fuzz_deliver (&d, hdr, payload, nfds) == -1)
        vhost_dev_reset (&d);   /* the export closes the connection */
      break;
    }
    case 1: {
      size_t off, len;
      if (size < 3)
        goto out;
      off = (data[0] | (data[1] << 8)) % FAKE_MEM_SIZE;
      len = data[2];
      data += 3;
      size -= 3;
      if (len > size)
        len = size;
      if (len > FAKE_MEM_SIZE - off)
        len = FAKE_MEM_SIZE - off;
      memcpy (fake_mem + off, data, len);
      data += len;
      size -= len;
      break;
    }
    default:
      kick_all (&d);
      break;
    }
  }
 out:
  vhost_dev_fini (&d);
  return 0;
}
