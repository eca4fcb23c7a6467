/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vdisk image map [--json] SPEC
 *
 * The allocation map from block_status.  --json prints the shape of
 * `qemu-img map --output=json` (start, length, depth, present, zero,
 * data; offset for RAW files), so tools written for qemu-img read it.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct cli_option options[] = {
  { "json", 0, no_argument, NULL, "JSON, as qemu-img map --output=json" },
  { "output", 0, required_argument, "human|json",
    "output format (qemu-img spelling)" },
  CLI_OPEN_OPTIONS,
  { NULL }
};

struct map {
  bool json;
  bool raw;
  bool first;
  uint64_t next;
};

static int
print_extent (void *ud, uint64_t off, uint64_t len, uint32_t st)
{
  struct map *m = ud;
  bool zero = st & VD_STATE_ZERO, data = !(st & VD_STATE_HOLE);

  if (m->json) {
    printf ("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"depth\": 0,"
            " \"present\": true, \"zero\": %s, \"data\": %s", m->first ? "" :
            ",\n", off, len, zero ? "true" : "false", data ? "true" : "false");
    if (m->raw)
      printf (", \"offset\": %" PRIu64, off);
    printf ("}");
    m->first = false;
  }
  else
    printf ("%#-15" PRIx64 " %#-15" PRIx64 " %s\n", off, len,
            (st & VD_STATE_HOLE) ? "hole" : zero ? "zero" : "data");
  m->next = off + len;
  return 0;
}

static int
run (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_open_opts co;
  struct vd_attachment *a;
  struct map m = { .first = true };
  const char *arg;
  int64_t size;
  int i, status = EXIT_ERROR;

  cli_open_opts_init (&co);
  co.o.flags |= VD_OPEN_READ_ONLY;
  while ((i = cli_getopt (cmd, argc, argv, &arg)) != -1) {
    if (i == -2)
      return EXIT_USAGE;
    const char *name = options[i].name;
    if (strcmp (name, "json") == 0)
      m.json = true;
    else if (strcmp (name, "output") == 0) {
      if (strcmp (arg, "json") == 0)
        m.json = true;
      else if (strcmp (arg, "human") == 0)
        m.json = false;
      else
        return cli_usage_error (cmd, "--output: expected human or json");
    }
    else if (cli_open_opts_apply (&co, cmd, name, arg) == -1)
      return EXIT_USAGE;
  }
  if (argc - optind != 1)
    return cli_usage_error (cmd, "expected one image");
  a = vd_attachment_open (argv[optind], &co.o);
  if (a == NULL)
    return cli_lib_error ();
  size = vd_attachment_get_size (a);
  if (size == -1)
    goto error;
  m.raw = strcmp (vd_attachment_get_format (a), "raw") == 0;
  if (m.json)
    printf ("[");
  else
    printf ("%-15s %-15s %s\n", "Offset", "Length", "Type");
  while (m.next < (uint64_t) size)
    if (vd_attachment_block_status (a, size - m.next, m.next, 0,
                                    print_extent, &m) == -1)
      goto error;
  if (m.json)
    printf ("]\n");
  status = EXIT_OK;
  goto out;
 error:
  if (m.json)
    printf ("]\n");
  cli_lib_error ();
 out:
  if (vd_attachment_close (a) == -1 && status == EXIT_OK)
    status = cli_lib_error ();
  return status;
}

const struct cli_command cmd_image_map = {
  .name = "image map",
  .synopsis = "[--json] [OPTIONS] PATH|URI",
  .summary = "Show which ranges of an image hold data, zeros or holes",
  .options = options,
  .run = run,
};
