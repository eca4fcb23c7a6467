/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The states of one NBD connection (the libnbd shape, hand-written).
 * One line per state: its name, the I/O direction it waits for, and
 * what it does.  Each state is one function in states-handshake.c or
 * states-transmission.c named state_<name>; conn.c dispatches through a
 * table built from this list.  The rules are in
 * docs/internals/client-state-machine.md.
 *
 * Directions: "read" waits for POLLIN, "write" for POLLOUT, "-" never
 * blocks (it decides and moves on), "cmd" waits for a command to be
 * submitted, "tls" waits for whichever GnuTLS asked for
 * (conn->tls_want_write).
 *
 * The handshake is one sequence of states in conn->state.  In the
 * transmission phase (conn->state == READY) two machines run side by
 * side, because NBD is full duplex: the issue machine (conn->tx_state,
 * ISSUE_*) writes requests while the reply machine (conn->rx_state,
 * REPLY_*) reads replies, so a large write never blocks the replies the
 * server is sending meanwhile.
 */
#ifndef VD_NBD_STATES_H
#define VD_NBD_STATES_H

#define VD_NBD_STATES                                                      \
  /* Handshake (conn->state). */                                           \
  STATE (START, "-", "connected: expect the server's greeting")            \
  STATE (RECV_GREETING, "read", "NBDMAGIC, IHAVEOPT, handshake flags "     \
         "(18 bytes); oldstyle servers are refused here")                  \
  STATE (SEND_CLIENT_FLAGS, "write", "our flags: FIXED_NEWSTYLE, "         \
         "NO_ZEROES when offered")                                         \
  STATE (PREPARE_OPT, "-", "pick the next option: STARTTLS (first, when " \
         "TLS is wanted); EXTENDED_HEADERS, else STRUCTURED_REPLY; "       \
         "SET_META_CONTEXT; GO; or EXPORT_NAME")                           \
  STATE (SEND_OPT, "write", "one option request (header and data)")        \
  STATE (RECV_OPT_REPLY, "read", "an option reply header (20 bytes)")      \
  STATE (RECV_OPT_PAYLOAD, "read", "its payload (bounded)")                \
  STATE (CHECK_OPT_REPLY, "-", "act on the reply for the current option; " \
         "back to RECV_OPT_REPLY until its final reply")                   \
  STATE (TLS_START, "-", "the server acknowledged NBD_OPT_STARTTLS: "     \
         "wrap the socket in a TLS session (credentials loaded here)")    \
  STATE (TLS_HANDSHAKE, "tls", "gnutls_handshake until done, then "       \
         "negotiate from the top (PREPARE_OPT) over TLS")                  \
  STATE (SEND_EXPORT_NAME, "write", "NBD_OPT_EXPORT_NAME (no GO, or "      \
         "GO unsupported)")                                                \
  STATE (RECV_EXPORT_NAME_REPLY, "read", "size and flags (10 bytes, plus " \
         "124 zero bytes without NO_ZEROES)")                              \
  STATE (SEND_ABORT, "write", "NBD_OPT_ABORT after NBD_REP_ERR_SHUTDOWN, " \
         "or after a refused STARTTLS that TLS requires; then DEAD")       \
  STATE (READY, "-", "transmission: the ISSUE and REPLY machines run")     \
  STATE (DEAD, "-", "closed; every command failed; err says why")          \
  /* Issue machine (conn->tx_state). */                                    \
  STATE (ISSUE_IDLE, "cmd", "nothing to send")                             \
  STATE (ISSUE_SEND, "write", "send queued requests in order, headers "    \
         "and write payloads batched in one sendmsg")                      \
  STATE (ISSUE_DISC, "-", "NBD_CMD_DISC is on the wire (sent only when "  \
         "nothing is in flight): shut down our side, the connection ends")  \
  /* Reply machine (conn->rx_state). */                                    \
  STATE (REPLY_START, "read", "a reply header: the magic decides 16 "     \
         "(simple), 20 (structured) or 32 (extended) bytes")               \
  STATE (REPLY_SIMPLE_DATA, "read", "READ data of a simple reply, "        \
         "straight into the caller's buffer")                              \
  STATE (REPLY_DATA_PREFIX, "read", "the 8-byte offset of an OFFSET_DATA " \
         "chunk; checked against the request")                             \
  STATE (REPLY_DATA, "read", "OFFSET_DATA bytes, straight into the "       \
         "caller's buffer")                                                \
  STATE (REPLY_PAYLOAD, "read", "any other chunk payload into a bounded "  \
         "buffer (hole, block status, error)")                             \
  STATE (REPLY_CHUNK_DONE, "-", "act on the chunk; on DONE finish the "    \
         "command and call its done callback")

#endif
