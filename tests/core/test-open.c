/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * vd_attachment_open: specs, options and their errors; read-only opens
 * never modify the file; fd:N; uncached constraints.
 */
#include "config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

static struct vd_open_options
opts (uint32_t flags, int caching)
{
  struct vd_open_options o;
  vd_open_options_init (&o);
  o.flags = flags;
  o.caching_mode = caching;
  return o;
}

/* Bytes and mtime of a file, to prove it was not touched. */
struct snap {
  char data[65536];
  struct timespec mtime;
  off_t size;
};

static void
take (const char *path, struct snap *s)
{
  struct stat st;
  int fd = open (path, O_RDONLY);
  CHECK (fd >= 0);
  CHECK (fstat (fd, &st) == 0);
  memset (s->data, 0, sizeof s->data);
  CHECK (pread (fd, s->data, sizeof s->data, 0) >= 0);
  s->mtime = st.st_mtim;
  s->size = st.st_size;
  close (fd);
}

static int frees;
static void
count_free (void *ud)
{
  frees++;
  CHECK (ud == &frees);
}

int
main (void)
{
  char path[256], odd[256], dir[256];
  struct vd_open_options o;
  struct vd_attachment *a;
  struct snap before, after;
  char buf[4096];
  int fd;

  test_tmpname (path, sizeof path, "open");
  test_tmpname (odd, sizeof odd, "odd");
  CHECK (vd_image_create (path, VD_FORMAT_RAW, 4 << 20, 0) == 0);

  /* Bad specs and options. */
  o = opts (0, VD_CACHING_AUTOMATIC);
  CHECK_NULL (vd_attachment_open ("", &o), EINVAL, "empty");
  CHECK_NULL (vd_attachment_open (NULL, &o), EINVAL, "empty");
  CHECK_NULL (vd_attachment_open ("/nonexistent/disk.img", &o), ENOENT,
              "/nonexistent/disk.img");
  test_tmpname (dir, sizeof dir, "dir");
  CHECK (mkdir (dir, 0755) == 0);
  CHECK_NULL (vd_attachment_open (dir, &o), EISDIR, "directory");
  rmdir (dir);
  o.caching_mode = 7;
  CHECK_NULL (vd_attachment_open (path, &o), EINVAL, "caching mode");
  o = opts (0, VD_CACHING_AUTOMATIC);
  o.sync_mode = 0;
  CHECK_NULL (vd_attachment_open (path, &o), EINVAL, "sync mode");
  o = opts (0, VD_CACHING_AUTOMATIC);
  o.format = "qcow2";
  CHECK_NULL (vd_attachment_open (path, &o), EINVAL, "unknown format");
  o.format = "asif";
  CHECK_NULL (vd_attachment_open (path, &o), EINVAL, "not an ASIF image");
  o.format = "blockdev";
  CHECK_NULL (vd_attachment_open (path, &o), EINVAL, "not a block device");
  o.format = "nbd";
  CHECK_NULL (vd_attachment_open (path, &o), EINVAL, "not an NBD URI");
  o = opts (0, VD_CACHING_AUTOMATIC);
  CHECK_NULL (vd_attachment_open ("fd:abc", &o), EINVAL, "fd:N");
  CHECK_NULL (vd_attachment_open ("fd:-1", &o), EINVAL, "fd:N");
  CHECK_NULL (vd_attachment_open ("fd:999999", &o), EBADF,
              "not an open file descriptor");
  /* Unknown struct fields are ignored (struct_size smaller than ours). */
  o = opts (VD_OPEN_READ_ONLY, VD_CACHING_AUTOMATIC);
  o.struct_size = sizeof (size_t) + sizeof (uint32_t);
  a = vd_attachment_open (path, &o);
  CHECK (a != NULL);
  CHECK (vd_attachment_is_read_only (a) == 1);
  CHECK (vd_attachment_close (a) == 0);
  /* NULL options: the defaults (writable, cached, full). */
  a = vd_attachment_open (path, NULL);
  CHECK (a != NULL);
  CHECK (vd_attachment_get_caching_mode (a) == VD_CACHING_CACHED);
  CHECK (vd_attachment_get_sync_mode (a) == VD_SYNC_FULL);
  CHECK (strcmp (vd_attachment_get_format (a), "raw") == 0);
  CHECK (vd_attachment_close (a) == 0);
  CHECK (vd_attachment_close (NULL) == 0);

  /* Read-only: every write is refused and the file is untouched. */
  take (path, &before);
  usleep (10000);
  o = opts (VD_OPEN_READ_ONLY, VD_CACHING_AUTOMATIC);
  a = vd_attachment_open (path, &o);
  CHECK (a != NULL);
  memset (buf, 0xaa, sizeof buf);
  CHECK_FAILS (vd_attachment_pwrite (a, buf, sizeof buf, 0, VD_FLAG_FUA),
               EROFS, "read-only");
  CHECK_FAILS (vd_attachment_write_zeroes (a, 4096, 0, VD_FLAG_MAY_TRIM),
               EROFS, "read-only");
  CHECK_FAILS (vd_attachment_discard (a, 4096, 0, 0), EROFS, "read-only");
  CHECK (vd_attachment_flush (a, 0) == 0);
  CHECK (vd_attachment_close (a) == 0);
  take (path, &after);
  CHECK (memcmp (before.data, after.data, sizeof before.data) == 0);
  CHECK (before.size == after.size);
  CHECK (before.mtime.tv_sec == after.mtime.tv_sec &&
         before.mtime.tv_nsec == after.mtime.tv_nsec);

  /* fd:N, writable and read-only, caller keeps its fd. */
  fd = open (path, O_RDWR);
  CHECK (fd >= 0);
  snprintf (dir, sizeof dir, "fd:%d", fd);
  a = vd_attachment_open (dir, NULL);
  CHECK (a != NULL);
  CHECK (strcmp (vd_attachment_get_name (a), dir) == 0);
  memset (buf, 0x5a, sizeof buf);
  CHECK (vd_attachment_pwrite (a, buf, sizeof buf, 8192, 0) == 0);
  CHECK (vd_attachment_close (a) == 0);
  CHECK (pread (fd, buf, sizeof buf, 8192) == sizeof buf && buf[100] == 0x5a);
  close (fd);
  fd = open (path, O_RDONLY);
  CHECK (fd >= 0);
  snprintf (dir, sizeof dir, "fd:%d", fd);
  CHECK_NULL (vd_attachment_open (dir, NULL), EBADF, "read-only");
  o = opts (VD_OPEN_READ_ONLY, VD_CACHING_AUTOMATIC);
  a = vd_attachment_open (dir, &o);
  CHECK (a != NULL);
  CHECK (vd_attachment_close (a) == 0);
  close (fd);

  /* Uncached: a size that O_DIRECT cannot cover is refused clearly. */
  fd = open (odd, O_CREAT | O_WRONLY, 0644);
  CHECK (fd >= 0 && ftruncate (fd, 1000) == 0);
  close (fd);
  o = opts (0, VD_CACHING_UNCACHED);
  a = vd_attachment_open (odd, &o);
  if (a == NULL) {
    const char *e = vd_get_error ();
    CHECK (strstr (e, "not a multiple") || strstr (e, "O_DIRECT"));
  }
  else {
    /* Some file systems report an alignment of 1 (none needed). */
    CHECK (vd_attachment_close (a) == 0);
  }
  /* Cached works for odd sizes; the last byte is reachable. */
  a = vd_attachment_open (odd, NULL);
  CHECK (a != NULL && vd_attachment_get_size (a) == 1000);
  CHECK (vd_attachment_pwrite (a, "z", 1, 999, 0) == 0);
  CHECK_FAILS (vd_attachment_pwrite (a, "z", 1, 1000, 0), ENOSPC, "1000");
  CHECK (vd_attachment_close (a) == 0);

  /* O_DIRECT on tmpfs is refused with advice, when /dev/shm is tmpfs. */
  {
    char shm[128];
    snprintf (shm, sizeof shm, "/dev/shm/vdisk-test-%d", (int) getpid ());
    fd = open (shm, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) {
      CHECK (ftruncate (fd, 1 << 20) == 0);
      close (fd);
      o = opts (0, VD_CACHING_UNCACHED);
      a = vd_attachment_open (shm, &o);
      if (a == NULL)
        CHECK (strstr (vd_get_error (), "cached") != NULL);
      else
        vd_attachment_close (a);
      unlink (shm);
    }
  }

  /* The events callback's free runs exactly once: at close, or when the
   * open fails (however early).
   */
  o = opts (0, VD_CACHING_AUTOMATIC);
  o.events.free = count_free;
  o.events.user_data = &frees;
  CHECK_NULL (vd_attachment_open ("/nonexistent", &o), ENOENT, "nonexistent");
  CHECK (frees == 1);
  o.sync_mode = 99;
  CHECK_NULL (vd_attachment_open (path, &o), EINVAL, "sync mode");
  CHECK (frees == 2);
  o.sync_mode = VD_SYNC_FULL;
  a = vd_attachment_open (path, &o);
  CHECK (a != NULL && frees == 2);
  CHECK (vd_attachment_close (a) == 0);
  CHECK (frees == 3);

  unlink (path);
  unlink (odd);
  printf ("test-open: OK\n");
  return 0;
}
