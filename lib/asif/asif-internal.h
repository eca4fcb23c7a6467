/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Internals shared by the ASIF attachment (asif.c), image creation
 * (asif-create.c), check/repair (asif-check.c) and compaction
 * (asif-compact.c).  The design (write ordering, cache, locking) is in
 * docs/internals/asif.md.
 */
#ifndef VD_ASIF_INTERNAL_H
#define VD_ASIF_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "asif-format.h"
#include "vdisk/image.h"

/* The blank layout of §10, computed once (asif-create.c). */
struct asif_blank {
  struct asif_geom geom;
  uint8_t header[ASIF_HEADER_SIZE];
  uint64_t dir_sector_off;            /* sector of the directory entry */
  uint8_t dir_sector[512];            /* (same in both slots) */
  uint64_t table_entry_off, bitmap_entry_off;
  bool bitmap_entry_is_next;
  uint8_t table_entries[16];          /* data entry, bitmap entry */
  uint64_t meta_off;
  uint8_t meta[2 * ASIF_META_HEADER_SIZE];
  uint64_t bitmap_byte_off;
  uint8_t bitmap_byte;
  uint64_t file_size;
};

int asif_blank_layout (const char *path, uint64_t size, const uint8_t guid[16],
                       const char *stable_uuid, struct asif_blank *b);

/* Bounds of the metadata cache (a 4 PiB image costs the same as 1 GB). */
#define ASIF_TABLE_CACHE 8            /* tables (one chunk each) */
#define ASIF_SLICE_CACHE 16384        /* bitmap slices (K/B/4 bytes each) */
#define ASIF_GROW_AHEAD  64           /* chunks the file may grow past use */

struct asif_table {
  uint64_t t;                         /* directory index, UINT64_MAX = free */
  uint64_t *e;                        /* E entries, host order */
  uint8_t *dirty;                     /* one bit per 512-byte sector */
  bool any_dirty;
  bool is_new;                        /* not yet written nor published */
  _Atomic uint64_t lru;
};

struct asif_slice {
  uint64_t v;                         /* virtual chunk */
  uint64_t bm;                        /* its group's bitmap chunk */
  uint8_t *bits;                      /* slice_bytes */
  bool dirty;
  bool unpublished;                   /* its chunk's entry is not on disk */
  int next;                           /* hash chain, -1 = end */
};

struct asif_pending_bm {
  uint64_t t, idx;
};

struct asif {
  struct vd_attachment a;             /* must be first */
  struct vd_attachment *file;         /* the container (owned) */
  struct asif_geom g;
  char ro_reason[160];                /* why the image is read-only, or "" */
  struct asif_meta meta;
  bool meta_ok;

  /* Everything below is protected by lock: readers (lookups) take it
   * shared, allocation, metadata changes and flush take it exclusive.
   */
  pthread_rwlock_t lock;
  int active;                         /* active directory slot */
  uint64_t seq;                       /* its sequence number */
  uint64_t *dir;                      /* T entries (in-memory truth) */
  bool dir_dirty;
  uint64_t *table_chunks;             /* sorted table chunk numbers */
  size_t nr_table_chunks;
  uint64_t next_chunk;                /* first chunk not in use */
  uint64_t file_chunks;               /* chunks the file holds (>= next_chunk:
                                         it grows ahead, see grow_file) */
  uint64_t meta_phys, meta_bm_phys;   /* metadata data and bitmap chunks */

  struct asif_table tables[ASIF_TABLE_CACHE];
  _Atomic uint64_t lru_clock;

  struct asif_slice *slices;          /* ASIF_SLICE_CACHE */
  uint8_t *slice_mem;
  int nr_slices;
  int *slice_hash;                    /* 2 * ASIF_SLICE_CACHE heads */
  bool slices_dirty;

  struct asif_pending_bm *pending_bm;
  size_t nr_pending_bm, cap_pending_bm;

  uint8_t *iobuf;                     /* one chunk; lock exclusive */

  /* Virtual chunks whose allocating write is in flight: the chunk is
   * reserved, its data is being written without the lock, and its entry
   * is set when that ends (asif.c, "Locking").  Changed with lock
   * exclusive and alloc_lock both held, so either one is enough to read
   * it; alloc_cond is broadcast when one ends.
   */
  pthread_mutex_t alloc_lock;
  pthread_cond_t alloc_cond;
  uint64_t *allocating;
  size_t nr_allocating, cap_allocating;
};

#define ASIF(a) ((struct asif *) (a))

/* Check (and repair, per flags) the ASIF image in f (asif-check.c). */
int asif_check_file (const char *path, struct vd_attachment *f,
                     uint32_t flags, struct vd_check_result *res,
                     vd_check_fn fn, void *ud);

/* Compact the ASIF image in f, which must be free of corruption
 * (asif-compact.c).
 */
int asif_compact_file (const char *path, struct vd_attachment *f,
                       uint64_t *freed);

/* Write back all metadata (the flush procedure).  Takes the lock. */
int asif_flush_all (struct asif *s);

#endif
