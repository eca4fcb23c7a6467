/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Test helper: print an attachment's block_status as JSON lines
 * {"start":N,"length":N,"zero":bool,"data":bool}, the shape of
 * `qemu-img map --output=json`, for comparisons with real peers.
 */
#include "config.h"

#include <inttypes.h>

#include "test.h"

static int
print (void *ud, uint64_t off, uint64_t len, uint32_t st)
{
  printf ("{\"start\":%" PRIu64 ",\"length\":%" PRIu64 ",\"zero\":%s,"
          "\"data\":%s}\n", off, len, (st & VD_STATE_ZERO) ? "true" : "false",
          (st & VD_STATE_HOLE) ? "false" : "true");
  *(uint64_t *) ud = off + len;   /* where the next call starts */
  return 0;
}

int
main (int argc, char **argv)
{
  struct vd_open_options o;
  struct vd_attachment *a;
  uint64_t pos = 0, size;

  if (argc != 2) {
    fprintf (stderr, "usage: %s SPEC\n", argv[0]);
    return 2;
  }
  vd_open_options_init (&o);
  o.flags = VD_OPEN_READ_ONLY;
  a = vd_attachment_open (argv[1], &o);
  CHECK (a != NULL);
  size = vd_attachment_get_size (a);
  while (pos < size)
    CHECK (vd_attachment_block_status (a, size - pos, pos, 0, print, &pos)
           == 0);
  CHECK (vd_attachment_close (a) == 0);
  return 0;
}
