/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

void
vd_json_init (struct vd_json *j, FILE *fp)
{
  memset (j, 0, sizeof *j);
  j->fp = fp;
  j->pretty = true;
}

static void
indent (struct vd_json *j)
{
  if (j->pretty) {
    fputc ('\n', j->fp);
    for (int i = 0; i < j->depth; ++i)
      fputs ("  ", j->fp);
  }
}

/* Length of the valid UTF-8 sequence at p, or 0 if invalid. */
static size_t
utf8_len (const unsigned char *p)
{
  size_t n, i;
  uint32_t cp;

  if (p[0] < 0x80)
    return 1;
  else if ((p[0] & 0xe0) == 0xc0) { n = 2; cp = p[0] & 0x1f; }
  else if ((p[0] & 0xf0) == 0xe0) { n = 3; cp = p[0] & 0x0f; }
  else if ((p[0] & 0xf8) == 0xf0) { n = 4; cp = p[0] & 0x07; }
  else
    return 0;
  for (i = 1; i < n; ++i) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

void
vd_json_write_string (FILE *fp, const char *s)
{
  const unsigned char *p = (const unsigned char *) s;

  fputc ('"', fp);
  while (*p) {
    size_t n;
    switch (*p) {
    case '"': fputs ("\\\"", fp); p++; continue;
    case '\\': fputs ("\\\\", fp); p++; continue;
    case '\n': fputs ("\\n", fp); p++; continue;
    case '\r': fputs ("\\r", fp); p++; continue;
    case '\t': fputs ("\\t", fp); p++; continue;
    default: break;
    }
    if (*p < 0x20) {
      fprintf (fp, "\\u%04x", *p);
      p++;
      continue;
    }
    n = utf8_len (p);
    if (n == 0) {
      fprintf (fp, "\\u%04x", *p);  /* not UTF-8: keep the byte visible */
      p++;
      continue;
    }
    fwrite (p, 1, n, fp);
    p += n;
  }
  fputc ('"', fp);
}

static void
prefix (struct vd_json *j, const char *key)
{
  if (j->depth > 0) {
    if (j->need_comma[j->depth])
      fputc (',', j->fp);
    j->need_comma[j->depth] = true;
    indent (j);
  }
  if (key) {
    vd_json_write_string (j->fp, key);
    fputs (j->pretty ? ": " : ":", j->fp);
  }
}

static void
begin (struct vd_json *j, const char *key, char c)
{
  prefix (j, key);
  fputc (c, j->fp);
  if (j->depth + 1 < VD_JSON_MAX_DEPTH)
    j->depth++;
  j->need_comma[j->depth] = false;
}

static void
end (struct vd_json *j, char c)
{
  bool had = j->need_comma[j->depth];
  if (j->depth > 0)
    j->depth--;
  if (had)
    indent (j);
  fputc (c, j->fp);
}

void vd_json_begin_object (struct vd_json *j, const char *key) { begin (j, key, '{'); }
void vd_json_end_object (struct vd_json *j) { end (j, '}'); }
void vd_json_begin_array (struct vd_json *j, const char *key) { begin (j, key, '['); }
void vd_json_end_array (struct vd_json *j) { end (j, ']'); }

void
vd_json_string (struct vd_json *j, const char *key, const char *value)
{
  prefix (j, key);
  if (value)
    vd_json_write_string (j->fp, value);
  else
    fputs ("null", j->fp);
}

void
vd_json_uint (struct vd_json *j, const char *key, uint64_t value)
{
  prefix (j, key);
  fprintf (j->fp, "%" PRIu64, value);
}

void
vd_json_int (struct vd_json *j, const char *key, int64_t value)
{
  prefix (j, key);
  fprintf (j->fp, "%" PRIi64, value);
}

void
vd_json_double (struct vd_json *j, const char *key, double value)
{
  prefix (j, key);
  if (isfinite (value))
    fprintf (j->fp, "%.6g", value);
  else
    fputs ("null", j->fp);
}

void
vd_json_bool (struct vd_json *j, const char *key, bool value)
{
  prefix (j, key);
  fputs (value ? "true" : "false", j->fp);
}

void
vd_json_null (struct vd_json *j, const char *key)
{
  prefix (j, key);
  fputs ("null", j->fp);
}

void
vd_json_finish (struct vd_json *j)
{
  fputc ('\n', j->fp);
  fflush (j->fp);
}
