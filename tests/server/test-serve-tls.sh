#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vdisk serve with TLS against real clients: nbdinfo, nbdcopy and
# qemu-img over X.509 (with client certificates checked) and PSK, data
# written and read back; FORCEDTLS and SELECTIVETLS option by option and
# the state reset after STARTTLS (nbd-tls-client.py); failures (no or
# foreign client certificate, wrong key, unknown PSK user) refused and
# logged with the client; clients stalled inside the TLS handshake cut
# off at --handshake-timeout while another client is served.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/server/serve-functions.sh"
requires nbdinfo --version
requires nbdcopy --version
requires qemu-img --version
requires python3 -c 'import ssl'
cd "$tmpdir"
raw="python3 $top_srcdir/tests/server/nbd-tls-client.py"

tls_certs pki
tls_certs other
dd if=/dev/urandom of=src1.img bs=1M count=3 status=none
dd if=/dev/urandom of=src2.img bs=1M count=2 status=none
make_image raw disk.img 8MiB
make_image raw pub.img 1MiB
head=$((3 << 20))

echo "== X.509, --tls=require, --tls-verify-peer"
serve pid --port 0 --tls=require --tls-certificates pki --tls-verify-peer -v disk.img
[[ "$serve_uri" == nbds://127.0.0.1:* ]] || fail "URI without nbds: $serve_uri"
port=$(uri_port "$serve_uri")
u="nbds://localhost:$port/?tls-certificates=pki"
nbdinfo "$u" | grep -q 'with TLS' || fail "nbdinfo: no TLS"
nbdcopy src1.img "$u"
nbdcopy "$u" out1.img
cmp -n $head src1.img out1.img || fail "nbdcopy over TLS: data differs"
obj="tls-creds-x509,id=tls0,dir=$tmpdir/pki,endpoint=client"
nbdopts="file.driver=nbd,file.host=localhost,file.port=$port,file.tls-creds=tls0"
qemu-img info --object "$obj" --image-opts "driver=raw,$nbdopts" \
    | grep -q 'virtual size: 8 MiB' || fail "qemu-img info over TLS"
qemu-img convert -n -f raw src2.img --object "$obj" \
    --target-image-opts "driver=raw,$nbdopts"
qemu-img convert -O raw --object "$obj" --image-opts "driver=raw,$nbdopts" q.img
cmp -n $((2 << 20)) src2.img q.img || fail "qemu-img over TLS: data differs"
nbdcopy "$u" out1.img
cmp -n $((2 << 20)) src2.img out1.img || fail "qemu-img wrote, nbdcopy read: differs"
$raw require "$port"

# No client certificate, then one from another CA: refused, logged.
mkdir nocert mixed
cp pki/ca-cert.pem nocert/
cp pki/ca-cert.pem mixed/
cp other/client-cert.pem other/client-key.pem mixed/
! nbdinfo "nbds://localhost:$port/?tls-certificates=nocert" 2>/dev/null \
    || fail "a client without a certificate got in"
! nbdinfo "nbds://localhost:$port/?tls-certificates=mixed" 2>/dev/null \
    || fail "a client certificate from another CA got in"
stop_serve "$pid"
grep -E 'client #[0-9]+ 127\.0\.0\.1:[0-9]+: TLS handshake failed: the client sent no certificate' "$serve_log" \
    || { cat "$serve_log"; fail "no log of the client without a certificate"; }
grep -E 'client #[0-9]+ 127\.0\.0\.1:[0-9]+: TLS handshake failed: client certificate rejected: .*issuer is unknown' "$serve_log" \
    || { cat "$serve_log"; fail "no log of the foreign client certificate"; }
grep -qE "TLS: TLS1\.[23], .*, client certificate '.+'" "$serve_log" \
    || { cat "$serve_log"; fail "the accepted client certificate is not logged"; }

echo "== PSK, --tls=on, a tls-only export"
serve pid --port 0 --tls=on --tls-psk pki/keys.psk \
    --export pub=pub.img --export secret=disk.img,tls-only
port=$(uri_port "$serve_uri")
us="nbds://vdisk@localhost:$port/secret?tls-psk-file=pki/keys.psk"
nbdcopy src2.img "$us"
nbdcopy "$us" out2.img
cmp -n $((2 << 20)) src2.img out2.img || fail "nbdcopy over PSK: data differs"
qemu-img convert -n -f raw src1.img \
    --object "tls-creds-psk,id=tls0,dir=$tmpdir/pki,username=vdisk,endpoint=client" \
    --target-image-opts "driver=raw,file.driver=nbd,file.host=127.0.0.1,file.port=$port,file.export=secret,file.tls-creds=tls0"
nbdcopy "$us" out2.img
cmp -n $head src1.img out2.img || fail "qemu-img wrote over PSK, nbdcopy read: differs"
# SELECTIVETLS: the list without TLS hides the tls-only export.
plain=$(nbdinfo --list --json "nbd://localhost:$port/")
[ "$(jq -r '[.exports[]."export-name"] | join(",")' <<<"$plain")" = pub ] \
    || fail "list without TLS: $plain"
tls=$(nbdinfo --list --json "nbds://vdisk@localhost:$port/?tls-psk-file=pki/keys.psk")
[ "$(jq -r '[.exports[]."export-name"] | sort | join(",")' <<<"$tls")" = pub,secret ] \
    || fail "list with TLS: $tls"
! nbdinfo "nbd://localhost:$port/secret" 2>/dev/null || fail "tls-only export served in the clear"
nbdinfo "nbd://localhost:$port/pub" >/dev/null || fail "public export not served in the clear"
# A wrong key and an unknown user.
echo "vdisk:00112233445566778899aabbccddeeff" > wrong.psk
echo "nobody:00112233445566778899aabbccddeeff" > nobody.psk
! nbdinfo "nbds://vdisk@localhost:$port/secret?tls-psk-file=wrong.psk" 2>/dev/null \
    || fail "a wrong PSK got in"
! nbdinfo "nbds://nobody@localhost:$port/secret?tls-psk-file=nobody.psk" 2>/dev/null \
    || fail "an unknown PSK user got in"
stop_serve "$pid"
grep -E "client #[0-9]+ 127\.0\.0\.1:[0-9]+: TLS: unknown PSK user 'nobody'" "$serve_log" \
    || { cat "$serve_log"; fail "unknown PSK user not logged"; }
[ "$(grep -cE 'client #[0-9]+ 127\.0\.0\.1:[0-9]+: TLS handshake failed' "$serve_log")" -ge 2 ] \
    || { cat "$serve_log"; fail "failed PSK handshakes not logged"; }

echo "== X.509, --tls=on: SELECTIVETLS, state reset, stalled handshakes"
# The limit leaves the third client time to copy (valgrind is slower).
hs=3
[ "${VD_VALGRIND:-0}" = 1 ] && hs=15
serve pid --port 0 --tls=on --tls-certificates pki --handshake-timeout $hs \
    --export pub=pub.img --export secret=disk.img,tls-only
port=$(uri_port "$serve_uri")
$raw selective "$port" pki secret pub
$raw reset "$port" pki
$raw stall "$port" nothing > stall1.out &
s1=$!
$raw stall "$port" partial > stall2.out &
s2=$!
cleanup_fn "kill $s1 $s2 2>/dev/null"
sleep 0.5
# Served meanwhile, over TLS, while the two stall.
nbdcopy "nbds://localhost:$port/secret?tls-certificates=pki" out3.img
cmp -n $head src1.img out3.img || fail "data read during the stalls differs"
kill -0 "$s1" 2>/dev/null && kill -0 "$s2" 2>/dev/null \
    || fail "a stalled client was cut off before the time limit"
wait "$s1" || fail "stall (nothing): $(cat stall1.out)"
wait "$s2" || fail "stall (partial ClientHello): $(cat stall2.out)"
for f in stall1.out stall2.out; do
    t=$(cat "$f")
    awk -v t="$t" -v hs=$hs 'BEGIN { exit !(t >= hs / 2 && t <= hs + 3) }' \
        || fail "$f: cut off after $t s, the limit is $hs s from connecting"
done
stop_serve "$pid"
[ "$(grep -cE "client #[0-9]+ 127\\.0\\.0\\.1:[0-9]+: TLS handshake not finished within the handshake time limit \\($hs seconds\\)" "$serve_log")" = 2 ] \
    || { cat "$serve_log"; fail "stalled handshakes not logged"; }

echo "== --tls=off: STARTTLS refused"
serve pid --port 0 pub.img
$raw off "$(uri_port "$serve_uri")"
stop_serve "$pid"
echo "test-serve-tls: OK"
