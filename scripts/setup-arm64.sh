#!/usr/bin/env bash
# Installs what the arm64 cross-build (scripts/build-arm64.sh) and its emulated
# test (scripts/test-arm64.sh) need on this amd64 Debian bookworm machine:
#
#  1. on the host, from apt: the arm64 foreign architecture (dpkg multiarch),
#     crossbuild-essential-arm64 (aarch64-linux-gnu-gcc/g++) and qemu-user
#     (qemu-aarch64);
#  2. an arm64 sysroot in .deps/sysroot-arm64: Debian bookworm's arm64 OpenCV
#     4.6 module packages, Aravis 0.8 and GLib with all their dependencies,
#     resolved by the host's apt from the arm64 package lists and unpacked
#     with dpkg-deb -x (nothing is configured, no maintainer script runs);
#  3. the arm64 ONNX Runtime 1.27.0 library from the same pinned npm tarball
#     as scripts/setup.sh uses for amd64, into .deps/onnxruntime-arm64/.
#
# Why a sysroot and not `apt-get install libopencv-*-dev:arm64`: the
# per-module OpenCV packages are Multi-Arch: same, but libopencv-imgcodecs406
# depends on libgdal32, which is not; apt resolves that by REMOVING the amd64
# libopencv-dev, libopencv-imgcodecs406, libgdal32 and 20-odd more. The
# sysroot leaves the host's amd64 packages untouched.
#
# Idempotent: what is already there and verified is not fetched again. Run
# scripts/setup.sh first (the models and the amd64 build come from it).
set -euo pipefail
cd "$(dirname "$0")/.."
DEPS=${ALPR_DEPS_DIR:-$PWD/.deps}
SYSROOT=${ALPR_ARM64_SYSROOT:-$DEPS/sysroot-arm64}

log() { printf 'setup-arm64: %s\n' "$*" >&2; }
die() { printf 'setup-arm64: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(dpkg --print-architecture)" = amd64 ] || die "this script cross-builds from amd64; this machine is $(dpkg --print-architecture)"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
APT_LOCK=(-o DPkg::Lock::Timeout=600)

# ---- host: multiarch, cross compiler, emulator ------------------------------
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  log "adding the arm64 architecture to dpkg"
  $SUDO dpkg --add-architecture arm64
fi
if ! ls /var/lib/apt/lists/*_binary-arm64_Packages* >/dev/null 2>&1; then
  log "apt-get update (arm64 package lists)"
  $SUDO apt-get "${APT_LOCK[@]}" update -q >&2 || die "apt-get update failed"
fi
HOST_PKGS=(crossbuild-essential-arm64 qemu-user)
missing=()
for p in "${HOST_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing host packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get "${APT_LOCK[@]}" install -y -q --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed"
fi
command -v aarch64-linux-gnu-gcc >/dev/null || die "aarch64-linux-gnu-gcc not found after installing crossbuild-essential-arm64"
command -v qemu-aarch64 >/dev/null || die "qemu-aarch64 not found after installing qemu-user"

# ---- arm64 sysroot -----------------------------------------------------------
# gocv v0.31.0 compiles core, imgproc, imgcodecs, videoio, highgui, objdetect,
# features2d, video, dnn, calib3d, photo (+ flann); opencv2/opencv.hpp also
# includes ml.hpp and stitching.hpp, so their headers must be there too.
SYSROOT_PKGS=(libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libopencv-videoio-dev libopencv-highgui-dev libopencv-objdetect-dev
  libopencv-features2d-dev libopencv-video-dev libopencv-dnn-dev
  libopencv-calib3d-dev libopencv-photo-dev libopencv-flann-dev
  libopencv-ml-dev libopencv-stitching-dev
  libaravis-dev libglib2.0-dev libc6 libstdc++6)
# The stamp names the package set and the exact versions unpacked; a changed
# package list rebuilds the sysroot.
WANT="sysroot-v2 ${SYSROOT_PKGS[*]}"
STAMP=$SYSROOT/.alpr-sysroot
if [ -f "$STAMP" ] && [ "$(head -1 "$STAMP")" = "$WANT" ] \
   && [ -e "$SYSROOT/usr/lib/aarch64-linux-gnu/libopencv_core.so" ] && [ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ]; then
  :
else
  t0=$(date +%s)
  work=$(mktemp -d "$DEPS/.sysroot-arm64.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/cache/archives/partial" "$work/root"
  : > "$work/status"
  # The host's arm64 package lists, but an empty dpkg status, arm64 as the
  # only architecture and a private cache: apt resolves the whole arm64
  # dependency closure and only downloads it.
  APT_ARM64=(-q -o Dir::State::status="$work/status" -o Dir::Cache="$work/cache"
    -o Dir::Cache::archives="$work/cache/archives" -o APT::Architecture=arm64
    -o APT::Architectures::=arm64 -o Debug::NoLocking=1 -o APT::Sandbox::User=root
    -o APT::Install-Recommends=false)
  log "resolving and downloading the arm64 sysroot packages (OpenCV 4.6, Aravis 0.8, GLib)"
  apt-get "${APT_ARM64[@]}" install -y --download-only "${SYSROOT_PKGS[@]}" >"$work/apt.log" 2>&1 \
    || { tail -20 "$work/apt.log" >&2; die "could not resolve/download the arm64 packages (is 'apt-get update' current?)"; }
  n=$(ls "$work/cache/archives"/*.deb | wc -l)
  mb=$(du -cm "$work/cache/archives"/*.deb | tail -1 | cut -f1)
  log "unpacking $n arm64 packages ($mb MiB of .deb) into $SYSROOT"
  for deb in "$work/cache/archives"/*.deb; do
    dpkg-deb -x "$deb" "$work/root" || die "dpkg-deb -x $deb failed"
  done
  # Absolute symlinks (/usr/lib/aarch64-linux-gnu/libX.so -> /lib/...) would
  # point into the host: make them relative inside the sysroot.
  while IFS= read -r -d '' l; do
    tgt=$(readlink "$l")
    case "$tgt" in /*) ln -sfn --relative "$work/root$tgt" "$l" ;; esac
  done < <(find "$work/root" -type l -print0)
  # libblas3/liblapack3 put their libraries in blas/ and lapack/ and let
  # update-alternatives (a maintainer script, not run here) link them into
  # the library dir; libopencv_core needs both.
  for alt in blas/libblas.so.3 lapack/liblapack.so.3; do
    ml=$work/root/usr/lib/aarch64-linux-gnu
    [ -e "$ml/$alt" ] || die "sysroot has no $alt (libblas3/liblapack3 changed?)"
    [ -e "$ml/$(basename "$alt")" ] || ln -s "$alt" "$ml/$(basename "$alt")"
  done
  {
    echo "$WANT"
    for deb in "$work/cache/archives"/*.deb; do dpkg-deb -W --showformat='${Package}:${Architecture} ${Version}\n' "$deb"; done
  } > "$work/root/.alpr-sysroot.tmp"
  rm -rf "$SYSROOT"
  mv "$work/root" "$SYSROOT"
  mv "$SYSROOT/.alpr-sysroot.tmp" "$STAMP"
  [ -e "$SYSROOT/usr/lib/aarch64-linux-gnu/libopencv_core.so" ] || die "sysroot has no libopencv_core.so"
  [ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || die "sysroot has no /lib/ld-linux-aarch64.so.1"
  rm -rf "$work"; trap - EXIT
  log "arm64 sysroot ready in $(( $(date +%s) - t0 )) s: $(du -sm "$SYSROOT" | cut -f1) MiB on disk"
fi

# ---- ONNX Runtime for arm64, from the pinned npm tarball ---------------------
ORT_PKG=onnxruntime-node@1.27.0
ORT_TGZ=onnxruntime-node-1.27.0.tgz
ORT_SHA=c3779c01c59832f8c03e2c392ac3af10bf08579f1822e8b1c63cc451edb302a2
ORT_DIR=$DEPS/onnxruntime-arm64
if [ ! -f "$ORT_DIR/libonnxruntime.so.1" ] || ! file -L "$ORT_DIR/libonnxruntime.so.1" | grep -q 'ARM aarch64'; then
  command -v npm >/dev/null || die "npm is needed to fetch $ORT_PKG (run scripts/setup.sh / install Node.js first)"
  tmp=$(mktemp -d "$DEPS/.npm-arm64.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  log "fetching $ORT_PKG from the npm registry"
  (cd "$tmp" && npm pack --silent "$ORT_PKG" >/dev/null) || die "npm pack $ORT_PKG failed"
  if ! echo "$ORT_SHA  $tmp/$ORT_TGZ" | sha256sum -c --status; then
    die "SHA-256 mismatch for $ORT_TGZ: expected $ORT_SHA, got $(sha256sum "$tmp/$ORT_TGZ" | cut -d' ' -f1)"
  fi
  mkdir -p "$ORT_DIR"
  tar -xzf "$tmp/$ORT_TGZ" -C "$ORT_DIR" --strip-components=5 \
    package/bin/napi-v6/linux/arm64/libonnxruntime.so.1 || die "tarball has no linux/arm64/libonnxruntime.so.1"
  rm -rf "$tmp"; trap - EXIT
  file -L "$ORT_DIR/libonnxruntime.so.1" | grep -q 'ARM aarch64' || die "$ORT_DIR/libonnxruntime.so.1 is not an aarch64 library"
  log "ONNX Runtime 1.27.0 (arm64) in $ORT_DIR"
fi
