/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * ASIF backend entry points.  The format lands with the ASIF issue; until
 * then images are detected and refused with a clear message.
 */
#include "config.h"

#include <errno.h>

#include "backend.h"

struct vd_attachment *
vd_asif_open (struct vd_attachment *file, const struct vd_open_options *opts)
{
  vd_error_msg (ENOTSUP, "%s: is an ASIF image, which this build of vdisk "
                "cannot open yet", file->name);
  vd_attachment_close (file);
  return NULL;
}

int
vd_asif_create_fd (int fd, const char *path, uint64_t size)
{
  vd_error_msg (ENOTSUP, "%s: this build of vdisk cannot create ASIF images "
                "yet", path);
  return -1;
}
