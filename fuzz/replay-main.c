/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Replays fuzz inputs through a target's LLVMFuzzerTestOneInput without
 * libFuzzer, so every build (gcc, sanitizers, valgrind) runs the committed
 * corpus as an ordinary test.  Arguments are files or directories.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv) __attribute__ ((weak));

static int nr_inputs;

static int
replay_file (const char *path)
{
  FILE *fp = fopen (path, "rb");
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;

  if (fp == NULL) {
    fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
    return -1;
  }
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 4096;
      uint8_t *p = realloc (buf, cap);
      if (p == NULL) {
        perror ("realloc");
        exit (EXIT_FAILURE);
      }
      buf = p;
    }
    size_t n = fread (buf + len, 1, cap - len, fp);
    if (n == 0)
      break;
    len += n;
  }
  fclose (fp);
  /* Copy into an exact-size allocation so ASan catches reads past the
   * end, as libFuzzer would.
   */
  uint8_t *exact = malloc (len ? len : 1);
  if (exact == NULL) {
    perror ("malloc");
    exit (EXIT_FAILURE);
  }
  memcpy (exact, buf, len);
  free (buf);
  LLVMFuzzerTestOneInput (exact, len);
  free (exact);
  nr_inputs++;
  return 0;
}

static int
replay (const char *path)
{
  struct stat st;
  DIR *d;
  struct dirent *e;
  int r = 0;

  if (stat (path, &st) == -1) {
    fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
    return -1;
  }
  if (!S_ISDIR (st.st_mode))
    return replay_file (path);
  d = opendir (path);
  if (d == NULL) {
    fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
    return -1;
  }
  while ((e = readdir (d)) != NULL) {
    char sub[4096];
    if (e->d_name[0] == '.')
      continue;
    snprintf (sub, sizeof sub, "%s/%s", path, e->d_name);
    if (replay (sub) == -1)
      r = -1;
  }
  closedir (d);
  return r;
}

int
main (int argc, char **argv)
{
  int r = 0;

  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize (&argc, &argv);
  for (int i = 1; i < argc; ++i)
    if (replay (argv[i]) == -1)
      r = 1;
  printf ("replayed %d inputs\n", nr_inputs);
  if (nr_inputs == 0) {
    fprintf (stderr, "replay: no inputs found: the corpus is missing\n");
    return 1;
  }
  return r;
}
