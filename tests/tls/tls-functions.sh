# SPDX-License-Identifier: LGPL-2.1-or-later
# TLS helpers for shell tests.  Source after tests/functions.sh:
#   . "$top_srcdir/tests/tls/tls-functions.sh"
#
#   tls_gen DIR [ARGS...]     CA, server/client certificates and keys.psk
#                             (vdisk tls gen-certs), quietly
#   tls_gen_expired_server DIR
#                             replace DIR's server certificate by one, signed
#                             by the same CA, that expired yesterday
#   tls_wrong_psk FILE        a keys.psk with the user "vdisk" and another key

# Skip (fail in CI) when this vdisk was built without GnuTLS.
requires "$VDISK" tls gen-certs "$tmpdir/.tls-probe"
rm -rf "$tmpdir/.tls-probe"

tls_gen ()
{
    local dir=$1; shift
    "$VDISK" tls gen-certs "$@" "$dir" >/dev/null \
        || fail "vdisk tls gen-certs $dir failed"
}

# certtool (gnutls-bin) signs the expired certificate: vdisk tls gen-certs
# deliberately cannot make one.
tls_gen_expired_server ()
{
    local dir=$1
    requires certtool --version
    cat > "$dir/expired.tmpl" <<TMPL
cn = "localhost"
dns_name = "localhost"
ip_address = "127.0.0.1"
ip_address = "::1"
tls_www_server
signing_key
encryption_key
activation_date = "$(date -u -d '-3 days' '+%Y-%m-%d %H:%M:%S')"
expiration_date = "$(date -u -d '-1 day' '+%Y-%m-%d %H:%M:%S')"
TMPL
    certtool --generate-certificate --load-privkey "$dir/server-key.pem" \
        --load-ca-certificate "$dir/ca-cert.pem" \
        --load-ca-privkey "$dir/ca-key.pem" \
        --template "$dir/expired.tmpl" --outfile "$dir/server-cert.pem" \
        >/dev/null 2>&1 || fail "certtool could not make an expired certificate"
}

tls_wrong_psk ()
{
    printf 'vdisk:%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$1"
    chmod 600 "$1"
}
