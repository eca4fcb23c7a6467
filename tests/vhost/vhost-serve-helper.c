/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Test helper: serve one image (any attachment spec) as a vhost-user-blk
 * device until SIGTERM or SIGINT, through the same export `vdisk serve
 * --vhost-user-blk` uses.  The guest tests use it where they need what
 * the CLI does not offer (fault injection around the attachment).
 *
 *   vhost-serve-helper [--read-only] [--serial S] [--num-queues N]
 *                      [--caching MODE] [--sync MODE] [--verbose]
 *                      [--fail-writes-after N] [--timeout SECONDS]
 *                      SOCKET SPEC
 *
 * Exit status 0 when the export stopped cleanly (final flush included).
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>

#include "test.h"
#include "backend.h"
#include "faults.h"
#include "vhost.h"

int
main (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "read-only", no_argument, NULL, 'r' },
    { "serial", required_argument, NULL, 's' },
    { "num-queues", required_argument, NULL, 'q' },
    { "caching", required_argument, NULL, 'c' },
    { "sync", required_argument, NULL, 'y' },
    { "verbose", no_argument, NULL, 'v' },
    { "fail-writes-after", required_argument, NULL, 'f' },
    { "timeout", required_argument, NULL, 't' },
    { NULL },
  };
  struct vhost_export_options o = { 0 };
  struct vd_open_options oo;
  struct vd_attachment *a;
  struct vhost_export *e;
  uint64_t fail_after = 0;
  sigset_t set;
  int c, sig, r = 0;

  vd_open_options_init (&oo);
  while ((c = getopt_long (argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 'r': o.read_only = true; oo.flags |= VD_OPEN_READ_ONLY; break;
    case 's': o.serial = optarg; break;
    case 'q': o.num_queues = strtoul (optarg, NULL, 10); break;
    case 'c': CHECK ((oo.caching_mode = vd_caching_mode_from_name (optarg)) >= 0); break;
    case 'y': CHECK ((oo.sync_mode = vd_sync_mode_from_name (optarg)) >= 0); break;
    case 'v': o.verbose = true; break;
    case 'f': fail_after = strtoull (optarg, NULL, 10); break;
    case 't': oo.timeout = strtod (optarg, NULL); break;
    default: fprintf (stderr, "usage: see the source\n"); return 2;
    }
  }
  if (argc - optind != 2) {
    fprintf (stderr, "usage: vhost-serve-helper [OPTIONS] SOCKET SPEC\n");
    return 2;
  }
  o.socket_path = argv[optind];

  /* Block the signals before any thread starts, then wait for one. */
  sigemptyset (&set);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  pthread_sigmask (SIG_BLOCK, &set, NULL);
  signal (SIGPIPE, SIG_IGN);

  a = vd_attachment_open (argv[optind + 1], &oo);
  if (a == NULL) {
    fprintf (stderr, "vhost-serve-helper: %s\n", vd_get_error ());
    return 1;
  }
  if (fail_after) {
    struct vd_fault_config fc = {
      .fail_ops = VD_FAULT_OP_WRITE, .fail_at = fail_after,
      .fail_errno = EIO, .fail_sticky = true,
    };
    a = vd_faults_wrap (a, &fc);
    CHECK (a != NULL);
  }
  e = vhost_export_start (a, &o);
  if (e == NULL) {
    fprintf (stderr, "vhost-serve-helper: %s\n", vd_get_error ());
    vd_attachment_close (a);
    return 1;
  }
  sigwait (&set, &sig);
  if (vhost_export_stop (e) == -1) {
    fprintf (stderr, "vhost-serve-helper: %s\n", vd_get_error ());
    r = 1;
  }
  if (vd_attachment_close (a) == -1) {
    fprintf (stderr, "vhost-serve-helper: %s\n", vd_get_error ());
    r = 1;
  }
  return r;
}
