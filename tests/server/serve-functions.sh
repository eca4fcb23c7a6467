# SPDX-License-Identifier: LGPL-2.1-or-later
# Helpers for the `vdisk serve` shell tests.  Source after
# tests/functions.sh.

# nbdsh is "python3 -m nbd": use a python3 that has libnbd's module
# (a python3 earlier in PATH may lack it).
NBD_PY=
for _py in python3 /usr/bin/python3; do
    if "$_py" -c 'import nbd' >/dev/null 2>&1; then NBD_PY=$_py; break; fi
done
nbdsh () { "${NBD_PY:-python3}" -m nbd "$@"; }
nbdpy () { "${NBD_PY:-python3}" "$@"; }
requires_nbdsh () { requires "${NBD_PY:-python3}" -c 'import nbd'; }

# The image formats every server test runs on.  (Both are built in:
# make_image fails the test if one cannot be created.)
formats () { echo raw asif; }

# make_image FORMAT PATH SIZE
make_image ()
{
    local fmt=$1 path=$2 size=$3
    rm -f "$path"
    vdisk image create blank --fs none --format "$fmt" --size "$size" "$path" >/dev/null
}

# serve VAR [vdisk serve options and arguments]: start vdisk serve in the
# background (killed at exit), wait until it listens, store its PID in
# VAR.  Sets $serve_log, $serve_uri (first URI) and $serve_uris (all,
# one per line: unix socket first, then TCP, as listened).
_serve_n=0
serve ()
{
    local _var=$1; shift
    _serve_n=$((_serve_n+1))
    local _base=$tmpdir/serve-$_serve_n
    # Not through the vdisk function: $! must be the server itself.
    if [ "${VD_VALGRIND:-0}" = 1 ]; then
        valgrind --error-exitcode=99 --leak-check=full --quiet \
            --errors-for-leak-kinds=definite \
            "$VDISK" serve --pid-file "$_base.pid" --print-uri "$@" \
            >"$_base.uri" 2>"$_base.log" &
    else
        "$VDISK" serve --pid-file "$_base.pid" --print-uri "$@" \
            >"$_base.uri" 2>"$_base.log" &
    fi
    local _pid=$! _i
    cleanup_fn "kill -9 $_pid 2>/dev/null; wait $_pid 2>/dev/null"
    printf -v "$_var" '%s' "$_pid"
    for (( _i=0; _i < 400; _i++ )); do
        [ -s "$_base.pid" ] && break
        if ! kill -0 "$_pid" 2>/dev/null; then
            cat "$_base.log" >&2
            fail "vdisk serve $* exited"
        fi
        sleep 0.05
    done
    [ -s "$_base.pid" ] || fail "vdisk serve $* did not start"
    [ "$(cat "$_base.pid")" = "$_pid" ] || fail "pid file holds the wrong pid"
    serve_log=$_base.log
    serve_uris=$(cat "$_base.uri")
    serve_uri=$(head -1 "$_base.uri")
}

# stop_serve PID: SIGTERM, wait, fail unless it exited 0.
stop_serve ()
{
    local pid=$1 st=0
    kill -TERM "$pid"
    wait "$pid" || st=$?
    [ $st = 0 ] || { cat "$serve_log" >&2; fail "vdisk serve exited with $st"; }
}

# The allocation of an image as "start length zero data" lines with runs
# merged, from JSON lines {"start","length","zero","data"}.
norm_map ()
{
    jq -r '"\(.start) \(.length) \(.zero) \(.data)"' | awk '
      { if (n && z == $3 && d == $4 && s + l == $1) { l += $2 }
        else { if (n) print s, l, z, d; s=$1; l=$2; z=$3; d=$4; n=1 } }
      END { if (n) print s, l, z, d }'
}

# TLS test credentials in DIR: ca-cert.pem, server-cert.pem,
# server-key.pem, client-cert.pem, client-key.pem, keys.psk (user
# "vdisk"), from `vdisk tls gen-certs` (the lead's tests/tls helpers
# make the same layout).
tls_certs ()
{
    vdisk tls gen-certs "$1" >/dev/null || fail "vdisk tls gen-certs $1"
    [ -s "$1/server-key.pem" ] && [ -s "$1/keys.psk" ] || fail "no credentials in $1"
}

# The TCP port of a URI such as nbds://127.0.0.1:40000/name.
uri_port ()
{
    local u=${1##*:}
    echo "${u%%/*}"
}
