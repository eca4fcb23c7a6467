#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Banned functions (curl's checksrc idea): they overflow, accept junk or
# keep hidden state.  Use snprintf, vd_parse_* / strtoull with checks,
# strtok_r.
cd "$(dirname "$0")/.."
pattern='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atoll|strtok|alloca)[[:space:]]*\('
hits=$(grep -rnE "$pattern" --include='*.c' --include='*.h' common proto lib server vhost cli tests fuzz bench examples 2>/dev/null \
       || true)
if [ -n "$hits" ]; then
    echo "$hits"
    echo "check-banned: banned functions used (see docs/internals/conventions.md)" >&2
    exit 1
fi
echo "check-banned: OK"
