#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vdisk nbd validate: exit codes, output, JSON, notes, hints; and that
# it never touches the network (a URI naming an unresolvable host and a
# socket that does not exist are still valid).
. "$top_srcdir/tests/functions.sh"

out=$tmpdir/out
err=$tmpdir/err

# Valid: parts printed, exit 0.
vdisk nbd validate 'nbd://[2001:db8::1]:10900/x' >"$out"
grep -qx '  host: 2001:db8::1' "$out" || fail "host missing: $(cat "$out")"
grep -qx '  port: 10900' "$out" || fail "port missing"
grep -qx '  export: x' "$out" || fail "export missing"
grep -qx '  canonical-uri: nbd://\[2001:db8::1\]:10900/x' "$out" ||
    fail "canonical uri missing"

# No network, no file system: neither exists.
vdisk nbd validate nbd://no-such-host.invalid/ \
    'nbd+unix:///e?socket=/nonexistent/dir/s.sock' >/dev/null

# Invalid: exit 1, the reason and the hint on stderr.
if vdisk nbd validate /tmp/s.sock >"$out" 2>"$err"; then
    fail "a path was accepted"
fi
grep -q 'nbd+unix:///?socket=/tmp/s.sock' "$err" || fail "no hint: $(cat "$err")"
[ ! -s "$out" ] || fail "output for an invalid URI"

# Several URIs: one bad one makes the status 1, the good ones print.
set +e
vdisk nbd validate nbd://a/ 'nbd://b:0/' nbd://c/ >"$out" 2>"$err"
rc=$?
set -e
[ $rc = 1 ] || fail "exit status $rc, expected 1"
[ "$(grep -c 'valid NBD URI' "$out")" = 2 ] || fail "good URIs not printed"
grep -q 'port 0 is out of range' "$err" || fail "no reason: $(cat "$err")"

# --quiet: nothing printed.
vdisk nbd validate -q nbd://a/ >"$out" 2>&1
[ ! -s "$out" ] || fail "--quiet printed something"
if vdisk nbd validate --quiet 'http://x/' >"$out" 2>&1; then fail "http accepted"; fi
[ ! -s "$out" ] || fail "--quiet printed an error"

# --json parses and carries the parts.
vdisk nbd validate --json 'nbd+unix:///d?socket=%00abs' nbd+vsock://3/ >"$out"
python3 - "$out" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
assert len(v) == 2, v
assert v[0]["transport"] == "unix" and v[0]["socket"] == "abs", v[0]
assert v[0]["socket-abstract"] is True and v[0]["export"] == "d", v[0]
assert v[1]["transport"] == "vsock" and v[1]["vsock-cid"] == 3, v[1]
assert v[1]["port"] == 10809, v[1]
PY

# Notes for TLS and experimental parameters (the URI is still valid).
vdisk nbd validate 'nbds://h/?x-foo=1' >"$out" 2>"$err"
grep -q 'requires TLS' "$err" || fail "no TLS note"
grep -q 'experimental' "$err" || fail "no x- note"

# Usage errors: exit 2.
set +e
vdisk nbd validate >/dev/null 2>&1; rc1=$?
vdisk nbd validate --json --quiet nbd://h/ >/dev/null 2>&1; rc2=$?
vdisk nbd validate --bogus nbd://h/ >/dev/null 2>&1; rc3=$?
set -e
[ $rc1 = 2 ] && [ $rc2 = 2 ] && [ $rc3 = 2 ] || fail "usage exit codes $rc1 $rc2 $rc3"
