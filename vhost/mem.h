/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The guest memory table of a vhost-user session, and every translation
 * from a guest address to a pointer we may dereference.
 *
 * Two address spaces point into guest RAM: guest physical addresses
 * (descriptor buffers, indirect tables) and the front end's own virtual
 * addresses (the ring addresses of SET_VRING_ADDR).  A region maps a
 * range of each onto the same bytes, which we have mapped at host.
 *
 * Every access the backend makes to guest memory goes through these
 * functions: they check, with overflow-safe arithmetic, that the whole
 * range lies inside the table, so a hostile address can at worst fail a
 * request.  Pure: no system calls (mapping is the caller's business), so
 * the fuzz target runs it over a fake table.
 */
#ifndef VD_VHOST_MEM_H
#define VD_VHOST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhost-user-protocol.h"

#define VHOST_MAX_MEM_REGIONS VHOST_MEMORY_BASELINE_NREGIONS

struct vhost_mem_region {
  uint64_t gpa;                 /* guest physical start */
  uint64_t size;                /* bytes, > 0 */
  uint64_t uva;                 /* front-end virtual start */
  uint8_t *host;                /* our pointer to the first byte */
  void *map_base;               /* what to munmap (NULL: not ours) */
  size_t map_len;
};

struct vhost_mem {
  unsigned nregions;
  struct vhost_mem_region regions[VHOST_MAX_MEM_REGIONS];
};

/* Check a region description from the wire: size > 0 and no range
 * wraps.  0, or -1 with EINVAL raised.
 */
int vhost_mem_check_region (uint64_t gpa, uint64_t size, uint64_t uva,
                            uint64_t mmap_offset);

/* Pointer to guest physical gpa, and in *contig how many bytes from
 * there (at most len) are contiguous at host.  NULL if gpa is outside
 * the table; len == 0 is treated as 1 (the address itself must exist).
 */
uint8_t *vhost_mem_gpa (const struct vhost_mem *m, uint64_t gpa,
                        uint64_t len, uint64_t *contig);

/* Pointer to front-end virtual uva when all of [uva, uva + len) lies in
 * one region; NULL otherwise.
 */
uint8_t *vhost_mem_uva (const struct vhost_mem *m, uint64_t uva,
                        uint64_t len);

/* Copy len bytes of guest physical memory at gpa into buf (they may
 * span regions).  0, or -1 if any byte is outside the table.
 */
int vhost_mem_read (const struct vhost_mem *m, uint64_t gpa, void *buf,
                    size_t len);

#endif
