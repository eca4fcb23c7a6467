/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * TLS for the NBD client: a transport (struct vd_nbd_transport_ops) that
 * wraps a connected socket transport with a GnuTLS session, plus the
 * configuration checks and the error messages.  The state machine
 * (states-handshake.c) sends NBD_OPT_STARTTLS in plaintext, calls
 * vd_nbd_tls_wrap when the server acknowledges it, drives
 * vd_nbd_tls_handshake until it is done, and then negotiates everything
 * again over the encrypted transport.
 *
 * Method:
 *   Everything is non-blocking: GnuTLS works on the socket's fd
 *   directly (GNUTLS_NONBLOCK; GNUTLS_NO_SIGNAL so a dead peer is an
 *   error, never a SIGPIPE) and returns GNUTLS_E_AGAIN where a socket
 *   would return EAGAIN; gnutls_record_get_direction says which way the
 *   handshake waits.  Its own timeout is off: the caller's poll loop
 *   bounds the handshake with the connection's deadline, like every
 *   other step of the handshake.
 *
 *   GnuTLS encrypts a record before it writes it; when the socket is
 *   full it keeps the encrypted record and returns GNUTLS_E_AGAIN, and
 *   the next gnutls_record_send writes that record whatever data it is
 *   given.  So the transport contract says: after send fails with
 *   EAGAIN, the next send starts with the same bytes (conn.c keeps that
 *   promise), and here a retry flushes the held record and reports its
 *   length.
 *
 *   Decrypted bytes can wait inside GnuTLS where poll cannot see them:
 *   pending() reports them, and the poll loops (client.c) and the
 *   dispatcher (conn.c) treat that as readable.
 *
 *   Reading: GnuTLS's own pull reads a record's 5-byte header and then
 *   its body, two system calls per record, and a server answering a
 *   batch of requests sends a record per reply.  pull() reads ahead
 *   into a buffer of ours (READAHEAD) and serves GnuTLS from it, so a
 *   batch of replies costs one recv; pending() counts those bytes too.
 *   Sending stays GnuTLS's default (a writev on the fd).
 *
 *   Credentials are loaded for each connection (a reconnection picks up
 *   renewed certificates).  X.509: tls-certificates=DIR gives
 *   DIR/ca-cert.pem (else the system trust store), DIR/client-cert.pem
 *   and DIR/client-key.pem if both exist, DIR/ca-crl.pem if it exists.
 *   PSK: the line "USER:HEXKEY" of tls-psk-file (psktool's format) for
 *   the URI's user name, else the login name.  TLS 1.2 and 1.3 only.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pwd.h>

#include "nbd-internal.h"

int
vd_nbd_tls_mode (const struct vd_nbd_uri *u)
{
  if (u->tls)
    return VD_NBD_TLS_REQUIRE;
  if (u->tls_certificates || u->tls_psk_file)
    return VD_NBD_TLS_TRY;
  return VD_NBD_TLS_OFF;
}

int
vd_nbd_tls_check_config (const struct vd_nbd_uri *u, char *msg, size_t len)
{
  int mode = vd_nbd_tls_mode (u);

  if (mode == VD_NBD_TLS_OFF)
    return 0;
#if !HAVE_GNUTLS
  snprintf (msg, len, "this vdisk was built without TLS (GnuTLS), so it "
            "cannot %s", mode == VD_NBD_TLS_REQUIRE
            ? "connect to a URI that requires TLS"
            : "use tls-certificates or tls-psk-file");
  return -1;
#else
  if (u->tls_type == VD_NBD_TLS_TYPE_ANON) {
    snprintf (msg, len, "tls-type=anon is not supported (anonymous TLS "
              "authenticates neither side); use x509 or psk");
    return -1;
  }
  if (u->tls_type == VD_NBD_TLS_TYPE_PSK && u->tls_psk_file == NULL) {
    snprintf (msg, len, "tls-type=psk needs tls-psk-file=FILE");
    return -1;
  }
  if (u->tls_type == VD_NBD_TLS_TYPE_X509 && u->tls_psk_file) {
    snprintf (msg, len, "tls-type=x509 and tls-psk-file contradict each "
              "other");
    return -1;
  }
  return 0;
#endif
}

#if HAVE_GNUTLS

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define TLS_PRIORITY_PSK TLS_PRIORITY ":+ECDHE-PSK:+DHE-PSK:+PSK"

/* The longest plaintext put in one record (TLS's maximum). */
#define RECORD_MAX 16384
/* Ciphertext read ahead of what GnuTLS asked for. */
#define READAHEAD (32u << 10)

struct tls {
  struct vd_nbd_transport inner;  /* the socket, owned */
  gnutls_session_t session;
  gnutls_certificate_credentials_t xcred;
  gnutls_psk_client_credentials_t pskcred;
  bool psk;
  char psk_user[256];           /* for messages */
  bool verify;                  /* the server's certificate is checked */
  char *hostname;               /* name checked, or NULL */
  size_t held;                  /* bytes of a record GnuTLS holds (EAGAIN) */
  unsigned char *buf;           /* gathers small iovecs into one record */
  unsigned char *ra;            /* READAHEAD bytes read from the socket */
  size_t ra_start, ra_end;      /* the part GnuTLS has not taken yet */
  char err[256];                /* the last GnuTLS error, for messages */
};

static void
set_err (struct tls *s, const char *what, int r)
{
  snprintf (s->err, sizeof s->err, "%s: %s", what, gnutls_strerror (r));
}

static ssize_t
tls_recv (void *t, void *buf, size_t len)
{
  struct tls *s = t;
  ssize_t r;

  /* GnuTLS may also answer GNUTLS_E_AGAIN after consuming a record that
   * carries no data (a TLS 1.3 KeyUpdate, an empty record) with the next
   * record already read ahead: poll would not see it, so go on while
   * anything is buffered.  Each round consumes buffered bytes.
   */
  do
    r = gnutls_record_recv (s->session, buf, len);
  while (r == GNUTLS_E_INTERRUPTED ||
         (r == GNUTLS_E_AGAIN &&
          (s->ra_start < s->ra_end ||
           gnutls_record_check_pending (s->session) > 0)));
  if (r >= 0)
    return r;
  if (r == GNUTLS_E_AGAIN) {
    errno = EAGAIN;
    return -1;
  }
  /* A server killed or closing without close_notify: an end of stream
   * like any other (the caller decides whether it was expected).
   */
  if (r == GNUTLS_E_PREMATURE_TERMINATION)
    return 0;
  if (r == GNUTLS_E_REHANDSHAKE) {
    snprintf (s->err, sizeof s->err, "the server asked for TLS "
              "renegotiation, which vdisk does not do");
    errno = EPROTO;
    return -1;
  }
  if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
    /* The server refused us after the handshake looked done: in TLS 1.3
     * a client certificate is checked only after the client's last
     * handshake message, so a missing or untrusted one shows up here.
     * Trying again would be refused again.
     */
    int alert = gnutls_alert_get (s->session);
    const char *name = gnutls_alert_get_name (alert);
    bool auth = alert == GNUTLS_A_BAD_CERTIFICATE ||
      alert == GNUTLS_A_UNSUPPORTED_CERTIFICATE ||
      alert == GNUTLS_A_CERTIFICATE_REVOKED ||
      alert == GNUTLS_A_CERTIFICATE_EXPIRED ||
      alert == GNUTLS_A_CERTIFICATE_UNKNOWN ||
      alert == GNUTLS_A_UNKNOWN_CA || alert == GNUTLS_A_ACCESS_DENIED ||
      alert == GNUTLS_A_DECRYPT_ERROR ||
      alert == GNUTLS_A_CERTIFICATE_REQUIRED ||
      alert == GNUTLS_A_UNKNOWN_PSK_IDENTITY;
    snprintf (s->err, sizeof s->err, "the server ended the TLS session "
              "with the alert '%s'%s", name ? name : "?",
              auth ? (s->psk ? " (wrong PSK or user name?)"
                      : " (it does not accept our client certificate: "
                      "check client-cert.pem in tls-certificates)") : "");
    errno = auth ? EACCES : EPROTO;
    return -1;
  }
  set_err (s, "TLS error", (int) r);
  errno = r == GNUTLS_E_PULL_ERROR ? ECONNRESET : EPROTO;
  return -1;
}

static ssize_t
tls_send (void *t, const struct iovec *iov, int iovcnt, bool more)
{
  struct tls *s = t;
  const void *data;
  size_t len = 0;
  ssize_t r;

  if (s->held > 0) {
    /* GnuTLS writes the record it holds, whatever we pass; the caller
     * offers the same bytes again (the transport contract).
     */
    do
      r = gnutls_record_send (s->session, NULL, 0);
    while (r == GNUTLS_E_INTERRUPTED);
    if (r >= 0) {
      /* r is the plaintext that record carried: what GnuTLS took, which
       * may be less than we offered (a peer's record_size_limit).
       */
      s->held = 0;
      return r;
    }
    goto error;
  }
  if (iovcnt == 1 || iov[0].iov_len >= RECORD_MAX) {
    data = iov[0].iov_base;
    len = iov[0].iov_len < RECORD_MAX ? iov[0].iov_len : RECORD_MAX;
  }
  else {
    /* Headers and small payloads: one record, not one per iovec. */
    for (int i = 0; i < iovcnt && len < RECORD_MAX; ++i) {
      size_t n = iov[i].iov_len;
      if (n > RECORD_MAX - len)
        n = RECORD_MAX - len;
      memcpy (s->buf + len, iov[i].iov_base, n);
      len += n;
    }
    data = s->buf;
  }
  do
    r = gnutls_record_send (s->session, data, len);
  while (r == GNUTLS_E_INTERRUPTED);
  if (r >= 0)
    return r;
  if (r == GNUTLS_E_AGAIN)
    s->held = len;
 error:
  if (r == GNUTLS_E_AGAIN) {
    errno = EAGAIN;
    return -1;
  }
  set_err (s, "TLS error", (int) r);
  errno = r == GNUTLS_E_PUSH_ERROR ? EPIPE : EPROTO;
  return -1;
}

static int
tls_get_fd (void *t)
{
  struct tls *s = t;

  return s->inner.ops->get_fd (s->inner.handle);
}

static bool
tls_pending (void *t)
{
  struct tls *s = t;

  return gnutls_record_check_pending (s->session) > 0 ||
    s->ra_start < s->ra_end;
}

static ssize_t
pull (gnutls_transport_ptr_t p, void *buf, size_t len)
{
  struct tls *s = p;
  size_t n;

  if (s->ra_start == s->ra_end) {
    ssize_t r = s->inner.ops->recv (s->inner.handle, s->ra, READAHEAD);
    if (r <= 0) {
      if (r == -1)
        gnutls_transport_set_errno (s->session, errno);
      return r;
    }
    s->ra_start = 0;
    s->ra_end = (size_t) r;
  }
  n = s->ra_end - s->ra_start;
  if (n > len)
    n = len;
  memcpy (buf, s->ra + s->ra_start, n);
  s->ra_start += n;
  return (ssize_t) n;
}

/* Only asked whether data is waiting; never blocks (the caller's poll
 * loop does the waiting, bounded by its deadline).
 */
static int
pull_timeout (gnutls_transport_ptr_t p, unsigned int ms)
{
  struct tls *s = p;
  struct pollfd pfd = { .fd = s->inner.ops->get_fd (s->inner.handle),
                        .events = POLLIN };
  int r;

  (void) ms;
  if (s->ra_start < s->ra_end)
    return 1;
  do
    r = poll (&pfd, 1, 0);
  while (r == -1 && errno == EINTR);
  return r;
}

static void
tls_shut_wr (void *t)
{
  struct tls *s = t;

  /* close_notify if the socket takes it now; then the socket's own
   * shutdown.  Nothing waits: the connection ends here either way.
   */
  if (s->held == 0)
    gnutls_bye (s->session, GNUTLS_SHUT_WR);
  s->inner.ops->shut_wr (s->inner.handle);
}

static const char *
tls_last_error (void *t)
{
  struct tls *s = t;

  return s->err[0] ? s->err : NULL;
}

static void
tls_free (struct tls *s)
{
  if (s->session)
    gnutls_deinit (s->session);
  if (s->xcred)
    gnutls_certificate_free_credentials (s->xcred);
  if (s->pskcred)
    gnutls_psk_free_client_credentials (s->pskcred);
  free (s->hostname);
  free (s->buf);
  free (s->ra);
  free (s);
}

static void
tls_close (void *t)
{
  struct tls *s = t;

  s->inner.ops->close (s->inner.handle);
  tls_free (s);
}

static const struct vd_nbd_transport_ops tls_ops = {
  .name = "tls",
  .recv = tls_recv,
  .send = tls_send,
  .get_fd = tls_get_fd,
  .pending = tls_pending,
  .shut_wr = tls_shut_wr,
  .close = tls_close,
  .last_error = tls_last_error,
};

static bool
file_exists (const char *path)
{
  return access (path, R_OK) == 0;
}

static int
load_x509 (struct tls *s, const struct vd_nbd_uri *u, char *msg, size_t len)
{
  const char *dir = u->tls_certificates;
  char path[VD_NBD_URI_MAX_PATH + 32], key[VD_NBD_URI_MAX_PATH + 32];
  struct stat st;
  int r;

  r = gnutls_certificate_allocate_credentials (&s->xcred);
  if (r < 0) {
    snprintf (msg, len, "TLS credentials: %s", gnutls_strerror (r));
    return -1;
  }
  if (dir && stat (dir, &st) == -1) {
    char ebuf[128];
    snprintf (msg, len, "tls-certificates: %s: %s", dir,
              strerror_r (errno, ebuf, sizeof ebuf));
    return -1;
  }
  if (dir && !S_ISDIR (st.st_mode)) {
    snprintf (msg, len, "tls-certificates: %s: not a directory", dir);
    return -1;
  }
  snprintf (path, sizeof path, "%s/ca-cert.pem", dir ? dir : "");
  if (dir && file_exists (path)) {
    r = gnutls_certificate_set_x509_trust_file (s->xcred, path,
                                                GNUTLS_X509_FMT_PEM);
    if (r < 0) {
      snprintf (msg, len, "%s: %s", path, gnutls_strerror (r));
      return -1;
    }
    if (r == 0) {
      snprintf (msg, len, "%s: no certificate in the file", path);
      return -1;
    }
  }
  else {
    r = gnutls_certificate_set_x509_system_trust (s->xcred);
    if (r < 0) {
      snprintf (msg, len, "the system's trusted certificates: %s",
                gnutls_strerror (r));
      return -1;
    }
  }
  if (dir) {
    snprintf (path, sizeof path, "%s/client-cert.pem", dir);
    snprintf (key, sizeof key, "%s/client-key.pem", dir);
    if (file_exists (path) && file_exists (key)) {
      r = gnutls_certificate_set_x509_key_file (s->xcred, path, key,
                                                GNUTLS_X509_FMT_PEM);
      if (r < 0) {
        snprintf (msg, len, "%s, %s: %s", path, key, gnutls_strerror (r));
        return -1;
      }
    }
    snprintf (path, sizeof path, "%s/ca-crl.pem", dir);
    if (file_exists (path)) {
      r = gnutls_certificate_set_x509_crl_file (s->xcred, path,
                                                GNUTLS_X509_FMT_PEM);
      if (r < 0) {
        snprintf (msg, len, "%s: %s", path, gnutls_strerror (r));
        return -1;
      }
    }
  }
  r = gnutls_credentials_set (s->session, GNUTLS_CRD_CERTIFICATE, s->xcred);
  if (r < 0) {
    snprintf (msg, len, "TLS credentials: %s", gnutls_strerror (r));
    return -1;
  }
  return 0;
}

/* The PSK user name: the URI's, else the login name (as libnbd), else
 * the name of the effective user (getlogin fails without a terminal,
 * as under systemd or in CI).
 */
static int
psk_user (const struct vd_nbd_uri *u, char *buf, size_t len)
{
  struct passwd pw, *res = NULL;
  char pbuf[1024];

  if (u->user) {
    snprintf (buf, len, "%s", u->user);
    return 0;
  }
  if (getlogin_r (buf, len) == 0 && buf[0])
    return 0;
  if (getpwuid_r (geteuid (), &pw, pbuf, sizeof pbuf, &res) == 0 && res) {
    snprintf (buf, len, "%s", pw.pw_name);
    return 0;
  }
  return -1;
}

static int
load_psk (struct tls *s, const struct vd_nbd_uri *u, char *msg, size_t len)
{
  char user[256];
  char *line = NULL;
  size_t cap = 0, ulen;
  ssize_t n;
  gnutls_datum_t key = { NULL, 0 };
  FILE *fp;
  int r;

  if (psk_user (u, user, sizeof user) == -1) {
    snprintf (msg, len, "tls-psk-file: no user name (put one in the URI: "
              "nbds://USER@host/)");
    return -1;
  }
  fp = fopen (u->tls_psk_file, "re");
  if (fp == NULL) {
    char ebuf[128];
    snprintf (msg, len, "tls-psk-file: %s: %s", u->tls_psk_file,
              strerror_r (errno, ebuf, sizeof ebuf));
    return -1;
  }
  ulen = strlen (user);
  snprintf (s->psk_user, sizeof s->psk_user, "%s", user);
  while ((n = getline (&line, &cap, fp)) != -1) {
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = '\0';
    if ((size_t) n > ulen + 1 && memcmp (line, user, ulen) == 0 &&
        line[ulen] == ':') {
      key.data = (unsigned char *) line + ulen + 1;
      key.size = (unsigned) (n - (ssize_t) ulen - 1);
      break;
    }
  }
  fclose (fp);
  if (key.data == NULL) {
    snprintf (msg, len, "tls-psk-file: %s has no key for user '%s'",
              u->tls_psk_file, user);
    free (line);
    return -1;
  }
  r = gnutls_psk_allocate_client_credentials (&s->pskcred);
  if (r >= 0)
    r = gnutls_psk_set_client_credentials (s->pskcred, user, &key,
                                           GNUTLS_PSK_KEY_HEX);
  /* The key is a secret: do not leave it in freed memory. */
  explicit_bzero (line, cap);
  free (line);
  if (r < 0) {
    snprintf (msg, len, "tls-psk-file: %s: the key for user '%s': %s",
              u->tls_psk_file, user, gnutls_strerror (r));
    return -1;
  }
  r = gnutls_credentials_set (s->session, GNUTLS_CRD_PSK, s->pskcred);
  if (r < 0) {
    snprintf (msg, len, "TLS credentials: %s", gnutls_strerror (r));
    return -1;
  }
  return 0;
}

/* A name for SNI: DNS names only, never address literals. */
static bool
is_dns_name (const char *h)
{
  bool alpha = false;

  for (const char *p = h; *p; ++p) {
    if (*p == ':')
      return false;
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
      alpha = true;
  }
  return alpha;
}

int
vd_nbd_tls_wrap (struct vd_nbd_transport *t, const struct vd_nbd_uri *u,
                 char *msg, size_t len)
{
  struct tls *s = calloc (1, sizeof *s);
  const char *name;
  int r;

  if (s == NULL || (s->buf = malloc (RECORD_MAX)) == NULL ||
      (s->ra = malloc (READAHEAD)) == NULL) {
    if (s)
      free (s->buf);
    free (s);
    snprintf (msg, len, "out of memory");
    return -1;
  }
  s->psk = u->tls_psk_file != NULL;
  r = gnutls_init (&s->session, GNUTLS_CLIENT | GNUTLS_NONBLOCK |
                   GNUTLS_NO_SIGNAL);
  if (r < 0) {
    snprintf (msg, len, "TLS: %s", gnutls_strerror (r));
    s->session = NULL;
    goto fail;
  }
  r = gnutls_priority_set_direct (s->session,
                                  s->psk ? TLS_PRIORITY_PSK : TLS_PRIORITY,
                                  NULL);
  if (r < 0) {
    snprintf (msg, len, "TLS priorities: %s", gnutls_strerror (r));
    goto fail;
  }
  if (s->psk) {
    if (load_psk (s, u, msg, len) == -1)
      goto fail;
  }
  else {
    if (load_x509 (s, u, msg, len) == -1)
      goto fail;
    /* The name checked: tls-hostname, else the URI's host; a unix
     * socket or vsock has no host, so only the chain is checked there
     * unless tls-hostname names the server (as libnbd).
     */
    name = u->tls_hostname ? u->tls_hostname : u->host;
    s->verify = u->tls_verify_peer != 0;
    if (name && (s->hostname = strdup (name)) == NULL) {
      snprintf (msg, len, "out of memory");
      goto fail;
    }
    if (name && is_dns_name (name)) {
      r = gnutls_server_name_set (s->session, GNUTLS_NAME_DNS, name,
                                  strlen (name));
      if (r < 0) {
        snprintf (msg, len, "TLS server name '%s': %s", name,
                  gnutls_strerror (r));
        goto fail;
      }
    }
    if (s->verify)
      gnutls_session_set_verify_cert (s->session, s->hostname, 0);
  }
  /* Receive through pull() (read-ahead), send with GnuTLS's default
   * writev on the fd.
   */
  gnutls_transport_set_ptr2 (s->session, s,
                             (gnutls_transport_ptr_t) (intptr_t)
                             t->ops->get_fd (t->handle));
  gnutls_transport_set_pull_function (s->session, pull);
  gnutls_transport_set_pull_timeout_function (s->session, pull_timeout);
  gnutls_handshake_set_timeout (s->session, 0);
  s->inner = *t;
  t->ops = &tls_ops;
  t->handle = s;
  return 0;

 fail:
  tls_free (s);
  return -1;
}

/* What is wrong with the server's certificate, from the verification
 * status bits, in words a user can act on.
 */
static void
cert_problem (struct tls *s, unsigned status, char *msg, size_t len)
{
  char why[256] = "";
  size_t n = 0;

#define WHY(bit, text)                                                  \
  if ((status & (bit)) && n < sizeof why)                               \
    n += snprintf (why + n, sizeof why - n, "%s%s", n ? ", " : "", text)

  if (status & GNUTLS_CERT_EXPIRED) {
    snprintf (msg, len, "the server's certificate has expired");
    return;
  }
  if (status & GNUTLS_CERT_NOT_ACTIVATED) {
    snprintf (msg, len, "the server's certificate is not valid yet "
              "(check the clocks)");
    return;
  }
  WHY (GNUTLS_CERT_SIGNER_NOT_FOUND, "signer not found");
  WHY (GNUTLS_CERT_SIGNER_NOT_CA, "signer is not a CA");
  WHY (GNUTLS_CERT_REVOKED, "revoked");
  WHY (GNUTLS_CERT_SIGNATURE_FAILURE, "bad signature");
  WHY (GNUTLS_CERT_INSECURE_ALGORITHM, "insecure algorithm");
  WHY (GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE, "signer constraints");
  WHY (GNUTLS_CERT_PURPOSE_MISMATCH, "not for TLS servers");
  WHY (GNUTLS_CERT_MISSING_OCSP_STATUS, "missing OCSP status");
  WHY (GNUTLS_CERT_INVALID_OCSP_STATUS, "invalid OCSP status");
#undef WHY
  if (n > 0) {
    snprintf (msg, len, "the server's certificate is not trusted: %s "
              "(is the CA that signed it in tls-certificates=DIR/"
              "ca-cert.pem?)", why);
    return;
  }
  if (status & GNUTLS_CERT_UNEXPECTED_OWNER) {
    snprintf (msg, len, "the server's certificate is not valid for the "
              "name '%s' (set tls-hostname= to a name it was issued for)",
              s->hostname ? s->hostname : "");
    return;
  }
  {
    gnutls_datum_t out = { NULL, 0 };
    if (gnutls_certificate_verification_status_print
        (status, GNUTLS_CRT_X509, &out, 0) == 0) {
      snprintf (msg, len, "the server's certificate was rejected: %s",
                (const char *) out.data);
      gnutls_free (out.data);
    }
    else
      snprintf (msg, len, "the server's certificate was rejected");
  }
}

int
vd_nbd_tls_handshake (struct vd_nbd_transport *t, bool *want_write,
                      int *err, bool *recoverable, char *msg, size_t len)
{
  struct tls *s = t->handle;
  int r;

  do
    r = gnutls_handshake (s->session);
  while (r == GNUTLS_E_INTERRUPTED);
  if (r == 0)
    return 1;
  if (r == GNUTLS_E_AGAIN || !gnutls_error_is_fatal (r)) {
    *want_write = gnutls_record_get_direction (s->session) == 1;
    return 0;
  }
  *recoverable = false;
  *err = EACCES;
  /* Tell the server why we hang up (best effort, never waits). */
  if (r != GNUTLS_E_PULL_ERROR && r != GNUTLS_E_PUSH_ERROR &&
      r != GNUTLS_E_PREMATURE_TERMINATION &&
      r != GNUTLS_E_FATAL_ALERT_RECEIVED)
    gnutls_alert_send_appropriate (s->session, r);
  if (r == GNUTLS_E_PREMATURE_TERMINATION && s->psk &&
      (int) gnutls_handshake_get_last_in (s->session)
      < (int) GNUTLS_HANDSHAKE_SERVER_HELLO) {
    /* A GnuTLS server that cannot use our PSK (unknown user, other
     * key: the binder does not verify) hangs up after our ClientHello
     * without an alert.  A server dying at exactly that moment looks
     * the same, but a wrong key is the likely cause, and retrying it
     * until the timeout would only hide it.
     */
    snprintf (msg, len, "TLS handshake failed: the server closed the "
              "connection after our ClientHello (wrong PSK or user name "
              "'%s'?)", s->psk_user);
    return -1;
  }
  switch (r) {
  case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
    cert_problem (s, gnutls_session_get_verify_cert_status (s->session),
                  msg, len);
    return -1;
  case GNUTLS_E_PULL_ERROR:
  case GNUTLS_E_PUSH_ERROR:
  case GNUTLS_E_PREMATURE_TERMINATION:
    /* The network, not a setting: another connection may work. */
    *recoverable = true;
    *err = ECONNRESET;
    snprintf (msg, len, "TLS handshake failed: the connection broke (%s)",
              gnutls_strerror (r));
    return -1;
  case GNUTLS_E_FATAL_ALERT_RECEIVED:
    snprintf (msg, len, "TLS handshake failed: the server sent the alert "
              "'%s'%s", gnutls_alert_get_name (gnutls_alert_get (s->session)),
              s->psk ? " (wrong PSK?)"
              : " (does the server want a client certificate, "
              "client-cert.pem in tls-certificates=DIR?)");
    return -1;
  default:
    *err = s->psk ? EACCES : EPROTO;
    snprintf (msg, len, "TLS handshake failed: %s%s", gnutls_strerror (r),
              s->psk ? " (wrong PSK?)" : "");
    return -1;
  }
}

void
vd_nbd_tls_describe (struct vd_nbd_transport *t, char *buf, size_t len)
{
  struct tls *s = t->handle;
  const char *v = gnutls_protocol_get_name
    (gnutls_protocol_get_version (s->session));

  snprintf (buf, len, "%s, %s%s", v ? v : "TLS", s->psk ? "PSK" : "X.509",
            s->psk ? "" : s->verify ? ", server verified"
            : ", server not verified");
}

#else /* !HAVE_GNUTLS */

/* vd_nbd_tls_check_config refuses every TLS URI at open, so the state
 * machine never asks for TLS; these keep a connection made some other
 * way (a test) from going on in plaintext.
 */
int
vd_nbd_tls_wrap (struct vd_nbd_transport *t, const struct vd_nbd_uri *u,
                 char *msg, size_t len)
{
  snprintf (msg, len, "this vdisk was built without TLS (GnuTLS)");
  return -1;
}

int
vd_nbd_tls_handshake (struct vd_nbd_transport *t, bool *want_write,
                      int *err, bool *recoverable, char *msg, size_t len)
{
  *err = ENOTSUP;
  *recoverable = false;
  snprintf (msg, len, "this vdisk was built without TLS (GnuTLS)");
  return -1;
}

void
vd_nbd_tls_describe (struct vd_nbd_transport *t, char *buf, size_t len)
{
  snprintf (buf, len, "none");
}

#endif
