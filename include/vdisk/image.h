/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Image files: create, resize, check.  Errors as in <vdisk/error.h>.
 * Every call here blocks on local file system access only.
 */
#ifndef VDISK_IMAGE_H
#define VDISK_IMAGE_H

#include <stdint.h>

#include <vdisk/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Image formats vd_image_create can write. */
enum vd_image_format {
  VD_FORMAT_RAW = 1,            /* the file is the disk, sparse */
  VD_FORMAT_ASIF = 2,           /* Apple Sparse Image Format (macOS 26) */
};

/* Largest virtual size of an ASIF image: 4 PiB minus the chunk that holds
 * the metadata (2^52 - 2^20 bytes), rounded down to 512-byte blocks.
 */
#define VD_ASIF_MAX_SIZE ((UINT64_C (1) << 52) - (UINT64_C (1) << 20))

/* vd_image_create flags. */
#define VD_CREATE_OVERWRITE (1u << 0) /* replace an existing file (default:
                                         fail with EEXIST) */

/* Create a blank image of size bytes at path.  RAW: a sparse file
 * (ftruncate); size may be anything > 0.  ASIF: the 4 MiB layout macOS's
 * `diskutil image create blank --format ASIF` writes, with fresh UUIDs;
 * size must be a non-zero multiple of 512 up to VD_ASIF_MAX_SIZE.  O(1).
 * Without VD_CREATE_OVERWRITE an existing path fails with EEXIST and is
 * not touched.  On failure no file is left behind.  0 or -1.
 */
VD_API int vd_image_create (const char *path, int format, uint64_t size,
                            uint32_t flags);

/* Format name ("raw", "asif") and the reverse (case-insensitive, -1 with
 * EINVAL for unknown names).
 */
VD_API const char *vd_image_format_name (int format);
VD_API int vd_image_format_from_name (const char *name);

/* Parse a size as diskutil does: a number with an optional unit.
 *   (none), b, B          bytes
 *   k, K, KB              10^3       KiB   2^10
 *   m, M, MB              10^6       MiB   2^20
 *   g, G, GB              10^9       GiB   2^30
 *   t, T, TB              10^12      TiB   2^40
 *   p, P, PB              10^15      PiB   2^50
 * Decimal fractions are accepted with a unit ("1.5GB") when the result is
 * a whole number of bytes.  Overflow, negative numbers, junk and empty
 * strings fail with EINVAL (ERANGE for overflow).  0 or -1.
 */
VD_API int vd_parse_size (const char *str, uint64_t *size_out);

#ifdef __cplusplus
}
#endif

#endif /* VDISK_IMAGE_H */
