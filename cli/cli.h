/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The vdisk command-line tool.  One table of commands (main.c) drives
 * dispatch, --help and the option check against the man pages
 * (tests/core/test-cli-docs.sh, which runs `vdisk --dump-options`).
 * Each command is one cmd-*.c file exporting a struct cli_command.
 */
#ifndef VD_CLI_H
#define VD_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "vdisk/vdisk.h"

/* Exit codes (every command): */
#define EXIT_OK     0
#define EXIT_ERROR  1           /* operational error */
#define EXIT_USAGE  2           /* bad command line */

struct cli_option {
  const char *name;             /* long option name, without "--" */
  int short_name;               /* 0 if none */
  int has_arg;                  /* no_argument / required_argument */
  const char *arg;              /* argument name for help, e.g. "SIZE" */
  const char *help;             /* one line */
};

struct cli_command {
  const char *name;             /* "image create" */
  const char *synopsis;         /* after the name: "blank --size SIZE PATH" */
  const char *summary;          /* one line */
  const struct cli_option *options; /* terminated by { NULL } */
  /* argv[0] is the command name ("image create"); getopt-ready. */
  int (*run) (const struct cli_command *cmd, int argc, char **argv);
};

extern const char *program_name;

/* Messages on stderr: "vdisk: ..." (and usage errors add a hint). */
void cli_error (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
int cli_usage_error (const struct cli_command *cmd, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
/* Print vd_get_error () and return EXIT_ERROR. */
int cli_lib_error (void);

/* getopt_long over cmd->options.  Returns the option's index in
 * cmd->options (>= 0), -1 at the end of options, or -2 after printing a
 * usage error.  --help is handled here (prints help, exit 0).
 */
int cli_getopt (const struct cli_command *cmd, int argc, char **argv,
                const char **optarg_out);

void cli_print_help (const struct cli_command *cmd);

/* Options shared by the commands that open attachments. */
struct cli_open_opts {
  struct vd_open_options o;
  bool read_only_set;
};
void cli_open_opts_init (struct cli_open_opts *co);
/* If name is one of the shared open options, apply it: 1 = handled,
 * 0 = not an open option, -1 = bad value (message printed).
 */
int cli_open_opts_apply (struct cli_open_opts *co,
                         const struct cli_command *cmd, const char *name,
                         const char *arg);
#define CLI_OPEN_OPTIONS                                                \
  { "format", 'f', required_argument, "FORMAT",                         \
    "raw, asif, blockdev or nbd (default: detect)" },                   \
  { "caching", 0, required_argument, "MODE",                            \
    "automatic, cached or uncached (default automatic)" },              \
  { "sync", 0, required_argument, "MODE",                               \
    "full, fsync or none (default full)" },                             \
  { "force-share", 'U', no_argument, NULL,                              \
    "do not lock the image (it may be in use)" },                       \
  { "timeout", 0, required_argument, "SECONDS",                         \
    "NBD: seconds before an unreachable server is an error" }

/* "10 GiB" style, into buf. */
const char *cli_human_size (uint64_t bytes, char *buf, size_t len);

/* The commands. */
extern const struct cli_command cmd_image_create;
extern const struct cli_command cmd_image_info;
extern const struct cli_command cmd_image_convert;
extern const struct cli_command cmd_image_compare;
extern const struct cli_command cmd_image_map;
extern const struct cli_command cmd_nbd_validate;
extern const struct cli_command cmd_image_check;
extern const struct cli_command cmd_image_resize;
extern const struct cli_command cmd_image_compact;
extern const struct cli_command cmd_serve;
extern const struct cli_command cmd_tls_gen_certs;

#endif
