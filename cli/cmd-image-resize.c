/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vdisk image resize --size SIZE PATH
 *
 * diskutil's `image resize` syntax.  Grows or shrinks a RAW or ASIF
 * image (vd_image_resize); the guest must then grow or shrink its
 * partitions and file systems.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct cli_option options[] = {
  { "size", 0, required_argument, "SIZE",
    "new virtual size: bytes, or with a unit: 10GB (decimal), 10GiB" },
  { NULL }
};

static int
run (const struct cli_command *cmd, int argc, char **argv)
{
  const char *arg, *size_str = NULL;
  uint64_t size;
  int i;

  while ((i = cli_getopt (cmd, argc, argv, &arg)) != -1) {
    if (i == -2)
      return EXIT_USAGE;
    if (strcmp (options[i].name, "size") == 0)
      size_str = arg;
  }
  if (optind != argc - 1)
    return cli_usage_error (cmd, optind >= argc ? "missing PATH"
                            : "too many arguments");
  if (size_str == NULL)
    return cli_usage_error (cmd, "missing --size SIZE");
  if (vd_parse_size (size_str, &size) == -1)
    return cli_usage_error (cmd, "--size: %s", vd_get_error ());
  if (size == 0)
    return cli_usage_error (cmd, "--size must be greater than zero");
  if (vd_image_resize (argv[optind], size) == -1)
    return cli_lib_error ();
  return EXIT_OK;
}

const struct cli_command cmd_image_resize = {
  .name = "image resize",
  .synopsis = "--size SIZE PATH",
  .summary = "Grow or shrink a RAW or ASIF image "
             "(diskutil image resize syntax)",
  .options = options,
  .run = run,
};
