/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vdisk image create blank --fs none --format RAW|ASIF --size SIZE PATH
 *
 * The syntax of macOS's `diskutil image create blank`, so scripts written
 * for a Mac work here.  Differences, all documented in
 * vdisk-image-create(1): --fs defaults to none (diskutil's default is
 * APFS, which makes no sense for a VM disk) and only none is supported;
 * --format defaults to RAW.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

static const struct cli_option options[] = {
  { "fs", 0, required_argument, "FS",
    "file system to create: only 'none' (a blank disk) is supported" },
  { "format", 0, required_argument, "FORMAT", "RAW (default) or ASIF" },
  { "size", 0, required_argument, "SIZE",
    "virtual size: bytes, or with a unit: 10GB (decimal), 10GiB (binary)" },
  { "volumeName", 0, required_argument, "NAME",
    "accepted for diskutil compatibility; needs a file system" },
  { NULL }
};

static int
run (const struct cli_command *cmd, int argc, char **argv)
{
  const char *fs = "none", *format = "RAW", *size_str = NULL;
  const char *volname = NULL, *arg, *path;
  uint64_t size;
  int fmt, i;

  /* diskutil's order: the "blank" verb comes first. */
  if (argc < 2 || strcmp (argv[1], "blank") != 0) {
    if (argc >= 2 && strcmp (argv[1], "from") == 0)
      return cli_usage_error (cmd, "'image create from' is not supported; "
                              "use 'vdisk image convert SRC DST'");
    if (argc >= 2 && (strcmp (argv[1], "--help") == 0 ||
                      strcmp (argv[1], "-h") == 0)) {
      cli_print_help (cmd);
      return EXIT_OK;
    }
    return cli_usage_error (cmd, "expected 'blank' after 'image create'");
  }
  argv[1] = argv[0];
  argc--;
  argv++;

  while ((i = cli_getopt (cmd, argc, argv, &arg)) != -1) {
    if (i == -2)
      return EXIT_USAGE;
    const char *name = options[i].name;
    if (strcmp (name, "fs") == 0)
      fs = arg;
    else if (strcmp (name, "format") == 0)
      format = arg;
    else if (strcmp (name, "size") == 0)
      size_str = arg;
    else if (strcmp (name, "volumeName") == 0)
      volname = arg;
  }
  if (optind != argc - 1)
    return cli_usage_error (cmd, optind >= argc ? "missing PATH"
                            : "too many arguments");
  path = argv[optind];

  if (strcasecmp (fs, "none") != 0)
    return cli_usage_error (cmd, "--fs %s: creating a file system is not "
                            "supported; vdisk makes blank disks (--fs none) "
                            "and the guest formats them", fs);
  if (volname)
    return cli_usage_error (cmd, "--volumeName needs a file system, and "
                            "vdisk only makes blank disks (--fs none)");
  fmt = vd_image_format_from_name (format);
  if (fmt == -1)
    return cli_usage_error (cmd, "--format %s: unknown format (expected RAW "
                            "or ASIF)", format);
  if (size_str == NULL)
    return cli_usage_error (cmd, "missing --size SIZE");
  if (vd_parse_size (size_str, &size) == -1)
    return cli_usage_error (cmd, "--size: %s", vd_get_error ());
  if (size == 0)
    return cli_usage_error (cmd, "--size must be greater than zero");

  if (vd_image_create (path, fmt, size, 0) == -1)
    return cli_lib_error ();
  return EXIT_OK;
}

const struct cli_command cmd_image_create = {
  .name = "image create",
  .synopsis = "blank [--fs none] [--format RAW|ASIF] --size SIZE PATH",
  .summary = "Create a blank RAW or ASIF disk image "
             "(diskutil image create blank syntax)",
  .options = options,
  .run = run,
};
