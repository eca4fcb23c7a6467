/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * NBD client attachment entry points.  The client lands with the NBD
 * client issue; until then NBD URIs are refused with a clear message.
 */
#include "config.h"

#include <errno.h>

#include "vdisk/nbd.h"
#include "backend.h"

struct vd_attachment *
vd_nbd_open (const char *uri, const struct vd_open_options *opts)
{
  vd_error_msg (ENOTSUP, "%s: this build of vdisk has no NBD client yet",
                uri);
  return NULL;
}

VD_API int
vd_nbd_uri_validate (const char *uri)
{
  vd_error_msg (ENOTSUP, "%s: this build of vdisk cannot parse NBD URIs yet",
                uri);
  return -1;
}
