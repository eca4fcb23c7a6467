/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Extent accumulator for block_status.  Backends add extents in order;
 * this merges neighbours with equal states and clips to the request so
 * every backend reports the same normalised form (the contract in
 * <vdisk/attachment.h>).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "backend.h"
#include "vector.h"

struct extent {
  uint64_t offset;
  uint64_t length;
  uint32_t state;
};
DEFINE_VECTOR_TYPE (extent_vector, struct extent);

struct vd_extents {
  uint64_t start;               /* request offset */
  uint64_t end;                 /* request offset + count */
  uint64_t next;                /* next expected offset */
  bool req_one;
  struct extent_vector v;
};

struct vd_extents *
vd_extents_new (uint64_t offset, uint64_t count, uint32_t flags)
{
  struct vd_extents *e = calloc (1, sizeof *e);

  if (e == NULL) {
    vd_error (errno, "block_status: allocating extents");
    return NULL;
  }
  e->start = e->next = offset;
  e->end = offset + count;      /* validated by the caller */
  e->req_one = (flags & VD_FLAG_REQ_ONE) != 0;
  return e;
}

void
vd_extents_free (struct vd_extents *e)
{
  if (e) {
    free (e->v.ptr);
    free (e);
  }
}

uint64_t
vd_extents_next (const struct vd_extents *e)
{
  return e->next;
}

uint64_t
vd_extents_end (const struct vd_extents *e)
{
  return e->end;
}

bool
vd_extents_full (const struct vd_extents *e)
{
  return e->next >= e->end || (e->req_one && e->v.len > 0);
}

int
vd_extents_add (struct vd_extents *e, uint64_t offset, uint64_t length,
                uint32_t state)
{
  uint64_t end;

  state &= VD_STATE_HOLE | VD_STATE_ZERO;
  if (length == 0 || vd_extents_full (e))
    return 0;
  if (__builtin_add_overflow (offset, length, &end))
    end = UINT64_MAX;
  if (offset > e->next) {
    vd_error_msg (EIO, "block_status: extents are not contiguous "
                  "(expected offset %" PRIu64 ", got %" PRIu64 ")",
                  e->next, offset);
    return -1;
  }
  if (end <= e->next)           /* entirely before what we have */
    return 0;
  offset = e->next;
  if (end > e->end)
    end = e->end;
  length = end - offset;

  if (e->v.len > 0 && e->v.ptr[e->v.len - 1].state == state)
    e->v.ptr[e->v.len - 1].length += length;
  else {
    struct extent x = { .offset = offset, .length = length, .state = state };
    if (extent_vector_append (&e->v, x) == -1) {
      vd_error (errno, "block_status: allocating extents");
      return -1;
    }
  }
  e->next = end;
  return 0;
}

size_t
vd_extents_count (const struct vd_extents *e)
{
  return e->v.len;
}

void
vd_extents_get (const struct vd_extents *e, size_t i, uint64_t *offset,
                uint64_t *length, uint32_t *state)
{
  *offset = e->v.ptr[i].offset;
  *length = e->v.ptr[i].length;
  *state = e->v.ptr[i].state;
}
