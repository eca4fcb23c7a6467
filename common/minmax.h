/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 * MIN/MAX that evaluate each argument once.
 */
#ifndef VD_MINMAX_H
#define VD_MINMAX_H

#undef MIN
#undef MAX
#define MIN(a, b) ({ __typeof__ (a) _a = (a); __typeof__ (b) _b = (b); \
                     _a < _b ? _a : _b; })
#define MAX(a, b) ({ __typeof__ (a) _a = (a); __typeof__ (b) _b = (b); \
                     _a > _b ? _a : _b; })

#endif
