#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vdisk tls gen-certs: the files, their modes and names, a chain certtool
# verifies, refusal to overwrite, usage errors, and certificates and a PSK
# file that real peers (nbdkit serving, nbdinfo and qemu-img connecting)
# accept.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/tls/tls-functions.sh"
requires certtool --version
requires nbdkit --version
requires nbdinfo --version
requires qemu-img --version

d=$tmpdir/certs
vdisk tls gen-certs --hostname nbd.example.test -n 192.0.2.7 --days 30 \
    --psk-user alice "$d" > "$tmpdir/out" || fail "gen-certs failed"
grep -q "vdisk serve --tls=require --tls-certificates $d" "$tmpdir/out" \
    || fail "no usage hint: $(cat "$tmpdir/out")"
[ "$(stat -c %a "$d")" = 700 ] || fail "DIR mode is not 0700"
for f in ca-cert.pem server-cert.pem client-cert.pem; do
    [ "$(stat -c %a "$d/$f")" = 644 ] || fail "$f mode $(stat -c %a "$d/$f")"
done
for f in ca-key.pem server-key.pem client-key.pem keys.psk; do
    [ "$(stat -c %a "$d/$f")" = 600 ] || fail "$f mode $(stat -c %a "$d/$f")"
done
ls "$d" | grep -q tmp && fail "temporary files left: $(ls "$d")"

# The chain verifies, the names are there, the validity is 30 days.
for f in server-cert.pem client-cert.pem; do
    certtool --verify --load-ca-certificate "$d/ca-cert.pem" \
        --infile "$d/$f" >"$tmpdir/verify" 2>&1 \
        || fail "$f does not verify: $(cat "$tmpdir/verify")"
done
certtool -i --infile "$d/server-cert.pem" > "$tmpdir/server.txt"
for n in "DNSname: localhost" "DNSname: nbd.example.test" \
         "IPAddress: 127.0.0.1" "IPAddress: ::1" "IPAddress: 192.0.2.7" \
         "Subject: CN=nbd.example.test" "TLS WWW Server"; do
    grep -qF "$n" "$tmpdir/server.txt" || fail "server cert lacks '$n'"
done
certtool -i --infile "$d/client-cert.pem" | grep -qF "TLS WWW Client" \
    || fail "client cert is not for TLS clients"
certtool -i --infile "$d/ca-cert.pem" | grep -qF "Certificate Authority (CA): TRUE" \
    || fail "CA cert is not a CA"
after=$(certtool -i --infile "$d/server-cert.pem" | sed -n 's/.*Not After: //p')
days=$(( ($(date -d "$after" +%s) - $(date +%s)) / 86400 ))
[ "$days" -ge 29 ] && [ "$days" -le 30 ] || fail "validity $days days, not 30"
grep -Eq '^alice:[0-9a-f]{64}$' "$d/keys.psk" || fail "bad keys.psk: $(cat "$d/keys.psk")"

# Two runs make different keys.
vdisk tls gen-certs "$tmpdir/certs2" >/dev/null
cmp -s "$d/ca-key.pem" "$tmpdir/certs2/ca-key.pem" && fail "same CA key twice"
cmp -s "$tmpdir/certs2/keys.psk" "$d/keys.psk" && fail "same PSK twice"

# Existing files are not replaced without --force, and nothing changes.
sum=$(cat "$d"/* | md5sum)
if vdisk tls gen-certs "$d" 2>"$tmpdir/err"; then fail "overwrote $d"; fi
grep -q "already exists (use --force" "$tmpdir/err" || fail "message: $(cat "$tmpdir/err")"
[ "$(cat "$d"/* | md5sum)" = "$sum" ] || fail "files changed on refusal"
vdisk tls gen-certs --force "$d" >/dev/null || fail "--force failed"
[ "$(cat "$d"/* | md5sum)" != "$sum" ] || fail "--force changed nothing"

# Usage errors exit 2 with a message naming the problem.
expect_usage ()
{
    local want=$1; shift
    local rc=0
    vdisk tls gen-certs "$@" 2>"$tmpdir/err" >/dev/null || rc=$?
    [ $rc = 2 ] || fail "gen-certs $* exited $rc, not 2"
    grep -qF -- "$want" "$tmpdir/err" || fail "gen-certs $*: $(cat "$tmpdir/err")"
}
expect_usage "missing DIR"
expect_usage "--days" --days 0 "$tmpdir/x"
expect_usage "--psk-user" --psk-user "a:b" "$tmpdir/x"
expect_usage "--hostname" --hostname "" "$tmpdir/x"
expect_usage "too many arguments" "$tmpdir/x" "$tmpdir/y"
[ -e "$tmpdir/x" ] && fail "a usage error created DIR"
touch "$tmpdir/file"
if vdisk tls gen-certs "$tmpdir/file" 2>"$tmpdir/err"; then fail "DIR is a file"; fi
grep -q "not a directory" "$tmpdir/err" || fail "message: $(cat "$tmpdir/err")"

# Real peers accept them: nbdkit serves with the certificates and with
# the PSK, nbdinfo and qemu-img connect.
tls_gen "$tmpdir/peer"
port=$(pick_port)
start_bg nk nbdkit -f --exit-with-parent --tls=require \
    --tls-certificates="$tmpdir/peer" -p "$port" memory 1M
wait_for_port "$port"
nbdinfo "nbds://localhost:$port/?tls-certificates=$tmpdir/peer" > "$tmpdir/info" \
    || fail "nbdinfo with the certificates failed"
grep -q "with TLS" "$tmpdir/info" || fail "no TLS: $(cat "$tmpdir/info")"
qemu-img info --object "tls-creds-x509,id=tls0,dir=$tmpdir/peer,endpoint=client" \
    --image-opts "driver=nbd,host=localhost,port=$port,tls-creds=tls0" \
    > "$tmpdir/qinfo" || fail "qemu-img with the certificates failed"
grep -q "1048576 bytes" "$tmpdir/qinfo" || fail "qemu-img: $(cat "$tmpdir/qinfo")"
kill_bg "$nk"

port=$(pick_port)
start_bg nk nbdkit -f --exit-with-parent --tls=require \
    --tls-psk="$tmpdir/peer/keys.psk" -p "$port" memory 1M
wait_for_port "$port"
nbdinfo "nbds://vdisk@localhost:$port/?tls-psk-file=$tmpdir/peer/keys.psk" \
    > "$tmpdir/info" || fail "nbdinfo with the PSK failed"
grep -q "with TLS" "$tmpdir/info" || fail "no TLS: $(cat "$tmpdir/info")"
kill_bg "$nk"

# The expired-certificate helper makes what it says (other tests use it).
tls_gen_expired_server "$tmpdir/peer"
certtool --verify --load-ca-certificate "$tmpdir/peer/ca-cert.pem" \
    --infile "$tmpdir/peer/server-cert.pem" >"$tmpdir/verify" 2>&1 || true
grep -qi "expired" "$tmpdir/verify" || fail "not expired: $(cat "$tmpdir/verify")"
echo "test-tls-gen-certs: OK"
