/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vdisk nbd validate [--json|--quiet] URI...
 *
 * Checks that each URI is a well-formed NBD URI (vd_nbd_uri_validate,
 * Apple's +validateURL:error:) without touching the network, and prints
 * its parts (vd_nbd_uri_get_properties).  Exit 0 when every URI is
 * valid, 1 when one is not (with the reason on stderr), 2 on usage
 * errors.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

static const struct cli_option options[] = {
  { "json", 0, no_argument, NULL,
    "print the parts as JSON (one object per URI, in an array)" },
  { "quiet", 'q', no_argument, NULL,
    "print nothing; only the exit status tells" },
  { NULL }
};

struct out {
  bool json;
  struct vd_json j;
  bool tls;
  uint64_t ignored;
};

static int
print_prop (void *ud, const char *key, int type, const char *str, uint64_t u)
{
  struct out *o = ud;

  if (strcmp (key, "tls") == 0)
    o->tls = u != 0;
  if (strcmp (key, "ignored-parameters") == 0)
    o->ignored = u;
  if (o->json) {
    switch (type) {
    case VD_PROP_STRING: vd_json_string (&o->j, key, str); break;
    case VD_PROP_BOOL: vd_json_bool (&o->j, key, u != 0); break;
    default: vd_json_uint (&o->j, key, u); break;
    }
    return 0;
  }
  printf ("  %s: ", key);
  switch (type) {
  case VD_PROP_STRING:
    if (strcmp (key, "export") == 0 && *str == '\0')
      printf ("\"\" (the default export)\n");
    else
      printf ("%s\n", str);
    break;
  case VD_PROP_BOOL:
    printf ("%s\n", u ? "yes" : "no");
    break;
  default:
    printf ("%" PRIu64 "\n", u);
  }
  return 0;
}

static int
run (const struct cli_command *cmd, int argc, char **argv)
{
  struct out o = { 0 };
  bool quiet = false;
  const char *arg;
  int i, status = EXIT_OK;

  while ((i = cli_getopt (cmd, argc, argv, &arg)) != -1) {
    if (i == -2)
      return EXIT_USAGE;
    if (strcmp (options[i].name, "json") == 0)
      o.json = true;
    else if (strcmp (options[i].name, "quiet") == 0)
      quiet = true;
  }
  if (optind >= argc)
    return cli_usage_error (cmd, "missing URI");
  if (o.json && quiet)
    return cli_usage_error (cmd, "--json and --quiet exclude each other");

  if (o.json) {
    vd_json_init (&o.j, stdout);
    vd_json_begin_array (&o.j, NULL);
  }
  for (i = optind; i < argc; ++i) {
    const char *uri = argv[i];

    if (quiet) {
      if (vd_nbd_uri_validate (uri) == -1) {
        status = EXIT_ERROR;
      }
      continue;
    }
    o.tls = false;
    o.ignored = 0;
    if (o.json) {
      /* Validate first so an invalid URI leaves no half-written object. */
      if (vd_nbd_uri_validate (uri) == -1) {
        cli_lib_error ();
        status = EXIT_ERROR;
        continue;
      }
      vd_json_begin_object (&o.j, NULL);
      vd_json_string (&o.j, "uri", uri);
      vd_json_bool (&o.j, "valid", true);
      if (vd_nbd_uri_get_properties (uri, print_prop, &o) == -1)
        status = cli_lib_error ();
      vd_json_end_object (&o.j);
    }
    else {
      if (vd_nbd_uri_validate (uri) == -1) {
        cli_lib_error ();
        status = EXIT_ERROR;
        continue;
      }
      printf ("%s: valid NBD URI\n", uri);
      if (vd_nbd_uri_get_properties (uri, print_prop, &o) == -1)
        status = cli_lib_error ();
    }
    if (o.tls)
      cli_error ("note: %s requires TLS, which this build of vdisk does not "
                 "support yet: opening it will fail", uri);
    if (o.ignored)
      cli_error ("note: %s: %" PRIu64 " experimental x-* parameter%s "
                 "ignored", uri, o.ignored, o.ignored == 1 ? "" : "s");
  }
  if (o.json) {
    vd_json_end_array (&o.j);
    vd_json_finish (&o.j);
  }
  return status;
}

const struct cli_command cmd_nbd_validate = {
  .name = "nbd validate",
  .synopsis = "[--json|--quiet] URI...",
  .summary = "Check that NBD URIs are well-formed and show their parts "
             "(no network access)",
  .options = options,
  .run = run,
};
