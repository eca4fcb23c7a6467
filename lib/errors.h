/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Raising errors inside libvdisk (see docs/internals/conventions.md).
 *
 * Raise once, where the problem is found, with the errno that describes
 * it; callers above just return -1.  The message should name the object
 * (path, URI) and the problem:
 *
 *   vd_error (errno, "%s: pread at offset %" PRIu64, name, offset);
 *
 * gives "disk.img: pread at offset 512: Input/output error".  When errnum
 * is 0 no strerror text is added.  errno is preserved across the call.
 */
#ifndef VD_LIB_ERRORS_H
#define VD_LIB_ERRORS_H

#include <stdarg.h>

void vd_error (int errnum, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
void vd_verror (int errnum, const char *fmt, va_list args)
  __attribute__ ((format (printf, 2, 0)));

/* Same, but the message is used as is (no strerror suffix) while the
 * errno is still recorded: for messages that already explain the cause.
 */
void vd_error_msg (int errnum, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

/* Prefix the current message with "prefix: " keeping its errno (for a
 * layer that adds context, such as the ASIF layer naming its image).
 */
void vd_error_prefix (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));

/* Clear the thread's last error. */
void vd_error_clear (void);

/* errno of the last error (internal spelling of vd_get_errno). */
int vd_error_errno (void);

/* A warning for the user (not an error), printed on stderr as
 * "vdisk: warning: ...".
 */
void vd_warning (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

#endif
