/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vdisk image convert [-p] [-O raw|asif] [--sparse|--no-sparse] [-n]
 *                     [--connections N] SRC DST
 *
 * Any attachment to any attachment (RAW, ASIF, block device, NBD), with
 * qemu-img's option spellings.  The copy itself is vd_copy (lib/copy.c);
 * this file decides what the target is, creates it when needed, shows
 * progress, and cleans up: on error or Ctrl-C a target this command
 * created is removed (never one that existed before).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "parse.h"

#define MAX_CONNECTIONS 16

static const struct cli_option options[] = {
  { "output-format", 'O', required_argument, "FORMAT",
    "target format for a new image: raw or asif (default: asif if DST ends "
    "in .asif, else raw)" },
  { "progress", 'p', optional_argument, "[=json]",
    "show progress (a bar on a terminal; JSON lines on stdout with =json)" },
  { "sparse", 0, no_argument, NULL,
    "do not write holes and zeros as data (the default)" },
  { "no-sparse", 0, no_argument, NULL,
    "write every byte, so the target is fully allocated" },
  { "no-create", 'n', no_argument, NULL,
    "write into an existing target instead of creating one" },
  { "connections", 0, required_argument, "N",
    "NBD connections per side when the server allows multi-conn "
    "(default 4)" },
  { "requests", 'm', required_argument, "N",
    "requests in flight (default 8, or 8 per NBD connection)" },
  { "source-format", 'f', required_argument, "FORMAT",
    "source format: raw, asif, blockdev or nbd (default: detect)" },
  { "force-share", 'U', no_argument, NULL,
    "do not lock the source (it may be in use)" },
  { "caching", 0, required_argument, "MODE",
    "caching mode for both sides (default automatic)" },
  { "timeout", 0, required_argument, "SECONDS",
    "NBD: seconds before an unreachable server is an error" },
  { NULL }
};

static volatile sig_atomic_t interrupted;

static void
on_signal (int sig)
{
  interrupted = sig;
}

struct progress {
  int mode;                     /* 0 none, 1 bar, 2 json, 3 final line */
  double start;
  double last_print;
  bool final_printed;           /* the 100% line (json) */
};

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
show_progress (void *ud, uint64_t done, uint64_t total)
{
  struct progress *p = ud;
  double t = now (), el = t - p->start;
  double rate = el > 0 ? done / el : 0;
  double pct = total ? 100.0 * done / total : 100.0;
  char a[32], b[32], r[32];

  if (interrupted)
    return -1;
  if (p->mode == 1) {
    char bar[31];
    int fill = (int) (pct * 30 / 100);
    double eta = rate > 0 ? (total - done) / rate : 0;
    for (int i = 0; i < 30; ++i)
      bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[30] = '\0';
    fprintf (stderr, "\r[%s] %5.1f%%  %s / %s  %s/s  ETA %d:%02d ", bar, pct,
             cli_human_size (done, a, sizeof a),
             cli_human_size (total, b, sizeof b),
             cli_human_size ((uint64_t) rate, r, sizeof r),
             (int) eta / 60, (int) eta % 60);
    fflush (stderr);
  }
  else if (p->mode == 2 && !p->final_printed &&
           (t - p->last_print >= 0.5 || done == total)) {
    p->final_printed = done == total;
    printf ("{\"done\":%" PRIu64 ",\"total\":%" PRIu64 ",\"percent\":%.1f,"
            "\"rate\":%.0f,\"seconds\":%.2f}\n", done, total, pct, rate, el);
    fflush (stdout);
    p->last_print = t;
  }
  return 0;
}

static bool
is_nbd_uri (const char *s)
{
  return strncasecmp (s, "nbd", 3) == 0 && strstr (s, "://") != NULL;
}

static bool
ends_with (const char *s, const char *suffix)
{
  size_t n = strlen (s), m = strlen (suffix);
  return n >= m && strcasecmp (s + n - m, suffix) == 0;
}

/* Open n attachments to spec (several only for NBD exports that allow
 * multi-conn).  Returns how many were opened (>= 1), or 0 (error raised).
 */
static size_t
open_many (const char *spec, const struct vd_open_options *o, size_t want,
           struct vd_attachment **out)
{
  size_t n = 0;

  out[n] = vd_attachment_open (spec, o);
  if (out[n] == NULL)
    return 0;
  n++;
  if (want > 1 && strcmp (vd_attachment_get_format (out[0]), "nbd") == 0 &&
      vd_attachment_can_multi_conn (out[0]) == 1) {
    while (n < want) {
      out[n] = vd_attachment_open (spec, o);
      if (out[n] == NULL) {
        for (size_t i = 0; i < n; ++i)
          vd_attachment_close (out[i]);
        return 0;
      }
      n++;
    }
  }
  return n;
}

static void
close_all (struct vd_attachment **a, size_t n)
{
  for (size_t i = 0; i < n; ++i)
    vd_attachment_close (a[i]);
}

static int
run (const struct cli_command *cmd, int argc, char **argv)
{
  struct vd_open_options so, to;
  struct vd_copy_options co;
  struct vd_attachment *src[MAX_CONNECTIONS], *dst[MAX_CONNECTIONS];
  size_t nsrc = 0, ndst = 0;
  struct progress prog = { 0 };
  const char *arg, *srcspec, *dstspec, *outfmt = NULL;
  bool no_create = false, no_sparse = false, created = false;
  unsigned connections = 4, requests = 0;
  struct sigaction sa, old_int, old_term;
  int i, status = EXIT_ERROR, fmt;
  int64_t size;
  struct stat st;

  vd_open_options_init (&so);
  so.flags = VD_OPEN_READ_ONLY;
  vd_open_options_init (&to);
  vd_copy_options_init (&co);

  while ((i = cli_getopt (cmd, argc, argv, &arg)) != -1) {
    if (i == -2)
      return EXIT_USAGE;
    const char *name = options[i].name;
    if (strcmp (name, "output-format") == 0)
      outfmt = arg;
    else if (strcmp (name, "progress") == 0) {
      if (arg && strcmp (arg, "json") == 0)
        prog.mode = 2;
      else if (arg)
        return cli_usage_error (cmd, "--progress takes no value or =json");
      else
        prog.mode = isatty (STDERR_FILENO) ? 1 : 3;
    }
    else if (strcmp (name, "sparse") == 0)
      no_sparse = false;
    else if (strcmp (name, "no-sparse") == 0)
      no_sparse = true;
    else if (strcmp (name, "no-create") == 0)
      no_create = true;
    else if (strcmp (name, "connections") == 0) {
      if (vd_parse_uint32 (arg, &connections) == -1 || connections < 1 ||
          connections > MAX_CONNECTIONS)
        return cli_usage_error (cmd, "--connections: expected 1 to %d",
                                MAX_CONNECTIONS);
    }
    else if (strcmp (name, "requests") == 0) {
      if (vd_parse_uint32 (arg, &requests) == -1 || requests < 1 ||
          requests > 256)
        return cli_usage_error (cmd, "-m/--requests: expected 1 to 256");
    }
    else if (strcmp (name, "source-format") == 0) {
      struct cli_open_opts tmp;
      cli_open_opts_init (&tmp);
      if (cli_open_opts_apply (&tmp, cmd, "format", arg) == -1)
        return EXIT_USAGE;
      so.format = tmp.o.format;
    }
    else if (strcmp (name, "force-share") == 0)
      so.flags |= VD_OPEN_NO_LOCK;
    else if (strcmp (name, "caching") == 0) {
      int m = vd_caching_mode_from_name (arg);
      if (m == -1)
        return cli_usage_error (cmd, "%s", vd_get_error ());
      so.caching_mode = to.caching_mode = m;
    }
    else if (strcmp (name, "timeout") == 0) {
      double t;
      if (vd_parse_seconds (arg, &t) == -1 || t <= 0)
        return cli_usage_error (cmd, "--timeout: '%s' is not a positive "
                                "number of seconds", arg);
      so.timeout = to.timeout = t;
    }
  }
  if (argc - optind != 2)
    return cli_usage_error (cmd, argc - optind < 2 ? "expected SRC and DST"
                            : "too many arguments");
  srcspec = argv[optind];
  dstspec = argv[optind + 1];

  if (outfmt == NULL)
    outfmt = ends_with (dstspec, ".asif") ? "asif" : "raw";
  fmt = vd_image_format_from_name (outfmt);
  if (fmt == -1)
    return cli_usage_error (cmd, "-O %s: unknown format (expected raw or "
                            "asif)", outfmt);

  nsrc = open_many (srcspec, &so, connections, src);
  if (nsrc == 0)
    return cli_lib_error ();
  size = vd_attachment_get_size (src[0]);
  if (size == -1) {
    cli_lib_error ();
    goto out;
  }

  /* What is the target?  NBD exports, fd:N and block devices exist by
   * nature (qemu-img treats them so too); files are created unless -n.
   */
  if (is_nbd_uri (dstspec) || strncmp (dstspec, "fd:", 3) == 0 ||
      (stat (dstspec, &st) == 0 && S_ISBLK (st.st_mode)))
    no_create = true;
  else if (!no_create && lstat (dstspec, &st) == 0) {
    cli_error ("%s: the target exists; use -n to write into it (its "
               "contents outside the copied data are kept)", dstspec);
    goto out;
  }
  else if (no_create && stat (dstspec, &st) == -1) {
    cli_error ("%s: %s (-n writes into an existing target)", dstspec,
               strerror (errno));
    goto out;
  }

  if (!no_create) {
    if (fmt == VD_FORMAT_ASIF && size % 512 != 0) {
      cli_error ("%s: an ASIF image must be a whole number of 512-byte "
                 "blocks, and the source is %" PRIi64 " bytes", dstspec, size);
      goto out;
    }
    if (vd_image_create (dstspec, fmt, size, 0) == -1) {
      cli_lib_error ();
      goto out;
    }
    created = true;
    co.flags |= VD_COPY_TARGET_IS_ZERO;
  }
  ndst = open_many (dstspec, &to, connections, dst);
  if (ndst == 0) {
    cli_lib_error ();
    goto out;
  }

  if (no_sparse)
    co.flags |= VD_COPY_NO_SPARSE;
  /* Over the network, latency hides only behind more requests in flight:
   * 8 per NBD connection by default (local files do best with 8 in all).
   */
  if (requests == 0 &&
      (strcmp (vd_attachment_get_format (src[0]), "nbd") == 0 ||
       strcmp (vd_attachment_get_format (dst[0]), "nbd") == 0))
    requests = 8 * (nsrc > ndst ? nsrc : ndst);
  co.requests = requests;
  co.progress = show_progress;
  co.progress_user_data = &prog;
  prog.start = now ();

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, &old_int);
  sigaction (SIGTERM, &sa, &old_term);

  if (vd_copy (src, nsrc, dst, ndst, size, &co) == -1) {
    if (prog.mode == 1)
      fputc ('\n', stderr);
    if (interrupted)
      cli_error ("interrupted");
    else
      cli_lib_error ();
    status = interrupted ? 128 + interrupted : EXIT_ERROR;
    goto out_signals;
  }
  if (prog.mode == 1)
    fputc ('\n', stderr);
  else if (prog.mode == 3) {
    char a[32], r[32];
    double el = now () - prog.start;
    fprintf (stderr, "%s: copied %s in %.1f s (%s/s)\n", program_name,
             cli_human_size (size, a, sizeof a), el,
             cli_human_size (el > 0 ? (uint64_t) (size / el) : 0, r,
                             sizeof r));
  }
  status = EXIT_OK;

 out_signals:
  sigaction (SIGINT, &old_int, NULL);
  sigaction (SIGTERM, &old_term, NULL);
 out:
  close_all (src, nsrc);
  /* Closing the target flushes it; a failure there fails the command. */
  for (size_t k = 0; k < ndst; ++k)
    if (vd_attachment_close (dst[k]) == -1 && status == EXIT_OK) {
      cli_lib_error ();
      status = EXIT_ERROR;
    }
  if (status != EXIT_OK && created) {
    if (unlink (dstspec) == 0)
      cli_error ("removed the partial target %s", dstspec);
    else
      cli_error ("could not remove the partial target %s: %s", dstspec,
                 strerror (errno));
  }
  return status;
}

const struct cli_command cmd_image_convert = {
  .name = "image convert",
  .synopsis = "[-p] [-O raw|asif] [--sparse|--no-sparse] [-n] "
              "[--connections N] SRC DST",
  .summary = "Copy any attachment into a new or existing one (RAW, ASIF, "
             "block device, NBD), sparse and in parallel",
  .options = options,
  .run = run,
};
