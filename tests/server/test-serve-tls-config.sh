#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vdisk serve's TLS settings: bad credentials stop the server at startup
# with a message naming the file; contradictory options are usage
# errors; a TCP address outside loopback without TLS is warned about,
# loopback or TLS is not.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/server/serve-functions.sh"
cd "$tmpdir"

tls_certs pki
tls_certs other
make_image raw disk.img 1MiB

# expect_error STATUS PATTERN vdisk serve ARGS...: exits STATUS before
# listening, stderr matches PATTERN.
expect_error ()
{
    local want=$1 pat=$2 st=0; shift 2
    timeout 20 "$VDISK" "$@" >out 2>err || st=$?
    [ "$st" = "$want" ] || { cat err; fail "$* exited $st, not $want"; }
    grep -qE -- "$pat" err || { cat err; fail "$*: no '$pat' in the message"; }
}

# Files that are missing or bad, named.
expect_error 1 'nodir/server-cert\.pem' serve --port 0 --tls=on --tls-certificates nodir disk.img
mkdir nokey; cp pki/server-cert.pem nokey/
expect_error 1 'nokey/server-key\.pem' serve --port 0 --tls=on --tls-certificates nokey disk.img
mkdir badkey; cp pki/server-cert.pem badkey/; echo garbage > badkey/server-key.pem
expect_error 1 'badkey/server-key\.pem: not a PEM private key' serve --port 0 --tls=on --tls-certificates badkey disk.img
mkdir badcert; cp pki/server-key.pem badcert/; echo garbage > badcert/server-cert.pem
expect_error 1 'badcert/server-cert\.pem: not a PEM certificate' serve --port 0 --tls=on --tls-certificates badcert disk.img
mkdir mismatch; cp pki/server-cert.pem mismatch/; cp other/server-key.pem mismatch/
expect_error 1 'mismatch/server-key\.pem does not belong to mismatch/server-cert\.pem' serve --port 0 --tls=on --tls-certificates mismatch disk.img
mkdir noca; cp pki/server-cert.pem pki/server-key.pem noca/
expect_error 1 'noca/ca-cert\.pem' serve --port 0 --tls=require --tls-certificates noca --tls-verify-peer disk.img
echo garbage > noca/ca-crl.pem
expect_error 1 'noca/ca-crl\.pem: not a PEM CRL' serve --port 0 --tls=require --tls-certificates noca disk.img
expect_error 1 'PSK file nofile' serve --port 0 --tls=on --tls-psk nofile disk.img
printf 'vdisk:00112233\nbroken line\n' > bad.psk
expect_error 1 'PSK file bad\.psk, line 2: expected USERNAME:HEXKEY' serve --port 0 --tls=on --tls-psk bad.psk disk.img
printf 'vdisk:0011zz33\n' > bad.psk
expect_error 1 'PSK file bad\.psk, line 1: the key is not hexadecimal' serve --port 0 --tls=on --tls-psk bad.psk disk.img
: > empty.psk
expect_error 1 'PSK file empty\.psk holds no keys' serve --port 0 --tls=on --tls-psk empty.psk disk.img

# Usage errors.
expect_error 2 "--tls: 'maybe'" serve --port 0 --tls=maybe disk.img
expect_error 2 '--tls=on needs one of' serve --port 0 --tls=on disk.img
expect_error 2 '--tls=require needs one of' serve --port 0 --tls=require --tls-certificates pki --tls-psk pki/keys.psk disk.img
expect_error 2 'need --tls=on or --tls=require' serve --port 0 --tls-certificates pki disk.img
expect_error 2 'need --tls=on or --tls=require' serve --port 0 --tls=off --tls-psk pki/keys.psk disk.img
expect_error 2 '--tls-verify-peer needs --tls-certificates' serve --port 0 --tls=on --tls-psk pki/keys.psk --tls-verify-peer disk.img
expect_error 2 'tls-only needs --tls=on' serve --port 0 --export a=disk.img,tls-only
expect_error 2 'tls-only needs --tls=on' serve --port 0 --tls=require --tls-psk pki/keys.psk --export a=disk.img,tls-only
"$VDISK" serve --help | grep -q -- '--tls-verify-peer' || fail "--help lacks the TLS options"

# The warning: plain NBD on a non-loopback address.
serve pid --bind 0.0.0.0 --port 0 disk.img
stop_serve "$pid"
grep -q 'warning: listening on tcp 0.0.0.0 port [0-9]* (not loopback) without TLS' "$serve_log" \
    || { cat "$serve_log"; fail "no warning for 0.0.0.0 without TLS"; }
serve pid --bind 0.0.0.0 --port 0 --tls=require --tls-psk pki/keys.psk disk.img
stop_serve "$pid"
! grep -q 'warning' "$serve_log" || { cat "$serve_log"; fail "warning with TLS"; }
serve pid --bind 127.0.0.1 --port 0 disk.img
stop_serve "$pid"
! grep -q 'warning' "$serve_log" || { cat "$serve_log"; fail "warning on loopback"; }
echo "test-serve-tls-config: OK"
