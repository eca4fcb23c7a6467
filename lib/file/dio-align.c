/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * O_DIRECT alignment of a regular file from statx (STATX_DIOALIGN, Linux
 * 6.1).  Kept apart from file.c because glibc 2.36's <sys/stat.h> struct
 * statx lacks the stx_dio_* fields, and <linux/stat.h> conflicts with it.
 */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/stat.h>

int vd_dio_alignment (int fd, uint32_t *mem_align, uint32_t *offset_align);

int
vd_dio_alignment (int fd, uint32_t *mem_align, uint32_t *offset_align)
{
#if HAVE_STATX_DIOALIGN
  struct statx stx;

  if (syscall (SYS_statx, fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
      (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align > 0) {
    *mem_align = stx.stx_dio_mem_align;
    *offset_align = stx.stx_dio_offset_align;
    return 0;
  }
#endif
  *mem_align = *offset_align = 0;
  return -1;
}
