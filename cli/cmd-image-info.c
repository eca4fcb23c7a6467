/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vdisk image info [--json] PATH|SPEC
 *
 * Prints the attachment's properties (vd_attachment_get_properties).
 * Generic keys come first; keys "<group>.<name>" are grouped: in JSON as
 * a nested object "<group>": {...}, in text under a heading.  The keys
 * are documented (and frozen) in vdisk-image-info(1).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

static const struct cli_option options[] = {
  { "json", 0, no_argument, NULL, "machine-readable output (stable keys)" },
  { "read-only", 'r', no_argument, NULL,
    "open read-only (the default for info)" },
  CLI_OPEN_OPTIONS,
  { NULL }
};

struct out {
  bool json;
  struct vd_json j;
  char group[64];               /* current nested group, "" if none */
};

static void
leave_group (struct out *o)
{
  if (o->group[0]) {
    if (o->json)
      vd_json_end_object (&o->j);
    o->group[0] = '\0';
  }
}

static int
print_prop (void *ud, const char *key, int type, const char *str, uint64_t u)
{
  struct out *o = ud;
  const char *dot = strchr (key, '.');
  const char *leaf = key;
  char buf[64];

  if (dot) {
    size_t n = dot - key;
    if (n >= sizeof o->group)
      n = sizeof o->group - 1;
    if (strncmp (o->group, key, n) != 0 || o->group[n] != '\0') {
      leave_group (o);
      memcpy (o->group, key, n);
      o->group[n] = '\0';
      if (o->json)
        vd_json_begin_object (&o->j, o->group);
      else
        printf ("%s details:\n", o->group);
    }
    leaf = dot + 1;
  }
  else
    leave_group (o);

  if (o->json) {
    switch (type) {
    case VD_PROP_STRING: vd_json_string (&o->j, leaf, str); break;
    case VD_PROP_BOOL: vd_json_bool (&o->j, leaf, u != 0); break;
    default: vd_json_uint (&o->j, leaf, u); break;
    }
    return 0;
  }

  if (type == VD_PROP_STRING && (str == NULL || *str == '\0'))
    return 0;                   /* JSON keeps the key; text shows nothing */
  printf ("%s%s: ", dot ? "    " : "", leaf);
  switch (type) {
  case VD_PROP_STRING:
    printf ("%s\n", str);
    break;
  case VD_PROP_BOOL:
    printf ("%s\n", u ? "yes" : "no");
    break;
  default:
    if (strstr (leaf, "size") && u >= 1024 && strcmp (leaf, "block-size") &&
        strcmp (leaf, "preferred-block-size"))
      printf ("%s (%" PRIu64 " bytes)\n", cli_human_size (u, buf, sizeof buf),
              u);
    else
      printf ("%" PRIu64 "\n", u);
  }
  return 0;
}

static int
run (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_open_opts co;
  struct vd_attachment *a;
  struct out o = { 0 };
  const char *arg;
  int i, r;

  cli_open_opts_init (&co);
  co.o.flags |= VD_OPEN_READ_ONLY;
  while ((i = cli_getopt (cmd, argc, argv, &arg)) != -1) {
    if (i == -2)
      return EXIT_USAGE;
    if (strcmp (options[i].name, "json") == 0)
      o.json = true;
    else if (cli_open_opts_apply (&co, cmd, options[i].name, arg) == -1)
      return EXIT_USAGE;
  }
  if (optind != argc - 1)
    return cli_usage_error (cmd, optind >= argc ? "missing PATH or URI"
                            : "too many arguments");

  a = vd_attachment_open (argv[optind], &co.o);
  if (a == NULL)
    return cli_lib_error ();
  /* Start first (NBD: connect), so a failure prints nothing but the
   * error.
   */
  if (vd_attachment_start (a) == -1) {
    cli_lib_error ();
    vd_attachment_close (a);
    return EXIT_ERROR;
  }

  if (o.json) {
    vd_json_init (&o.j, stdout);
    vd_json_begin_object (&o.j, NULL);
    vd_json_string (&o.j, "filename", argv[optind]);
  }
  else
    printf ("image: %s\n", argv[optind]);
  r = vd_attachment_get_properties (a, print_prop, &o);
  leave_group (&o);
  if (o.json) {
    vd_json_end_object (&o.j);
    vd_json_finish (&o.j);
  }
  if (r == -1) {
    cli_lib_error ();
    vd_attachment_close (a);
    return EXIT_ERROR;
  }
  if (vd_attachment_close (a) == -1)
    return cli_lib_error ();
  return EXIT_OK;
}

const struct cli_command cmd_image_info = {
  .name = "image info",
  .synopsis = "[--json] [OPTIONS] PATH|URI",
  .summary = "Show the format, size, allocation and details of an image, "
             "block device or NBD export",
  .options = options,
  .run = run,
};
