/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Wire constants of the vhost-user protocol (QEMU docs/interop/
 * vhost-user.rst), of split virtqueues and of the virtio-blk device
 * (virtio 1.2, sections 2.7 and 5.2), with the specifications' names.
 * This is the only file that defines them (tests/vhost/
 * test-vhost-layering.sh checks).  We do not include <linux/vhost.h> or
 * <linux/virtio_*.h>: the names would clash and the layouts below are
 * all we use.
 *
 * Byte order: vhost-user messages are in the host's byte order; rings,
 * descriptors, virtio-blk requests and the config space are
 * little-endian (virtio 1.x).  Every structure is accessed through the
 * offsets below with memcpy-based loads, never through a packed C
 * struct laid over guest memory.
 */
#ifndef VD_VHOST_USER_PROTOCOL_H
#define VD_VHOST_USER_PROTOCOL_H

/* Message header: request u32, flags u32, size u32, then the payload. */
#define VHOST_USER_HDR_SIZE          12
#define VHOST_USER_VERSION           0x1
#define VHOST_USER_VERSION_MASK      0x3
#define VHOST_USER_REPLY_MASK        (1u << 2)
#define VHOST_USER_NEED_REPLY_MASK   (1u << 3)

/* Front-end requests. */
#define VHOST_USER_GET_FEATURES            1
#define VHOST_USER_SET_FEATURES            2
#define VHOST_USER_SET_OWNER               3
#define VHOST_USER_RESET_OWNER             4
#define VHOST_USER_SET_MEM_TABLE           5
#define VHOST_USER_SET_LOG_BASE            6
#define VHOST_USER_SET_LOG_FD              7
#define VHOST_USER_SET_VRING_NUM           8
#define VHOST_USER_SET_VRING_ADDR          9
#define VHOST_USER_SET_VRING_BASE          10
#define VHOST_USER_GET_VRING_BASE          11
#define VHOST_USER_SET_VRING_KICK          12
#define VHOST_USER_SET_VRING_CALL          13
#define VHOST_USER_SET_VRING_ERR           14
#define VHOST_USER_GET_PROTOCOL_FEATURES   15
#define VHOST_USER_SET_PROTOCOL_FEATURES   16
#define VHOST_USER_GET_QUEUE_NUM           17
#define VHOST_USER_SET_VRING_ENABLE        18
#define VHOST_USER_SEND_RARP               19
#define VHOST_USER_NET_SET_MTU             20
#define VHOST_USER_SET_BACKEND_REQ_FD      21
#define VHOST_USER_IOTLB_MSG               22
#define VHOST_USER_SET_VRING_ENDIAN        23
#define VHOST_USER_GET_CONFIG              24
#define VHOST_USER_SET_CONFIG              25
#define VHOST_USER_CREATE_CRYPTO_SESSION   26
#define VHOST_USER_CLOSE_CRYPTO_SESSION    27
#define VHOST_USER_POSTCOPY_ADVISE         28
#define VHOST_USER_POSTCOPY_LISTEN         29
#define VHOST_USER_POSTCOPY_END            30
#define VHOST_USER_GET_INFLIGHT_FD         31
#define VHOST_USER_SET_INFLIGHT_FD         32
#define VHOST_USER_GPU_SET_SOCKET          33
#define VHOST_USER_RESET_DEVICE            34
#define VHOST_USER_VRING_KICK              35
#define VHOST_USER_GET_MAX_MEM_SLOTS       36
#define VHOST_USER_ADD_MEM_REG             37
#define VHOST_USER_REM_MEM_REG             38
#define VHOST_USER_SET_STATUS              39
#define VHOST_USER_GET_STATUS              40

/* Virtio feature bit that announces vhost-user protocol features. */
#define VHOST_USER_F_PROTOCOL_FEATURES     30

/* Protocol feature bits. */
#define VHOST_USER_PROTOCOL_F_MQ                    0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD             1
#define VHOST_USER_PROTOCOL_F_RARP                  2
#define VHOST_USER_PROTOCOL_F_REPLY_ACK             3
#define VHOST_USER_PROTOCOL_F_MTU                   4
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ           5
#define VHOST_USER_PROTOCOL_F_CROSS_ENDIAN          6
#define VHOST_USER_PROTOCOL_F_CRYPTO_SESSION        7
#define VHOST_USER_PROTOCOL_F_PAGEFAULT             8
#define VHOST_USER_PROTOCOL_F_CONFIG                9
#define VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD       10
#define VHOST_USER_PROTOCOL_F_HOST_NOTIFIER         11
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD        12
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE          13
#define VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS  14
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS   15
#define VHOST_USER_PROTOCOL_F_STATUS                16

/* Payloads (sizes in bytes, offsets from the start of the payload). */
#define VHOST_USER_U64_SIZE            8
#define VHOST_USER_STATE_SIZE          8   /* index u32, num u32 */
#define VHOST_USER_ADDR_SIZE           40  /* index u32, flags u32, desc u64,
                                              used u64, avail u64, log u64 */
#define VHOST_USER_ADDR_DESC_OFF       8
#define VHOST_USER_ADDR_USED_OFF       16
#define VHOST_USER_ADDR_AVAIL_OFF      24
#define VHOST_USER_ADDR_LOG_OFF        32
#define VHOST_VRING_F_LOG              0   /* bit in the addr flags */
/* Memory table: nregions u32, padding u32, then regions of 32 bytes:
 * guest_phys_addr u64, memory_size u64, userspace_addr u64,
 * mmap_offset u64.
 */
#define VHOST_USER_MEM_HDR_SIZE        8
#define VHOST_USER_MEM_REGION_SIZE     32
#define VHOST_MEMORY_BASELINE_NREGIONS 8
/* Config space access: offset u32, size u32, flags u32, payload. */
#define VHOST_USER_CONFIG_HDR_SIZE     12
#define VHOST_USER_MAX_CONFIG_SIZE     256
#define VHOST_SET_CONFIG_TYPE_FRONTEND  0
#define VHOST_SET_CONFIG_TYPE_MIGRATION 1
/* The u64 of SET_VRING_KICK / CALL / ERR. */
#define VHOST_USER_VRING_IDX_MASK      0xffu
#define VHOST_USER_VRING_NOFD_MASK     (1u << 8)

/* Generic virtio feature bits. */
#define VIRTIO_F_NOTIFY_ON_EMPTY       24
#define VHOST_F_LOG_ALL                26
#define VIRTIO_RING_F_INDIRECT_DESC    28
#define VIRTIO_RING_F_EVENT_IDX        29
#define VIRTIO_F_VERSION_1             32
#define VIRTIO_F_ACCESS_PLATFORM       33
#define VIRTIO_F_RING_PACKED           34

/* Split virtqueue layout (virtio 1.2 section 2.7). */
#define VIRTQ_DESC_SIZE                16  /* addr u64, len u32, flags u16,
                                              next u16 */
#define VIRTQ_DESC_F_NEXT              1
#define VIRTQ_DESC_F_WRITE             2
#define VIRTQ_DESC_F_INDIRECT          4
#define VIRTQ_AVAIL_F_NO_INTERRUPT     1
#define VIRTQ_USED_F_NO_NOTIFY         1
#define VIRTQ_MAX_SIZE                 32768 /* split rings, by the spec */
/* avail: flags u16, idx u16, ring[num] u16, used_event u16 */
#define VIRTQ_AVAIL_SIZE(num)          (4 + 2 * (uint64_t) (num) + 2)
/* used: flags u16, idx u16, ring[num] {id u32, len u32}, avail_event u16 */
#define VIRTQ_USED_SIZE(num)           (4 + 8 * (uint64_t) (num) + 2)
#define VIRTQ_DESC_ALIGN               16
#define VIRTQ_AVAIL_ALIGN              2
#define VIRTQ_USED_ALIGN               4

/* virtio-blk (virtio 1.2 section 5.2). */
#define VIRTIO_ID_BLOCK                2
#define VIRTIO_BLK_F_SIZE_MAX          1
#define VIRTIO_BLK_F_SEG_MAX           2
#define VIRTIO_BLK_F_GEOMETRY          4
#define VIRTIO_BLK_F_RO                5
#define VIRTIO_BLK_F_BLK_SIZE          6
#define VIRTIO_BLK_F_FLUSH             9
#define VIRTIO_BLK_F_TOPOLOGY          10
#define VIRTIO_BLK_F_CONFIG_WCE        11
#define VIRTIO_BLK_F_MQ                12
#define VIRTIO_BLK_F_DISCARD           13
#define VIRTIO_BLK_F_WRITE_ZEROES      14

#define VIRTIO_BLK_T_IN                0
#define VIRTIO_BLK_T_OUT               1
#define VIRTIO_BLK_T_FLUSH             4
#define VIRTIO_BLK_T_GET_ID            8
#define VIRTIO_BLK_T_GET_LIFETIME      10
#define VIRTIO_BLK_T_DISCARD           11
#define VIRTIO_BLK_T_WRITE_ZEROES      13
#define VIRTIO_BLK_T_SECURE_ERASE      14

#define VIRTIO_BLK_S_OK                0
#define VIRTIO_BLK_S_IOERR             1
#define VIRTIO_BLK_S_UNSUPP            2

#define VIRTIO_BLK_SECTOR_SHIFT        9
#define VIRTIO_BLK_SECTOR_SIZE         512
#define VIRTIO_BLK_ID_BYTES            20
/* Request header: type u32, ioprio u32, sector u64. */
#define VIRTIO_BLK_OUTHDR_SIZE         16
/* Discard / write-zeroes segment: sector u64, num_sectors u32, flags u32. */
#define VIRTIO_BLK_DWZ_SEG_SIZE        16
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u

/* struct virtio_blk_config: field offsets. */
#define VIRTIO_BLK_CFG_CAPACITY                   0   /* u64 */
#define VIRTIO_BLK_CFG_SIZE_MAX                   8   /* u32 */
#define VIRTIO_BLK_CFG_SEG_MAX                    12  /* u32 */
#define VIRTIO_BLK_CFG_GEOMETRY                   16  /* u16, u8, u8 */
#define VIRTIO_BLK_CFG_BLK_SIZE                   20  /* u32 */
#define VIRTIO_BLK_CFG_PHYSICAL_BLOCK_EXP         24  /* u8 */
#define VIRTIO_BLK_CFG_ALIGNMENT_OFFSET           25  /* u8 */
#define VIRTIO_BLK_CFG_MIN_IO_SIZE                26  /* u16 */
#define VIRTIO_BLK_CFG_OPT_IO_SIZE                28  /* u32 */
#define VIRTIO_BLK_CFG_WRITEBACK                  32  /* u8 */
#define VIRTIO_BLK_CFG_NUM_QUEUES                 34  /* u16 */
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS        36  /* u32 */
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG            40  /* u32 */
#define VIRTIO_BLK_CFG_DISCARD_SECTOR_ALIGNMENT   44  /* u32 */
#define VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS   48  /* u32 */
#define VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG       52  /* u32 */
#define VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP     56  /* u8 */
#define VIRTIO_BLK_CFG_SIZE                       60  /* what we fill */

#endif
