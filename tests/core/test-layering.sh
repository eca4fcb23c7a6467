#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The folder layout is the architecture: check the include rules in
# docs/internals/conventions.md.
. "$top_srcdir/tests/functions.sh"
cd "$top_srcdir"
bad=0
check () {  # check DIR FORBIDDEN-REGEX WHY
    local hits
    hits=$(grep -rnE "$2" --include='*.c' --include='*.h' "$1" 2>/dev/null || true)
    if [ -n "$hits" ]; then echo "$hits"; echo "^^ $1: $3" >&2; bad=1; fi
}
check common '#include "(backend|errors|file/|server|nbd-proto|nbd-uri|asif)' "common/ depends on nothing of ours"
check proto '#include "(backend|errors|file/|server|asif|faults)' "proto/ uses common/ only"
check proto '\b(open|read|write|send|recv|socket|connect)[[:space:]]*\(' "proto/ does no I/O"
check lib '#include "(server|cli)' "lib/ must not use server/ or cli/"
check cli '#include "(backend|errors|file/|asif|faults|nbd-proto|raw)' "cli/ uses only the public API, common/ and server/server.h"
# Only proto/nbd-protocol.h defines NBD_ wire constants.
hits=$(grep -rnE '^#define NBD_' --include='*.[ch]' . | grep -v '^./proto/nbd-protocol.h' | grep -v '^./build' || true)
[ -z "$hits" ] || { echo "$hits"; echo "NBD_ constants outside proto/nbd-protocol.h" >&2; bad=1; }
# Nothing uses libnbd's nbd_ prefix for our functions.
hits=$(grep -rnE '^nbd_[a-z_]+ \(' --include='*.c' common proto lib server cli 2>/dev/null || true)
[ -z "$hits" ] || { echo "$hits"; echo "nbd_ function names belong to libnbd" >&2; bad=1; }
[ $bad = 0 ] || fail "layering rules broken"
echo "test-layering: OK"
