#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every POD page is well-formed (podchecker, as nbdkit does).
. "$top_srcdir/tests/functions.sh"
requires perl -MPod::Checker -e 1
for f in "$top_srcdir"/docs/*.pod; do
    podchecker -warnings -warnings "$f" 2>&1 | grep -v 'pod syntax OK' && fail "$f" || true
done
echo "test-podchecker: OK"
