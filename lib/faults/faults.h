/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Fault-injection decorator (test builds only; not in the installed
 * libvdisk).  It wraps any attachment, usually the file under a format
 * (ASIF over faults over RAW), and breaks it on purpose:
 *
 *  - fail the N-th operation of chosen kinds with a chosen errno, once or
 *    from then on ("sticky"), as SQLite's test_malloc and curl's torture
 *    mode do for allocations;
 *  - emulate a disk with a volatile write cache: modifications (pwrite,
 *    discard, write_zeroes, resize) are held in memory and reach the
 *    wrapped attachment only at flush; reads see them;
 *  - make every flush slow (a disk whose cache flush takes milliseconds),
 *    to show which callers are held up by a flush, and every write slow,
 *    to show whether a caller's writes overlap;
 *  - simulate a crash (at the N-th modifying operation, or on request):
 *    unflushed modifications are dropped (all of them, or a random subset
 *    in random order), the operation in flight is torn (a random subset
 *    of its 512-byte sectors reaches the disk), and every later call fails
 *    with EIO.  The wrapped attachment then holds exactly what a real
 *    disk might hold after power loss (SQLite's test6.c idea).
 *
 * Usage in a crash test:
 *   struct vd_attachment *file = vd_raw_open (path, -1, &o);
 *   struct vd_fault_config c = { .write_cache = true, .crash_at = n,
 *                                .seed = seed };
 *   struct vd_attachment *f = vd_faults_wrap (file, &c);
 *   struct vd_attachment *img = vd_asif_open (f, &o);
 *   ... I/O until it fails with EIO and vd_faults_crashed (f) ...
 *   vd_attachment_close (img);    closes f and file; nothing more is written
 *   reopen path, check, verify acknowledged-and-flushed data
 */
#ifndef VD_LIB_FAULTS_H
#define VD_LIB_FAULTS_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

/* Operation kinds (for counting and failing). */
#define VD_FAULT_OP_READ    (1u << 0)
#define VD_FAULT_OP_WRITE   (1u << 1)
#define VD_FAULT_OP_FLUSH   (1u << 2)
#define VD_FAULT_OP_DISCARD (1u << 3)
#define VD_FAULT_OP_ZERO    (1u << 4)
#define VD_FAULT_OP_RESIZE  (1u << 5)
#define VD_FAULT_OP_MODIFY  (VD_FAULT_OP_WRITE | VD_FAULT_OP_DISCARD | \
                             VD_FAULT_OP_ZERO | VD_FAULT_OP_RESIZE)
#define VD_FAULT_OP_ALL     0x3fu

enum vd_crash_mode {
  VD_CRASH_DROP_ALL = 0,        /* every unflushed modification is lost */
  VD_CRASH_RANDOM = 1,          /* each unflushed modification survives
                                   with probability 1/2, in any order,
                                   possibly torn */
};

struct vd_fault_config {
  uint32_t fail_ops;            /* kinds counted for fail_at */
  uint64_t fail_at;             /* fail the N-th counted op (1-based);
                                   0 = never */
  int fail_errno;               /* errno for injected failures (0: EIO) */
  bool fail_sticky;             /* after the first, fail every counted op */
  bool write_cache;             /* emulate a volatile write cache */
  uint64_t crash_at;            /* crash at the N-th modifying op (1-based;
                                   it is torn); 0 = never */
  int crash_mode;               /* enum vd_crash_mode */
  uint64_t seed;                /* random choices at the crash */
  unsigned flush_delay_ms;      /* a slow disk: every flush waits this
                                   long first, without holding the
                                   decorator's lock (other operations go
                                   on meanwhile) */
  unsigned write_delay_ms;      /* a slow disk for writes: every pwrite
                                   waits this long first, likewise outside
                                   the lock, so a caller's concurrent
                                   writes overlap (see vd_faults_peak_writes) */
};

/* Wrap next (owned by the result from now on, also on failure).  NULL
 * on failure.  The result has next's size, caps and block sizes.
 */
struct vd_attachment *vd_faults_wrap (struct vd_attachment *next,
                                      const struct vd_fault_config *cfg);

/* Number of operations of the given kinds seen so far (including failed
 * ones).  Used to find how many crash points a workload has.
 */
uint64_t vd_faults_count (struct vd_attachment *a, uint32_t ops);

/* Crash now (as if the N-th modifying op had been reached, without one in
 * flight).  0, or -1 if applying the surviving writes failed.
 */
int vd_faults_crash (struct vd_attachment *a);

/* The most pwrite calls that were inside the decorator at the same time
 * (with write_delay_ms, whether the caller issues writes concurrently).
 */
unsigned vd_faults_peak_writes (struct vd_attachment *a);
/* Whether a crash happened / an injected failure was returned. */
bool vd_faults_crashed (struct vd_attachment *a);
bool vd_faults_failed (struct vd_attachment *a);

#endif
