/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vd_attachment_open: turn a spec (path, fd:N, NBD URI) into the right
 * backend.  Image formats are detected from content ("shdw" = ASIF),
 * never from the file name, as QEMU recommends; an explicit format
 * overrides detection (format "raw" on an ASIF file exposes the container
 * bytes, like qemu-img -f raw).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdisk/attachment.h"
#include "backend.h"
#include "parse.h"

static bool
is_nbd_uri (const char *spec)
{
  /* nbd://, nbds://, nbd+unix://, nbds+unix://, nbd+vsock://, ... */
  const char *colon = strstr (spec, "://");
  return strncasecmp (spec, "nbd", 3) == 0 && colon != NULL &&
    strcspn (spec, "/") > (size_t) (colon - spec);
}

static int
check_options (const char *spec, const struct vd_open_options *o)
{
  if (o->caching_mode < VD_CACHING_AUTOMATIC ||
      o->caching_mode > VD_CACHING_CACHED) {
    vd_error_msg (EINVAL, "%s: invalid caching mode %d", spec,
                  o->caching_mode);
    return -1;
  }
  if (o->sync_mode < VD_SYNC_FULL || o->sync_mode > VD_SYNC_NONE) {
    vd_error_msg (EINVAL, "%s: invalid sync mode %d", spec, o->sync_mode);
    return -1;
  }
  if (o->format && strcmp (o->format, "raw") && strcmp (o->format, "asif") &&
      strcmp (o->format, "blockdev") && strcmp (o->format, "nbd")) {
    vd_error_msg (EINVAL, "%s: unknown format '%s' (expected raw, asif, "
                  "blockdev or nbd)", spec, o->format);
    return -1;
  }
  return 0;
}

/* Peek at the magic through the attachment itself, so detection works
 * for files, inherited fds and O_DIRECT alike.
 */
static int
has_asif_magic (struct vd_attachment *file, bool *yes)
{
  char magic[4];

  *yes = false;
  if (vd_backend_size (file) < sizeof magic)
    return 0;
  if (vd_backend_pread (file, magic, sizeof magic, 0, 0) == -1)
    return -1;
  *yes = memcmp (magic, "shdw", 4) == 0;
  return 0;
}

static struct vd_attachment *
open_file (const char *path, int fd, const struct vd_open_options *o)
{
  struct vd_attachment *file;
  bool asif;

  if (o->format && strcmp (o->format, "blockdev") == 0) {
    vd_error_msg (EINVAL, "%s: not a block device", path ? path : "fd");
    return NULL;
  }
  file = vd_raw_open (path, fd, o);
  if (file == NULL)
    return NULL;
  if (o->format && strcmp (o->format, "raw") == 0)
    return file;
  if (has_asif_magic (file, &asif) == -1) {
    vd_attachment_close (file);
    return NULL;
  }
  if (!asif) {
    if (o->format && strcmp (o->format, "asif") == 0) {
      vd_error_msg (EINVAL, "%s: not an ASIF image (no \"shdw\" magic)",
                    file->name);
      vd_attachment_close (file);
      return NULL;
    }
    return file;
  }
  return vd_asif_open (file, o);
}

static struct vd_attachment *open_spec (const char *spec,
                                        struct vd_open_options *o);

/* The events callback belongs to the attachment once it exists, and is
 * freed here when the open fails (attachment.h promises free is called
 * exactly once).
 */
VD_API struct vd_attachment *
vd_attachment_open (const char *spec, const struct vd_open_options *opts)
{
  struct vd_open_options o;
  struct vd_event_callback ev;
  struct vd_attachment *a;

  vd_open_options_resolve (opts, &o);
  ev = o.events;
  memset (&o.events, 0, sizeof o.events);
  a = open_spec (spec, &o);
  if (a == NULL) {
    if (ev.free)
      ev.free (ev.user_data);
    return NULL;
  }
  a->events = ev;
  return a;
}

static struct vd_attachment *
open_spec (const char *spec, struct vd_open_options *op)
{
  struct vd_open_options o = *op;
  struct stat st;

  if (spec == NULL || *spec == '\0') {
    vd_error_msg (EINVAL, "empty image path or URI");
    return NULL;
  }
  if (check_options (spec, &o) == -1)
    return NULL;

  if (is_nbd_uri (spec)) {
    if (o.format && strcmp (o.format, "nbd") != 0) {
      vd_error_msg (EINVAL, "%s: an NBD URI cannot be opened as %s", spec,
                    o.format);
      return NULL;
    }
    return vd_nbd_open (spec, &o);
  }
  if (o.format && strcmp (o.format, "nbd") == 0) {
    vd_error_msg (EINVAL, "%s: not an NBD URI (expected nbd://HOST/EXPORT "
                  "or nbd+unix:///EXPORT?socket=PATH)", spec);
    return NULL;
  }

  if (strncmp (spec, "fd:", 3) == 0) {
    int fd;
    if (vd_parse_int (spec + 3, 0, 1 << 30, &fd) == -1) {
      vd_error_msg (EINVAL, "%s: expected fd:N with N a file descriptor "
                    "number", spec);
      return NULL;
    }
    if (fstat (fd, &st) == -1) {
      vd_error (errno, "%s: not an open file descriptor", spec);
      return NULL;
    }
    if (S_ISBLK (st.st_mode)) {
      if (o.format && strcmp (o.format, "blockdev") != 0 &&
          strcmp (o.format, "raw") != 0) {
        vd_error_msg (EINVAL, "%s: a block device cannot be opened as %s",
                      spec, o.format);
        return NULL;
      }
      return vd_blockdev_open (NULL, fd, &o);
    }
    return open_file (NULL, fd, &o);
  }

  if (stat (spec, &st) == -1) {
    vd_error (errno, "%s", spec);
    return NULL;
  }
  if (S_ISBLK (st.st_mode)) {
    if (o.format && strcmp (o.format, "blockdev") != 0 &&
        strcmp (o.format, "raw") != 0) {
      vd_error_msg (EINVAL, "%s: a block device cannot be opened as %s",
                    spec, o.format);
      return NULL;
    }
    return vd_blockdev_open (spec, -1, &o);
  }
  if (S_ISDIR (st.st_mode)) {
    vd_error_msg (EISDIR, "%s: is a directory, not a disk image", spec);
    return NULL;
  }
  return open_file (spec, -1, &o);
}
