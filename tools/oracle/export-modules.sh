#!/bin/bash
# Copy a built guest's static livepatch modules into tests/data/modules/SERIES
# (the golden .ko files of tests/data/modules/README.md):
#
#   tools/oracle/export-modules.sh WORKDIR SERIES [--dwarf]
#
# WORKDIR is a build-guest.sh work directory (its ko/ holds the modules the
# guest loaded); SERIES is the kernel's major.minor (6.1, 6.12, 7.3). Every
# module is copied through `strip --strip-debug`, except with --dwarf, which
# keeps lpc_fix.ko whole and adds lpc_fix.stripped.ko and the xz / zstd
# compressed copies of lpc_fix.ko (as the kernel's own module compression
# would: xz --check=crc32 --lzma2=dict=1MiB, zstd).
set -euo pipefail
work=${1:?usage: export-modules.sh WORKDIR SERIES [--dwarf]}
series=${2:?usage: export-modules.sh WORKDIR SERIES [--dwarf]}
dwarf=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
dest=$here/../../tests/data/modules/$series
mkdir -p "$dest"
for m in lpc_fix lpc_fix_r lpc_swap; do
	[ -s "$work/ko/$m.ko" ] || { echo "no $work/ko/$m.ko" >&2; exit 2; }
done
if [ "$dwarf" = --dwarf ]; then
	cp "$work/ko/lpc_fix.ko" "$dest/lpc_fix.ko"
	strip --strip-debug -o "$dest/lpc_fix.stripped.ko" "$work/ko/lpc_fix.ko"
	xz --check=crc32 --lzma2=dict=1MiB -c "$dest/lpc_fix.ko" > "$dest/lpc_fix.ko.xz"
	zstd -q -19 -c "$dest/lpc_fix.ko" > "$dest/lpc_fix.ko.zst"
else
	strip --strip-debug -o "$dest/lpc_fix.ko" "$work/ko/lpc_fix.ko"
fi
for m in lpc_fix_r lpc_swap; do
	strip --strip-debug -o "$dest/$m.ko" "$work/ko/$m.ko"
done
ls -l "$dest"
