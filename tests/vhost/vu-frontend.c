/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Test vhost-user front end and virtio-blk driver (see vu-frontend.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "test.h"
#include "vhost-user-protocol.h"
#include "vu-frontend.h"

#define MEM_SIZE (3 * (size_t) VU_REGION_SIZE)

static void
le16w (void *p, uint16_t v)
{
  v = htole16 (v);
  memcpy (p, &v, 2);
}

static void
le32w (void *p, uint32_t v)
{
  v = htole32 (v);
  memcpy (p, &v, 4);
}

static void
le64w (void *p, uint64_t v)
{
  v = htole64 (v);
  memcpy (p, &v, 8);
}

static uint32_t
le32r (const void *p)
{
  uint32_t v;
  memcpy (&v, p, 4);
  return le32toh (v);
}

uint8_t *
vu_ptr (struct vu *vu, uint64_t gpa)
{
  if (gpa >= VU_GPA_A && gpa < VU_GPA_A + VU_REGION_SIZE)
    return vu->mem + (gpa - VU_GPA_A);
  if (gpa >= VU_GPA_B && gpa < VU_GPA_B + VU_REGION_SIZE)
    return vu->mem + 2 * (size_t) VU_REGION_SIZE + (gpa - VU_GPA_B);
  if (gpa >= VU_GPA_C && gpa < VU_GPA_C + VU_REGION_SIZE)
    return vu->mem + VU_REGION_SIZE + (gpa - VU_GPA_C);
  fprintf (stderr, "vu_ptr: 0x%llx is not guest memory\n",
           (unsigned long long) gpa);
  exit (1);
}

/* The made-up front-end virtual address of a gpa in region A. */
static uint64_t
uva_of (uint64_t gpa)
{
  CHECK (gpa >= VU_GPA_A && gpa < VU_GPA_A + VU_REGION_SIZE);
  return VU_UVA_BASE + (gpa - VU_GPA_A);
}

uint64_t
vu_alloc_a (struct vu *vu, size_t size, size_t align)
{
  size_t off = (vu->alloc_a + align - 1) & ~(align - 1);
  CHECK (off + size <= VU_REGION_SIZE);
  vu->alloc_a = off + size;
  return VU_GPA_A + off;
}

uint64_t
vu_alloc_b (struct vu *vu, size_t size, size_t align)
{
  size_t off = (vu->alloc_b + align - 1) & ~(align - 1);
  CHECK (off + size <= VU_REGION_SIZE);
  vu->alloc_b = off + size;
  return VU_GPA_B + off;
}

void
vu_connect_raw (struct vu *vu, const char *path)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };

  memset (vu, 0, sizeof *vu);
  for (unsigned i = 0; i < VU_MAX_QUEUES; ++i)
    vu->q[i].kick_fd = vu->q[i].call_fd = vu->q[i].err_fd = -1;
  vu->memfd = memfd_create ("vu-test-ram", MFD_CLOEXEC);
  CHECK (vu->memfd >= 0);
  CHECK (ftruncate (vu->memfd, MEM_SIZE) == 0);
  vu->mem = mmap (NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                  vu->memfd, 0);
  CHECK (vu->mem != MAP_FAILED);
  vu->sock = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK (vu->sock >= 0);
  snprintf (sun.sun_path, sizeof sun.sun_path, "%s", path);
  CHECK (connect (vu->sock, (struct sockaddr *) &sun, sizeof sun) == 0);
}

void
vu_send (struct vu *vu, uint32_t request, uint32_t flags, const void *payload,
         uint32_t size, const int *fds, size_t nfds)
{
  uint8_t buf[12 + 4096];
  union {
    struct cmsghdr h;
    char b[CMSG_SPACE (16 * sizeof (int))];
  } control;
  struct iovec iov;
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
  uint32_t hdr[3] = { request, flags | VHOST_USER_VERSION, size };

  CHECK (size <= 4096 && nfds <= 16);
  memcpy (buf, hdr, 12);
  if (size)
    memcpy (buf + 12, payload, size);
  iov.iov_base = buf;
  iov.iov_len = 12 + size;
  if (nfds > 0) {
    struct cmsghdr *c;
    memset (&control, 0, sizeof control);
    mh.msg_control = &control;
    mh.msg_controllen = CMSG_SPACE (nfds * sizeof (int));
    c = CMSG_FIRSTHDR (&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN (nfds * sizeof (int));
    memcpy (CMSG_DATA (c), fds, nfds * sizeof (int));
  }
  CHECK (sendmsg (vu->sock, &mh, MSG_NOSIGNAL) == (ssize_t) (12 + size));
}

static void
read_full (int fd, void *buf, size_t len)
{
  uint8_t *p = buf;
  while (len > 0) {
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    ssize_t n;
    CHECK (poll (&pfd, 1, 10000) == 1);
    n = read (fd, p, len);
    CHECK (n > 0);
    p += n;
    len -= n;
  }
}

uint32_t
vu_recv_reply (struct vu *vu, uint32_t request, void *buf, size_t len)
{
  uint32_t hdr[3];

  read_full (vu->sock, hdr, sizeof hdr);
  CHECK (hdr[0] == request);
  CHECK (hdr[1] == (VHOST_USER_VERSION | VHOST_USER_REPLY_MASK));
  CHECK (hdr[2] <= len);
  read_full (vu->sock, buf, hdr[2]);
  return hdr[2];
}

uint64_t
vu_request_ack (struct vu *vu, uint32_t request, const void *payload,
                uint32_t size, const int *fds, size_t nfds)
{
  uint64_t v;

  CHECK (vu->reply_ack);
  vu_send (vu, request, VHOST_USER_NEED_REPLY_MASK, payload, size, fds, nfds);
  CHECK (vu_recv_reply (vu, request, &v, sizeof v) == 8);
  return v;
}

uint64_t
vu_get_u64 (struct vu *vu, uint32_t request)
{
  uint64_t v;
  vu_send (vu, request, 0, NULL, 0, NULL, 0);
  CHECK (vu_recv_reply (vu, request, &v, sizeof v) == 8);
  return v;
}

/* Send, and when REPLY_ACK is on require success. */
static void
vu_set (struct vu *vu, uint32_t request, const void *payload, uint32_t size,
        const int *fds, size_t nfds)
{
  if (vu->reply_ack)
    CHECK (vu_request_ack (vu, request, payload, size, fds, nfds) == 0);
  else
    vu_send (vu, request, 0, payload, size, fds, nfds);
}

void
vu_set_u64 (struct vu *vu, uint32_t request, uint64_t v)
{
  vu_set (vu, request, &v, sizeof v, NULL, 0);
}

void
vu_get_config (struct vu *vu, uint8_t *cfg, uint32_t size)
{
  uint8_t buf[12 + 256];
  uint32_t hdr[3] = { 0, size, 0 };

  memset (buf, 0, sizeof buf);
  memcpy (buf, hdr, 12);
  vu_send (vu, VHOST_USER_GET_CONFIG, 0, buf, 12 + size, NULL, 0);
  CHECK (vu_recv_reply (vu, VHOST_USER_GET_CONFIG, buf, sizeof buf) ==
         12 + size);
  memcpy (cfg, buf + 12, size);
}

void
vu_send_mem_table (struct vu *vu)
{
  uint8_t buf[8 + 8 * 32];
  uint64_t regs[3][4] = {
    { VU_GPA_A, VU_REGION_SIZE, VU_UVA_BASE, 0 },
    { VU_GPA_B, VU_REGION_SIZE, VU_UVA_BASE + 0x10000000, 2 * (uint64_t) VU_REGION_SIZE },
    { VU_GPA_C, VU_REGION_SIZE, VU_UVA_BASE + 0x20000000, VU_REGION_SIZE },
  };
  int fds[3] = { vu->memfd, vu->memfd, vu->memfd };
  uint32_t n = 3, pad = 0;

  memset (buf, 0, sizeof buf);
  memcpy (buf, &n, 4);
  memcpy (buf + 4, &pad, 4);
  memcpy (buf + 8, regs, sizeof regs);
  /* QEMU sends all 8 slots whatever the count. */
  vu_set (vu, VHOST_USER_SET_MEM_TABLE, buf, sizeof buf, fds, 3);
}

void
vu_connect (struct vu *vu, const char *path, uint64_t want_features,
            uint64_t want_protocol)
{
  uint64_t f, pf;

  vu_connect_raw (vu, path);
  f = vu_get_u64 (vu, VHOST_USER_GET_FEATURES);
  CHECK (f & (UINT64_C (1) << VHOST_USER_F_PROTOCOL_FEATURES));
  pf = vu_get_u64 (vu, VHOST_USER_GET_PROTOCOL_FEATURES);
  vu->protocol_features = pf & want_protocol;
  vu_set_u64 (vu, VHOST_USER_SET_PROTOCOL_FEATURES, vu->protocol_features);
  vu->reply_ack = vu->protocol_features &
    (UINT64_C (1) << VHOST_USER_PROTOCOL_F_REPLY_ACK);
  if (vu->protocol_features & (UINT64_C (1) << VHOST_USER_PROTOCOL_F_MQ))
    vu->nqueues = vu_get_u64 (vu, VHOST_USER_GET_QUEUE_NUM);
  else
    vu->nqueues = 1;
  vu_set (vu, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0);
  vu->features = f & want_features;
  vu_set_u64 (vu, VHOST_USER_SET_FEATURES, vu->features);
  vu_send_mem_table (vu);
}

void
vu_close (struct vu *vu)
{
  for (unsigned i = 0; i < VU_MAX_QUEUES; ++i) {
    struct vu_queue *q = &vu->q[i];
    if (q->kick_fd >= 0) close (q->kick_fd);
    if (q->call_fd >= 0) close (q->call_fd);
    if (q->err_fd >= 0) close (q->err_fd);
    free (q->free_desc);
    free (q->chain_len);
    free (q->chain);
  }
  close (vu->sock);
  munmap (vu->mem, MEM_SIZE);
  close (vu->memfd);
  memset (vu, 0, sizeof *vu);
}

bool
vu_wait_closed (struct vu *vu)
{
  struct pollfd pfd = { .fd = vu->sock, .events = POLLIN };
  char c;

  if (poll (&pfd, 1, 5000) != 1)
    return false;
  return read (vu->sock, &c, 1) <= 0;
}

void
vu_queue_start (struct vu *vu, unsigned qi, uint16_t num)
{
  struct vu_queue *q = &vu->q[qi];
  uint32_t state[2];
  uint8_t addr[40];
  uint64_t u, v;
  int fd;

  CHECK (qi < VU_MAX_QUEUES);
  if (q->free_desc == NULL) {
    q->num = num;
    q->desc_gpa = vu_alloc_a (vu, 16 * (size_t) num, 16);
    q->avail_gpa = vu_alloc_a (vu, 6 + 2 * (size_t) num, 2);
    q->used_gpa = vu_alloc_a (vu, 6 + 8 * (size_t) num, 4);
    q->desc = vu_ptr (vu, q->desc_gpa);
    q->avail = vu_ptr (vu, q->avail_gpa);
    q->used = vu_ptr (vu, q->used_gpa);
    q->free_desc = calloc (num, sizeof *q->free_desc);
    q->chain_len = calloc (num, sizeof *q->chain_len);
    q->chain = calloc (num, sizeof *q->chain);
    CHECK (q->free_desc && q->chain_len && q->chain);
    for (unsigned i = 0; i < num; ++i)
      q->free_desc[i] = num - 1 - i;
    q->nfree = num;
  }
  CHECK (q->num == num);

  state[0] = qi; state[1] = num;
  vu_set (vu, VHOST_USER_SET_VRING_NUM, state, sizeof state, NULL, 0);
  state[1] = q->base;
  vu_set (vu, VHOST_USER_SET_VRING_BASE, state, sizeof state, NULL, 0);
  memset (addr, 0, sizeof addr);
  memcpy (addr, &qi, 4);
  u = uva_of (q->desc_gpa);  memcpy (addr + 8, &u, 8);
  u = uva_of (q->used_gpa);  memcpy (addr + 16, &u, 8);
  u = uva_of (q->avail_gpa); memcpy (addr + 24, &u, 8);
  vu_set (vu, VHOST_USER_SET_VRING_ADDR, addr, sizeof addr, NULL, 0);

  if (q->call_fd < 0)
    q->call_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (q->err_fd < 0)
    q->err_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (q->kick_fd >= 0)
    close (q->kick_fd);
  q->kick_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  CHECK (q->call_fd >= 0 && q->err_fd >= 0 && q->kick_fd >= 0);
  v = qi;
  fd = q->call_fd;
  vu_set (vu, VHOST_USER_SET_VRING_CALL, &v, 8, &fd, 1);
  fd = q->err_fd;
  vu_set (vu, VHOST_USER_SET_VRING_ERR, &v, 8, &fd, 1);
  fd = q->kick_fd;
  vu_set (vu, VHOST_USER_SET_VRING_KICK, &v, 8, &fd, 1);
  state[0] = qi; state[1] = 1;
  vu_set (vu, VHOST_USER_SET_VRING_ENABLE, state, sizeof state, NULL, 0);
  q->started = true;
}

uint16_t
vu_queue_stop (struct vu *vu, unsigned qi)
{
  uint32_t state[2] = { qi, 0 };
  uint32_t out[2];

  vu_send (vu, VHOST_USER_GET_VRING_BASE, 0, state, sizeof state, NULL, 0);
  CHECK (vu_recv_reply (vu, VHOST_USER_GET_VRING_BASE, out, sizeof out) == 8);
  CHECK (out[0] == qi);
  vu->q[qi].started = false;
  vu->q[qi].base = out[1];
  /* The backend closed its copy of the call eventfd: a new one comes
   * with the next start.
   */
  close (vu->q[qi].call_fd);
  vu->q[qi].call_fd = -1;
  return out[1];
}

void
vu_publish (struct vu *vu, unsigned qi, uint16_t head)
{
  struct vu_queue *q = &vu->q[qi];
  uint16_t idx = q->avail_idx;

  le16w (q->avail + 4 + 2 * (size_t) (idx % q->num), head);
  q->avail_idx = idx + 1;
  __atomic_thread_fence (__ATOMIC_RELEASE);
  __atomic_store_n ((uint16_t *) (q->avail + 2), htole16 (q->avail_idx),
                    __ATOMIC_RELEASE);
}

static uint16_t
get_desc (struct vu_queue *q)
{
  CHECK (q->nfree > 0);
  return q->free_desc[--q->nfree];
}

static void
write_desc (struct vu_queue *q, uint16_t i, uint64_t addr, uint32_t len,
            uint16_t flags, uint16_t next)
{
  uint8_t *d = q->desc + 16 * (size_t) i;
  le64w (d, addr);
  le32w (d + 8, len);
  le16w (d + 12, flags);
  le16w (d + 14, next);
}

uint16_t
vu_desc_get (struct vu *vu, unsigned qi)
{
  return get_desc (&vu->q[qi]);
}

void
vu_desc_write (struct vu *vu, unsigned qi, uint16_t i, uint64_t addr,
               uint32_t len, uint16_t flags, uint16_t next)
{
  CHECK (i < vu->q[qi].num);
  write_desc (&vu->q[qi], i, addr, len, flags, next);
}

void
vu_desc_chain (struct vu *vu, unsigned qi, uint16_t head, const uint16_t *idx,
               unsigned n)
{
  CHECK (n <= 64);
  vu->q[qi].chain_len[head] = n;
  memcpy (vu->q[qi].chain[head], idx, n * sizeof idx[0]);
}

uint16_t
vu_add (struct vu *vu, unsigned qi, const struct vu_seg *segs, unsigned n,
        bool indirect)
{
  struct vu_queue *q = &vu->q[qi];
  uint16_t head;

  CHECK (n > 0 && n <= 64);
  if (indirect) {
    uint64_t table = vu_alloc_a (vu, 16 * (size_t) n, 16);
    uint8_t *t = vu_ptr (vu, table);
    for (unsigned i = 0; i < n; ++i) {
      uint8_t *d = t + 16 * i;
      le64w (d, segs[i].gpa);
      le32w (d + 8, segs[i].len);
      le16w (d + 12, (segs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
             (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
      le16w (d + 14, i + 1 < n ? i + 1 : 0);
    }
    head = get_desc (q);
    write_desc (q, head, table, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
    q->chain_len[head] = 1;
    q->chain[head][0] = head;
  }
  else {
    uint16_t idx[64];
    for (unsigned i = 0; i < n; ++i)
      idx[i] = get_desc (q);
    for (unsigned i = 0; i < n; ++i)
      write_desc (q, idx[i], segs[i].gpa, segs[i].len,
                  (segs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
                  (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0),
                  i + 1 < n ? idx[i + 1] : 0);
    head = idx[0];
    q->chain_len[head] = n;
    memcpy (q->chain[head], idx, n * sizeof idx[0]);
  }
  vu_publish (vu, qi, head);
  return head;
}

void
vu_free_chain (struct vu *vu, unsigned qi, uint16_t head)
{
  struct vu_queue *q = &vu->q[qi];
  for (unsigned i = 0; i < q->chain_len[head]; ++i)
    q->free_desc[q->nfree++] = q->chain[head][i];
  q->chain_len[head] = 0;
}

bool
vu_kick_needed (struct vu *vu, unsigned qi, uint16_t old_avail)
{
  struct vu_queue *q = &vu->q[qi];
  uint16_t ev, new_idx = q->avail_idx;

  if (!(vu->features & (UINT64_C (1) << VIRTIO_RING_F_EVENT_IDX)))
    return !(le16toh (*(volatile uint16_t *) q->used) & VIRTQ_USED_F_NO_NOTIFY);
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
  ev = le16toh (__atomic_load_n ((uint16_t *) (q->used + 4 + 8 * (size_t) q->num),
                                 __ATOMIC_ACQUIRE));
  return (uint16_t) (new_idx - ev - 1) < (uint16_t) (new_idx - old_avail);
}

void
vu_kick (struct vu *vu, unsigned qi)
{
  uint64_t one = 1;
  CHECK (write (vu->q[qi].kick_fd, &one, 8) == 8);
}

int
vu_wait_used (struct vu *vu, unsigned qi, uint16_t *head, uint32_t *len,
              int timeout_ms)
{
  struct vu_queue *q = &vu->q[qi];
  struct timespec t0, t;

  clock_gettime (CLOCK_MONOTONIC, &t0);
  for (;;) {
    uint16_t idx = le16toh (__atomic_load_n ((uint16_t *) (q->used + 2),
                                             __ATOMIC_ACQUIRE));
    if (idx != q->used_seen) {
      const uint8_t *e = q->used + 4 + 8 * (size_t) (q->used_seen % q->num);
      *head = le32r (e);
      *len = le32r (e + 4);
      q->used_seen++;
      return 1;
    }
    clock_gettime (CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >
        timeout_ms)
      return 0;
    if ((vu->features & (UINT64_C (1) << VIRTIO_RING_F_EVENT_IDX)) &&
        !vu->manual_used_event) {
      /* As a driver re-enabling callbacks: interrupt me at the next
       * used entry, then look again (the entry may have come meanwhile).
       */
      le16w (q->avail + 4 + 2 * (size_t) q->num, q->used_seen);
      __atomic_thread_fence (__ATOMIC_SEQ_CST);
      if (le16toh (__atomic_load_n ((uint16_t *) (q->used + 2),
                                    __ATOMIC_ACQUIRE)) != q->used_seen)
        continue;
    }
    {
      struct pollfd pfd = { .fd = q->call_fd, .events = POLLIN };
      poll (&pfd, q->call_fd >= 0 ? 1 : 0, 5);
    }
  }
}

bool
vu_called (struct vu *vu, unsigned qi)
{
  uint64_t v;
  return read (vu->q[qi].call_fd, &v, 8) == 8;
}

bool
vu_errored (struct vu *vu, unsigned qi, int timeout_ms)
{
  struct pollfd pfd = { .fd = vu->q[qi].err_fd, .events = POLLIN };
  uint64_t v;
  if (poll (&pfd, 1, timeout_ms) != 1)
    return false;
  return read (vu->q[qi].err_fd, &v, 8) == 8;
}

int
vu_blk (struct vu *vu, unsigned qi, uint32_t type, uint64_t sector,
        uint64_t data_gpa, uint32_t data_len, unsigned nsplit, bool indirect,
        uint32_t *used_len)
{
  struct vu_seg segs[66];
  unsigned n = 0;
  uint64_t hdr = vu_alloc_a (vu, 16, 8);
  uint64_t st = vu_alloc_a (vu, 1, 1);
  uint8_t *h = vu_ptr (vu, hdr);
  bool dev_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
  uint16_t head, got;
  uint32_t len;

  le32w (h, type);
  le32w (h + 4, 0);
  le64w (h + 8, sector);
  *vu_ptr (vu, st) = 0xff;
  segs[n++] = (struct vu_seg) { hdr, 16, false };
  if (data_len > 0) {
    uint32_t piece;
    CHECK (nsplit >= 1 && nsplit <= 64);
    piece = data_len / nsplit;
    for (unsigned i = 0; i < nsplit; ++i) {
      uint32_t l = i + 1 < nsplit ? piece : data_len - piece * (nsplit - 1);
      segs[n++] = (struct vu_seg) { data_gpa + (uint64_t) piece * i, l,
                                    dev_writes };
    }
  }
  segs[n++] = (struct vu_seg) { st, 1, true };
  head = vu_add (vu, qi, segs, n, indirect);
  vu_kick (vu, qi);
  CHECK (vu_wait_used (vu, qi, &got, &len, 10000) == 1);
  CHECK (got == head);
  vu_free_chain (vu, qi, head);
  if (used_len)
    *used_len = len;
  return *vu_ptr (vu, st);
}
