#!/bin/bash
# make-chroot.sh: a Debian chroot to build the oracle's modules for a kernel
# whose headers need a newer compiler than the host's (Debian 12's gcc 12
# cannot build against the 7.x headers, made with gcc 14), plus that
# kernel's image. Adapted from the kit another helper wrote for issue 12
# (/work/chroots/make-k7.sh); the modules and the initramfs are left to
# build-guest.sh, and the boot test to `lpc oracle run`.
#
#   tools/oracle/make-chroot.sh                       # newest 7.x cloud kernel
#   KVER=7.3.4+deb13-cloud-amd64 tools/oracle/make-chroot.sh
#   TOP=/srv/chroots NAME=k7 tools/oracle/make-chroot.sh
#
# then
#
#   lpc oracle run --chroot /work/chroots/k7 --per-kernel --out tests/data/oracle \
#       --scenario stacked
#
# Results, under $TOP (default /work/chroots), with $NAME (default k7):
#   $NAME/          trixie minbase chroot (+ trixie-backports in its own apt
#                   sources) with gcc, make and linux-headers-<ABI>; the image
#                   also as $NAME/boot/vmlinuz-<ABI>, where build-guest.sh
#                   looks by default
#   $NAME-kver      the ABI, e.g. 7.3.4+deb13-cloud-amd64
#   $NAME-vmlinuz   the kernel image (bzImage) of that ABI
#   $NAME-notes/    debootstrap/apt logs and config-facts.txt (the .config
#                   lines that matter to livepatch)
#   READY-$NAME     touched at the end, once everything is there
#
# Idempotent: every step is skipped when its result is already there (delete
# the result to redo it); re-running only refreshes the chroot's package lists
# and re-checks. READY-$NAME is removed at the start and touched at the end,
# so it never stands for a half-made kit. The host's apt sources are never
# touched: trixie, trixie-backports and sid are named only inside the chroot.
# Needs on the host (Debian 12): debootstrap, dpkg-deb, file; runs as root.
# 39 s from scratch on the development machine (a fast mirror: debootstrap
# 25 s, gcc 14 and the headers 10 s), 1 s when re-run.
set -euo pipefail

TOP=${TOP:-/work/chroots}
NAME=${NAME:-k7}
SERIES=${SERIES:-7}			# the kernel major to look for
MIRROR=${MIRROR:-http://deb.debian.org/debian}
CH=$TOP/$NAME
NOTES=$TOP/$NAME-notes
t0=$(date +%s)
log() { printf '[make-chroot %4ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }
in_ch() { chroot "$CH" "$@"; }
[ "$(id -u)" = 0 ] || { echo "make-chroot.sh needs root (debootstrap, chroot)" >&2; exit 2; }
mkdir -p "$TOP" "$NOTES"
rm -f "$TOP/READY-$NAME"

# 0. host tools, from the host's own suite
need=
for pkg in debootstrap file; do
	dpkg -s "$pkg" > /dev/null 2>&1 || need="$need $pkg"
done
if [ -n "$need" ]; then
	log "installing on the host:$need"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need > /dev/null
fi

# 1. the chroot: trixie minbase
if [ ! -x "$CH/usr/bin/apt-get" ]; then
	log "debootstrap trixie minbase -> $CH"
	debootstrap --variant=minbase trixie "$CH" "$MIRROR" > "$NOTES/debootstrap.log" 2>&1
fi

# /proc in the chroot while this runs (apt and kbuild read it); unmounted on
# every exit path, and only if this script mounted it
mounted_proc=
if ! mountpoint -q "$CH/proc"; then
	mount -t proc proc "$CH/proc"
	mounted_proc=1
fi
cleanup() { if [ -n "$mounted_proc" ]; then umount "$CH/proc" || true; fi; }
trap cleanup EXIT

# 2. the chroot's extra apt sources: trixie-backports (where Debian puts
# newer kernels for trixie); sid only if backports has none of $SERIES.x
sources() {	# sources SUITE...
	printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
		"$MIRROR" "$*" /usr/share/keyrings/debian-archive-keyring.gpg \
		> "$CH/etc/apt/sources.list.d/extra.sources"
}
newest_abi() {	# the newest linux-headers-<SERIES>.*-cloud-amd64 the chroot's apt knows
	in_ch apt-cache pkgnames "linux-headers-$SERIES." |
		grep -E "^linux-headers-$SERIES\.[0-9.]+\+deb[0-9]+-cloud-amd64\$" |
		sed 's/^linux-headers-//' | sort -V | tail -n 1 || true
}
suite=trixie-backports
apt_opt=()
sources trixie-backports
log "apt-get update (chroot)"
in_ch apt-get update -q > /dev/null
kver=${KVER:-$(newest_abi)}
if [ -z "$kver" ]; then
	# sid's Release file on a mirror snapshot may be past its Valid-Until
	log "no $SERIES.x cloud headers in trixie-backports: trying sid"
	sources trixie-backports sid
	apt_opt=(-o Acquire::Check-Valid-Until=false)
	in_ch apt-get update -q "${apt_opt[@]}" > /dev/null
	suite=sid
	kver=$(newest_abi)
	[ -n "$kver" ] || { echo "no linux-headers-$SERIES.*-cloud-amd64 in trixie-backports or sid" >&2; exit 1; }
fi
log "suite $suite, ABI $kver"
echo "$kver" > "$TOP/$NAME-kver"

# 3. compiler and headers; the headers depend on the gcc major they were
# built with, and -t takes it from the same suite
kdir=/usr/src/linux-headers-$kver
if [ ! -f "$CH$kdir/.config" ] || ! in_ch sh -c 'command -v gcc && command -v make' > /dev/null; then
	log "installing gcc make linux-headers-$kver (chroot)"
	DEBIAN_FRONTEND=noninteractive in_ch apt-get install -y -q --no-install-recommends \
		"${apt_opt[@]}" -t "$suite" gcc make "linux-headers-$kver" > "$NOTES/apt-install.log" 2>&1
fi
cc_text=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\(.*\)"/\1/p' "$CH$kdir/.config")
log "kernel built with: $cc_text; chroot gcc: $(in_ch gcc -dumpfullversion)"

# 4. what of the .config matters to the oracle
{
	echo "# $kver: livepatch-relevant lines of $kdir/.config"
	grep -E '^(# )?CONFIG_(LIVEPATCH|HAVE_RELIABLE_STACKTRACE|UNWINDER_[A-Z_]+|PREEMPT[A-Z_]*|MODULE_SIG[A-Z_]*|DYNAMIC_DEBUG|DYNAMIC_FTRACE[A-Z_]*|X86_KERNEL_IBT|CALL_PADDING|MITIGATION_RETPOLINE|KALLSYMS_ALL|MAGIC_SYSRQ|DEBUG_FS|HZ|CC_VERSION_TEXT|GCC_VERSION)[= ]' \
		"$CH$kdir/.config" | sort
} > "$NOTES/config-facts.txt"
grep -q '^CONFIG_LIVEPATCH=y' "$NOTES/config-facts.txt" || { echo "$kver: CONFIG_LIVEPATCH is not y" >&2; exit 1; }

# 5. the image. From 7.x Debian's linux-image-<ABI> is an empty shell and the
# bzImage is /usr/lib/modules/<ABI>/vmlinuz of linux-binary-<ABI>; before, it
# is /boot/vmlinuz-<ABI> of linux-image-<ABI>. Both are tried.
if [ ! -s "$TOP/$NAME-vmlinuz" ] || ! file "$TOP/$NAME-vmlinuz" | grep -q "version $kver "; then
	log "fetching the image of $kver"
	mkdir -p "$CH/debs"
	pkgs=("linux-image-$kver")
	if in_ch apt-cache show "linux-binary-$kver" > /dev/null 2>&1; then
		pkgs+=("linux-binary-$kver")
	fi
	for p in "${pkgs[@]}"; do
		ls "$CH/debs/${p}_"*.deb > /dev/null 2>&1 ||
			in_ch sh -c "cd /debs && apt-get download -q ${apt_opt[*]} -o APT::Sandbox::User=root '$p'" > /dev/null
	done
	x=$(mktemp -d)
	for d in "$CH"/debs/linux-image-"$kver"_*.deb "$CH"/debs/linux-binary-"$kver"_*.deb; do
		if [ -f "$d" ]; then dpkg-deb -x "$d" "$x"; fi
	done
	img=
	for c in "$x/usr/lib/modules/$kver/vmlinuz" "$x/boot/vmlinuz-$kver"; do
		if [ -f "$c" ]; then img=$c; break; fi
	done
	[ -n "$img" ] || { rm -rf "$x"; echo "no vmlinuz in the image packages of $kver" >&2; exit 1; }
	cp "$img" "$TOP/$NAME-vmlinuz"
	rm -rf "$x"
fi
mkdir -p "$CH/boot"
cmp -s "$TOP/$NAME-vmlinuz" "$CH/boot/vmlinuz-$kver" || cp "$TOP/$NAME-vmlinuz" "$CH/boot/vmlinuz-$kver"

log "done: ABI $kver, chroot $(du -shx "$CH" | cut -f1), $(( $(date +%s) - t0 )) s"
touch "$TOP/READY-$NAME"
