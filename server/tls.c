/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The TLS transport (GnuTLS), entered with NBD_OPT_STARTTLS.
 *
 * Credentials (X.509 or PSK) and the priority string are loaded once per
 * server by tls_creds_new, and every file is checked there, so a missing
 * key or a malformed PSK line is an error at startup naming the file,
 * not a handshake failure for each client later.  Each connection that
 * sends STARTTLS gets a session; tls_upgrade runs the handshake under the
 * same deadline as the rest of the NBD handshake and then swaps the
 * connection's transport table for tls_ops, keeping the plain table as
 * `lower`: GnuTLS reads and writes records through it, so sockets and
 * pipe pairs (--stdio) work alike and stay non-blocking.
 *
 * Threads: the connection thread receives while worker threads send
 * replies (under the connection's out_lock).  GnuTLS allows one sender
 * and one receiver on a session, except around operations that send
 * from the receive path (a TLS 1.3 KeyUpdate answer).  Rather than rely
 * on the peer never doing that, recv and send take the session's own
 * lock; both are non-blocking, so the lock is only ever held for one
 * system call.
 *
 * Sending: gnutls_record_send takes at most one record (16 KiB) per
 * call and hands it to push() at once; a 1 MiB reply would cost 64
 * system calls, more than its encryption.  So while send() encrypts,
 * push() appends the records to a buffer of ours (obuf, up to
 * TLS_OBUF_RECORDS records), and send() writes them with one call.
 * GnuTLS never sees the socket full (push always takes everything),
 * so there is no GNUTLS_E_AGAIN to resume.  A record's plaintext counts
 * as sent only when its last byte is written; until then the records
 * wait in obuf, send() reports fewer bytes, and the reply queue (out.c)
 * offers the same bytes again, from the first unreported one: send()
 * writes what obuf still holds and then counts those records, without
 * encrypting them again.  The queue's bytes before its first unsent one
 * never change, so the count is right.  Each record is gathered from
 * the iovecs (a 16-byte reply header and its data share a record), or
 * taken straight from the caller's buffer when 16 KiB are contiguous.
 *
 * Receiving: GnuTLS pulls a record's 5-byte header, then its body, each
 * with a read of exactly that size: two system calls per record.  A
 * client sends one record per request, so at queue depth 16 the plain
 * transport's single recv of a batch of requests would become 32, and
 * the connection thread would go back to poll after every request,
 * answering each alone instead of as a batch.  pull() therefore reads
 * ahead into a buffer of its own (TLS_READAHEAD) and hands GnuTLS what
 * it asks for from there; pending() counts those bytes too, so the
 * connection parses every request that has arrived before it polls.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "internal.h"
#include "errors.h"

/* TLS 1.2 and 1.3 only (the NBD spec: 1.2 is a MUST, older versions
 * SHOULD NOT be on by default).
 */
#define TLS_PRIORITY      "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define TLS_PRIORITY_PSK  TLS_PRIORITY ":+ECDHE-PSK:+DHE-PSK:+PSK"
#define TLS_RECORD_MAX    16384 /* plaintext bytes in one record */
#define TLS_READAHEAD     (32u << 10) /* ciphertext read ahead */
/* Records encrypted per send before they are written with one call, and
 * the room one record may need (plaintext + the expansion TLS allows).
 */
#define TLS_OBUF_RECORDS  8
#define TLS_RECORD_CT_MAX (TLS_RECORD_MAX + 2048 + 5)
#define TLS_OBUF_SIZE     (TLS_OBUF_RECORDS * TLS_RECORD_CT_MAX)

struct psk_key {
  char *user;
  unsigned char *key;
  size_t len;
};

struct tls_creds {
  gnutls_certificate_credentials_t x509;  /* or NULL */
  gnutls_psk_server_credentials_t psk;    /* or NULL */
  gnutls_priority_t priority;
  bool verify_peer;
  struct psk_key *keys;
  size_t nr_keys;
};

struct tls_session {
  gnutls_session_t s;
  struct conn *c;
  const struct tls_creds *creds;
  pthread_mutex_t lock;         /* recv against send */
  unsigned char *obuf;          /* TLS_OBUF_SIZE: records to write */
  size_t ob_len, ob_sent;       /* bytes in obuf, of which written */
  size_t rec_end[TLS_OBUF_RECORDS];   /* end of each record in obuf */
  size_t rec_plain[TLS_OBUF_RECORDS]; /* its plaintext bytes */
  unsigned nrec, nrec_done;     /* records in obuf, fully written */
  bool buffering;               /* push() appends to obuf */
  unsigned char *buf;           /* TLS_RECORD_MAX, for gathering */
  unsigned char *ra;            /* TLS_READAHEAD bytes read ahead */
  size_t ra_start, ra_end;      /* unread part of ra (under lock) */
  int pull_errno;               /* the error pull() last saw */
};

bool
vd_server_tls_available (void)
{
  return true;
}

/* ---- Credentials -------------------------------------------------------- */

static void
free_keys (struct tls_creds *cr)
{
  for (size_t i = 0; i < cr->nr_keys; ++i) {
    free (cr->keys[i].user);
    if (cr->keys[i].key)
      gnutls_memset (cr->keys[i].key, 0, cr->keys[i].len);
    free (cr->keys[i].key);
  }
  free (cr->keys);
  cr->keys = NULL;
  cr->nr_keys = 0;
}

void
tls_creds_free (struct tls_creds *cr)
{
  if (cr == NULL)
    return;
  if (cr->x509)
    gnutls_certificate_free_credentials (cr->x509);
  if (cr->psk)
    gnutls_psk_free_server_credentials (cr->psk);
  if (cr->priority)
    gnutls_priority_deinit (cr->priority);
  free_keys (cr);
  free (cr);
}

static int
hexval (int ch)
{
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* The psktool format: one "username:hexkey" per line.  Read it all now
 * (rather than with gnutls_psk_set_server_credentials_file, which reads
 * the file at each handshake) so that a bad file stops the server at
 * startup with the line at fault, and so that the file may go away.
 */
static int
load_psk_file (struct tls_creds *cr, const char *path)
{
  FILE *fp = fopen (path, "re");
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  unsigned lineno = 0;

  if (fp == NULL) {
    vd_error (errno, "PSK file %s", path);
    return -1;
  }
  while ((len = getline (&line, &cap, fp)) != -1) {
    struct psk_key *keys, *k;
    char *colon, *hex;
    size_t hexlen;

    lineno++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
      line[--len] = '\0';
    if (len == 0)
      continue;
    colon = strchr (line, ':');
    hex = colon ? colon + 1 : NULL;
    hexlen = hex ? strlen (hex) : 0;
    if (colon == NULL || colon == line || hexlen == 0 || hexlen % 2 ||
        hexlen / 2 > 1024) {
      vd_error_msg (EINVAL, "PSK file %s, line %u: expected "
                    "USERNAME:HEXKEY (as psktool writes)", path, lineno);
      goto fail;
    }
    keys = realloc (cr->keys, (cr->nr_keys + 1) * sizeof *keys);
    if (keys == NULL) {
      vd_error (errno, "PSK file %s", path);
      goto fail;
    }
    cr->keys = keys;
    k = &cr->keys[cr->nr_keys];
    k->user = strndup (line, colon - line);
    k->len = hexlen / 2;
    k->key = malloc (k->len);
    cr->nr_keys++;
    if (k->user == NULL || k->key == NULL) {
      vd_error (errno, "PSK file %s", path);
      goto fail;
    }
    for (size_t i = 0; i < k->len; ++i) {
      int hi = hexval (hex[2 * i]), lo = hexval (hex[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        vd_error_msg (EINVAL, "PSK file %s, line %u: the key is not "
                      "hexadecimal", path, lineno);
        goto fail;
      }
      k->key[i] = hi << 4 | lo;
    }
  }
  if (ferror (fp)) {
    vd_error (errno, "reading PSK file %s", path);
    goto fail;
  }
  if (cr->nr_keys == 0) {
    vd_error_msg (EINVAL, "PSK file %s holds no keys", path);
    goto fail;
  }
  if (line)
    gnutls_memset (line, 0, cap);
  free (line);
  fclose (fp);
  return 0;

 fail:
  if (line)
    gnutls_memset (line, 0, cap);
  free (line);
  fclose (fp);
  free_keys (cr);
  return -1;
}

/* Read DIR/NAME into d.  A missing optional file sets *present false. */
static int
read_cert_file (const char *dir, const char *name, bool optional,
                gnutls_datum_t *d, bool *present, char *path, size_t pathlen)
{
  int r;

  snprintf (path, pathlen, "%s/%s", dir, name);
  d->data = NULL;
  d->size = 0;
  if (present)
    *present = false;
  if (access (path, R_OK) == -1) {
    if (optional && errno == ENOENT)
      return 0;
    vd_error (errno, "TLS certificates: %s", path);
    return -1;
  }
  r = gnutls_load_file (path, d);
  if (r < 0) {
    vd_error_msg (EIO, "TLS certificates: %s: %s", path, gnutls_strerror (r));
    return -1;
  }
  if (present)
    *present = true;
  return 0;
}

static int
load_x509 (struct tls_creds *cr, const char *dir)
{
  gnutls_datum_t cert = { 0 }, key = { 0 }, ca = { 0 }, crl = { 0 };
  char cert_path[4096], key_path[4096], ca_path[4096], crl_path[4096];
  gnutls_x509_crt_t *crts = NULL;
  unsigned nr_crts = 0;
  gnutls_x509_privkey_t pk = NULL;
  bool have_ca, have_crl;
  int r, ret = -1;

  if (read_cert_file (dir, "server-cert.pem", false, &cert, NULL,
                      cert_path, sizeof cert_path) == -1 ||
      read_cert_file (dir, "server-key.pem", false, &key, NULL,
                      key_path, sizeof key_path) == -1 ||
      read_cert_file (dir, "ca-cert.pem", !cr->verify_peer, &ca, &have_ca,
                      ca_path, sizeof ca_path) == -1 ||
      read_cert_file (dir, "ca-crl.pem", true, &crl, &have_crl,
                      crl_path, sizeof crl_path) == -1)
    goto out;

  /* Parse each file alone first: GnuTLS's combined call cannot say which
   * of the two is at fault.
   */
  r = gnutls_x509_crt_list_import2 (&crts, &nr_crts, &cert,
                                    GNUTLS_X509_FMT_PEM, 0);
  if (r < 0 || nr_crts == 0) {
    vd_error_msg (EINVAL, "TLS certificates: %s: not a PEM certificate "
                  "(%s)", cert_path, gnutls_strerror (r));
    goto out;
  }
  if ((r = gnutls_x509_privkey_init (&pk)) < 0 ||
      (r = gnutls_x509_privkey_import2 (pk, &key, GNUTLS_X509_FMT_PEM,
                                        NULL, 0)) < 0) {
    vd_error_msg (EINVAL, "TLS certificates: %s: not a PEM private key "
                  "(%s)", key_path, gnutls_strerror (r));
    goto out;
  }
  if ((r = gnutls_certificate_allocate_credentials (&cr->x509)) < 0) {
    vd_error_msg (ENOMEM, "TLS: %s", gnutls_strerror (r));
    goto out;
  }
  r = gnutls_certificate_set_x509_key_mem2 (cr->x509, &cert, &key,
                                            GNUTLS_X509_FMT_PEM, NULL, 0);
  if (r == GNUTLS_E_CERTIFICATE_KEY_MISMATCH) {
    vd_error_msg (EINVAL, "TLS certificates: %s does not belong to %s",
                  key_path, cert_path);
    goto out;
  }
  if (r < 0) {
    vd_error_msg (EINVAL, "TLS certificates: %s with %s: %s", cert_path,
                  key_path, gnutls_strerror (r));
    goto out;
  }
  if (have_ca) {
    r = gnutls_certificate_set_x509_trust_mem (cr->x509, &ca,
                                               GNUTLS_X509_FMT_PEM);
    if (r <= 0) {
      vd_error_msg (EINVAL, "TLS certificates: %s: no PEM certificate "
                    "(%s)", ca_path, r < 0 ? gnutls_strerror (r) : "empty");
      goto out;
    }
  }
  if (have_crl) {
    r = gnutls_certificate_set_x509_crl_mem (cr->x509, &crl,
                                             GNUTLS_X509_FMT_PEM);
    if (r < 0) {
      vd_error_msg (EINVAL, "TLS certificates: %s: not a PEM CRL (%s)",
                    crl_path, gnutls_strerror (r));
      goto out;
    }
  }
  gnutls_certificate_set_known_dh_params (cr->x509, GNUTLS_SEC_PARAM_MEDIUM);
  ret = 0;

 out:
  for (unsigned i = 0; i < nr_crts; ++i)
    gnutls_x509_crt_deinit (crts[i]);
  gnutls_free (crts);
  if (pk)
    gnutls_x509_privkey_deinit (pk);
  if (key.data)
    gnutls_memset (key.data, 0, key.size);
  gnutls_free (cert.data);
  gnutls_free (key.data);
  gnutls_free (ca.data);
  gnutls_free (crl.data);
  return ret;
}

static int psk_lookup (gnutls_session_t s, const char *user,
                       gnutls_datum_t *key);

struct tls_creds *
tls_creds_new (const struct vd_server_config *cfg)
{
  struct tls_creds *cr;
  const char *prio;
  const char *errpos = NULL;
  int r;

  if ((cfg->tls_certificates != NULL) == (cfg->tls_psk_file != NULL)) {
    vd_error_msg (EINVAL, "TLS needs either a certificate directory or a "
                  "PSK file (%s)", cfg->tls_certificates ? "both given" :
                  "neither given");
    return NULL;
  }
  if (cfg->tls_verify_peer && cfg->tls_certificates == NULL) {
    vd_error_msg (EINVAL, "verifying client certificates needs X.509 "
                  "certificates, not PSK");
    return NULL;
  }
  cr = calloc (1, sizeof *cr);
  if (cr == NULL) {
    vd_error (errno, "TLS credentials");
    return NULL;
  }
  cr->verify_peer = cfg->tls_verify_peer;
  if (cfg->tls_certificates) {
    if (load_x509 (cr, cfg->tls_certificates) == -1)
      goto fail;
    prio = TLS_PRIORITY;
  }
  else {
    if (load_psk_file (cr, cfg->tls_psk_file) == -1)
      goto fail;
    if ((r = gnutls_psk_allocate_server_credentials (&cr->psk)) < 0) {
      vd_error_msg (ENOMEM, "TLS: %s", gnutls_strerror (r));
      goto fail;
    }
    gnutls_psk_set_server_credentials_function (cr->psk, psk_lookup);
    gnutls_psk_set_server_known_dh_params (cr->psk, GNUTLS_SEC_PARAM_MEDIUM);
    prio = TLS_PRIORITY_PSK;
  }
  r = gnutls_priority_init (&cr->priority, prio, &errpos);
  if (r < 0) {
    vd_error_msg (EINVAL, "TLS priority '%s': %s (at '%s')", prio,
                  gnutls_strerror (r), errpos ? errpos : "?");
    goto fail;
  }
  return cr;

 fail:
  tls_creds_free (cr);
  return NULL;
}

/* A client-supplied string made printable for a log line. */
static void
printable (const char *in, char *out, size_t outlen)
{
  size_t i;

  for (i = 0; in[i] && i + 1 < outlen; ++i)
    out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
  out[i] = '\0';
}

static int
psk_lookup (gnutls_session_t s, const char *user, gnutls_datum_t *key)
{
  struct tls_session *ts = gnutls_session_get_ptr (s);
  char name[80];

  for (size_t i = 0; i < ts->creds->nr_keys; ++i) {
    const struct psk_key *k = &ts->creds->keys[i];
    if (strcmp (k->user, user) == 0) {
      key->data = gnutls_malloc (k->len);
      if (key->data == NULL)
        return -1;
      memcpy (key->data, k->key, k->len);
      key->size = k->len;
      return 0;
    }
  }
  printable (user, name, sizeof name);
  conn_log (ts->c, "TLS: unknown PSK user '%s'", name);
  return -1;
}

/* ---- The record layer over the plain transport -------------------------- */

static ssize_t
pull (gnutls_transport_ptr_t p, void *buf, size_t len)
{
  struct tls_session *ts = p;
  struct transport *t = &ts->c->t;
  size_t n;
  ssize_t r;

  if (ts->ra_start == ts->ra_end) {
    r = t->lower->recv (t, ts->ra, TLS_READAHEAD);
    if (r <= 0) {
      if (r == -1) {
        ts->pull_errno = errno;
        gnutls_transport_set_errno (ts->s, errno);
      }
      return r;
    }
    ts->ra_start = 0;
    ts->ra_end = (size_t) r;
  }
  n = ts->ra_end - ts->ra_start;
  if (n > len)
    n = len;
  memcpy (buf, ts->ra + ts->ra_start, n);
  ts->ra_start += n;
  return (ssize_t) n;
}

static ssize_t
push (gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt)
{
  struct tls_session *ts = p;
  struct transport *t = &ts->c->t;
  ssize_t r;

  /* While tls_send encrypts, and whenever earlier records still wait in
   * obuf (order matters), records go to obuf; tls_send writes them.
   */
  if (ts->buffering || ts->ob_sent < ts->ob_len) {
    size_t total = 0;
    for (int i = 0; i < iovcnt; ++i)
      total += iov[i].iov_len;
    if (total > TLS_OBUF_SIZE - ts->ob_len) {
      /* Cannot happen: tls_send leaves room for a whole record. */
      gnutls_transport_set_errno (ts->s, ENOBUFS);
      return -1;
    }
    for (int i = 0; i < iovcnt; ++i) {
      memcpy (ts->obuf + ts->ob_len, iov[i].iov_base, iov[i].iov_len);
      ts->ob_len += iov[i].iov_len;
    }
    return (ssize_t) total;
  }
  /* giovec_t has the layout of struct iovec (GnuTLS documents it so). */
  r = t->lower->send (t, (const struct iovec *) iov, iovcnt);
  if (r == -1)
    gnutls_transport_set_errno (ts->s, errno);
  return r;
}

/* GnuTLS asks this only to learn whether data is waiting.  Never block:
 * every wait is the connection's own poll, bounded by its deadline.
 */
static int
pull_timeout (gnutls_transport_ptr_t p, unsigned int ms)
{
  struct tls_session *ts = p;
  struct pollfd pfd = { .fd = ts->c->t.fd_in, .events = POLLIN };
  int r;

  if (ts->ra_start < ts->ra_end)
    return 1;
  do
    r = poll (&pfd, 1, 0);
  while (r == -1 && errno == EINTR);
  return r;
}

static ssize_t
tls_recv (struct transport *t, void *buf, size_t len)
{
  struct tls_session *ts = t->tls;
  ssize_t r;

  /* GnuTLS also answers GNUTLS_E_AGAIN after a record that carries no
   * data (a TLS 1.3 KeyUpdate, an empty record) even when the next one
   * is already read ahead, where poll cannot see it: go on while
   * anything is buffered (each round consumes some of it).
   */
  pthread_mutex_lock (&ts->lock);
  do
    r = gnutls_record_recv (ts->s, buf, len);
  while (r == GNUTLS_E_INTERRUPTED ||
         (r == GNUTLS_E_AGAIN &&
          (ts->ra_start < ts->ra_end ||
           gnutls_record_check_pending (ts->s) > 0)));
  pthread_mutex_unlock (&ts->lock);
  if (r >= 0)
    return r;
  switch (r) {
  case GNUTLS_E_AGAIN:
    errno = EAGAIN;
    return -1;
  case GNUTLS_E_PREMATURE_TERMINATION:
    /* The client closed the socket without a close_notify alert; NBD's
     * own framing tells whether anything was cut short.
     */
    return 0;
  case GNUTLS_E_PULL_ERROR:
    /* The socket's own error (a reset, usually): the caller logs it as
     * it would for a plain connection.
     */
    errno = ts->pull_errno ? ts->pull_errno : ECONNRESET;
    return -1;
  case GNUTLS_E_REHANDSHAKE:
    conn_log (ts->c, "TLS: the client asked for a renegotiation "
              "(not supported): disconnecting");
    break;
  default:
    conn_log (ts->c, "TLS: receiving: %s", gnutls_strerror ((int) r));
    break;
  }
  errno = EPROTO;
  return -1;
}

/* Up to max bytes of the iovecs after the first skip, as one piece: a
 * pointer into the caller's iovec when that many bytes are contiguous
 * there (large reply data: no copy), else a copy gathered into buf.
 */
static size_t
gather (const struct iovec *iov, int iovcnt, size_t skip, unsigned char *buf,
        size_t max, const void **data)
{
  size_t n = 0;

  *data = buf;
  for (int i = 0; i < iovcnt && n < max; ++i) {
    size_t l = iov[i].iov_len, take;
    if (skip >= l) {
      skip -= l;
      continue;
    }
    if (n == 0 && l - skip >= max) {
      *data = (const char *) iov[i].iov_base + skip;
      return max;
    }
    take = l - skip < max - n ? l - skip : max - n;
    memcpy (buf + n, (const char *) iov[i].iov_base + skip, take);
    n += take;
    skip = 0;
  }
  return n;
}

/* Write what obuf holds; count the records now wholly written into
 * *total.  0, or -1 with errno on a socket error (EAGAIN is not one).
 */
static int
flush_obuf (struct tls_session *ts, size_t *total)
{
  struct transport *t = &ts->c->t;

  while (ts->ob_sent < ts->ob_len) {
    struct iovec v = { .iov_base = ts->obuf + ts->ob_sent,
                       .iov_len = ts->ob_len - ts->ob_sent };
    ssize_t r = t->lower->send (t, &v, 1);
    if (r == -1) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      return -1;
    }
    ts->ob_sent += (size_t) r;
  }
  while (ts->nrec_done < ts->nrec &&
         ts->rec_end[ts->nrec_done] <= ts->ob_sent)
    *total += ts->rec_plain[ts->nrec_done++];
  if (ts->ob_sent == ts->ob_len)
    ts->ob_len = ts->ob_sent = ts->nrec = ts->nrec_done = 0;
  return 0;
}

static ssize_t
tls_send (struct transport *t, const struct iovec *iov, int iovcnt)
{
  struct tls_session *ts = t->tls;
  size_t total = 0;
  ssize_t r = 0;

  pthread_mutex_lock (&ts->lock);
  /* Records encrypted by an earlier call: their plaintext is at the start
   * of what we are offered again, and counts as sent once written.
   */
  if (flush_obuf (ts, &total) == -1)
    goto sock_error;
  if (ts->ob_len > 0)
    goto out;                   /* the socket is full */
  for (bool first = true;
       ts->nrec < TLS_OBUF_RECORDS &&
       TLS_OBUF_SIZE - ts->ob_len >= TLS_RECORD_CT_MAX + 512;
       first = false) {
    const void *data;
    size_t n, done = 0;
    /* Let the connection thread read between records: a 1 MiB reply is
     * 64 records, and holding the lock for all of them would keep the
     * client's next requests unread until the whole reply is out.
     */
    if (!first) {
      pthread_mutex_unlock (&ts->lock);
      pthread_mutex_lock (&ts->lock);
    }
    for (unsigned i = 0; i < ts->nrec; ++i)
      done += ts->rec_plain[i];
    n = gather (iov, iovcnt, total + done, ts->buf, TLS_RECORD_MAX, &data);
    if (n == 0)
      break;
    ts->buffering = true;
    do
      r = gnutls_record_send (ts->s, data, n);
    while (r == GNUTLS_E_INTERRUPTED);
    ts->buffering = false;
    if (r < 0)
      goto error;               /* push() never says EAGAIN here */
    ts->rec_end[ts->nrec] = ts->ob_len;
    ts->rec_plain[ts->nrec] = (size_t) r;
    ts->nrec++;
  }
  /* One write for all of them (64 records make a 1 MiB reply: one
   * system call per record would cost more than the encryption).
   */
  if (flush_obuf (ts, &total) == -1)
    goto sock_error;
 out:
  pthread_mutex_unlock (&ts->lock);
  if (total == 0) {
    errno = EAGAIN;
    return -1;
  }
  return total;

 sock_error:
  pthread_mutex_unlock (&ts->lock);
  conn_debug (ts->c, 1, "TLS: sending: %m");
  errno = EPIPE;
  return -1;

 error:
  pthread_mutex_unlock (&ts->lock);
  conn_debug (ts->c, 1, "TLS: sending: %s", gnutls_strerror ((int) r));
  errno = EPIPE;
  return -1;
}

static bool
tls_pending (struct transport *t)
{
  struct tls_session *ts = t->tls;
  bool r;

  pthread_mutex_lock (&ts->lock);
  r = gnutls_record_check_pending (ts->s) > 0 || ts->ra_start < ts->ra_end;
  pthread_mutex_unlock (&ts->lock);
  return r;
}

static void
tls_shutdown (struct transport *t)
{
  /* Only the fds: this may run on another thread (a forced stop). */
  t->lower->shutdown (t);
}

static void
session_free (struct tls_session *ts)
{
  gnutls_deinit (ts->s);
  pthread_mutex_destroy (&ts->lock);
  free (ts->buf);
  free (ts->ra);
  free (ts->obuf);
  free (ts);
}

static void
tls_close (struct transport *t)
{
  struct tls_session *ts = t->tls;

  /* One non-blocking try at close_notify: a client that does not read
   * any more must not hold the thread.
   */
  {
    size_t ignored = 0;
    if (flush_obuf (ts, &ignored) == 0 && ts->ob_len == 0)
      gnutls_bye (ts->s, GNUTLS_SHUT_WR);
  }
  session_free (ts);
  t->tls = NULL;
  t->ops = t->lower;
  t->ops->close (t);
}

static const struct transport_ops tls_ops = {
  .name = "tls",
  .recv = tls_recv,
  .send = tls_send,
  .pending = tls_pending,
  .shutdown = tls_shutdown,
  .close = tls_close,
};

/* ---- The handshake ------------------------------------------------------ */

static void
log_peer (struct conn *c, struct tls_session *ts)
{
  const char *ver = gnutls_protocol_get_name (gnutls_protocol_get_version
                                              (ts->s));
  const char *cipher = gnutls_cipher_get_name (gnutls_cipher_get (ts->s));
  char who[300] = "";

  if (c->s->cfg.verbose < 1)
    return;
  if (ts->creds->psk) {
    const char *u = gnutls_psk_server_get_username (ts->s);
    char name[80];
    printable (u ? u : "", name, sizeof name);
    snprintf (who, sizeof who, ", PSK user '%s'", name);
  }
  else if (ts->creds->verify_peer) {
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers (ts->s, &n);
    gnutls_x509_crt_t crt;
    gnutls_datum_t dn = { 0 };
    if (n > 0 && gnutls_x509_crt_init (&crt) == 0) {
      if (gnutls_x509_crt_import (crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
          gnutls_x509_crt_get_dn3 (crt, &dn, 0) == 0) {
        char name[240];
        printable ((const char *) dn.data, name, sizeof name);
        snprintf (who, sizeof who, ", client certificate '%s'", name);
        gnutls_free (dn.data);
      }
      gnutls_x509_crt_deinit (crt);
    }
  }
  conn_log (c, "TLS: %s, %s%s", ver ? ver : "?", cipher ? cipher : "?", who);
}

static int
verify_client (struct conn *c, struct tls_session *ts)
{
  unsigned status = 0;
  gnutls_datum_t out = { 0 };
  int r = gnutls_certificate_verify_peers3 (ts->s, NULL, &status);

  if (r < 0) {
    conn_log (c, "TLS: verifying the client certificate: %s: "
              "disconnecting", gnutls_strerror (r));
    return -1;
  }
  if (status == 0)
    return 0;
  if (gnutls_certificate_verification_status_print (status, GNUTLS_CRT_X509,
                                                    &out, 0) == 0) {
    conn_log (c, "TLS: client certificate rejected: %s: disconnecting",
              (const char *) out.data);
    gnutls_free (out.data);
  }
  else
    conn_log (c, "TLS: client certificate rejected (status 0x%x): "
              "disconnecting", status);
  return -1;
}

int
tls_upgrade (struct conn *c, double deadline)
{
  const struct tls_creds *cr = c->s->tls;
  struct tls_session *ts = calloc (1, sizeof *ts);
  int r;

  if (ts == NULL || (ts->buf = malloc (TLS_RECORD_MAX)) == NULL ||
      (ts->ra = malloc (TLS_READAHEAD)) == NULL ||
      (ts->obuf = malloc (TLS_OBUF_SIZE)) == NULL) {
    conn_log (c, "TLS: out of memory");
    if (ts) {
      free (ts->buf);
      free (ts->ra);
    }
    free (ts);
    return -1;
  }
  ts->c = c;
  ts->creds = cr;
  pthread_mutex_init (&ts->lock, NULL);
  r = gnutls_init (&ts->s, GNUTLS_SERVER | GNUTLS_NONBLOCK |
                   GNUTLS_NO_SIGNAL | GNUTLS_NO_TICKETS);
  if (r < 0) {
    conn_log (c, "TLS: %s", gnutls_strerror (r));
    pthread_mutex_destroy (&ts->lock);
    free (ts->buf);
    free (ts->ra);
    free (ts->obuf);
    free (ts);
    return -1;
  }
  if ((r = gnutls_priority_set (ts->s, cr->priority)) < 0 ||
      (r = cr->x509
       ? gnutls_credentials_set (ts->s, GNUTLS_CRD_CERTIFICATE, cr->x509)
       : gnutls_credentials_set (ts->s, GNUTLS_CRD_PSK, cr->psk)) < 0) {
    conn_log (c, "TLS: setting up the session: %s", gnutls_strerror (r));
    session_free (ts);
    return -1;
  }
  if (cr->x509 && cr->verify_peer) {
    gnutls_certificate_server_set_request (ts->s, GNUTLS_CERT_REQUIRE);
    /* Check the client's certificate inside the handshake, so the client
     * learns of a refusal from its handshake (TLS 1.2) or the alert that
     * follows it (1.3), not from a connection that closes later.
     */
    gnutls_session_set_verify_cert (ts->s, NULL, 0);
  }
  gnutls_session_set_ptr (ts->s, ts);
  gnutls_transport_set_ptr (ts->s, ts);
  gnutls_transport_set_pull_function (ts->s, pull);
  gnutls_transport_set_pull_timeout_function (ts->s, pull_timeout);
  gnutls_transport_set_vec_push_function (ts->s, push);
  /* pull() and push() call the plain table through t->lower. */
  c->t.lower = c->t.ops;

  for (;;) {
    r = gnutls_handshake (ts->s);
    if (r == 0)
      break;
    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
      bool out = gnutls_record_get_direction (ts->s) == 1;
      if (conn_wait (c, out ? c->t.fd_out : c->t.fd_in,
                     out ? POLLOUT : POLLIN, deadline) == -1) {
        if (errno == ETIMEDOUT)
          conn_log (c, "TLS handshake not finished within the handshake "
                    "time limit (%g seconds): disconnecting",
                    c->s->cfg.handshake_timeout);
        else if (errno != ESHUTDOWN)
          conn_log (c, "TLS handshake: %m: disconnecting");
        goto fail;
      }
      continue;
    }
    if (!gnutls_error_is_fatal (r))
      continue;                 /* a warning alert: go on */
    if (r == GNUTLS_E_FATAL_ALERT_RECEIVED)
      conn_log (c, "TLS handshake failed: the client sent the alert '%s': "
                "disconnecting",
                gnutls_alert_get_name (gnutls_alert_get (ts->s)));
    else if (r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_PULL_ERROR)
      conn_log (c, "TLS handshake failed: the client closed the "
                "connection: disconnecting");
    else if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR ||
             r == GNUTLS_E_CERTIFICATE_REQUIRED ||
             r == GNUTLS_E_NO_CERTIFICATE_FOUND) {
      unsigned status = gnutls_session_get_verify_cert_status (ts->s);
      unsigned npeers = 0;
      gnutls_datum_t out = { 0 };
      if (gnutls_certificate_get_peers (ts->s, &npeers) == NULL ||
          npeers == 0)
        conn_log (c, "TLS handshake failed: the client sent no certificate "
                  "(--tls-verify-peer requires one): disconnecting");
      else if (status != 0 &&
               gnutls_certificate_verification_status_print
               (status, GNUTLS_CRT_X509, &out, 0) == 0) {
        conn_log (c, "TLS handshake failed: client certificate rejected: "
                  "%s: disconnecting", (const char *) out.data);
        gnutls_free (out.data);
      }
      else
        conn_log (c, "TLS handshake failed: client certificate rejected: "
                  "%s: disconnecting", gnutls_strerror (r));
    }
    else
      conn_log (c, "TLS handshake failed: %s: disconnecting",
                gnutls_strerror (r));
    /* Tell the client why, if the socket takes it now. */
    gnutls_alert_send_appropriate (ts->s, r);
    goto fail;
  }
  if (cr->x509 && cr->verify_peer && verify_client (c, ts) == -1) {
    gnutls_alert_send (ts->s, GNUTLS_AL_FATAL, GNUTLS_A_BAD_CERTIFICATE);
    goto fail;
  }
  c->t.tls = ts;
  c->t.ops = &tls_ops;
  c->tls = true;
  log_peer (c, ts);
  return 0;

 fail:
  session_free (ts);
  c->t.lower = NULL;
  return -1;
}
