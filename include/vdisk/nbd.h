/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * NBD client attachments.  An NBD attachment is opened with
 * vd_attachment_open ("nbd://...", opts); see <vdisk/attachment.h> for
 * the timeout, sync mode (VD_SYNC_FULL or VD_SYNC_NONE), forced read-only
 * (VD_OPEN_READ_ONLY) and connection events.
 */
#ifndef VDISK_NBD_H
#define VDISK_NBD_H

#include <vdisk/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Check that uri is a well-formed NBD URI (NetworkBlockDevice/nbd
 * doc/uri.md): nbd, nbds, nbd+unix, nbds+unix or nbd+vsock.  Never
 * touches the network or the file system.  Returns 0, or -1 with EINVAL
 * and a message naming the problem (and, where it helps, the right form).
 */
VD_API int vd_nbd_uri_validate (const char *uri);

#ifdef __cplusplus
}
#endif

#endif /* VDISK_NBD_H */
