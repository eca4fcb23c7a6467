/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vdisk serve [OPTIONS] [IMAGE|SPEC] [--export NAME=IMAGE[,OPT...]]...
 *
 * Serve attachments over NBD (server/server.h).  Where to listen: TCP
 * (default 127.0.0.1:10809), a unix socket, sockets passed by systemd
 * (LISTEN_FDS), or one connection on stdin/stdout.  TLS (STARTTLS, X.509
 * or PSK) with --tls; exports can be TLS-only.  SIGTERM and SIGINT
 * stop the server cleanly: no new connections, requests in flight are
 * finished and answered, images are flushed and closed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "parse.h"
#include "server.h"
#include "serve-vhost.h"

static const struct cli_option options[] = {
  { "export", 'e', required_argument, "NAME=IMAGE[,OPT...]",
    "add an export (repeatable; the first is the default)" },
  { "description", 'D', required_argument, "TEXT",
    "description of the IMAGE export" },
  { "read-only", 'r', no_argument, NULL, "serve every export read-only" },
  CLI_OPEN_OPTIONS,
  { "bind", 'b', required_argument, "ADDR",
    "TCP address to listen on (default 127.0.0.1)" },
  { "port", 'p', required_argument, "PORT",
    "TCP port (default 10809; 0 picks a free one)" },
  { "socket", 's', required_argument, "PATH", "listen on a unix socket" },
  { "stdio", 0, no_argument, NULL,
    "serve one connection on stdin/stdout" },
  { "print-uri", 0, no_argument, NULL,
    "print the NBD URI of the default export once listening" },
  { "pid-file", 0, required_argument, "PATH",
    "write the process id there once listening" },
  { "threads", 't', required_argument, "N",
    "worker threads (default 16)" },
  { "max-connections", 0, required_argument, "N",
    "refuse clients beyond N connections (default 128)" },
  { "max-request", 0, required_argument, "SIZE",
    "largest read or write accepted (default 32MiB)" },
  { "handshake-timeout", 0, required_argument, "SECONDS",
    "time a client has to finish the handshake (default 10)" },
  { "no-inline-io", 0, no_argument, NULL,
    "run every request on the worker pool" },
  { "busy-poll", 0, required_argument, "MICROSECONDS",
    "poll for a client's next request this long before sleeping "
    "(default 50, 0 = never)" },
  { "tls", 0, required_argument, "off|on|require",
    "TLS (STARTTLS): on offers it, require insists on it (default off)" },
  { "tls-certificates", 0, required_argument, "DIR",
    "X.509: DIR/server-cert.pem, server-key.pem, ca-cert.pem [ca-crl.pem]" },
  { "tls-psk", 0, required_argument, "FILE",
    "pre-shared keys, psktool's USERNAME:HEXKEY lines" },
  { "tls-verify-peer", 0, no_argument, NULL,
    "require client certificates signed by DIR/ca-cert.pem" },
  CLI_SERVE_VHOST_OPTIONS,
  { "verbose", 'v', no_argument, NULL,
    "log connections (twice: options and requests)" },
  { NULL }
};

static struct vd_server *the_server;

static void
on_signal (int sig)
{
  if (the_server)
    vd_server_stop (the_server);
}

/* --export value: NAME=IMAGE[,read-only][,tls-only][,caching=M][,sync=M]
 * [,format=F][,description=TEXT], a literal comma written ",,".
 */
struct export_spec {
  char *name;
  char *image;
  char *description;
  bool tls_only;
  struct cli_open_opts co;
};

/* Split the next comma-separated field of *p (",," is a literal comma)
 * into a new string.
 */
static char *
next_field (const char **p)
{
  const char *s = *p;
  char *out = malloc (strlen (s) + 1), *o = out;

  if (out == NULL)
    return NULL;
  while (*s) {
    if (*s == ',') {
      if (s[1] == ',') {
        *o++ = ',';
        s += 2;
        continue;
      }
      s++;
      break;
    }
    *o++ = *s++;
  }
  *o = '\0';
  *p = s;
  return out;
}

static int
parse_export (const struct cli_command *cmd, const char *arg,
              const struct cli_open_opts *defaults, struct export_spec *es)
{
  const char *eq = strchr (arg, '='), *p;
  char *field;

  memset (es, 0, sizeof *es);
  es->co = *defaults;
  if (eq == NULL) {
    cli_usage_error (cmd, "--export '%s': expected NAME=IMAGE", arg);
    return -1;
  }
  es->name = strndup (arg, eq - arg);
  p = eq + 1;
  es->image = next_field (&p);
  if (es->name == NULL || es->image == NULL) {
    cli_error ("out of memory");
    return -1;
  }
  if (*es->image == '\0') {
    cli_usage_error (cmd, "--export '%s': the image is missing", arg);
    return -1;
  }
  while (*p) {
    const char *val;
    int r;

    field = next_field (&p);
    if (field == NULL) {
      cli_error ("out of memory");
      return -1;
    }
    val = strchr (field, '=');
    if (strcmp (field, "read-only") == 0 || strcmp (field, "ro") == 0)
      r = cli_open_opts_apply (&es->co, cmd, "read-only", NULL);
    else if (strcmp (field, "tls-only") == 0) {
      es->tls_only = true;
      r = 1;
    }
    else if (val && strncmp (field, "description=", 12) == 0) {
      free (es->description);
      es->description = strdup (val + 1);
      r = es->description ? 1 : -1;
    }
    else if (val && (strncmp (field, "caching=", 8) == 0 ||
                     strncmp (field, "sync=", 5) == 0 ||
                     strncmp (field, "format=", 7) == 0)) {
      char key[16];
      snprintf (key, sizeof key, "%.*s", (int) (val - field), field);
      r = cli_open_opts_apply (&es->co, cmd, key, val + 1);
    }
    else {
      cli_usage_error (cmd, "--export '%s': unknown export option '%s' "
                       "(expected read-only, tls-only, caching=, sync=, "
                       "format= or description=)", arg, field);
      r = -1;
    }
    free (field);
    if (r != 1)
      return -1;
  }
  return 0;
}

static void
free_export_spec (struct export_spec *es)
{
  free (es->name);
  free (es->image);
  free (es->description);
}

static int
write_pid_file (const char *path)
{
  char tmp[4096], buf[32];
  int fd, n;

  snprintf (tmp, sizeof tmp, "%s.tmp%d", path, (int) getpid ());
  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd == -1) {
    cli_error ("%s: %s", tmp, strerror (errno));
    return -1;
  }
  n = snprintf (buf, sizeof buf, "%d\n", (int) getpid ());
  if (write (fd, buf, n) != n || close (fd) == -1 || rename (tmp, path) == -1) {
    cli_error ("%s: %s", path, strerror (errno));
    unlink (tmp);
    return -1;
  }
  return 0;
}

static int
run (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_open_opts co;
  struct vd_server_config cfg;
  struct export_spec *specs = NULL;
  size_t nr_specs = 0;
  const char *arg, *bind_addr = NULL, *port = NULL, *sock = NULL;
  const char *pid_file = NULL, *description = NULL;
  bool stdio = false, print_uri = false;
  int i, status = EXIT_ERROR, activated = 0;
  struct cli_serve_vhost vh = { 0 };

  cli_open_opts_init (&co);
  vd_server_config_init (&cfg);

  /* First pass: everything but --export, whose per-export options start
   * from the global ones whatever the order on the command line.
   */
  while ((i = cli_getopt (cmd, argc, argv, &arg)) != -1) {
    const char *name;
    int r;

    if (i == -2)
      return EXIT_USAGE;
    name = options[i].name;
    if (strcmp (name, "export") == 0) {
      struct export_spec *n = realloc (specs, (nr_specs + 1) * sizeof *n);
      if (n == NULL) {
        cli_error ("out of memory");
        goto out;
      }
      specs = n;
      /* Parsed below, once the global options are known. */
      memset (&specs[nr_specs], 0, sizeof specs[nr_specs]);
      specs[nr_specs].image = (char *) arg;
      nr_specs++;
      continue;
    }
    r = cli_open_opts_apply (&co, cmd, name, arg);
    if (r == 0)
      r = cli_serve_vhost_option (&vh, cmd, name, arg);
    if (r == -1) {
      status = EXIT_USAGE;
      goto out;
    }
    if (r == 1)
      continue;
    if (strcmp (name, "description") == 0)
      description = arg;
    else if (strcmp (name, "bind") == 0)
      bind_addr = arg;
    else if (strcmp (name, "port") == 0) {
      int p;
      if (vd_parse_int (arg, 0, 65535, &p) == -1) {
        status = cli_usage_error (cmd, "--port: '%s' is not a port number",
                                  arg);
        goto out;
      }
      port = arg;
    }
    else if (strcmp (name, "socket") == 0)
      sock = arg;
    else if (strcmp (name, "stdio") == 0)
      stdio = true;
    else if (strcmp (name, "print-uri") == 0)
      print_uri = true;
    else if (strcmp (name, "pid-file") == 0)
      pid_file = arg;
    else if (strcmp (name, "threads") == 0) {
      int n;
      if (vd_parse_int (arg, 1, 1024, &n) == -1) {
        status = cli_usage_error (cmd, "--threads: '%s' is not a number "
                                  "from 1 to 1024", arg);
        goto out;
      }
      cfg.threads = n;
    }
    else if (strcmp (name, "max-connections") == 0) {
      int n;
      if (vd_parse_int (arg, 1, 65536, &n) == -1) {
        status = cli_usage_error (cmd, "--max-connections: '%s' is not a "
                                  "number from 1 to 65536", arg);
        goto out;
      }
      cfg.max_connections = n;
    }
    else if (strcmp (name, "max-request") == 0) {
      uint64_t v;
      if (vd_parse_size (arg, &v) == -1 || v < 512 || v > (1u << 30)) {
        status = cli_usage_error (cmd, "--max-request: '%s' is not a size "
                                  "from 512 bytes to 1GiB", arg);
        goto out;
      }
      cfg.max_request = v;
    }
    else if (strcmp (name, "handshake-timeout") == 0) {
      double t;
      if (vd_parse_seconds (arg, &t) == -1 || t > 86400) {
        status = cli_usage_error (cmd, "--handshake-timeout: '%s' is not a "
                                  "number of seconds (0 = no limit)", arg);
        goto out;
      }
      cfg.handshake_timeout = t == 0 ? -1 : t;
    }
    else if (strcmp (name, "no-inline-io") == 0)
      cfg.inline_io = false;
    else if (strcmp (name, "busy-poll") == 0) {
      int n;
      if (vd_parse_int (arg, 0, 1000000, &n) == -1) {
        status = cli_usage_error (cmd, "--busy-poll: '%s' is not a number "
                                  "of microseconds from 0 to 1000000", arg);
        goto out;
      }
      cfg.busy_poll_us = n;
    }
    else if (strcmp (name, "tls") == 0) {
      if (strcmp (arg, "off") == 0)
        cfg.tls = VD_SERVER_TLS_OFF;
      else if (strcmp (arg, "on") == 0)
        cfg.tls = VD_SERVER_TLS_ON;
      else if (strcmp (arg, "require") == 0)
        cfg.tls = VD_SERVER_TLS_REQUIRE;
      else {
        status = cli_usage_error (cmd, "--tls: '%s' is not off, on or "
                                  "require", arg);
        goto out;
      }
    }
    else if (strcmp (name, "tls-certificates") == 0)
      cfg.tls_certificates = arg;
    else if (strcmp (name, "tls-psk") == 0)
      cfg.tls_psk_file = arg;
    else if (strcmp (name, "tls-verify-peer") == 0)
      cfg.tls_verify_peer = true;
    else if (strcmp (name, "verbose") == 0)
      cfg.verbose++;
  }

  if (cli_serve_vhost_check (&vh, cmd, argc - optind, stdio,
                             description != NULL) == -1) {
    status = EXIT_USAGE;
    goto out;
  }
  if (optind < argc - 1) {
    status = cli_usage_error (cmd, "too many arguments (use --export "
                              "NAME=IMAGE for more exports)");
    goto out;
  }
  if (optind == argc && nr_specs == 0) {
    status = cli_usage_error (cmd, "nothing to serve: give an IMAGE or "
                              "--export NAME=IMAGE");
    goto out;
  }
  if (description && optind == argc) {
    status = cli_usage_error (cmd, "--description describes the IMAGE "
                              "argument (use --export NAME=IMAGE,"
                              "description=TEXT)");
    goto out;
  }
  if (cfg.tls == VD_SERVER_TLS_OFF &&
      (cfg.tls_certificates || cfg.tls_psk_file || cfg.tls_verify_peer)) {
    status = cli_usage_error (cmd, "--tls-certificates, --tls-psk and "
                              "--tls-verify-peer need --tls=on or "
                              "--tls=require");
    goto out;
  }
  if (cfg.tls != VD_SERVER_TLS_OFF) {
    if (!vd_server_tls_available ()) {
      status = cli_usage_error (cmd, "--tls: this vdisk was built without "
                                "GnuTLS");
      goto out;
    }
    if ((cfg.tls_certificates != NULL) == (cfg.tls_psk_file != NULL)) {
      status = cli_usage_error (cmd, "--tls=%s needs one of "
                                "--tls-certificates DIR or --tls-psk FILE",
                                cfg.tls == VD_SERVER_TLS_ON ? "on"
                                : "require");
      goto out;
    }
    if (cfg.tls_verify_peer && cfg.tls_certificates == NULL) {
      status = cli_usage_error (cmd, "--tls-verify-peer needs "
                                "--tls-certificates (it checks X.509 client "
                                "certificates)");
      goto out;
    }
  }
  if (stdio && (bind_addr || port || sock || print_uri || pid_file)) {
    status = cli_usage_error (cmd, "--stdio cannot be combined with "
                              "--bind, --port, --socket, --print-uri or "
                              "--pid-file");
    goto out;
  }

  /* Now the --export options, on top of the global ones. */
  for (size_t k = 0; k < nr_specs; ++k) {
    const char *a = specs[k].image;
    if (parse_export (cmd, a, &co, &specs[k]) == -1) {
      status = EXIT_USAGE;
      goto out;
    }
    if (specs[k].tls_only && cfg.tls != VD_SERVER_TLS_ON) {
      status = cli_usage_error (cmd, "--export '%s': tls-only needs "
                                "--tls=on (with --tls=require every export "
                                "needs TLS already)", a);
      goto out;
    }
  }

  /* --vhost-user-blk: IMAGE is a vhost-user-blk disk; NBD serves only
   * the --export images, if any.
   */
  if (vh.socket) {
    if (cli_serve_vhost_start (&vh, argv[optind], &co, cfg.verbose > 0,
                               nr_specs == 0) == -1)
      goto out;
    optind++;
    if (nr_specs == 0) {
      if (pid_file && write_pid_file (pid_file) == -1)
        goto out;
      cli_serve_vhost_wait ();
      status = EXIT_OK;
      goto out;
    }
  }

  the_server = vd_server_new (&cfg);
  if (the_server == NULL) {
    cli_lib_error ();
    goto out;
  }
  if (optind == argc - 1) {
    struct vd_attachment *a = vd_attachment_open (argv[optind], &co.o);
    if (a == NULL ||
        vd_server_add_export (the_server, "", description, a) == -1) {
      cli_lib_error ();
      goto out;
    }
  }
  for (size_t k = 0; k < nr_specs; ++k) {
    struct vd_attachment *a = vd_attachment_open (specs[k].image,
                                                  &specs[k].co.o);
    if (a == NULL ||
        vd_server_add_export (the_server, specs[k].name,
                              specs[k].description, a) == -1 ||
        (specs[k].tls_only &&
         vd_server_set_export_tls_only (the_server, specs[k].name) == -1)) {
      cli_lib_error ();
      goto out;
    }
  }

  {
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset (&sa.sa_mask);
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);
  }

  if (stdio) {
    if (vd_server_serve_fds (the_server, STDIN_FILENO, STDOUT_FILENO) == -1) {
      cli_lib_error ();
      goto out;
    }
    status = EXIT_OK;
    goto out;
  }

  if (!bind_addr && !port && !sock) {
    activated = vd_server_listen_systemd (the_server);
    if (activated == -1) {
      cli_lib_error ();
      goto out;
    }
  }
  if (activated == 0) {
    if (sock && vd_server_listen_unix (the_server, sock) == -1) {
      cli_lib_error ();
      goto out;
    }
    if ((bind_addr || port || !sock) &&
        vd_server_listen_tcp (the_server, bind_addr, port) == -1) {
      cli_lib_error ();
      goto out;
    }
  }
  if (print_uri) {
    for (size_t k = 0; k < vd_server_nr_uris (the_server); ++k)
      printf ("%s\n", vd_server_uri (the_server, k));
    fflush (stdout);
  }
  if (pid_file && write_pid_file (pid_file) == -1)
    goto out;

  if (vd_server_run (the_server) == -1) {
    cli_lib_error ();
    goto out;
  }
  status = EXIT_OK;

 out:
  if (the_server) {
    struct vd_server *s = the_server;
    the_server = NULL;
    if (vd_server_free (s) == -1 && status == EXIT_OK)
      status = EXIT_ERROR;
  }
  if (cli_serve_vhost_stop (&vh) == -1 && status == EXIT_OK)
    status = EXIT_ERROR;
  if (pid_file && status != EXIT_USAGE)
    unlink (pid_file);
  for (size_t k = 0; k < nr_specs; ++k)
    if (specs[k].name)          /* parsed */
      free_export_spec (&specs[k]);
  free (specs);
  return status;
}

const struct cli_command cmd_serve = {
  .name = "serve",
  .synopsis = "[OPTIONS] [IMAGE|SPEC] [--export NAME=IMAGE[,OPT...]]...",
  .summary = "Serve images, block devices or NBD exports over NBD",
  .options = options,
  .run = run,
};
