/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vhost-user-blk export: serve one attachment as a virtio-blk device to
 * a VMM (QEMU -device vhost-user-blk-pci, cloud-hypervisor --disk
 * vhost_user=on, crosvm) over a unix socket.  This is the only header of
 * vhost/ that users outside it (the `vdisk serve` command, tests,
 * benchmarks) include; the design is in docs/internals/vhost-user.md.
 *
 * An export listens on its socket and serves one front end at a time.
 * Each front end connection is a session: the VMM shares the guest's
 * memory, and the export serves the virtqueues with one poll thread per
 * queue and a pool of workers that call the attachment concurrently.
 * When the VMM disconnects, the export finishes the requests in flight,
 * flushes the attachment and waits for the next connection (the VMM
 * restarting, or reconnecting).
 */
#ifndef VD_VHOST_VHOST_H
#define VD_VHOST_VHOST_H

#include <stdbool.h>
#include <stdint.h>

#include "vdisk/attachment.h"

struct vhost_export;

struct vhost_export_options {
  const char *socket_path;      /* unix socket to create and listen on */
  unsigned num_queues;          /* virtqueues offered (1..32; 0 = 1) */
  const char *serial;           /* blockDeviceIdentifier, NULL = empty */
  bool read_only;               /* present the disk read-only */
  unsigned workers;             /* I/O threads (0 = 8 per queue, at most 64) */
  bool verbose;                 /* log connections on stderr */
  unsigned renotify_ms;         /* look again at interrupts the driver may
                                   wait for this long after a burst
                                   (0 = 10 ms; docs/internals/vhost-user.md) */
};

/* Check a serial as Apple's VZVirtioBlockDeviceConfiguration
 * .validateBlockDeviceIdentifier does (ASCII, at most 20 bytes).  0, or
 * -1 with EINVAL and a message saying why (vd_get_error).
 */
int vhost_validate_serial (const char *serial);

/* Create the socket and start serving attachment a (borrowed: it must
 * outlive the export; it is started here).  An existing socket file
 * nobody listens on is replaced; a live one is an error (EADDRINUSE).
 * Returns the export, or NULL (error in vd_get_error).
 */
struct vhost_export *vhost_export_start (struct vd_attachment *a,
                                         const struct vhost_export_options *o);

/* Stop: end the session (requests in flight complete, the attachment is
 * flushed), close and remove the socket, free e.  Returns 0, or -1 if
 * the final flush failed.  NULL is accepted.
 */
int vhost_export_stop (struct vhost_export *e);

/* Counters, for tests and logs. */
struct vhost_export_stats {
  uint64_t sessions;            /* front ends served (including current) */
  uint64_t requests;            /* requests taken off the rings */
  uint64_t bad_requests;        /* malformed chains failed */
  uint64_t io_errors;           /* requests completed with IOERR */
  uint64_t broken_queues;       /* rings stopped as corrupt */
  uint64_t kicks;               /* notifications the driver sent us */
  uint64_t interrupts;          /* interrupts we sent the driver */
  bool connected;               /* a front end is connected now */
};
void vhost_export_get_stats (struct vhost_export *e,
                             struct vhost_export_stats *s);

#endif
