#!/bin/bash
# Build the oracle guest into WORKDIR: Debian's cloud kernel image, the
# project's modules compiled against the matching Debian headers, and a
# busybox initramfs holding /init, the scenarios and the modules.
#
#   tools/oracle/build-guest.sh WORKDIR
#
# Needs (Debian 12): qemu-system-x86 busybox-static cpio gcc make and
# linux-headers-<ABI>-cloud-amd64. KVER picks the ABI; by default the newest
# installed cloud headers. Writes WORKDIR/{vmlinuz,initramfs.cpio.gz,kver}.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:?usage: build-guest.sh WORKDIR}
mkdir -p "$work"
work=$(cd "$work" && pwd)

kver=${KVER:-$(ls -d /usr/src/linux-headers-*-cloud-amd64 2>/dev/null | sed 's|.*/linux-headers-||' | sort -V | tail -n 1)}
[ -n "$kver" ] || { echo "no linux-headers-*-cloud-amd64 installed" >&2; exit 2; }
kdir=/usr/src/linux-headers-$kver
for tool in qemu-system-x86_64 cpio gzip make gcc dpkg-deb apt-get; do
	command -v "$tool" > /dev/null || { echo "missing $tool" >&2; exit 2; }
done
[ -x /bin/busybox ] || { echo "missing /bin/busybox (apt-get install busybox-static)" >&2; exit 2; }

# the kernel image: the Debian package of the same ABI as the headers
if [ ! -s "$work/vmlinuz" ] || [ "$(cat "$work/kver" 2>/dev/null)" != "$kver" ]; then
	rm -rf "$work/deb"; mkdir -p "$work/deb"
	(cd "$work/deb" && apt-get download -q -o APT::Sandbox::User=root "linux-image-$kver" > /dev/null)
	dpkg-deb -x "$work"/deb/linux-image-"$kver"_*.deb "$work/deb/x"
	cp "$work/deb/x/boot/vmlinuz-$kver" "$work/vmlinuz"
	rm -rf "$work/deb"
	echo "$kver" > "$work/kver"
fi

# the modules, out of tree; lpc_pt twice (atomic replace needs two patches)
rm -rf "$work/build" "$work/ko"; mkdir -p "$work/build" "$work/ko"
build() {	# build NAME SOURCE-DIR [make args]
	local name=$1 src=$2; shift 2
	cp -r "$src" "$work/build/$name"
	make -s -C "$kdir" M="$work/build/$name" "$@" modules 2>&1 | grep -v 'BTF' || true
	cp "$work/build/$name/$name.ko" "$work/ko/"
}
build lpc_pt "$here/modules/lpc_pt"
build lpc_pt_b "$here/modules/lpc_pt" LPC_PT_NAME=lpc_pt_b
build lpc_sleeper "$here/modules/lpc_sleeper"
build lpc_swap "$here/modules/lpc_swap"

# the initramfs
root=$work/root
rm -rf "$root"; mkdir -p "$root"/{bin,dev,proc,sys,tmp,out,modules,scenarios}
cp /bin/busybox "$root/bin/busybox"
install -m 0755 "$here/guest/init" "$root/init"
cp "$here/guest/lib.sh" "$here"/scenarios/*.sh "$root/scenarios/"
cp "$work"/ko/*.ko "$root/modules/"
mknod -m 600 "$root/dev/console" c 5 1	# init needs a console before devtmpfs
mknod -m 666 "$root/dev/null" c 1 3
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -6 > "$work/initramfs.cpio.gz"
rm -rf "$root"
printf "guest: kernel $kver, $(ls "$work/ko" | tr '\n' ' ')initramfs $(stat -c %s "$work/initramfs.cpio.gz") bytes\n"
