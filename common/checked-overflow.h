/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Checked arithmetic for every size or offset that comes from a file, a
 * socket, a URI or argv.  Each returns true on overflow (and then *r is
 * unspecified), so the natural use is
 *   if (ADD_OVERFLOW (offset, count, &end)) { error; }
 */
#ifndef VD_CHECKED_OVERFLOW_H
#define VD_CHECKED_OVERFLOW_H

#define ADD_OVERFLOW(a, b, r) __builtin_add_overflow ((a), (b), (r))
#define SUB_OVERFLOW(a, b, r) __builtin_sub_overflow ((a), (b), (r))
#define MUL_OVERFLOW(a, b, r) __builtin_mul_overflow ((a), (b), (r))

#endif
