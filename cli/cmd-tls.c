/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vdisk tls gen-certs [--hostname NAME]... [--days N] [--psk-user USER]
 *                     [--force] DIR
 *
 * A working TLS setup in one command, for tests and for users who want
 * their own small CA: DIR gets the layout that vdisk serve, nbdkit,
 * qemu-nbd, qemu and libnbd all read (ca-cert.pem, server-cert.pem,
 * server-key.pem, client-cert.pem, client-key.pem) plus the CA's key and
 * a PSK file in psktool's "user:hexkey" form.
 *
 * The certificates are made with GnuTLS's own API rather than by running
 * certtool: the result does not depend on gnutls-bin being installed,
 * nor on the template syntax of the certtool version at hand.  Keys are
 * ECDSA P-256 (fast to make, accepted by every peer in Debian 12).
 *
 * Every file is written under a temporary name and renamed into place,
 * keys with mode 0600, so an interrupted run never leaves a truncated key
 * under a real name.  Existing files are not replaced without --force.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "parse.h"

#if HAVE_GNUTLS
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#endif

#define MAX_HOSTNAMES 32

static const struct cli_option options[] = {
  { "hostname", 'n', required_argument, "NAME",
    "another name or IP address for the server certificate (repeatable; "
    "localhost, 127.0.0.1 and ::1 are always there)" },
  { "days", 0, required_argument, "N",
    "validity of the certificates in days (default 365)" },
  { "psk-user", 0, required_argument, "USER",
    "user name in keys.psk (default vdisk)" },
  { "force", 'f', no_argument, NULL, "replace files that already exist" },
  { NULL }
};

#if HAVE_GNUTLS

/* The files, in the order they are written. */
static const char *const out_files[] = {
  "ca-key.pem", "ca-cert.pem", "server-key.pem", "server-cert.pem",
  "client-key.pem", "client-cert.pem", "keys.psk",
};
#define NR_OUT_FILES (sizeof out_files / sizeof out_files[0])

struct gen {
  const char *dir;
  time_t now;
  unsigned days;
  const char *hostnames[MAX_HOSTNAMES];
  size_t nr_hostnames;
};

static int
gtls_fail (const char *what, int r)
{
  cli_error ("%s: %s", what, gnutls_strerror (r));
  return -1;
}

/* Write data to DIR/name atomically with the given mode. */
static int
write_file (const struct gen *g, const char *name, const void *data,
            size_t len, mode_t mode)
{
  char path[4096], tmp[4096 + 16];
  const char *p = data;
  int fd;

  snprintf (path, sizeof path, "%s/%s", g->dir, name);
  snprintf (tmp, sizeof tmp, "%s.tmpXXXXXX", path);
  fd = mkstemp (tmp);
  if (fd == -1) {
    cli_error ("%s: %s", path, strerror (errno));
    return -1;
  }
  if (fchmod (fd, mode) == -1)
    goto err;
  while (len > 0) {
    ssize_t w = write (fd, p, len);
    if (w == -1 && errno == EINTR)
      continue;
    if (w == -1)
      goto err;
    p += w;
    len -= (size_t) w;
  }
  if (fsync (fd) == -1 || close (fd) == -1) {
    fd = -1;
    goto err;
  }
  if (rename (tmp, path) == -1) {
    fd = -1;
    goto err;
  }
  return 0;

 err:
  cli_error ("%s: %s", path, strerror (errno));
  if (fd >= 0)
    close (fd);
  unlink (tmp);
  return -1;
}

static int
new_key (gnutls_x509_privkey_t *key)
{
  int r = gnutls_x509_privkey_init (key);

  if (r < 0)
    return gtls_fail ("private key", r);
  r = gnutls_x509_privkey_generate (*key, GNUTLS_PK_ECDSA,
                                    GNUTLS_CURVE_TO_BITS
                                    (GNUTLS_ECC_CURVE_SECP256R1), 0);
  if (r < 0) {
    gnutls_x509_privkey_deinit (*key);
    return gtls_fail ("generating an ECDSA P-256 key", r);
  }
  return 0;
}

static int
save_key (const struct gen *g, gnutls_x509_privkey_t key, const char *name)
{
  gnutls_datum_t out = { 0 };
  int r = gnutls_x509_privkey_export2 (key, GNUTLS_X509_FMT_PEM, &out);

  if (r < 0)
    return gtls_fail (name, r);
  r = write_file (g, name, out.data, out.size, 0600);
  gnutls_free (out.data);
  return r;
}

static int
save_cert (const struct gen *g, gnutls_x509_crt_t crt, const char *name)
{
  gnutls_datum_t out = { 0 };
  int r = gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &out);

  if (r < 0)
    return gtls_fail (name, r);
  r = write_file (g, name, out.data, out.size, 0644);
  gnutls_free (out.data);
  return r;
}

/* The common part of every certificate: version 3, a random positive
 * serial, the validity window, the subject's common name, its key and
 * key id.  The window starts an hour back so a peer whose clock is a
 * little behind still accepts the certificate.
 */
static int
cert_common (const struct gen *g, gnutls_x509_crt_t crt,
             gnutls_x509_privkey_t key, const char *cn)
{
  unsigned char serial[16], keyid[64];
  size_t keyid_len = sizeof keyid;
  int r;

  if ((r = gnutls_rnd (GNUTLS_RND_NONCE, serial, sizeof serial)) < 0)
    return gtls_fail ("serial number", r);
  serial[0] = (serial[0] & 0x7f) | 0x01; /* positive, no leading zero */
  if ((r = gnutls_x509_crt_set_version (crt, 3)) < 0 ||
      (r = gnutls_x509_crt_set_serial (crt, serial, sizeof serial)) < 0 ||
      (r = gnutls_x509_crt_set_activation_time (crt, g->now - 3600)) < 0 ||
      (r = gnutls_x509_crt_set_expiration_time
       (crt, g->now + (time_t) g->days * 86400)) < 0 ||
      (r = gnutls_x509_crt_set_dn_by_oid (crt, GNUTLS_OID_X520_COMMON_NAME,
                                          0, cn, strlen (cn))) < 0 ||
      (r = gnutls_x509_crt_set_key (crt, key)) < 0)
    return gtls_fail (cn, r);
  if ((r = gnutls_x509_crt_get_key_id (crt, 0, keyid, &keyid_len)) < 0 ||
      (r = gnutls_x509_crt_set_subject_key_id (crt, keyid, keyid_len)) < 0)
    return gtls_fail (cn, r);
  return 0;
}

/* Sign crt with the CA (or itself when ca is NULL) and save it. */
static int
sign_and_save (const struct gen *g, gnutls_x509_crt_t crt,
               gnutls_x509_crt_t ca, gnutls_x509_privkey_t ca_key,
               const char *name)
{
  int r;

  if (ca) {
    unsigned char keyid[64];
    size_t keyid_len = sizeof keyid;
    if ((r = gnutls_x509_crt_get_subject_key_id (ca, keyid, &keyid_len,
                                                 NULL)) < 0 ||
        (r = gnutls_x509_crt_set_authority_key_id (crt, keyid,
                                                   keyid_len)) < 0)
      return gtls_fail (name, r);
  }
  r = gnutls_x509_crt_sign2 (crt, ca ? ca : crt, ca_key, GNUTLS_DIG_SHA256,
                             0);
  if (r < 0)
    return gtls_fail (name, r);
  return save_cert (g, crt, name);
}

/* The server certificate's subject alternative names: the fixed
 * loopback names, then --hostname (an IP address when it parses as one,
 * a DNS name otherwise).
 */
static int
add_san (gnutls_x509_crt_t crt, const char *name)
{
  unsigned char ip[16];
  int r;

  if (inet_pton (AF_INET, name, ip) == 1)
    r = gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_IPADDRESS, ip,
                                              4, GNUTLS_FSAN_APPEND);
  else if (inet_pton (AF_INET6, name, ip) == 1)
    r = gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_IPADDRESS, ip,
                                              16, GNUTLS_FSAN_APPEND);
  else
    r = gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_DNSNAME, name,
                                              strlen (name),
                                              GNUTLS_FSAN_APPEND);
  if (r < 0) {
    cli_error ("server certificate: name '%s': %s", name,
               gnutls_strerror (r));
    return -1;
  }
  return 0;
}

static int
make_leaf (const struct gen *g, gnutls_x509_crt_t ca,
           gnutls_x509_privkey_t ca_key, bool server)
{
  static const char *const fixed[] = { "localhost", "127.0.0.1", "::1" };
  gnutls_x509_privkey_t key;
  gnutls_x509_crt_t crt;
  const char *key_name = server ? "server-key.pem" : "client-key.pem";
  const char *crt_name = server ? "server-cert.pem" : "client-cert.pem";
  const char *cn = server ? (g->nr_hostnames ? g->hostnames[0] : "localhost")
    : "vdisk client";
  int r = -1, e;

  if (new_key (&key) == -1)
    return -1;
  if ((e = gnutls_x509_crt_init (&crt)) < 0) {
    gnutls_x509_privkey_deinit (key);
    return gtls_fail (crt_name, e);
  }
  if (cert_common (g, crt, key, cn) == -1)
    goto out;
  if ((e = gnutls_x509_crt_set_basic_constraints (crt, 0, -1)) < 0 ||
      (e = gnutls_x509_crt_set_key_usage
       (crt, GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT)) < 0 ||
      (e = gnutls_x509_crt_set_key_purpose_oid
       (crt, server ? GNUTLS_KP_TLS_WWW_SERVER : GNUTLS_KP_TLS_WWW_CLIENT,
        0)) < 0) {
    gtls_fail (crt_name, e);
    goto out;
  }
  if (server) {
    for (size_t i = 0; i < 3; ++i)
      if (add_san (crt, fixed[i]) == -1)
        goto out;
    for (size_t i = 0; i < g->nr_hostnames; ++i)
      if (add_san (crt, g->hostnames[i]) == -1)
        goto out;
  }
  if (save_key (g, key, key_name) == -1 ||
      sign_and_save (g, crt, ca, ca_key, crt_name) == -1)
    goto out;
  r = 0;
 out:
  gnutls_x509_crt_deinit (crt);
  gnutls_x509_privkey_deinit (key);
  return r;
}

static int
make_psk (const struct gen *g, const char *user)
{
  unsigned char key[32];
  char line[4096 + 2 * sizeof key + 4];
  int n, r;

  if ((r = gnutls_rnd (GNUTLS_RND_KEY, key, sizeof key)) < 0)
    return gtls_fail ("keys.psk", r);
  n = snprintf (line, sizeof line, "%s:", user);
  for (size_t i = 0; i < sizeof key; ++i)
    n += snprintf (line + n, sizeof line - (size_t) n, "%02x", key[i]);
  line[n++] = '\n';
  r = write_file (g, "keys.psk", line, (size_t) n, 0600);
  memset (key, 0, sizeof key);
  memset (line, 0, sizeof line);
  return r;
}

static int
generate (struct gen *g, const char *psk_user)
{
  gnutls_x509_privkey_t ca_key;
  gnutls_x509_crt_t ca;
  int r = -1, e;

  if (new_key (&ca_key) == -1)
    return -1;
  if ((e = gnutls_x509_crt_init (&ca)) < 0) {
    gnutls_x509_privkey_deinit (ca_key);
    return gtls_fail ("ca-cert.pem", e);
  }
  if (cert_common (g, ca, ca_key, "vdisk test CA") == -1)
    goto out;
  if ((e = gnutls_x509_crt_set_basic_constraints (ca, 1, 0)) < 0 ||
      (e = gnutls_x509_crt_set_key_usage
       (ca, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN)) < 0) {
    gtls_fail ("ca-cert.pem", e);
    goto out;
  }
  if (save_key (g, ca_key, "ca-key.pem") == -1 ||
      sign_and_save (g, ca, NULL, ca_key, "ca-cert.pem") == -1 ||
      make_leaf (g, ca, ca_key, true) == -1 ||
      make_leaf (g, ca, ca_key, false) == -1 ||
      make_psk (g, psk_user) == -1)
    goto out;
  r = 0;
 out:
  gnutls_x509_crt_deinit (ca);
  gnutls_x509_privkey_deinit (ca_key);
  return r;
}

#endif /* HAVE_GNUTLS */

/* A PSK user name ends at the first ':' in psktool's format and is one
 * line; refuse what would make a file GnuTLS reads differently.
 */
static bool
valid_psk_user (const char *u)
{
  size_t n = strlen (u);

  if (n == 0 || n > 255)
    return false;
  for (const char *p = u; *p; ++p)
    if (*p == ':' || (unsigned char) *p < 0x21 || *p == 0x7f)
      return false;
  return true;
}

static int
run (const struct cli_command *cmd, int argc, char **argv)
{
  const char *arg, *psk_user = "vdisk", *dir;
  const char *hostnames[MAX_HOSTNAMES];
  size_t nr_hostnames = 0;
  bool force = false;
  int days = 365, i;
  struct stat st;

  while ((i = cli_getopt (cmd, argc, argv, &arg)) != -1) {
    const char *name;
    if (i == -2)
      return EXIT_USAGE;
    name = options[i].name;
    if (strcmp (name, "hostname") == 0) {
      if (arg[0] == '\0' || strlen (arg) > 253 || strpbrk (arg, " \t\n/"))
        return cli_usage_error (cmd, "--hostname: '%s' is not a host name "
                                "or IP address", arg);
      if (nr_hostnames == MAX_HOSTNAMES)
        return cli_usage_error (cmd, "--hostname: at most %d names",
                                MAX_HOSTNAMES);
      hostnames[nr_hostnames++] = arg;
    }
    else if (strcmp (name, "days") == 0) {
      if (vd_parse_int (arg, 1, 36500, &days) == -1)
        return cli_usage_error (cmd, "--days: '%s' is not a number of days "
                                "between 1 and 36500", arg);
    }
    else if (strcmp (name, "psk-user") == 0) {
      if (!valid_psk_user (arg))
        return cli_usage_error (cmd, "--psk-user: '%s' is not a valid PSK "
                                "user name (1-255 printable characters, "
                                "no ':' or spaces)", arg);
      psk_user = arg;
    }
    else if (strcmp (name, "force") == 0)
      force = true;
  }
  if (optind != argc - 1)
    return cli_usage_error (cmd, optind >= argc ? "missing DIR"
                            : "too many arguments");
  dir = argv[optind];

#if !HAVE_GNUTLS
  (void) force; (void) days; (void) st; (void) hostnames; (void) psk_user;
  (void) dir;
  cli_error ("this vdisk was built without GnuTLS: TLS is not available");
  return EXIT_ERROR;
#else
  if (stat (dir, &st) == -1) {
    if (errno != ENOENT || mkdir (dir, 0700) == -1) {
      cli_error ("%s: %s", dir, strerror (errno));
      return EXIT_ERROR;
    }
  }
  else if (!S_ISDIR (st.st_mode)) {
    cli_error ("%s: not a directory", dir);
    return EXIT_ERROR;
  }
  if (!force) {
    for (size_t f = 0; f < NR_OUT_FILES; ++f) {
      char path[4096];
      snprintf (path, sizeof path, "%s/%s", dir, out_files[f]);
      if (access (path, F_OK) == 0) {
        cli_error ("%s already exists (use --force to replace the "
                   "certificates in %s)", path, dir);
        return EXIT_ERROR;
      }
    }
  }
  {
    struct gen g = { .dir = dir, .now = time (NULL), .days = (unsigned) days,
                     .nr_hostnames = nr_hostnames };
    int r;
    memcpy (g.hostnames, hostnames, nr_hostnames * sizeof hostnames[0]);
    if ((r = gnutls_global_init ()) < 0)
      return gtls_fail ("GnuTLS", r), EXIT_ERROR;
    r = generate (&g, psk_user);
    gnutls_global_deinit ();
    if (r == -1)
      return EXIT_ERROR;
  }
  printf ("%s: CA, server and client certificates (valid %d days) and "
          "keys.psk (user %s)\n"
          "  vdisk serve --tls=require --tls-certificates %s IMAGE\n"
          "  nbdinfo 'nbds://localhost/?tls-certificates=%s'\n",
          dir, days, psk_user, dir, dir);
  return EXIT_OK;
#endif
}

const struct cli_command cmd_tls_gen_certs = {
  .name = "tls gen-certs",
  .synopsis = "[-n NAME]... [--days N] [--psk-user USER] [-f] DIR",
  .summary = "Make a test CA, server and client certificates and a PSK "
             "file for NBD over TLS",
  .options = options,
  .run = run,
};
