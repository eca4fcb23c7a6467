/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vdisk image compact PATH
 *
 * Offline compaction of an ASIF image (vd_image_compact): the space of
 * discarded and leaked chunks is reclaimed and the file shrinks.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct cli_option options[] = {
  { "quiet", 'q', no_argument, NULL, "print nothing" },
  { NULL }
};

static int
run (const struct cli_command *cmd, int argc, char **argv)
{
  const char *arg;
  bool quiet = false;
  uint64_t freed;
  char buf[64];
  int i;

  while ((i = cli_getopt (cmd, argc, argv, &arg)) != -1) {
    if (i == -2)
      return EXIT_USAGE;
    if (strcmp (options[i].name, "quiet") == 0)
      quiet = true;
  }
  if (optind != argc - 1)
    return cli_usage_error (cmd, optind >= argc ? "missing PATH"
                            : "too many arguments");
  if (vd_image_compact (argv[optind], &freed) == -1)
    return cli_lib_error ();
  if (!quiet)
    printf ("%s: reclaimed %s (%" PRIu64 " bytes)\n", argv[optind],
            cli_human_size (freed, buf, sizeof buf), freed);
  return EXIT_OK;
}

const struct cli_command cmd_image_compact = {
  .name = "image compact",
  .synopsis = "[-q] PATH",
  .summary = "Reclaim the space of discarded chunks in an ASIF image "
             "(offline)",
  .options = options,
  .run = run,
};
