#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Our NBD client against our NBD server over TLS:
#   - X.509 over TCP and PSK over a unix socket: a RAW -> NBD -> ASIF
#     round trip through vdisk image convert, byte-identical, and
#     block status through vdisk image map;
#   - the server verifying client certificates (--tls-verify-peer): a
#     client with a certificate from the CA gets in, one without is
#     refused with a message that says so;
#   - opportunistic TLS: nbd:// with tls-certificates upgrades against
#     --tls=on and stays plaintext against --tls=off;
#   - nbds:// against --tls=off fails and the server saw nothing but
#     STARTTLS;
#   - a tls-only export (SELECTIVETLS) is refused in plaintext and
#     served over TLS;
#   - a reconnecting copy through TLS while the server is killed (-9)
#     and restarted: the handshake is repeated and nothing is lost.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/server/serve-functions.sh"
. "$top_srcdir/tests/tls/tls-functions.sh"
requires qemu-img --version

certs=$tmpdir/certs
tls_gen "$certs"
psk=$certs/keys.psk

# Source: 16 MiB with data, zero runs and holes, as a RAW file.
src=$tmpdir/src.img
truncate -s 16M "$src"
head -c 1M /dev/urandom | dd of="$src" bs=1M seek=1 conv=notrunc status=none
head -c 3M /dev/urandom | dd of="$src" bs=1M seek=6 conv=notrunc status=none
dd if=/dev/zero of="$src" bs=1M seek=10 count=1 conv=notrunc status=none
head -c 4096 /dev/urandom | dd of="$src" bs=4096 seek=4000 conv=notrunc status=none

# round_trip URI: upload src into the export at URI, download it into an
# ASIF image, compare both with the source.
round_trip ()
{
    local uri=$1 out=$tmpdir/out.asif
    rm -f "$out"
    vdisk image convert -n "$src" "$uri" 2>"$tmpdir/err" \
        || fail "convert into $uri: $(cat "$tmpdir/err")"
    vdisk image compare "$src" "$uri" >/dev/null 2>"$tmpdir/err" \
        || fail "compare with $uri: $(cat "$tmpdir/err")"
    vdisk image convert -O asif "$uri" "$out" 2>"$tmpdir/err" \
        || fail "convert from $uri: $(cat "$tmpdir/err")"
    vdisk image compare "$src" "$out" >/dev/null || fail "round trip through $uri differs"
    vdisk image map --json "$uri" > "$tmpdir/map.json" 2>"$tmpdir/err" \
        || fail "map $uri: $(cat "$tmpdir/err")"
    grep -q '"data": true' "$tmpdir/map.json" || fail "map shows no data: $(cat "$tmpdir/map.json")"
}

# 1. X.509 over TCP, the export an ASIF image.
make_image asif "$tmpdir/x509.asif" 16MiB
port=$(pick_port)
serve pid --tls=require --tls-certificates "$certs" --port "$port" "$tmpdir/x509.asif"
round_trip "nbds://localhost:$port/?tls-certificates=$certs"
# The server's name is checked: 127.0.0.1 is in the certificate, a
# tls-hostname that is not fails.
vdisk image info "nbds://127.0.0.1:$port/?tls-certificates=$certs" >/dev/null \
    || fail "connecting by address failed"
if vdisk image info "nbds://localhost:$port/?tls-certificates=$certs&tls-hostname=other.example" \
        >/dev/null 2>"$tmpdir/err"; then
    fail "a wrong tls-hostname was accepted"
fi
grep -qi "name\|host" "$tmpdir/err" || fail "hostname mismatch message: $(cat "$tmpdir/err")"
kill "$pid"; wait "$pid" 2>/dev/null || true

# 2. PSK over a unix socket, the export a RAW file.
truncate -s 16M "$tmpdir/psk.raw"
sock=$tmpdir/psk.sock
serve pid --tls=require --tls-psk "$psk" --socket "$sock" "$tmpdir/psk.raw"
round_trip "nbds+unix://vdisk@/?socket=$sock&tls-psk-file=$psk"
cmp "$src" "$tmpdir/psk.raw" || fail "the served file differs from the source"
tls_wrong_psk "$tmpdir/wrong.psk"
if vdisk image info "nbds+unix://vdisk@/?socket=$sock&tls-psk-file=$tmpdir/wrong.psk" \
        >/dev/null 2>"$tmpdir/err"; then
    fail "a wrong PSK was accepted"
fi
grep -qi "tls\|psk" "$tmpdir/err" || fail "wrong PSK message: $(cat "$tmpdir/err")"
kill "$pid"; wait "$pid" 2>/dev/null || true

# 3. Client certificates verified by the server.
truncate -s 4M "$tmpdir/vp.raw"
port=$(pick_port)
serve pid --tls=require --tls-certificates "$certs" --tls-verify-peer --port "$port" "$tmpdir/vp.raw"
vdisk image info "nbds://localhost:$port/?tls-certificates=$certs" >/dev/null 2>"$tmpdir/err" \
    || fail "a client with a certificate was refused: $(cat "$tmpdir/err")"
mkdir "$tmpdir/cafile-only"
cp "$certs/ca-cert.pem" "$tmpdir/cafile-only/"
# Refused at once, not after a reconnection window of retries (TLS 1.3
# refuses a client certificate only after the client's handshake ended),
# with a message that says what to fix.
start=$SECONDS
if vdisk image info --timeout 30 "nbds://localhost:$port/?tls-certificates=$tmpdir/cafile-only" \
        >/dev/null 2>"$tmpdir/err"; then
    fail "a client without a certificate got in despite --tls-verify-peer"
fi
[ $((SECONDS - start)) -lt 10 ] || fail "a refused certificate was retried for $((SECONDS - start)) s"
grep -q "client certificate\|certificate" "$tmpdir/err" \
    || fail "refused client certificate: $(cat "$tmpdir/err")"
kill "$pid"; wait "$pid" 2>/dev/null || true

# 4. Opportunistic TLS on nbd:// with certificates.
truncate -s 4M "$tmpdir/opp.raw"
port=$(pick_port)
serve pid --tls=on --tls-certificates "$certs" --port "$port" -v "$tmpdir/opp.raw"
vdisk image info --json "nbd://localhost:$port/?tls-certificates=$certs" > "$tmpdir/info" \
    2>"$tmpdir/err" || fail "opportunistic TLS against --tls=on: $(cat "$tmpdir/err")"
kill "$pid"; wait "$pid" 2>/dev/null || true
grep -qi "tls" "$serve_log" || fail "the server did not log a TLS session: $(cat "$serve_log")"
port=$(pick_port)
serve pid --port "$port" "$tmpdir/opp.raw"
vdisk image info "nbd://localhost:$port/?tls-certificates=$certs" > /dev/null \
    2>"$tmpdir/err" || fail "opportunistic TLS against a plaintext server: $(cat "$tmpdir/err")"

# 5. nbds:// against the same plaintext server: refused, and the server
# saw STARTTLS and nothing else (no GO, no export name).
kill "$pid"; wait "$pid" 2>/dev/null || true
port=$(pick_port)
serve pid --port "$port" -v -v "$tmpdir/opp.raw"
if vdisk image info "nbds://localhost:$port/?tls-certificates=$certs" >/dev/null 2>"$tmpdir/err"; then
    fail "nbds:// was served in plaintext"
fi
grep -qi "tls" "$tmpdir/err" || fail "nbds against plaintext: $(cat "$tmpdir/err")"
sleep 0.2
grep -q "STARTTLS" "$serve_log" || fail "the server saw no STARTTLS: $(cat "$serve_log")"
if grep -E "NBD_OPT_(GO|INFO|EXPORT_NAME|LIST|STRUCTURED|EXTENDED|SET_META)" "$serve_log"; then
    fail "the client sent options besides STARTTLS"
fi
kill "$pid"; wait "$pid" 2>/dev/null || true

# 6. A tls-only export next to a plain one (SELECTIVETLS).
truncate -s 4M "$tmpdir/pub.raw" "$tmpdir/secret.raw"
port=$(pick_port)
serve pid --tls=on --tls-certificates "$certs" --port "$port" \
    --export "pub=$tmpdir/pub.raw" --export "secret=$tmpdir/secret.raw,tls-only"
vdisk image info "nbd://localhost:$port/pub" >/dev/null || fail "plain export refused"
if vdisk image info "nbd://localhost:$port/secret" >/dev/null 2>"$tmpdir/err"; then
    fail "a tls-only export was served in plaintext"
fi
grep -qi "tls" "$tmpdir/err" || fail "tls-only message: $(cat "$tmpdir/err")"
vdisk image info "nbds://localhost:$port/secret?tls-certificates=$certs" >/dev/null \
    2>"$tmpdir/err" || fail "tls-only export over TLS: $(cat "$tmpdir/err")"
kill "$pid"; wait "$pid" 2>/dev/null || true

# 7. Reconnection: copy 64 MiB into a TLS export through a reconnecting
# NBD attachment while the server is killed with SIGKILL and restarted
# three times; the data arrives whole.
head -c 64M /dev/urandom > "$tmpdir/big.src"
truncate -s 64M "$tmpdir/big.raw"
port=$(pick_port)
serve pid --tls=require --tls-certificates "$certs" --port "$port" "$tmpdir/big.raw"
vdisk image convert -n --timeout 30 "$tmpdir/big.src" \
    "nbds://localhost:$port/?tls-certificates=$certs" 2>"$tmpdir/conv.err" &
conv=$!
cleanup_fn "kill -9 $conv 2>/dev/null"
for i in 1 2 3; do
    sleep 0.3
    kill -0 "$conv" 2>/dev/null || break
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    sleep 0.2
    serve pid --tls=require --tls-certificates "$certs" --port "$port" "$tmpdir/big.raw"
done
wait "$conv" || fail "convert through restarts: $(cat "$tmpdir/conv.err")"
cmp "$tmpdir/big.src" "$tmpdir/big.raw" || fail "data lost across reconnections"
echo "test-tls-vdisk: OK"
