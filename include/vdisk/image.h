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

/* Checking an image (vdisk image check; the model is qemu-img check).
 *
 * vd_image_check validates every structure of an ASIF image: the header,
 * both directories, every table, entry and bitmap state, every chunk
 * number (inside the file, never referenced twice) and the metadata
 * property list.  Problems are reported through fn (may be NULL), one
 * message each, as corruptions (the image may read wrong data or fail)
 * or leaks (chunks nothing refers to: wasted space, harmless).  A RAW
 * image is always clean.  The image is opened read-only unless a repair
 * flag is given (then it is locked for writing).
 *
 * Repairs never destroy data that can still be read:
 *   VD_CHECK_REPAIR_LEAKS  discard chunks that hold data past the end of
 *                          the disk, then compact the image (as
 *                          vd_image_compact) so no leaked chunk is left;
 *                          only done on an image without corruption;
 *   VD_CHECK_REPAIR_ALL    also rewrite a stale or torn inactive
 *                          directory, and turn entries that point outside
 *                          the file (unreadable anyway) into discarded
 *                          entries; with corruption left, leaked chunks
 *                          are only punched out (no space, still there).
 * Chunks referenced twice, invalid bitmap states and a damaged metadata
 * chunk are reported but never repaired.
 *
 *   VD_CHECK_FORCE_SHARE   take no image lock (qemu-img check -U), so an
 *                          image another process has open for writing can
 *                          be checked.  That process keeps metadata in
 *                          memory until it flushes, so the report is of
 *                          the file as it is now: chunks it appended but
 *                          has not published yet show as leaks, and a
 *                          write racing the check can show as corruption.
 *                          Not combinable with a repair flag (EINVAL).
 *
 * Returns 0 when the check ran to the end (res says what it found, and,
 * after repairs, what is left), or -1 when it could not (I/O error, not
 * readable as an image, unsupported ASIF variant: ENOTSUP).
 */
#define VD_CHECK_REPAIR_LEAKS (1u << 0)
#define VD_CHECK_REPAIR_ALL   (1u << 1)
#define VD_CHECK_FORCE_SHARE  (1u << 2)

enum vd_check_kind {
  VD_CHECK_CORRUPTION = 1,
  VD_CHECK_LEAK = 2,
  VD_CHECK_REPAIRED = 3,        /* a repair that was done */
};

struct vd_check_result {
  size_t struct_size;           /* sizeof (struct vd_check_result) */
  uint64_t corruptions;         /* found */
  uint64_t leaks;               /* leaked chunks found */
  uint64_t corruptions_fixed;
  uint64_t leaks_fixed;
  uint64_t corruptions_left;    /* after repairs (= found without) */
  uint64_t leaks_left;
  uint64_t allocated_chunks;    /* data chunks the disk uses */
  uint64_t total_chunks;        /* chunks in the file (0 for RAW) */
  uint64_t image_end_offset;    /* file size in bytes */
};

typedef void (*vd_check_fn) (void *user_data, int kind, const char *message);

VD_API int vd_image_check (const char *path, uint32_t flags,
                           struct vd_check_result *res, vd_check_fn fn,
                           void *user_data);

/* Change the virtual size of an image (vdisk image resize).  RAW:
 * ftruncate (any size > 0).  ASIF: a multiple of the block size up to the
 * image's maximum; shrinking discards the chunks past the new end (and
 * zeroes the tail of the last one), growing makes sure the new space
 * reads as zeros.  The image is locked for writing.  0 or -1.
 */
VD_API int vd_image_resize (const char *path, uint64_t new_size);

/* Compact an ASIF image offline (vdisk image compact): move chunks down
 * into the space of discarded and leaked chunks, rewrite every pointer,
 * and truncate the file.  Crash-safe at every step (a crash leaves either
 * the old or the new pointers, plus leaked chunks that a later compact or
 * check --repair reclaims).  bytes_freed (may be NULL) gets how much the
 * file shrank.  RAW images fail with EOPNOTSUPP.  0 or -1.
 */
VD_API int vd_image_compact (const char *path, uint64_t *bytes_freed);

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
