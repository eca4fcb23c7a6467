/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * `vdisk serve --vhost-user-blk SOCKET IMAGE` (see serve-vhost.h and
 * docs/internals/vhost-user.md).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "parse.h"
#include "serve-vhost.h"
#include "vhost.h"

int
cli_serve_vhost_option (struct cli_serve_vhost *v,
                        const struct cli_command *cmd, const char *name,
                        const char *arg)
{
  if (strcmp (name, "vhost-user-blk") == 0) {
    if (*arg == '\0') {
      cli_usage_error (cmd, "--vhost-user-blk: the socket path is empty");
      return -1;
    }
    v->socket = arg;
    return 1;
  }
  if (strcmp (name, "num-queues") == 0) {
    int n;
    if (vd_parse_int (arg, 1, 32, &n) == -1) {
      cli_usage_error (cmd, "--num-queues: '%s' is not a number from 1 to "
                       "32", arg);
      return -1;
    }
    v->num_queues = n;
    return 1;
  }
  if (strcmp (name, "serial") == 0) {
    if (vhost_validate_serial (arg) == -1) {
      cli_usage_error (cmd, "--serial: %s", vd_get_error ());
      return -1;
    }
    v->serial = arg;
    return 1;
  }
  return 0;
}

int
cli_serve_vhost_check (struct cli_serve_vhost *v,
                       const struct cli_command *cmd, int nargs, bool stdio,
                       bool description)
{
  if (v->socket == NULL) {
    if (v->num_queues || v->serial) {
      cli_usage_error (cmd, "--num-queues and --serial apply to "
                       "--vhost-user-blk");
      return -1;
    }
    return 0;
  }
  if (nargs != 1) {
    cli_usage_error (cmd, "--vhost-user-blk serves the IMAGE argument: give "
                     "exactly one (NBD exports go with --export)");
    return -1;
  }
  if (stdio || description) {
    cli_usage_error (cmd, "--vhost-user-blk cannot be combined with %s",
                     stdio ? "--stdio" : "--description (IMAGE is not an "
                     "NBD export)");
    return -1;
  }
  return 0;
}

/* Block SIGTERM and SIGINT in the calling thread (so in the threads it
 * creates); *old gets the previous mask.
 */
static void
block_signals (sigset_t *old)
{
  sigset_t set;

  sigemptyset (&set);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  pthread_sigmask (SIG_BLOCK, &set, old);
}

int
cli_serve_vhost_start (struct cli_serve_vhost *v, const char *image,
                       const struct cli_open_opts *co, bool verbose,
                       bool alone)
{
  struct vhost_export_options o = {
    .socket_path = v->socket,
    .num_queues = v->num_queues,
    .serial = v->serial,
    .read_only = (co->o.flags & VD_OPEN_READ_ONLY) != 0,
    .verbose = verbose,
  };
  sigset_t old;

  v->a = vd_attachment_open (image, &co->o);
  if (v->a == NULL)
    return cli_lib_error (), -1;
  /* The export's threads inherit the mask: signals go to the thread that
   * waits for them (cmd-serve.c's handler or cli_serve_vhost_wait).
   */
  block_signals (&old);
  v->e = vhost_export_start (v->a, &o);
  if (!alone || v->e == NULL)
    pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (v->e == NULL) {
    cli_lib_error ();
    vd_attachment_close (v->a);
    v->a = NULL;
    return -1;
  }
  return 0;
}

void
cli_serve_vhost_wait (void)
{
  sigset_t set;
  int sig;

  sigemptyset (&set);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  while (sigwait (&set, &sig) != 0)
    ;
}

int
cli_serve_vhost_stop (struct cli_serve_vhost *v)
{
  int r = 0;

  if (v->e && vhost_export_stop (v->e) == -1) {
    cli_lib_error ();
    r = -1;
  }
  v->e = NULL;
  if (v->a && vd_attachment_close (v->a) == -1) {
    cli_lib_error ();
    r = -1;
  }
  v->a = NULL;
  return r;
}
