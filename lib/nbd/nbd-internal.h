/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Internal interfaces of the NBD client (lib/nbd/).  See
 * docs/internals/client-state-machine.md for how the pieces fit.
 */
#ifndef VD_NBD_INTERNAL_H
#define VD_NBD_INTERNAL_H

#include <stddef.h>

#include "nbd-uri.h"

/* Parse an NBD URI, raising EINVAL with "URI: problem" on error. */
int vd_nbd_parse_uri (const char *uri, struct vd_nbd_uri *u);

/* uri made safe and short enough to print in a message. */
void vd_nbd_uri_for_message (const char *uri, char *buf, size_t len);

#endif
