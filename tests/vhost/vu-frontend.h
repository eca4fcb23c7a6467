/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * A small vhost-user front end and virtio-blk driver for tests: it plays
 * QEMU and the guest at once.  Guest RAM is a memfd shared with the
 * backend as three regions laid out to catch translation mistakes:
 *
 *   region  guest physical       memfd offset   size
 *   A       0x00100000           0              4 MiB   rings, small buffers
 *   B       0x01000000           8 MiB          4 MiB   data
 *   C       0x01400000           4 MiB          4 MiB   data (B's end and
 *                                                C's start are adjacent
 *                                                in guest memory, not at
 *                                                host)
 *
 * Front-end virtual addresses (used for the rings) are a separate,
 * made-up range, so a backend mixing up the two address spaces fails.
 * The ring code here is written from the virtio spec independently of
 * vhost/virtq.c.  Every helper aborts the test on failure (CHECK).
 */
#ifndef VD_TEST_VU_FRONTEND_H
#define VD_TEST_VU_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VU_REGION_SIZE   (4u << 20)
#define VU_GPA_A         UINT64_C (0x00100000)
#define VU_GPA_B         UINT64_C (0x01000000)
#define VU_GPA_C         UINT64_C (0x01400000)
#define VU_UVA_BASE      UINT64_C (0x7e0000000000)
#define VU_MAX_QUEUES    8

struct vu_queue {
  uint16_t num;
  uint64_t desc_gpa, avail_gpa, used_gpa;
  uint8_t *desc, *avail, *used;
  int kick_fd, call_fd, err_fd;
  uint16_t avail_idx;           /* next avail slot we fill */
  uint16_t used_seen;           /* used entries consumed */
  uint16_t base;                /* where the backend stopped (GET_VRING_BASE) */
  uint16_t *free_desc;          /* stack of free descriptor indices */
  unsigned nfree;
  uint16_t *chain_len;          /* per head: descriptors it holds */
  uint16_t (*chain)[64];        /* per head: the descriptor indices */
  bool started;
};

struct vu {
  int sock;
  int memfd;
  uint8_t *mem;                 /* 12 MiB: offsets 0..12M */
  size_t alloc_a;               /* bump allocators in A and B */
  size_t alloc_b;
  uint64_t features;            /* negotiated */
  uint64_t protocol_features;
  bool reply_ack;
  bool manual_used_event;       /* tests set used_event themselves; else
                                   vu_wait_used asks for the next entry */
  unsigned nqueues;
  struct vu_queue q[VU_MAX_QUEUES];
};

/* Connect to path and negotiate: every offered virtio feature in
 * want_features (all of them if ~0) and every offered protocol feature
 * in want_protocol; then SET_OWNER and the memory table.
 */
void vu_connect (struct vu *vu, const char *path, uint64_t want_features,
                 uint64_t want_protocol);
/* Only connect (no messages). */
void vu_connect_raw (struct vu *vu, const char *path);
void vu_close (struct vu *vu);

/* Host pointer for a guest physical address we own. */
uint8_t *vu_ptr (struct vu *vu, uint64_t gpa);
/* Allocate size bytes (aligned) in region A or B; returns the gpa. */
uint64_t vu_alloc_a (struct vu *vu, size_t size, size_t align);
uint64_t vu_alloc_b (struct vu *vu, size_t size, size_t align);

/* Messages.  vu_send sends a request with the given payload and
 * descriptors; vu_recv_reply reads one reply (returns its payload size,
 * payload into buf).  vu_request = send + (if a reply is due) receive.
 */
void vu_send (struct vu *vu, uint32_t request, uint32_t flags,
              const void *payload, uint32_t size, const int *fds,
              size_t nfds);
uint32_t vu_recv_reply (struct vu *vu, uint32_t request, void *buf,
                        size_t len);
/* Send with need_reply (when REPLY_ACK was negotiated) and return the
 * acknowledgement's u64 (0 = success).
 */
uint64_t vu_request_ack (struct vu *vu, uint32_t request,
                         const void *payload, uint32_t size,
                         const int *fds, size_t nfds);
uint64_t vu_get_u64 (struct vu *vu, uint32_t request);
void vu_set_u64 (struct vu *vu, uint32_t request, uint64_t v);
void vu_get_config (struct vu *vu, uint8_t *cfg, uint32_t size);
void vu_send_mem_table (struct vu *vu);
/* True if the backend closed the connection (reads EOF within 5 s). */
bool vu_wait_closed (struct vu *vu);

/* Set up queue qi with num entries and start it (num, base, addr, call,
 * kick, enable).
 */
void vu_queue_start (struct vu *vu, unsigned qi, uint16_t num);
/* GET_VRING_BASE: stops the queue, returns where it stopped. */
uint16_t vu_queue_stop (struct vu *vu, unsigned qi);

/* A buffer of a request. */
struct vu_seg {
  uint64_t gpa;
  uint32_t len;
  bool write;                   /* device-writable */
};

/* Put a chain on queue qi: direct, or (indirect) as one indirect
 * descriptor pointing at a table in region A.  Does not kick.  Returns
 * the head.
 */
uint16_t vu_add (struct vu *vu, unsigned qi, const struct vu_seg *segs,
                 unsigned n, bool indirect);
/* Raw descriptors, for malformed chains: take a free index, write an
 * entry, and record which indices a head holds (for vu_free_chain).
 * vu_publish then makes head available (without kicking).
 */
uint16_t vu_desc_get (struct vu *vu, unsigned qi);
void vu_desc_write (struct vu *vu, unsigned qi, uint16_t i, uint64_t addr,
                    uint32_t len, uint16_t flags, uint16_t next);
void vu_desc_chain (struct vu *vu, unsigned qi, uint16_t head,
                    const uint16_t *idx, unsigned n);
void vu_publish (struct vu *vu, unsigned qi, uint16_t head);
void vu_kick (struct vu *vu, unsigned qi);
/* Whether the device asked for a kick for the entries published since
 * the available index was old_avail (EVENT_IDX or NO_NOTIFY), as a
 * driver decides.
 */
bool vu_kick_needed (struct vu *vu, unsigned qi, uint16_t old_avail);
/* Wait up to timeout_ms for a used entry; 1 with *head and *len, 0 on
 * timeout.
 */
int vu_wait_used (struct vu *vu, unsigned qi, uint16_t *head, uint32_t *len,
                  int timeout_ms);
/* Return a finished chain's descriptors to the free list. */
void vu_free_chain (struct vu *vu, unsigned qi, uint16_t head);
/* Whether the call eventfd was signalled since the last call (consumes). */
bool vu_called (struct vu *vu, unsigned qi);
/* Whether the error eventfd was signalled (consumes). */
bool vu_errored (struct vu *vu, unsigned qi, int timeout_ms);

/* virtio-blk requests: header in A, data at data_gpa (split into nsplit
 * descriptors of equal size), status in A.  Returns the status byte
 * (0xff if the device left it alone), *used_len the used length.
 */
int vu_blk (struct vu *vu, unsigned qi, uint32_t type, uint64_t sector,
            uint64_t data_gpa, uint32_t data_len, unsigned nsplit,
            bool indirect, uint32_t *used_len);

#endif
