/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The vhost-user-blk part of `vdisk serve` (cmd-serve.c calls these):
 * `vdisk serve --vhost-user-blk SOCKET [--num-queues N] [--serial ID]
 * IMAGE|SPEC` serves IMAGE as a virtio-blk disk to a VMM through
 * vhost/vhost.h; NBD exports given with --export run in the same
 * process.
 */
#ifndef VD_CLI_SERVE_VHOST_H
#define VD_CLI_SERVE_VHOST_H

#include <stdbool.h>

#include "cli.h"

struct cli_serve_vhost {
  const char *socket;           /* --vhost-user-blk; NULL if not given */
  unsigned num_queues;          /* --num-queues (0 = default) */
  const char *serial;           /* --serial */
  struct vd_attachment *a;
  struct vhost_export *e;
};

#define CLI_SERVE_VHOST_OPTIONS                                         \
  { "vhost-user-blk", 0, required_argument, "SOCKET",                   \
    "serve IMAGE to a VMM as a vhost-user-blk disk on this socket" },   \
  { "num-queues", 0, required_argument, "N",                            \
    "vhost-user-blk: virtqueues (default 1, at most 32)" },             \
  { "serial", 0, required_argument, "ID",                               \
    "vhost-user-blk: the disk's serial (at most 20 ASCII bytes)" }

/* If name is one of the options above, apply it: 1 = handled, 0 = not
 * ours, -1 = bad value (usage error printed).
 */
int cli_serve_vhost_option (struct cli_serve_vhost *v,
                            const struct cli_command *cmd, const char *name,
                            const char *arg);

/* Check the combination once the options are parsed (nargs: positional
 * arguments left).  0, or -1 after a usage error.
 */
int cli_serve_vhost_check (struct cli_serve_vhost *v,
                           const struct cli_command *cmd, int nargs,
                           bool stdio, bool description);

/* Open image with co and start serving it.  The export's threads never
 * take SIGTERM or SIGINT; with alone (no NBD exports) the calling thread
 * keeps them blocked too, for cli_serve_vhost_wait.  0, or -1 after an
 * error message.
 */
int cli_serve_vhost_start (struct cli_serve_vhost *v, const char *image,
                           const struct cli_open_opts *co, bool verbose,
                           bool alone);

/* After cli_serve_vhost_start (..., alone): wait for SIGTERM or SIGINT. */
void cli_serve_vhost_wait (void);

/* Stop serving (requests in flight finish, the image is flushed) and
 * close the image.  0, or -1 after an error message.  Nothing to do if
 * not started.
 */
int cli_serve_vhost_stop (struct cli_serve_vhost *v);

#endif
