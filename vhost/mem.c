/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Guest memory table lookups (see mem.h).  At most 8 regions: a linear
 * scan is as fast as anything cleverer and obviously right.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "errors.h"
#include "checked-overflow.h"
#include "mem.h"

int
vhost_mem_check_region (uint64_t gpa, uint64_t size, uint64_t uva,
                        uint64_t mmap_offset)
{
  uint64_t end;

  if (size == 0) {
    vd_error_msg (EINVAL, "memory region at guest address 0x%" PRIx64
                  " is empty", gpa);
    return -1;
  }
  if (ADD_OVERFLOW (gpa, size, &end) || ADD_OVERFLOW (uva, size, &end) ||
      ADD_OVERFLOW (mmap_offset, size, &end) || size > SIZE_MAX) {
    vd_error_msg (EINVAL, "memory region at guest address 0x%" PRIx64
                  " (size 0x%" PRIx64 ", mmap offset 0x%" PRIx64
                  ") wraps around", gpa, size, mmap_offset);
    return -1;
  }
  return 0;
}

uint8_t *
vhost_mem_gpa (const struct vhost_mem *m, uint64_t gpa, uint64_t len,
               uint64_t *contig)
{
  if (len == 0)
    len = 1;
  for (unsigned i = 0; i < m->nregions; ++i) {
    const struct vhost_mem_region *r = &m->regions[i];
    uint64_t off, avail;

    if (gpa < r->gpa)
      continue;
    off = gpa - r->gpa;
    if (off >= r->size)
      continue;
    avail = r->size - off;
    *contig = len < avail ? len : avail;
    return r->host + off;
  }
  return NULL;
}

uint8_t *
vhost_mem_uva (const struct vhost_mem *m, uint64_t uva, uint64_t len)
{
  if (len == 0)
    len = 1;
  for (unsigned i = 0; i < m->nregions; ++i) {
    const struct vhost_mem_region *r = &m->regions[i];
    uint64_t off;

    if (uva < r->uva)
      continue;
    off = uva - r->uva;
    if (off >= r->size || len > r->size - off)
      continue;
    return r->host + off;
  }
  return NULL;
}

int
vhost_mem_read (const struct vhost_mem *m, uint64_t gpa, void *buf,
                size_t len)
{
  uint8_t *out = buf;

  while (len > 0) {
    uint64_t n, next;
    const uint8_t *p = vhost_mem_gpa (m, gpa, len, &n);

    if (p == NULL)
      return -1;
    memcpy (out, p, n);
    out += n;
    len -= n;
    if (len > 0 && ADD_OVERFLOW (gpa, n, &next))
      return -1;
    gpa += n;
  }
  return 0;
}
