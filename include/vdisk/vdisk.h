/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Umbrella header for libvdisk.  See libvdisk(3).
 */
#ifndef VDISK_VDISK_H
#define VDISK_VDISK_H

#include <vdisk/error.h>
#include <vdisk/version.h>
#include <vdisk/attachment.h>
#include <vdisk/copy.h>
#include <vdisk/image.h>
#include <vdisk/nbd.h>

#endif /* VDISK_VDISK_H */
