#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# One source of truth for the CLI: every command in the table has a man
# page, every option in the table appears in that page and in --help.
. "$top_srcdir/tests/functions.sh"

n=0
while read -r kind rest; do
    case "$kind" in
        command)
            cmd=$rest
            page="$top_srcdir/docs/vdisk-${cmd// /-}.pod"
            [ -f "$page" ] || fail "command '$cmd' has no man page ($page)"
            grep -q "vdisk-${cmd// /-}" "$top_srcdir/docs/vdisk.pod" \
                || fail "vdisk.pod does not mention vdisk-${cmd// /-}"
            help=$(vdisk $cmd --help)
            ;;
        option)
            opt=${rest##* }
            grep -qF -- "B<$opt" "$page" || fail "$page does not document $opt"
            grep -qF -- "$opt" <<<"$help" || fail "'vdisk $cmd --help' lacks $opt"
            n=$((n+1))
            ;;
        short)
            opt=${rest##* }
            grep -qF -- "B<$opt" "$page" || fail "$page does not document $opt"
            ;;
    esac
done < <(vdisk --dump-options)
[ $n -gt 0 ] || fail "no options found"
echo "test-cli-docs: $n options documented"
