# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared helpers for shell tests.  Source it:
#   . "$top_srcdir/tests/functions.sh"
# Conventions (nbdkit's tests/functions.sh.in):
#   - requires CMD ARGS...  : skip (exit 77) unless the command runs.  In
#     CI (VD_CI=1) a missing peer is a failure, not a skip: CI installs
#     them all, so a skip there would hide a broken setup.
#   - cleanup_fn CMD ARGS... : run at exit (LIFO), whatever happens.
#   - every temporary file lives in $tmpdir (made here, removed at exit).
#   - servers run on free loopback ports or unix sockets in $tmpdir and
#     are killed by PID (start_bg / kill_bg).
set -e
set -u

: "${VDISK:?VDISK must point at the vdisk binary (meson sets it)}"
: "${top_srcdir:?}"

_cleanup_fns=()
cleanup_fn () { _cleanup_fns+=("$*"); }
_run_cleanup ()
{
    local status=$? i
    set +e
    for (( i=${#_cleanup_fns[@]}-1; i>=0; i-- )); do
        eval "${_cleanup_fns[$i]}" >/dev/null 2>&1
    done
    exit $status
}
trap _run_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A per-test directory on a real file system (the build tree, unless
# VD_TEST_TMPDIR says otherwise): O_DIRECT tests do not work on tmpfs.
tmpdir=$(mktemp -d "${VD_TEST_TMPDIR:-$PWD}/vdtest.XXXXXX")
cleanup_fn rm -rf "$tmpdir"

skip () { echo "SKIP: $*" >&2; exit 77; }
fail () { echo "FAIL: $*" >&2; exit 1; }

requires ()
{
    if ! ( "$@" ) </dev/null >/dev/null 2>&1; then
        if [ "${VD_CI:-0}" = 1 ]; then
            fail "required peer missing in CI: $*"
        fi
        skip "$* is not available"
    fi
}

requires_root ()
{
    [ "$(id -u)" = 0 ] || skip "needs root"
}

# Run our binaries under valgrind when the valgrind test setup asks.
vdisk ()
{
    if [ "${VD_VALGRIND:-0}" = 1 ]; then
        valgrind --error-exitcode=99 --leak-check=full --quiet \
            --errors-for-leak-kinds=definite "$VDISK" "$@"
    else
        "$VDISK" "$@"
    fi
}

# A free TCP port on 127.0.0.1.
pick_port ()
{
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_bg VAR CMD ARGS... : start CMD in the background, store its PID in
# VAR, and kill it at exit.
start_bg ()
{
    local var=$1; shift
    "$@" &
    local pid=$!
    printf -v "$var" '%s' "$pid"
    cleanup_fn "kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null"
}

kill_bg ()
{
    local pid=$1 sig=${2:-TERM}
    kill "-$sig" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# wait_for COND-CMD [SECONDS]: poll until the command succeeds.
wait_for ()
{
    local cmd=$1 t=${2:-10} i
    for (( i=0; i < t*20; i++ )); do
        if eval "$cmd" >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    fail "timed out waiting for: $cmd"
}

wait_for_port () { wait_for "bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1' 2>/dev/null" "${2:-10}"; }
wait_for_socket () { wait_for "[ -S '$1' ]" "${2:-10}"; }

# The Apple fixtures, when ../shared is present (CI has it).
shared_dir=${SHARED_DIR:-$top_srcdir/../shared}
fixture ()
{
    local f="$shared_dir/fixtures/asif-apple/$1"
    [ -f "$f" ] || skip "fixture $1 not available"
    echo "$f"
}
