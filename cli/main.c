/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vdisk: entry point and the command table (as wireguard-tools' wg.c).
 * Commands have one or two words ("serve", "image create"); the table is
 * searched for the longest match.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

const char *program_name = "vdisk";

static const struct cli_command *const commands[] = {
  &cmd_image_create,
  &cmd_image_info,
  &cmd_image_convert,
  &cmd_image_compare,
  &cmd_image_map,
  &cmd_nbd_validate,
  &cmd_image_check,
  &cmd_image_resize,
  &cmd_image_compact,
  &cmd_serve,
  &cmd_tls_gen_certs,
};
#define NR_COMMANDS (sizeof commands / sizeof commands[0])

void
cli_error (const char *fmt, ...)
{
  va_list args;

  fprintf (stderr, "%s: ", program_name);
  va_start (args, fmt);
  vfprintf (stderr, fmt, args);
  va_end (args);
  fputc ('\n', stderr);
}

int
cli_usage_error (const struct cli_command *cmd, const char *fmt, ...)
{
  va_list args;

  fprintf (stderr, "%s: ", program_name);
  va_start (args, fmt);
  vfprintf (stderr, fmt, args);
  va_end (args);
  fputc ('\n', stderr);
  if (cmd)
    fprintf (stderr, "Usage: %s %s %s\nTry '%s %s --help' for more "
             "information.\n", program_name, cmd->name, cmd->synopsis,
             program_name, cmd->name);
  else
    fprintf (stderr, "Try '%s --help' for more information.\n",
             program_name);
  return EXIT_USAGE;
}

int
cli_lib_error (void)
{
  const char *e = vd_get_error ();

  cli_error ("%s", e ? e : "unknown error");
  return EXIT_ERROR;
}

void
cli_print_help (const struct cli_command *cmd)
{
  printf ("Usage: %s %s %s\n\n%s\n", program_name, cmd->name, cmd->synopsis,
          cmd->summary);
  if (cmd->options && cmd->options[0].name) {
    printf ("\nOptions:\n");
    for (const struct cli_option *o = cmd->options; o->name; ++o) {
      char left[64];
      const char *sep = o->has_arg == optional_argument ? "" : " ";
      if (o->short_name)
        snprintf (left, sizeof left, "-%c, --%s%s%s", o->short_name, o->name,
                  o->arg ? sep : "", o->arg ? o->arg : "");
      else
        snprintf (left, sizeof left, "    --%s%s%s", o->name,
                  o->arg ? sep : "", o->arg ? o->arg : "");
      printf ("  %-28s %s\n", left, o->help);
    }
  }
  printf ("  %-28s %s\n", "-h, --help", "show this help");
  printf ("\nSee vdisk-%s(1).\n", cmd->name);
}

int
cli_getopt (const struct cli_command *cmd, int argc, char **argv,
            const char **optarg_out)
{
  struct option longopts[64];
  char shortopts[160] = "h";
  size_t n = 0, s = 1;
  int c, idx = -1;

  for (const struct cli_option *o = cmd->options; o && o->name; ++o) {
    longopts[n].name = o->name;
    longopts[n].has_arg = o->has_arg;
    longopts[n].flag = NULL;
    longopts[n].val = 256 + (int) n;
    if (o->short_name && s + 3 < sizeof shortopts) {
      shortopts[s++] = o->short_name;
      if (o->has_arg == required_argument)
        shortopts[s++] = ':';
      else if (o->has_arg == optional_argument && s + 3 < sizeof shortopts) {
        shortopts[s++] = ':';
        shortopts[s++] = ':';
      }
    }
    n++;
  }
  longopts[n++] = (struct option) { "help", no_argument, NULL, 'h' };
  longopts[n] = (struct option) { 0 };
  shortopts[s] = '\0';

  opterr = 0;
  c = getopt_long (argc, argv, shortopts, longopts, &idx);
  if (c == -1)
    return -1;
  if (c == 'h') {
    cli_print_help (cmd);
    exit (EXIT_OK);
  }
  if (c == '?' || c == ':') {
    if (optopt && optopt < 256)
      cli_usage_error (cmd, "invalid option or missing argument: -%c",
                       optopt);
    else
      cli_usage_error (cmd, "invalid option or missing argument: %s",
                       argv[optind - 1]);
    return -2;
  }
  if (c >= 256) {
    *optarg_out = optarg;
    return c - 256;
  }
  /* A short option: find it. */
  for (size_t i = 0; cmd->options[i].name; ++i)
    if (cmd->options[i].short_name == c) {
      *optarg_out = optarg;
      return (int) i;
    }
  cli_usage_error (cmd, "unexpected option -%c", c);
  return -2;
}

void
cli_open_opts_init (struct cli_open_opts *co)
{
  vd_open_options_init (&co->o);
  co->read_only_set = false;
}

int
cli_open_opts_apply (struct cli_open_opts *co, const struct cli_command *cmd,
                     const char *name, const char *arg)
{
  if (strcmp (name, "format") == 0) {
    static const char *const fmts[] = { "raw", "asif", "blockdev", "nbd" };
    for (size_t i = 0; i < 4; ++i)
      if (strcasecmp (arg, fmts[i]) == 0) {
        co->o.format = fmts[i];
        return 1;
      }
    cli_usage_error (cmd, "unknown format '%s' (expected raw, asif, "
                     "blockdev or nbd)", arg);
    return -1;
  }
  if (strcmp (name, "caching") == 0) {
    int m = vd_caching_mode_from_name (arg);
    if (m == -1) {
      cli_usage_error (cmd, "%s", vd_get_error ());
      return -1;
    }
    co->o.caching_mode = m;
    return 1;
  }
  if (strcmp (name, "sync") == 0) {
    int m = vd_sync_mode_from_name (arg);
    if (m == -1) {
      cli_usage_error (cmd, "%s", vd_get_error ());
      return -1;
    }
    co->o.sync_mode = m;
    return 1;
  }
  if (strcmp (name, "force-share") == 0) {
    co->o.flags |= VD_OPEN_NO_LOCK;
    return 1;
  }
  if (strcmp (name, "read-only") == 0) {
    co->o.flags |= VD_OPEN_READ_ONLY;
    co->read_only_set = true;
    return 1;
  }
  if (strcmp (name, "timeout") == 0) {
    char *end;
    double t = strtod (arg, &end);
    if (*arg == '\0' || *end != '\0' || !(t > 0) || t > 86400 * 365) {
      cli_usage_error (cmd, "--timeout: '%s' is not a positive number of "
                       "seconds", arg);
      return -1;
    }
    co->o.timeout = t;
    return 1;
  }
  return 0;
}

const char *
cli_human_size (uint64_t bytes, char *buf, size_t len)
{
  static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
                                       "PiB", "EiB" };
  double v = bytes;
  int u = 0;

  while (v >= 1024 && u < 6) {
    v /= 1024;
    u++;
  }
  if (u == 0)
    snprintf (buf, len, "%llu B", (unsigned long long) bytes);
  else
    snprintf (buf, len, "%.3g %s", v, units[u]);
  return buf;
}

static void
print_main_help (void)
{
  printf ("Usage: %s COMMAND [OPTIONS] [ARGS]\n\n"
          "Disk images (RAW, ASIF), block devices and NBD exports for "
          "virtual machines.\n\nCommands:\n", program_name);
  for (size_t i = 0; i < NR_COMMANDS; ++i)
    printf ("  %-18s %s\n", commands[i]->name, commands[i]->summary);
  printf ("\nGlobal options:\n"
          "  -h, --help         show this help\n"
          "  -V, --version      show the version\n\n"
          "Run '%s COMMAND --help' for a command's options; see vdisk(1).\n",
          program_name);
}

/* For tests/core/test-cli-docs.sh: every command and option, one per
 * line, so the man pages can be checked against the table.
 */
static void
dump_options (void)
{
  for (size_t i = 0; i < NR_COMMANDS; ++i) {
    const struct cli_command *c = commands[i];
    printf ("command %s\n", c->name);
    for (const struct cli_option *o = c->options; o && o->name; ++o) {
      printf ("option %s --%s\n", c->name, o->name);
      if (o->short_name)
        printf ("short %s -%c\n", c->name, o->short_name);
    }
  }
}

/* Number of words of argv that name command c (0 if no match). */
static int
match (const struct cli_command *c, int argc, char **argv)
{
  const char *p = c->name;
  int words = 0;

  while (*p) {
    size_t n = strcspn (p, " ");
    if (words >= argc || strlen (argv[words]) != n ||
        strncmp (argv[words], p, n) != 0)
      return 0;
    words++;
    p += n;
    if (*p == ' ')
      p++;
  }
  return words;
}

int
main (int argc, char **argv)
{
  const struct cli_command *best = NULL;
  int best_words = 0;

  /* Writes to a closed socket or pipe are errors to report, not a reason
   * to die.
   */
  signal (SIGPIPE, SIG_IGN);

  if (argc < 2) {
    print_main_help ();
    return EXIT_USAGE;
  }
  if (strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "--help") == 0 ||
      strcmp (argv[1], "help") == 0) {
    if (argc > 2) {
      /* vdisk help image create */
      for (size_t i = 0; i < NR_COMMANDS; ++i)
        if (match (commands[i], argc - 2, argv + 2)) {
          cli_print_help (commands[i]);
          return EXIT_OK;
        }
    }
    print_main_help ();
    return EXIT_OK;
  }
  if (strcmp (argv[1], "-V") == 0 || strcmp (argv[1], "--version") == 0) {
    printf ("vdisk %s (libvdisk %s)\n", PACKAGE_VERSION, vd_version ());
    return EXIT_OK;
  }
  if (strcmp (argv[1], "--dump-options") == 0) {
    dump_options ();
    return EXIT_OK;
  }

  for (size_t i = 0; i < NR_COMMANDS; ++i) {
    int w = match (commands[i], argc - 1, argv + 1);
    if (w > best_words) {
      best = commands[i];
      best_words = w;
    }
  }
  if (best == NULL) {
    /* "vdisk image" alone, or a typo. */
    bool group = false;
    for (size_t i = 0; i < NR_COMMANDS; ++i)
      if (strncmp (commands[i]->name, argv[1], strlen (argv[1])) == 0 &&
          commands[i]->name[strlen (argv[1])] == ' ')
        group = true;
    if (group && argc == 2) {
      fprintf (stderr, "%s: '%s' needs a subcommand:\n", program_name,
               argv[1]);
      for (size_t i = 0; i < NR_COMMANDS; ++i)
        if (strncmp (commands[i]->name, argv[1], strlen (argv[1])) == 0)
          fprintf (stderr, "  %s %s\n", program_name, commands[i]->name);
      return EXIT_USAGE;
    }
    return cli_usage_error (NULL, "unknown command '%s%s%s'", argv[1],
                            group ? " " : "", group ? argv[2] : "");
  }

  /* Hand the command argv starting at its last word, so getopt sees the
   * options that follow it.
   */
  {
    int sub_argc = argc - best_words;
    char **sub_argv = argv + best_words;
    sub_argv[0] = (char *) best->name;
    optind = 1;
    return best->run (best, sub_argc, sub_argv);
  }
}
