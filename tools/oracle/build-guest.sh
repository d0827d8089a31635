#!/bin/bash
# Build the oracle guest into WORKDIR: a Debian cloud kernel image, the
# project's modules compiled against the matching headers, and a busybox
# initramfs holding /init, the scenarios and the modules.
#
#   tools/oracle/build-guest.sh WORKDIR
#   KVER=6.12.111+deb12-cloud-amd64 tools/oracle/build-guest.sh WORKDIR
#   CHROOT=/work/chroots/k7 tools/oracle/build-guest.sh WORKDIR
#
# Environment:
#   KVER     the kernel ABI (the name under /usr/src/linux-headers-<KVER>).
#            Default: the newest linux-headers-*-cloud-amd64 installed on the
#            host, or in CHROOT when that is set.
#   CHROOT   build the modules inside this chroot (chroot(8) + its make/gcc):
#            for kernels whose headers need a newer compiler than the host's,
#            e.g. the one tools/oracle/make-chroot.sh prepares. The module
#            sources are copied into CHROOT/tmp for the build; CHROOT/proc is
#            mounted for its duration if it is not already (objtool needs it).
#   VMLINUZ  the kernel image to boot. Default: CHROOT/boot/vmlinuz-<KVER>
#            when it exists, else the Debian package linux-image-<KVER>
#            (or its -unsigned twin) fetched with apt-get download.
#
# Needs (Debian 12): qemu-system-x86 busybox-static cpio gcc make and, without
# CHROOT, linux-headers-<ABI> on the host. Writes WORKDIR/{vmlinuz,
# initramfs.cpio.gz,kver}; re-fetches the image only when KVER changes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:?usage: build-guest.sh WORKDIR}
mkdir -p "$work"
work=$(cd "$work" && pwd)

chroot_dir=${CHROOT:-}
if [ -n "$chroot_dir" ]; then
	[ -d "$chroot_dir/usr/src" ] || { echo "CHROOT=$chroot_dir: no usr/src there" >&2; exit 2; }
	chroot_dir=$(cd "$chroot_dir" && pwd)
	[ "$(id -u)" = 0 ] || { echo "CHROOT needs root (chroot(8))" >&2; exit 2; }
fi
src_root=${chroot_dir}/usr/src
kver=${KVER:-$(ls -d "$src_root"/linux-headers-*-cloud-amd64 2>/dev/null | sed 's|.*/linux-headers-||' | sort -V | tail -n 1)}
[ -n "$kver" ] || { echo "no linux-headers-*-cloud-amd64 under $src_root" >&2; exit 2; }
[ -d "$src_root/linux-headers-$kver" ] || { echo "no $src_root/linux-headers-$kver" >&2; exit 2; }
kdir=/usr/src/linux-headers-$kver	# as the compiler sees it (inside CHROOT if any)
tools=(qemu-system-x86_64 cpio gzip)
[ -n "$chroot_dir" ] || tools+=(make gcc)
for tool in "${tools[@]}"; do
	command -v "$tool" > /dev/null || { echo "missing $tool" >&2; exit 2; }
done
[ -x /bin/busybox ] || { echo "missing /bin/busybox (apt-get install busybox-static)" >&2; exit 2; }

# the kernel image: VMLINUZ, the chroot's, or the Debian package of the ABI
image=${VMLINUZ:-}
if [ -z "$image" ] && [ -n "$chroot_dir" ] && [ -s "$chroot_dir/boot/vmlinuz-$kver" ]; then
	image=$chroot_dir/boot/vmlinuz-$kver
fi
if [ -n "$image" ]; then
	[ -s "$image" ] || { echo "no kernel image $image" >&2; exit 2; }
	if ! cmp -s "$image" "$work/vmlinuz"; then cp "$image" "$work/vmlinuz"; fi
	echo "$kver" > "$work/kver"
elif [ ! -s "$work/vmlinuz" ] || [ "$(cat "$work/kver" 2>/dev/null)" != "$kver" ]; then
	for tool in dpkg-deb apt-get; do
		command -v "$tool" > /dev/null || { echo "missing $tool" >&2; exit 2; }
	done
	rm -rf "$work/deb"; mkdir -p "$work/deb"
	# 6.1's image package is linux-image-<ABI>; from 6.12 the signed one may
	# be missing from a suite while linux-image-<ABI>-unsigned is there
	(cd "$work/deb" && { apt-get download -q -o APT::Sandbox::User=root "linux-image-$kver" \
		|| apt-get download -q -o APT::Sandbox::User=root "linux-image-$kver-unsigned"; } > /dev/null)
	dpkg-deb -x "$(ls "$work"/deb/linux-image-"$kver"*_*.deb | head -n 1)" "$work/deb/x"
	cp "$work/deb/x/boot/vmlinuz-$kver" "$work/vmlinuz"
	rm -rf "$work/deb"
	echo "$kver" > "$work/kver"
fi

# the modules, out of tree; lpc_pt twice (stacked patches and atomic replace
# need two), lpc_fix twice (plain and replace). Built in $bdir: $work/build on the host, or a directory of the
# chroot's /tmp (seen as $cdir from inside).
if [ -n "$chroot_dir" ]; then
	cdir=/tmp/lpc-oracle-build.$$
	bdir=$chroot_dir$cdir
	# objtool (7.x) reads /proc/self: mount the chroot's /proc for the build
	# unless it already is, and unmount only what was mounted here
	mounted_proc=
	if ! mountpoint -q "$chroot_dir/proc"; then
		mount -t proc proc "$chroot_dir/proc"
		mounted_proc=1
	fi
	cleanup() {
		rm -rf "$bdir"
		if [ -n "$mounted_proc" ]; then umount "$chroot_dir/proc" || true; fi
	}
	trap cleanup EXIT
else
	cdir=$work/build
	bdir=$cdir
fi
rm -rf "$bdir" "$work/ko"; mkdir -p "$bdir" "$work/ko"
build() {	# build NAME SOURCE-DIR [make args]
	local name=$1 src=$2; shift 2
	cp -r "$src" "$bdir/$name"
	if [ -n "$chroot_dir" ]; then
		chroot "$chroot_dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
			make -s -C "$kdir" M="$cdir/$name" "$@" modules 2>&1 | grep -v 'BTF' || true
	else
		make -s -C "$kdir" M="$cdir/$name" "$@" modules 2>&1 | grep -v 'BTF' || true
	fi
	[ -s "$bdir/$name/$name.ko" ] || { echo "build of $name failed" >&2; exit 1; }
	cp "$bdir/$name/$name.ko" "$work/ko/"
}
build lpc_pt "$here/modules/lpc_pt"
build lpc_pt_b "$here/modules/lpc_pt" LPC_PT_NAME=lpc_pt_b
build lpc_sleeper "$here/modules/lpc_sleeper"
build lpc_swap "$here/modules/lpc_swap"
# the static pass-through patch, and its atomic-replace twin
build lpc_fix "$here/modules/lpc_fix"
build lpc_fix_r "$here/modules/lpc_fix" LPC_FIX_NAME=lpc_fix_r

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
