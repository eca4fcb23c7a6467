#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# nbdinfo against vdisk serve: --json (size, flags, block sizes),
# --map (equal to the image's real allocation: libvdisk's block status
# and, for RAW, the file's SEEK_DATA/SEEK_HOLE), --list (every export,
# with descriptions), per-export read-only.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/server/serve-functions.sh"
requires nbdinfo --version
requires jq --version
requires qemu-io --version
cd "$tmpdir"

for fmt in $(formats); do
    echo "== $fmt"
    make_image "$fmt" "a.$fmt" 64MiB
    make_image "$fmt" "b.$fmt" 8MiB
    serve pid --socket "$tmpdir/s.sock" --port 0 \
        --export "first=a.$fmt,description=the first disk" \
        --export "second=b.$fmt,read-only,description=a read-only one,, with a comma"
    uri=$(grep '^nbd+unix' <<<"$serve_uris")
    [[ "$uri" == "nbd+unix:///first?socket="* ]] || fail "URI names the default export: $uri"
    # Data at 1 MiB and 40 MiB, zeroes allocated at 20 MiB.
    qemu-io -f raw -c 'write -P 1 1M 2M' -c 'write -P 2 40M 64k' \
        -c 'write -z 20M 1M' "$uri" >/dev/null

    j=$(nbdinfo --json "$uri")
    [ "$(jq -r '.exports[0]."export-name"' <<<"$j")" = first ] || fail "name: $j"
    [ "$(jq '.exports[0]."export-size"' <<<"$j")" = 67108864 ] || fail "size: $j"
    [ "$(jq -r '.exports[0].description' <<<"$j")" = "the first disk" ] || fail "description: $j"
    for k in is_read_only is_rotational; do
        [ "$(jq ".exports[0].$k" <<<"$j")" = false ] || fail "$k: $j"
    done
    for k in can_flush can_fua can_trim can_zero can_fast_zero can_multi_conn can_cache can_df; do
        [ "$(jq ".exports[0].$k" <<<"$j")" = true ] || fail "$k: $j"
    done
    [ "$(jq '.exports[0].block_size_minimum' <<<"$j")" = 1 ] || fail "minimum: $j"
    [ "$(jq '.exports[0].block_size_maximum' <<<"$j")" = 33554432 ] || fail "maximum: $j"
    jq -e '.exports[0].contexts | index("base:allocation")' <<<"$j" >/dev/null || fail "contexts: $j"

    j=$(nbdinfo --json "${uri/first/second}")
    [ "$(jq '.exports[0].is_read_only' <<<"$j")" = true ] || fail "second is writable: $j"
    [ "$(jq '.exports[0].can_trim' <<<"$j")" = false ] || fail "second can trim: $j"
    [ "$(jq -r '.exports[0].description' <<<"$j")" = "a read-only one, with a comma" ] || fail "description: $j"

    l=$(nbdinfo --list --json "$uri")
    [ "$(jq -r '[.exports[]."export-name"] | join(",")' <<<"$l")" = "first,second" ] || fail "list: $l"
    [ "$(jq -r '.exports[1].description' <<<"$l")" = "a read-only one, with a comma" ] || fail "list description: $l"
    nbdinfo --list "$uri" | grep -q 'export="second"' || fail "plain --list"

    # --map: each extent as {start,length,zero,data}.
    nbdinfo --map --json "$uri" | jq -c '.[] | {start: .offset, length,
        zero: ((.type % 4) >= 2), data: ((.type % 2) == 0)}' | norm_map > nbdmap.txt
    stop_serve "$pid"
    "$MAPTOOL" "a.$fmt" | norm_map > libmap.txt
    diff -u libmap.txt nbdmap.txt || fail "$fmt: nbdinfo --map differs from the image"
    if [ "$fmt" = raw ]; then
        # The file's own holes, straight from the kernel.
        nbdpy - a.raw <<'PY' | norm_map > seekmap.txt
import os, sys, json
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
pos = 0
while pos < size:
    try:
        data = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        data = size
    if data > pos:
        print(json.dumps({"start": pos, "length": data - pos, "zero": True, "data": False}))
        pos = data
        continue
    hole = os.lseek(fd, pos, os.SEEK_HOLE)
    print(json.dumps({"start": pos, "length": hole - pos, "zero": False, "data": True}))
    pos = hole
PY
        diff -u seekmap.txt nbdmap.txt || fail "raw: nbdinfo --map differs from SEEK_DATA/SEEK_HOLE"
        grep -q '^1048576 2097152 false true$' nbdmap.txt || fail "data extent missing"
    fi
done
echo "test-serve-nbdinfo: OK"
