/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 */
#include "config.h"

#include "vdisk/version.h"

VD_API const char *
vd_version (void)
{
  return PACKAGE_VERSION;
}
