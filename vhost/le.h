/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Little-endian loads and stores at any alignment (virtio 1.x rings,
 * descriptors, requests and config space are little-endian), and
 * host-order loads for vhost-user message payloads.  Through memcpy, so
 * that unaligned access stays defined (UBSan checks) and nothing is
 * read twice: each call reads guest memory exactly once.
 */
#ifndef VD_VHOST_LE_H
#define VD_VHOST_LE_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t
load_le16 (const void *p)
{
  uint16_t v;
  memcpy (&v, p, sizeof v);
  return le16toh (v);
}

static inline uint32_t
load_le32 (const void *p)
{
  uint32_t v;
  memcpy (&v, p, sizeof v);
  return le32toh (v);
}

static inline uint64_t
load_le64 (const void *p)
{
  uint64_t v;
  memcpy (&v, p, sizeof v);
  return le64toh (v);
}

static inline void
store_le16 (void *p, uint16_t v)
{
  v = htole16 (v);
  memcpy (p, &v, sizeof v);
}

static inline void
store_le32 (void *p, uint32_t v)
{
  v = htole32 (v);
  memcpy (p, &v, sizeof v);
}

static inline void
store_le64 (void *p, uint64_t v)
{
  v = htole64 (v);
  memcpy (p, &v, sizeof v);
}

static inline uint32_t
load_ne32 (const void *p)
{
  uint32_t v;
  memcpy (&v, p, sizeof v);
  return v;
}

static inline uint64_t
load_ne64 (const void *p)
{
  uint64_t v;
  memcpy (&v, p, sizeof v);
  return v;
}

static inline void
store_ne32 (void *p, uint32_t v)
{
  memcpy (p, &v, sizeof v);
}

static inline void
store_ne64 (void *p, uint64_t v)
{
  memcpy (p, &v, sizeof v);
}

#endif
