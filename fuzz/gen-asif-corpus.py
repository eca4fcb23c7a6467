#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Copyright (C) 2026 the vdisk authors
#
# Writes the seed corpus of fuzz/fuzz-asif.c into fuzz/corpus/asif/.
# The seeds are built from the format description (asif-format.md), not
# copied from any image: valid structures and one malformed variant of
# each field the parsers look at.  Re-run after changing the input
# encoding of the fuzz target; the output is deterministic.
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "corpus", "asif")
os.makedirs(out, exist_ok=True)
K = 1 << 20


def header(version=1, hsize=0x200, flags=0, d0=0x200, d1=0x41400,
           sectors=2097152, maxs=1 << 43, chunk=K, block=512, segs=0,
           meta=0xFFFFFFFF, tail=b""):
    h = b"shdw" + struct.pack(">III", version, hsize, flags)
    h += struct.pack(">QQ", d0, d1) + bytes(range(16))
    h += struct.pack(">QQIHHQ", sectors, maxs, chunk, block, segs, meta)
    h += tail
    return h + bytes(0x200 - len(h))


PLIST = ('<?xml version="1.0" encoding="UTF-8"?>\n'
         '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
         '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
         '<plist version="1.0">\n<dict>\n\t<key>internal metadata</key>\n'
         '\t<dict>\n\t\t<key>stable uuid</key>\n'
         '\t\t<string>%s</string>\n\t</dict>\n\t<key>user metadata</key>\n'
         '\t<dict/>\n</dict>\n</plist>\n')
UUID = "0f1e2d3c-4b5a-4697-8877-665544332211"


def meta(plist, size=0x200, version=1, hsize=0x200):
    m = b"meta" + struct.pack(">IIQ", version, hsize, size)
    return m + bytes(0x200 - len(m)) + plist.encode() + b"\0"


seeds = {}
# 0: headers
seeds["hdr-apple"] = b"\0" + header()
seeds["hdr-version2"] = b"\0" + header(version=2)
seeds["hdr-segments"] = b"\0" + header(segs=1)
seeds["hdr-flags"] = b"\0" + header(flags=1)
seeds["hdr-unknown-tail"] = b"\0" + header(tail=bytes(16) + b"\0\0\0\1")
seeds["hdr-block4k"] = b"\0" + header(block=4096, d0=0x1000, d1=0x4B000,
                                      maxs=1 << 40)
seeds["hdr-block1000"] = b"\0" + header(block=1000)
seeds["hdr-chunk-odd"] = b"\0" + header(chunk=K + 512)
seeds["hdr-chunk-tiny"] = b"\0" + header(chunk=4096)
seeds["hdr-dir-overlap"] = b"\0" + header(d1=0x400)
seeds["hdr-dir-outside"] = b"\0" + header(d1=0xFFFFF000)
seeds["hdr-size-too-big"] = b"\0" + header(sectors=(1 << 43) + 1)
seeds["hdr-meta-overlap"] = b"\0" + header(sectors=(1 << 43) - 1024)
seeds["hdr-meta-outside"] = b"\0" + header(meta=1 << 40)
seeds["hdr-max-overflow"] = b"\0" + header(maxs=1 << 62)
seeds["hdr-short"] = b"\0" + header()[:100]
seeds["hdr-magic"] = b"\0" + b"shdx" + header()[4:]
# 1: plists
seeds["plist-apple"] = b"\1" + (PLIST % UUID).encode()
seeds["plist-no-uuid"] = b"\1" + (PLIST % "not-a-uuid").encode()
seeds["plist-entities"] = b"\1" + (PLIST % UUID).replace(
    "<dict/>", "<dict><key>a&amp;b&#65;</key><string>&lt;x&gt;</string>"
    "</dict>").encode()
seeds["plist-types"] = b"\1" + (PLIST % UUID).replace(
    "<dict/>", "<dict><key>n</key><integer>3</integer><key>r</key><real>1.5"
    "</real><key>t</key><true/><key>f</key><false/><key>d</key><data>AAEC"
    "</data><key>a</key><array><string>x</string><array/></array>"
    "<key>e</key><date>2026-01-01T00:00:00Z</date></dict>").encode()
seeds["plist-comment"] = b"\1<!-- hi -->" + (PLIST % UUID).encode()
seeds["plist-deep"] = b"\1<plist><dict><key>user metadata</key>" + \
    b"<array>" * 40 + b"</array>" * 40 + b"</dict></plist>"
seeds["plist-truncated"] = b"\1" + (PLIST % UUID).encode()[:200]
seeds["plist-junk"] = b"\1" + (PLIST % UUID).encode() + b"<x/>"
seeds["plist-uuid-int"] = b"\1" + (PLIST % UUID).replace(
    "<string>%s</string>" % UUID, "<integer>1</integer>").encode()
# 2: metadata chunks
seeds["meta-apple"] = b"\2" + meta(PLIST % UUID)
seeds["meta-size-huge"] = b"\2" + meta(PLIST % UUID, size=1 << 62)
seeds["meta-version"] = b"\2" + meta(PLIST % UUID, version=9)
seeds["meta-hsize"] = b"\2" + meta(PLIST % UUID, hsize=0x10)


# 3: patches over the blank image (offsets as in a blank Apple image:
# table in chunk 1; the 64 MiB disk's table 0 does not exist yet)
def patch(*items):
    b = b"\3"
    for off, data in items:
        b += struct.pack(">IB", off, len(data)) + data
    return b


def q(v):
    return struct.pack(">Q", v)


DIR0, DIR1 = 0x200, 0x41400
seeds["img-blank"] = patch()
# table 0 at chunk 4, entries: chunk 0 full at 5, chunk 1 partial at 6
# with bitmap 7, bits for blocks 0-3 written
tab0 = [(DIR0 + 8, q(4)), (DIR1 + 8, q(4)),
        (4 * K, q(0x4000000000000005) + q(0xC000000000000006)),
        (4 * K + 8 * 2048, q(7)), (7 * K + 512, b"\x55")]
seeds["img-data"] = patch(*tab0)
seeds["img-entry-past-eof"] = patch(*tab0, (4 * K, q(0x4000000000000099)))
seeds["img-entry-reserved"] = patch(*tab0, (4 * K, q(0x4080000000000005)))
seeds["img-entry-00-index"] = patch(*tab0, (4 * K, q(5)))
seeds["img-entry-10-index"] = patch(*tab0, (4 * K, q(0x8000000000000005)))
seeds["img-entry-01-zero"] = patch(*tab0, (4 * K, q(0x4000000000000000)))
seeds["img-entry-is-table"] = patch(*tab0, (4 * K, q(0x4000000000000004)))
seeds["img-entry-is-meta"] = patch(*tab0, (4 * K, q(0x4000000000000002)))
seeds["img-double-ref"] = patch(*tab0, (4 * K + 16, q(0x4000000000000005)))
seeds["img-bitmap-state3"] = patch(*tab0, (7 * K + 512, b"\xff"))
seeds["img-no-bitmap"] = patch(*tab0, (4 * K + 8 * 2048, q(0)))
seeds["img-bitmap-bad"] = patch(*tab0, (4 * K + 8 * 2048, q(1 << 60)))
seeds["img-dir-past-eof"] = patch((DIR1 + 8, q(1000)))
seeds["img-dir-flags"] = patch((DIR1 + 8, q((1 << 63) | 4)))
seeds["img-seq-tie"] = patch((DIR0, q(1)))
seeds["img-seq-max"] = patch((DIR1, q((1 << 64) - 1)))
seeds["img-no-meta"] = patch((0x120030, q(0)))
seeds["img-meta-garbage"] = patch((0x200200, b"<plist><dict>"))
seeds["img-meta-sig"] = patch((0x200000, b"mexa"))
seeds["img-header-flags"] = patch((0x0C, b"\0\0\0\1"))
seeds["img-header-version"] = patch((0x04, b"\0\0\0\2"))
seeds["img-sector-count-huge"] = patch((0x30, q(1 << 44)))
seeds["img-dir-offset-bad"] = patch((0x18, q(0x100)))

for name, data in sorted(seeds.items()):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(seeds), out))
