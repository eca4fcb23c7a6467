/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 * Rounding to powers of two (n must be a power of 2; checked by assert).
 */
#ifndef VD_ROUNDING_H
#define VD_ROUNDING_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>

static inline bool
is_power_of_2 (uint64_t v)
{
  return v && (v & (v - 1)) == 0;
}

#define ROUND_UP(i, n) ({                               \
      assert (is_power_of_2 (n));                       \
      ((i) + (n) - 1) & -((__typeof__ (i)) (n));        \
    })
#define ROUND_DOWN(i, n) ({                             \
      assert (is_power_of_2 (n));                       \
      (i) & -((__typeof__ (i)) (n));                    \
    })
#define IS_ALIGNED(i, n) ({                             \
      assert (is_power_of_2 (n));                       \
      ((i) & ((n) - 1)) == 0;                           \
    })
#define DIV_ROUND_UP(a, b) (((a) + (b) - 1) / (b))

#endif
