/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vdisk image check [--repair[=leaks|all]] [-U] [--json] PATH
 *
 * Validates an image (vd_image_check) and optionally repairs it.  Exit
 * codes follow qemu-img check: 0 consistent, 1 the check could not be
 * done (error), 2 corruption, 3 leaked chunks only, 63 the format cannot
 * be checked.  After a repair the exit code describes what is left.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

#define EXIT_CHECK_CORRUPT 2
#define EXIT_CHECK_LEAKS   3
#define EXIT_CHECK_UNSUPPORTED 63

static const struct cli_option options[] = {
  { "repair", 'r', optional_argument, "WHAT",
    "repair: leaks, or all (the default) that is safe to repair" },
  { "force-share", 'U', no_argument, NULL,
    "do not lock the image (it may be in use; report only, no repair)" },
  { "json", 0, no_argument, NULL, "machine-readable output" },
  { "quiet", 'q', no_argument, NULL, "print nothing, only set the exit code" },
  { NULL }
};

struct out {
  bool json, quiet;
  struct vd_json j;
};

static void
on_problem (void *ud, int kind, const char *msg)
{
  struct out *o = ud;
  const char *what = kind == VD_CHECK_CORRUPTION ? "corruption"
    : kind == VD_CHECK_LEAK ? "leak" : "repaired";

  if (o->quiet)
    return;
  if (o->json) {
    vd_json_begin_object (&o->j, NULL);
    vd_json_string (&o->j, "kind", what);
    vd_json_string (&o->j, "message", msg);
    vd_json_end_object (&o->j);
  }
  else
    printf ("%s: %s\n", what, msg);
}

static int
run (const struct cli_command *cmd, int argc, char **argv)
{
  struct vd_check_result res = { .struct_size = sizeof res };
  struct out o = { 0 };
  uint32_t flags = 0;
  bool share = false;
  const char *arg, *path;
  int i, r, code;

  while ((i = cli_getopt (cmd, argc, argv, &arg)) != -1) {
    if (i == -2)
      return EXIT_USAGE;
    if (strcmp (options[i].name, "json") == 0)
      o.json = true;
    else if (strcmp (options[i].name, "quiet") == 0)
      o.quiet = true;
    else if (strcmp (options[i].name, "force-share") == 0)
      share = true;
    else if (strcmp (options[i].name, "repair") == 0) {
      if (arg == NULL || strcmp (arg, "all") == 0)
        flags = VD_CHECK_REPAIR_LEAKS | VD_CHECK_REPAIR_ALL;
      else if (strcmp (arg, "leaks") == 0)
        flags = VD_CHECK_REPAIR_LEAKS;
      else
        return cli_usage_error (cmd, "--repair=%s: expected leaks or all",
                                arg);
    }
  }
  if (optind != argc - 1)
    return cli_usage_error (cmd, optind >= argc ? "missing PATH"
                            : "too many arguments");
  path = argv[optind];
  if (share && flags)
    return cli_usage_error (cmd, "--force-share and --repair cannot be "
                            "combined (an image in use is never repaired)");
  if (share)
    flags |= VD_CHECK_FORCE_SHARE;

  if (o.json) {
    vd_json_init (&o.j, stdout);
    vd_json_begin_object (&o.j, NULL);
    vd_json_string (&o.j, "filename", path);
    vd_json_begin_array (&o.j, "problems");
  }
  r = vd_image_check (path, flags, &res, on_problem, &o);
  if (r == -1) {
    int err = vd_get_errno ();
    if (o.json) {
      vd_json_end_array (&o.j);
      vd_json_string (&o.j, "error", vd_get_error ());
      vd_json_end_object (&o.j);
      vd_json_finish (&o.j);
    }
    if (!o.quiet)
      cli_lib_error ();
    return err == ENOTSUP ? EXIT_CHECK_UNSUPPORTED : EXIT_ERROR;
  }
  code = res.corruptions_left ? EXIT_CHECK_CORRUPT
    : res.leaks_left ? EXIT_CHECK_LEAKS : EXIT_OK;

  if (o.json) {
    vd_json_end_array (&o.j);
    vd_json_uint (&o.j, "check-errors", 0);
    vd_json_uint (&o.j, "corruptions", res.corruptions_left);
    vd_json_uint (&o.j, "leaks", res.leaks_left);
    vd_json_uint (&o.j, "corruptions-fixed", res.corruptions_fixed);
    vd_json_uint (&o.j, "leaks-fixed", res.leaks_fixed);
    vd_json_uint (&o.j, "allocated-chunks", res.allocated_chunks);
    vd_json_uint (&o.j, "total-chunks", res.total_chunks);
    vd_json_uint (&o.j, "image-end-offset", res.image_end_offset);
    vd_json_end_object (&o.j);
    vd_json_finish (&o.j);
  }
  else if (!o.quiet) {
    if (res.corruptions_fixed || res.leaks_fixed)
      printf ("The following inconsistencies were found and repaired:\n\n"
              "    %" PRIu64 " leaked chunks\n    %" PRIu64 " corruptions\n\n",
              res.leaks_fixed, res.corruptions_fixed);
    if (res.corruptions_left)
      printf ("%" PRIu64 " errors were found on the image.\nData may be "
              "corrupted, or further writes to the image may corrupt it.\n",
              res.corruptions_left);
    if (res.leaks_left)
      printf ("%" PRIu64 " leaked chunks were found on the image.\nThis "
              "means waste of disk space, but no harm to data.\n",
              res.leaks_left);
    if (!res.corruptions_left && !res.leaks_left)
      printf ("No errors were found on the image.\n");
    if (res.total_chunks)
      printf ("%" PRIu64 " data chunks allocated, %" PRIu64 " chunks in the "
              "file.\n", res.allocated_chunks, res.total_chunks);
    printf ("Image end offset: %" PRIu64 "\n", res.image_end_offset);
  }
  return code;
}

const struct cli_command cmd_image_check = {
  .name = "image check",
  .synopsis = "[--repair[=leaks|all] | -U] [--json] [-q] PATH",
  .summary = "Check an image for corruption and leaked space; optionally "
             "repair it",
  .options = options,
  .run = run,
};
