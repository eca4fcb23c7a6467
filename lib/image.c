/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Creating image files.  The file is created with O_EXCL (unless asked
 * to overwrite), locked while it is written, made durable (fsync of the
 * file and of its directory) and removed again if anything fails, so a
 * failed create never leaves a half-written image behind.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdisk/image.h"
#include "backend.h"
#include "file/file.h"

VD_API const char *
vd_image_format_name (int format)
{
  switch (format) {
  case VD_FORMAT_RAW: return "raw";
  case VD_FORMAT_ASIF: return "asif";
  default: return "unknown";
  }
}

VD_API int
vd_image_format_from_name (const char *name)
{
  if (strcasecmp (name, "raw") == 0)
    return VD_FORMAT_RAW;
  if (strcasecmp (name, "asif") == 0)
    return VD_FORMAT_ASIF;
  vd_error_msg (EINVAL, "unknown image format '%s' (expected RAW or ASIF)",
                name);
  return -1;
}

static int
sync_parent_dir (const char *path)
{
  char *copy = strdup (path);
  int dfd, r = 0;

  if (copy == NULL)
    return 0;
  dfd = open (dirname (copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free (copy);
  if (dfd == -1)
    return 0;                   /* best effort */
  if (fsync (dfd) == -1 && errno != EINVAL)
    r = -1;
  close (dfd);
  return r;
}

VD_API int
vd_image_create (const char *path, int format, uint64_t size, uint32_t flags)
{
  int fd, oflags = O_WRONLY | O_CREAT | O_CLOEXEC;
  bool created = false;
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  struct stat st;

  if (format != VD_FORMAT_RAW && format != VD_FORMAT_ASIF) {
    vd_error_msg (EINVAL, "%s: unknown image format %d", path, format);
    return -1;
  }
  if (flags & ~VD_CREATE_OVERWRITE) {
    vd_error_msg (EINVAL, "%s: invalid create flags 0x%" PRIx32, path, flags);
    return -1;
  }
  if (size == 0) {
    vd_error_msg (EINVAL, "%s: the size must be greater than zero", path);
    return -1;
  }
  if (size > INT64_MAX) {
    vd_error_msg (EFBIG, "%s: size %" PRIu64 " is too large", path, size);
    return -1;
  }
  if (format == VD_FORMAT_ASIF) {
    if (size % 512 != 0) {
      vd_error_msg (EINVAL, "%s: an ASIF image size must be a multiple of "
                    "512 bytes (got %" PRIu64 ")", path, size);
      return -1;
    }
    if (size > VD_ASIF_MAX_SIZE) {
      vd_error_msg (EFBIG, "%s: an ASIF image can hold at most %" PRIu64
                    " bytes (just under 4 PiB); %" PRIu64 " is too large",
                    path, (uint64_t) VD_ASIF_MAX_SIZE, size);
      return -1;
    }
  }

  if (!(flags & VD_CREATE_OVERWRITE))
    oflags |= O_EXCL;
  fd = open (path, oflags, 0644);
  if (fd == -1) {
    if (errno == EEXIST)
      vd_error_msg (EEXIST, "%s: file exists (refusing to overwrite it)",
                    path);
    else
      vd_error (errno, "%s", path);
    return -1;
  }
  created = !(flags & VD_CREATE_OVERWRITE);
  if (fstat (fd, &st) == 0 && !S_ISREG (st.st_mode)) {
    vd_error_msg (EINVAL, "%s: not a regular file", path);
    goto fail;
  }
  /* Do not clobber an image that is in use. */
  if (fcntl (fd, F_OFD_SETLK, &fl) == -1 &&
      (errno == EAGAIN || errno == EACCES)) {
    char who[256];
    vd_file_describe_lock_holder_fd (fd, who, sizeof who);
    vd_error_msg (EBUSY, "%s: image is in use by %s; not overwriting it",
                  path, who);
    goto fail;
  }
  if (ftruncate (fd, 0) == -1) {
    vd_error (errno, "%s: truncating", path);
    goto fail;
  }

  if (format == VD_FORMAT_RAW) {
    if (ftruncate (fd, size) == -1) {
      vd_error (errno, "%s: setting the size to %" PRIu64, path, size);
      goto fail;
    }
  }
  else if (vd_asif_create_fd (fd, path, size) == -1)
    goto fail;

  if (fsync (fd) == -1) {
    vd_error (errno, "%s: fsync", path);
    goto fail;
  }
  if (close (fd) == -1) {
    fd = -1;
    vd_error (errno, "%s: close", path);
    goto fail;
  }
  fd = -1;
  sync_parent_dir (path);
  return 0;

 fail:
  if (fd >= 0)
    close (fd);
  if (created)
    unlink (path);
  return -1;
}
