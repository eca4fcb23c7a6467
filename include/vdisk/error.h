/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Error reporting for libvdisk.
 *
 * Every fallible call returns -1 (int / int64_t) or NULL (pointers) and
 * records a message and an errno value in thread-local storage.  The
 * message names the object involved (a path, an NBD URI) and the problem,
 * and is suitable to print as is after a program name:
 *
 *   if (vd_attachment_pwrite (a, buf, n, off, 0) == -1)
 *     fprintf (stderr, "vdisk: %s\n", vd_get_error ());
 */
#ifndef VDISK_ERROR_H
#define VDISK_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#ifndef VD_API
#define VD_API __attribute__ ((__visibility__ ("default")))
#endif

/* The last error message raised in this thread, or NULL if none was
 * raised yet.  Borrowed: valid until the next vd_* call in this thread.
 * Never blocks.
 */
VD_API const char *vd_get_error (void);

/* The errno value of the last error raised in this thread (0 if the error
 * had no errno, or no error was raised).  Values are chosen on purpose:
 * EROFS for writes to a read-only attachment, EINVAL for out-of-range
 * reads, ENOSPC for out-of-range writes, EOPNOTSUPP for operations the
 * attachment cannot do, EBUSY for images locked by another process, EIO
 * for I/O and format errors, ESHUTDOWN/ECONNRESET/ETIMEDOUT for NBD
 * connection failures.
 */
VD_API int vd_get_errno (void);

#ifdef __cplusplus
}
#endif

#endif /* VDISK_ERROR_H */
