/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Fuzz target: the NBD server's handshake and request parser, through
 * the --stdio path (vd_server_serve_fds), as nbdkit fuzzes its server
 * with -s.  The input is everything the client sends; the server's
 * replies are read and dropped.  The exports are a writable and a
 * read-only 1 MiB RAW image in unlinked temporary files.
 *
 * TLS: an input whose first byte is 'T' or 'R' is served by a server
 * with --tls=on (its "ro" export tls-only) or --tls=require, the rest of
 * the input being the client's bytes; any other input goes, whole, to a
 * server without TLS (so the older seeds keep their meaning: a real
 * client's first byte, the top of its flags, is 0).  The TLS servers
 * use a fixed test PSK, so a STARTTLS in the input leads into
 * gnutls_handshake on the fuzz bytes that follow.  (No fuzz input can
 * complete a handshake: the server's random values are never echoed.)
 *
 * Catches crashes, sanitizer reports and hangs (a connection that does
 * not end once its input is exhausted); libFuzzer's -timeout does the
 * timing, the replay test its own timeout.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vdisk/vdisk.h"
#include "server.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Indexed by mode: 0 plain, 1 --tls=on, 2 --tls=require. */
static struct vd_server *srv[3];

static struct vd_attachment *
temp_export (bool ro)
{
  const char *dir = getenv ("VD_TEST_TMPDIR");
  char path[4096], spec[32];
  struct vd_open_options o;
  struct vd_attachment *a;
  int fd;

  snprintf (path, sizeof path, "%s/fuzz-server-XXXXXX",
            dir && *dir ? dir : "/tmp");
  fd = mkstemp (path);
  if (fd == -1 || ftruncate (fd, 1 << 20) == -1) {
    perror (path);
    exit (EXIT_FAILURE);
  }
  unlink (path);
  /* A little data so reads are not all holes. */
  if (pwrite (fd, "fuzz", 4, 4096) != 4) {
    perror ("pwrite");
    exit (EXIT_FAILURE);
  }
  snprintf (spec, sizeof spec, "fd:%d", fd);
  vd_open_options_init (&o);
  o.format = "raw";
  o.flags = VD_OPEN_NO_LOCK | (ro ? VD_OPEN_READ_ONLY : 0);
  a = vd_attachment_open (spec, &o);
  close (fd);                   /* the attachment has its own copy */
  if (a == NULL) {
    fprintf (stderr, "fuzz-server: %s\n", vd_get_error ());
    exit (EXIT_FAILURE);
  }
  return a;
}

/* A PSK file for the TLS servers; read by vd_server_new, then removed. */
static void
temp_psk (char *path, size_t len)
{
  const char *dir = getenv ("VD_TEST_TMPDIR");
  static const char line[] = "fuzz:000102030405060708090a0b0c0d0e0f\n";
  int fd;

  snprintf (path, len, "%s/fuzz-server-psk-XXXXXX",
            dir && *dir ? dir : "/tmp");
  fd = mkstemp (path);
  if (fd == -1 || write (fd, line, sizeof line - 1) != sizeof line - 1) {
    perror (path);
    exit (EXIT_FAILURE);
  }
  close (fd);
}

static struct vd_server *
new_server (enum vd_server_tls tls)
{
  struct vd_server_config cfg;
  struct vd_server *s;
  char psk[4096];

  vd_server_config_init (&cfg);
  cfg.threads = 2;
  cfg.handshake_timeout = 2;
  cfg.max_request = 64 << 10;
  cfg.drain_timeout = 2;
  cfg.verbose = getenv ("FUZZ_VERBOSE") ? 2 : -1;
  cfg.tls = tls;
  if (tls != VD_SERVER_TLS_OFF) {
    temp_psk (psk, sizeof psk);
    cfg.tls_psk_file = psk;
  }
  s = vd_server_new (&cfg);
  if (tls != VD_SERVER_TLS_OFF)
    unlink (psk);
  if (s == NULL ||
      vd_server_add_export (s, "", "fuzz", temp_export (false)) == -1 ||
      vd_server_add_export (s, "ro", NULL, temp_export (true)) == -1 ||
      (tls == VD_SERVER_TLS_ON &&
       vd_server_set_export_tls_only (s, "ro") == -1)) {
    fprintf (stderr, "fuzz-server: %s\n", vd_get_error ());
    exit (EXIT_FAILURE);
  }
  return s;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  srv[0] = new_server (VD_SERVER_TLS_OFF);
  if (vd_server_tls_available ()) {
    srv[1] = new_server (VD_SERVER_TLS_ON);
    srv[2] = new_server (VD_SERVER_TLS_REQUIRE);
  }
  return 0;
}

struct feed {
  int fd;
  const uint8_t *data;
  size_t size;
};

static void *
writer (void *arg)
{
  struct feed *f = arg;
  size_t off = 0;

  while (off < f->size) {
    ssize_t r = send (f->fd, f->data + off, f->size - off, MSG_NOSIGNAL);
    if (r <= 0) {
      if (r == -1 && errno == EINTR)
        continue;
      break;                    /* the server hung up: fine */
    }
    off += r;
  }
  shutdown (f->fd, SHUT_WR);
  return NULL;
}

static void *
reader (void *arg)
{
  struct feed *f = arg;
  char buf[65536];

  while (recv (f->fd, buf, sizeof buf, 0) > 0)
    ;
  return NULL;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  int sv[2];
  pthread_t w, r;
  struct feed f;
  struct vd_server *s;

  if (srv[0] == NULL)
    LLVMFuzzerInitialize (NULL, NULL);
  s = srv[0];
  /* Without GnuTLS the TLS inputs go to the plain server, whole. */
  if (size > 0 && (data[0] == 'T' || data[0] == 'R') && srv[1]) {
    s = srv[data[0] == 'T' ? 1 : 2];
    data++;
    size--;
  }
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
    perror ("socketpair");
    exit (EXIT_FAILURE);
  }
  f = (struct feed) { .fd = sv[1], .data = data, .size = size };
  pthread_create (&w, NULL, writer, &f);
  pthread_create (&r, NULL, reader, &f);
  /* Protocol errors are expected: the return value does not matter. */
  vd_server_serve_fds (s, sv[0], sv[0]);
  /* The server is done: make sure the writer cannot block. */
  close (sv[0]);
  pthread_join (w, NULL);
  pthread_join (r, NULL);
  close (sv[1]);
  return 0;
}
