/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 * RFC 4122 UUIDs: random version 4, and the 36-character text form.
 */
#ifndef VD_UUID_H
#define VD_UUID_H

#include <stdint.h>

#define VD_UUID_STRLEN 36

/* Fill u with a random version-4 UUID (getrandom).  0 or -1 (errno). */
int vd_uuid_generate (uint8_t u[16]);

/* Lower-case text form, NUL-terminated, into out[VD_UUID_STRLEN + 1]. */
void vd_uuid_format (const uint8_t u[16], char out[VD_UUID_STRLEN + 1]);

/* Parse the 36-character form (either case).  0 or -1 (not a UUID). */
int vd_uuid_parse (const char *s, uint8_t u[16]);

#endif
