/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * NBD client attachment entry points.  The URI is checked here, before
 * anything else; the client itself lands with the rest of the NBD
 * client issue, and until then a well-formed URI is refused with a
 * clear message.
 */
#include "config.h"

#include <errno.h>

#include "vdisk/nbd.h"
#include "backend.h"
#include "nbd-internal.h"

struct vd_attachment *
vd_nbd_open (const char *uri, const struct vd_open_options *opts)
{
  struct vd_nbd_uri u;
  char shown[200];

  if (vd_nbd_parse_uri (uri, &u) == -1)
    return NULL;
  vd_nbd_uri_for_message (uri, shown, sizeof shown);
  if (u.tls)
    vd_error_msg (ENOTSUP, "%s: TLS is not supported yet (vdisk will not "
                  "connect without encryption to an nbds URI)", shown);
  else
    vd_error_msg (ENOTSUP, "%s: this build of vdisk has no NBD client yet",
                  shown);
  vd_nbd_uri_free (&u);
  return NULL;
}
