#!/usr/bin/env bash
# Build, once, the Debian 12 guest used by the virtual-camera system test (tests/system).
#
# Output (cached outside the repository): $CACHE/{vmlinuz,initrd.img,rootfs.ext4,stamp}.
# The stamp is written last and lists the guest's packages; the image is rebuilt only when it is
# missing, incomplete, or lacks a package that the Python environment shared into the guest needs.
#
# Usage: build_image.sh [--check]      (--check: exit 0 if the cached image is usable, 1 if not)
# Environment: BACKDROP_VM_CACHE  cache folder   (default $HOME/.cache/backdrop-vm)
#              BACKDROP_VM_PYTHON the Python whose installation and venv the guest will run
#                                 (default: python3 on PATH)
#              BACKDROP_VM_MIRROR Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail

CACHE=${BACKDROP_VM_CACHE:-$HOME/.cache/backdrop-vm}
PYTHON=${BACKDROP_VM_PYTHON:-python3}
MIRROR=${BACKDROP_VM_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
# Guest packages: kernel + headers (for DKMS), the loopback module, readers (ffmpeg, v4l2-ctl).
BASE_PKGS="linux-image-amd64 linux-headers-amd64 v4l2loopback-dkms kmod ffmpeg v4l-utils procps
           libgl1 libglib2.0-0"
MODE=${1:-build}
RECIPE="recipe $(sha256sum "$0" | cut -c1-16)"  # a changed recipe means a rebuild
log() { echo "[build_image] $*" >&2; }

# Debian packages holding the shared libraries that the Python installation and venv link to
# (the guest runs the host's Python over 9p, so it needs the same system libraries).
python_lib_pkgs() {
  "$PYTHON" - <<'EOF'
import os, subprocess, sys
roots = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)}
libs = set()
for root in roots:
    for d, _, files in os.walk(root):
        sos = [os.path.join(d, f) for f in files if ".so" in f and os.path.isfile(os.path.join(d, f))]
        for so in sos:
            out = subprocess.run(["ldd", so], capture_output=True, text=True).stdout
            for line in out.splitlines():
                parts = line.split()
                if "=>" in parts and len(parts) > 2 and parts[2].startswith("/"):
                    lib = parts[2]
                    if not any(os.path.realpath(lib).startswith(r + "/") for r in roots):
                        libs.add(lib)
cands = {}
for lib in libs:
    for p in {lib, os.path.realpath(lib)}:
        for q in {p, p[4:] if p.startswith("/usr/") else "/usr" + p}:
            cands[q] = lib
out = subprocess.run(["dpkg", "-S", *sorted(cands)], capture_output=True, text=True).stdout
pkgs, found = set(), set()
for line in out.splitlines():
    if line.startswith("diversion") or ": " not in line:
        continue
    pkg, path = line.split(": ", 1)
    for p in pkg.split(", "):
        pkgs.add(p.split(":")[0])
    found.add(cands.get(path.strip()))
for lib in sorted(libs - found):
    print(f"[build_image] WARNING: {lib} is in no Debian package; the guest will lack it",
          file=sys.stderr)
print(" ".join(sorted(pkgs)))
EOF
}

image_ok() {  # $1: space-separated package list that must all be in the stamp
  [[ -s $CACHE/stamp && -s $CACHE/vmlinuz && -s $CACHE/initrd.img && -s $CACHE/rootfs.ext4 ]] ||
    return 1
  grep -qx "$RECIPE" "$CACHE/stamp" || { log "cached image was built by another recipe"; return 1; }
  local p
  for p in $1; do grep -qx "$p" "$CACHE/stamp" || { log "cached image lacks $p"; return 1; }; done
}

mkdir -p "$CACHE"
PKGS=$(echo $BASE_PKGS $(python_lib_pkgs) | tr ' ' '\n' | sort -u | tr '\n' ' ')
if [[ $MODE == --check ]]; then
  image_ok "$PKGS" && exit 0 || exit 1
fi

need_root() { [[ $(id -u) == 0 ]] || { log "must run as root (apt-get, debootstrap, chroot)"; exit 1; }; }

# Host tools.
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v mke2fs >/dev/null || missing+=(e2fsprogs)
if ((${#missing[@]})); then
  need_root
  log "installing host packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

exec 9>"$CACHE/.lock"
flock 9
if image_ok "$PKGS"; then
  log "cached image in $CACHE is complete; nothing to do"
  exit 0
fi
need_root
start=$(date +%s)
rm -f "$CACHE/stamp"
WORK=$CACHE/work
ROOT=$WORK/root
cleanup() {
  umount "$ROOT/proc" 2>/dev/null || true
  umount "$ROOT/sys" 2>/dev/null || true
  if [[ -d $WORK ]]; then rm -rf --one-file-system "$WORK"; fi
}
trap cleanup EXIT
cleanup
mkdir -p "$ROOT"

log "debootstrap $SUITE minbase"
debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOT" "$MIRROR" \
  >"$CACHE/debootstrap.log" 2>&1 || { tail -30 "$CACHE/debootstrap.log" >&2; exit 1; }

cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
echo force-unsafe-io >"$ROOT/etc/dpkg/dpkg.cfg.d/unsafe-io"
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" && chmod +x "$ROOT/usr/sbin/policy-rc.d"
printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
  >"$ROOT/etc/dpkg/dpkg.cfg.d/nodoc"
mount -t proc proc "$ROOT/proc"
mount -t sysfs sys "$ROOT/sys"

log "apt-get install: $PKGS"
chroot "$ROOT" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends $PKGS" >"$CACHE/apt.log" 2>&1 ||
  { tail -30 "$CACHE/apt.log" >&2; exit 1; }

KVER=$(basename "$(ls -d "$ROOT"/lib/modules/*/ | sort -V | tail -1)")
if ! find "$ROOT/lib/modules/$KVER" -name 'v4l2loopback.ko*' | grep -q .; then
  log "building v4l2loopback for $KVER with dkms"
  chroot "$ROOT" dkms autoinstall -k "$KVER" >>"$CACHE/apt.log" 2>&1 || true
fi
KO=$(find "$ROOT/lib/modules/$KVER" -name 'v4l2loopback.ko*' | head -1)
[[ -n $KO ]] || { log "FATAL: v4l2loopback.ko was not built for $KVER (see $CACHE/apt.log)"; exit 1; }
log "module: ${KO#$ROOT}"
chroot "$ROOT" depmod -a "$KVER"

# PID 1 of the guest: mount the basics and the run share, then hand over to its init.sh,
# which tests/system/vm.py writes for every run.
cat >"$ROOT/sbin/vm-init" <<'EOF'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
modprobe 9pnet_virtio
modprobe 9p
mkdir -p /mnt/run
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 run /mnt/run &&
  exec /bin/sh /mnt/run/init.sh
echo "vm-init: cannot mount the run share" >&2
echo o >/proc/sysrq-trigger
sleep 30
EOF
chmod +x "$ROOT/sbin/vm-init"

umount "$ROOT/proc" "$ROOT/sys"
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/usr/src/* "$ROOT/etc/dpkg/dpkg.cfg.d/unsafe-io"
cp "$ROOT/boot/vmlinuz-$KVER" "$CACHE/vmlinuz"
cp "$ROOT/boot/initrd.img-$KVER" "$CACHE/initrd.img"

SIZE_MB=$(($(du -sm "$ROOT" | cut -f1) * 13 / 10 + 256))
log "mke2fs rootfs.ext4 (${SIZE_MB} MiB)"
rm -f "$CACHE/rootfs.ext4"
mke2fs -q -F -t ext4 -L backdrop-vm -d "$ROOT" "$CACHE/rootfs.ext4" "${SIZE_MB}M" >/dev/null

{ echo "$RECIPE"; echo "$PKGS" | tr ' ' '\n' | grep .; } >"$CACHE/stamp.tmp"
echo "# kernel $KVER, built $(date -u +%FT%TZ) in $(($(date +%s) - start)) s" >>"$CACHE/stamp.tmp"
mv "$CACHE/stamp.tmp" "$CACHE/stamp"
log "done in $(($(date +%s) - start)) s: $CACHE"
