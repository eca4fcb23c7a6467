#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# TLS errors of the NBD client, each with its message, and the settings
# that must work:
#   - wrong CA, certificate for another name, expired certificate, wrong
#     PSK: clear messages, not retried (fast, VD_EVENT_FAILED fires);
#     tls-verify-peer=0 connects despite the wrong CA
#   - nbds:// against a server without TLS: refused, and the client sent
#     nothing but its flags, NBD_OPT_STARTTLS and NBD_OPT_ABORT (checked
#     with nbdkit's debug log and with tls-fake-server.py); no fixed
#     newstyle: nothing sent at all
#   - nbd:// with tls-certificates: TLS against --tls=require, plaintext
#     against a server without TLS
#   - STARTTLS acknowledged, then garbage / injected plaintext / silence:
#     clean errors, the silence bounded by the timeout
#   - a reconnection after a cut never downgrades a connection that had
#     TLS (a man in the middle answering STARTTLS with ERR_POLICY)
#   - tls-type=anon refused at open
. "$top_srcdir/tests/functions.sh"

: "${NBD_IO:?}"
requires python3 --version
requires nbdkit --version
requires certtool --version

certs=$tmpdir/certs
other=$tmpdir/other
vdisk tls gen-certs "$certs" > /dev/null
vdisk tls gen-certs "$other" > /dev/null   # another CA, another PSK

# An expired server certificate from the right CA.
exp=$tmpdir/expired
mkdir "$exp"
cp "$certs/ca-cert.pem" "$exp/"
cat > "$tmpdir/exp.tmpl" <<'EOF'
cn = "localhost"
dns_name = "localhost"
ip_address = "127.0.0.1"
tls_www_server
encryption_key
signing_key
activation_date = "2020-01-01 00:00:00"
expiration_date = "2021-01-01 00:00:00"
EOF
certtool --generate-privkey --outfile "$exp/server-key.pem" 2> /dev/null
certtool --generate-certificate --load-privkey "$exp/server-key.pem" \
    --load-ca-certificate "$certs/ca-cert.pem" \
    --load-ca-privkey "$certs/ca-key.pem" \
    --template "$tmpdir/exp.tmpl" --outfile "$exp/server-cert.pem" 2> /dev/null

server_pid=
start_nbdkit () # ARGS...
{
    port=$(pick_port)
    start_bg server_pid nbdkit -f -v -i 127.0.0.1 -p "$port" "$@" \
        memory 16M 2> "$tmpdir/nbdkit.log"
    wait_for_port "$port"
}

# expect_fail ERRNO URI PATTERN: fails with ERRNO and a message matching
# PATTERN, within 5 s (a -t 20 timeout: the failure is not retried), and
# VD_EVENT_FAILED fires.
expect_fail ()
{
    local errno=$1 uri=$2 pattern=$3 t0 t1
    rm -f "$tmpdir/events"
    t0=$(date +%s%N)
    "$NBD_IO" -t 20 --events "$tmpdir/events" --expect-fail "$errno" \
        info "$uri" > "$tmpdir/out" 2>&1 ||
        fail "$uri: $(cat "$tmpdir/out")"
    t1=$(date +%s%N)
    cat "$tmpdir/out"
    grep -q -- "$pattern" "$tmpdir/out" ||
        fail "$uri: the message does not say '$pattern'"
    [ $(( (t1 - t0) / 1000000 )) -lt 5000 ] ||
        fail "$uri: took $(( (t1 - t0) / 1000000 )) ms: retried?"
    grep -q ' failed ' "$tmpdir/events" || fail "$uri: no failed event"
}

echo "== X.509 errors"
start_nbdkit --tls=require --tls-certificates="$certs"
expect_fail 13 "nbds://localhost:$port/?tls-certificates=$other" \
    "the server's certificate is not trusted: signer not found"
expect_fail 13 "nbds://localhost:$port/?tls-certificates=$certs&tls-hostname=wrong.example" \
    "the server's certificate is not valid for the name 'wrong.example'"
"$NBD_IO" -t 20 info "nbds://localhost:$port/?tls-certificates=$other&tls-verify-peer=0" |
    grep -x 'nbd.tls: TLS1\.[23], X.509, server not verified'
echo "== opportunistic TLS against --tls=require"
"$NBD_IO" -t 20 info "nbd://localhost:$port/?tls-certificates=$certs" |
    grep -x 'nbd.tls: TLS1\.[23], X.509, server verified'
expect_fail 95 "nbd://localhost:$port/" "the server requires TLS"
kill_bg "$server_pid"

echo "== expired certificate"
start_nbdkit --tls=require --tls-certificates="$exp"
expect_fail 13 "nbds://localhost:$port/?tls-certificates=$certs" \
    "the server's certificate has expired"
kill_bg "$server_pid"

echo "== wrong PSK"
start_nbdkit --tls=require --tls-psk="$certs/keys.psk"
expect_fail 13 "nbds://vdisk@localhost:$port/?tls-psk-file=$other/keys.psk" \
    "TLS handshake failed: .*(wrong PSK"
expect_fail 22 "nbds://nobody@localhost:$port/?tls-psk-file=$certs/keys.psk" \
    "has no key for user 'nobody'"
kill_bg "$server_pid"

echo "== nbds:// against a server without TLS"
start_nbdkit
expect_fail 95 "nbds://localhost:$port/?tls-certificates=$certs" \
    "the server refuses TLS (NBD_REP_ERR_POLICY to NBD_OPT_STARTTLS)"
# nbdkit logs each option it receives: STARTTLS, then ABORT, nothing else.
grep -o 'replying to NBD_OPT_[A-Z_]*' "$tmpdir/nbdkit.log" > "$tmpdir/opts"
cat "$tmpdir/opts"
printf '%s\n' "replying to NBD_OPT_STARTTLS" "replying to NBD_OPT_ABORT" |
    cmp - "$tmpdir/opts" ||
    fail "the client sent more than STARTTLS and ABORT in plaintext"
echo "== opportunistic TLS against a server without TLS"
"$NBD_IO" -t 20 info "nbd://localhost:$port/?tls-certificates=$certs" |
    grep -x 'nbd.tls: none'
kill_bg "$server_pid"

echo "== fake servers"
fake ()
{
    rm -f "$tmpdir/fake.log" "$tmpdir/fake.sock"
    start_bg server_pid python3 "$top_srcdir/tests/client/tls-fake-server.py" \
        "$tmpdir/fake.sock" "$1" "$tmpdir/fake.log"
    wait_for_socket "$tmpdir/fake.sock"
    furi="nbds+unix:///secret-export?socket=$tmpdir/fake.sock&tls-certificates=$certs"
}
fake refuse
expect_fail 95 "$furi" "the server refuses TLS .*no TLS here.*will not connect to an nbds+unix URI without TLS"
kill_bg "$server_pid"
cat "$tmpdir/fake.log"
printf '%s\n' accept "flags 3" "option 5" "option 2" eof |
    cmp - "$tmpdir/fake.log" || fail "unexpected plaintext from the client"

fake unsup
expect_fail 95 "$furi" "the server does not support TLS (NBD_REP_ERR_UNSUP"
kill_bg "$server_pid"
grep -c '^option' "$tmpdir/fake.log" | grep -qx 2 || fail "more than 2 options"
# Opportunistic TLS goes on in plaintext after ERR_UNSUP.
fake unsup
# (The fake server serves no export: the client gets as far as
# NBD_OPT_EXPORT_NAME and then fails on its reply.)
"$NBD_IO" -t 20 --expect-fail 71 info \
    "nbd+unix:///?socket=$tmpdir/fake.sock&tls-certificates=$certs"
kill_bg "$server_pid"
grep -q '^option 7' "$tmpdir/fake.log" && grep -q '^option 1' "$tmpdir/fake.log" ||
    fail "opportunistic TLS did not go on to NBD_OPT_GO after ERR_UNSUP"

fake nofixed
expect_fail 95 "$furi" "does not do fixed newstyle negotiation"
sleep 0.2
kill_bg "$server_pid"
grep -qx 'received 0' "$tmpdir/fake.log" ||
    fail "the client sent bytes to a server without fixed newstyle"

fake garbage
rm -f "$tmpdir/events"
"$NBD_IO" -t 3 --events "$tmpdir/events" --expect-fail 71 info "$furi" \
    > "$tmpdir/out" 2>&1 || fail "garbage: $(cat "$tmpdir/out")"
cat "$tmpdir/out"
grep -q 'TLS handshake failed: ' "$tmpdir/out" || fail "garbage: no TLS message"
kill_bg "$server_pid"

fake inject
expect_fail 71 "$furi" "the server sent 16 bytes after acknowledging NBD_OPT_STARTTLS"
kill_bg "$server_pid"

fake hang
"$NBD_IO" -t 2 --expect-fail 110 info "$furi" > "$tmpdir/out" 2>&1 ||
    fail "hang: $(cat "$tmpdir/out")"
cat "$tmpdir/out"
grep -q 'TLS_HANDSHAKE' "$tmpdir/out" || fail "hang: the timeout does not name the TLS handshake"
kill_bg "$server_pid"

echo "== no downgrade when a connection that had TLS is cut"
# Opportunistic TLS (nbd+unix with certificates) finds TLS through a man
# in the middle that relays to nbdkit --tls=require, then cuts the line
# and answers every reconnection's STARTTLS with ERR_POLICY.  The client
# must not go on in plaintext (no NBD_OPT_GO, no export name: only
# STARTTLS and ABORT), and the I/O fails instead of reaching the
# attacker.  The ERR_UNSUP case above shows that the same client does
# go on in plaintext when its first connection finds no TLS.
rm -f "$tmpdir/up.sock" "$tmpdir/fake.log" "$tmpdir/fake.sock"
start_bg up_pid nbdkit -f -U "$tmpdir/up.sock" --tls=require \
    --tls-certificates="$certs" memory 64M
wait_for_socket "$tmpdir/up.sock"
start_bg server_pid python3 "$top_srcdir/tests/client/tls-fake-server.py" \
    "$tmpdir/fake.sock" mitm "$tmpdir/fake.log" "$tmpdir/up.sock" $((4 << 20))
wait_for_socket "$tmpdir/fake.sock"
"$NBD_IO" -t 5 --expect-fail 95 torture --rounds 3 \
    "nbd+unix:///?socket=$tmpdir/fake.sock&tls-certificates=$certs" \
    > "$tmpdir/out" 2>&1 || fail "mitm: $(cat "$tmpdir/out")"
cat "$tmpdir/out"
kill_bg "$server_pid"
kill_bg "$up_pid"
cat "$tmpdir/fake.log"
grep -qx cut "$tmpdir/fake.log" || fail "mitm: the relayed connection was never cut"
# Every connection after the relayed one: STARTTLS refused, then ABORT.
sed '1,/^cut$/d' "$tmpdir/fake.log" | grep '^option' | sort -u > "$tmpdir/opts"
printf '%s\n' "option 2" "option 5" | cmp - "$tmpdir/opts" ||
    fail "mitm: the client sent more than STARTTLS and ABORT after losing TLS"
grep -q "had TLS before, and vdisk will not reconnect without it" "$tmpdir/out" ||
    fail "mitm: the error does not say why TLS is required"

echo "== tls-type=anon"
"$NBD_IO" --expect-fail 95 info "nbds://localhost/?tls-type=anon" |
    grep 'tls-type=anon is not supported'
echo PASS
