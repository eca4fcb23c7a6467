/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * A small streaming JSON writer for --json output.  It tracks nesting and
 * commas so callers only say what to write:
 *
 *   struct vd_json j;
 *   vd_json_init (&j, stdout);
 *   vd_json_begin_object (&j, NULL);
 *   vd_json_uint (&j, "virtual-size", size);
 *   vd_json_end_object (&j);
 *   vd_json_finish (&j);     (adds the final newline)
 *
 * Strings are escaped per RFC 8259; bytes that are not valid UTF-8 are
 * written as \u00XX so the output always parses.
 */
#ifndef VD_JSON_H
#define VD_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define VD_JSON_MAX_DEPTH 32

struct vd_json {
  FILE *fp;
  int depth;
  bool need_comma[VD_JSON_MAX_DEPTH];
  bool pretty;
};

void vd_json_init (struct vd_json *j, FILE *fp);
void vd_json_begin_object (struct vd_json *j, const char *key);
void vd_json_end_object (struct vd_json *j);
void vd_json_begin_array (struct vd_json *j, const char *key);
void vd_json_end_array (struct vd_json *j);
void vd_json_string (struct vd_json *j, const char *key, const char *value);
void vd_json_uint (struct vd_json *j, const char *key, uint64_t value);
void vd_json_int (struct vd_json *j, const char *key, int64_t value);
void vd_json_double (struct vd_json *j, const char *key, double value);
void vd_json_bool (struct vd_json *j, const char *key, bool value);
void vd_json_null (struct vd_json *j, const char *key);
void vd_json_finish (struct vd_json *j);

/* Write s as a quoted JSON string. */
void vd_json_write_string (FILE *fp, const char *s);

#endif
