#!/usr/bin/env bash
# Cross-builds bin/alpr-agent-arm64 (linux/arm64, cgo) on an amd64 Debian
# bookworm machine: aarch64-linux-gnu-gcc from crossbuild-essential-arm64,
# OpenCV 4.6 / Aravis 0.8 / GLib for arm64 from the sysroot that
# scripts/setup-arm64.sh unpacks into .deps/sysroot-arm64 (run first,
# automatically).
#
# gocv is built with -tags customenv: its `#cgo pkg-config: opencv4` would need
# libopencv-dev:arm64 (opencv4.pc), which drags in every contrib module; the
# flags below name only the modules gocv v0.31.0 compiles.
#
# Env: ALPR_ARM64_TAGS   extra build tags (e.g. "noaravis" for a build without
#                        GigE Vision support)
#      OUT               output path (default bin/alpr-agent-arm64)
#      VERSION, COMMIT   as in the Makefile
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}
DEPS=${ALPR_DEPS_DIR:-$PWD/.deps}
SYSROOT=${ALPR_ARM64_SYSROOT:-$DEPS/sysroot-arm64}
OUT=${OUT:-bin/alpr-agent-arm64}

log() { printf 'build-arm64: %s\n' "$*" >&2; }
die() { printf 'build-arm64: ERROR: %s\n' "$*" >&2; exit 1; }

bash scripts/setup-arm64.sh || die "scripts/setup-arm64.sh failed"

ML=$SYSROOT/usr/lib/aarch64-linux-gnu
[ -e "$ML/libopencv_core.so" ] || die "no arm64 OpenCV in $SYSROOT (scripts/setup-arm64.sh)"

# OpenCV modules gocv v0.31.0's own .cpp files use (asyncarray, calib3d, core,
# dnn, features2d, highgui, imgcodecs, imgproc, objdetect, photo, svd, video,
# videoio); flann for features2d's FlannBasedMatcher.
OPENCV_LIBS="-lopencv_calib3d -lopencv_dnn -lopencv_features2d -lopencv_flann \
-lopencv_highgui -lopencv_imgcodecs -lopencv_objdetect -lopencv_photo \
-lopencv_video -lopencv_videoio -lopencv_imgproc -lopencv_core"

export GOOS=linux GOARCH=arm64 CGO_ENABLED=1
export CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++
# The cross compiler keeps its own libc/libstdc++ (/usr/aarch64-linux-gnu)
# first; --sysroot adds the sysroot's multiarch lib dirs and ld.so.conf for
# the libraries and their DT_NEEDED chains.
export CGO_CPPFLAGS="--sysroot=$SYSROOT -I$SYSROOT/usr/include/opencv4 -I$SYSROOT/usr/include/aarch64-linux-gnu/opencv4 -I$SYSROOT/usr/include/aravis-0.8"
export CGO_CFLAGS="-O2 -g"
export CGO_CXXFLAGS="-O2 -g"
export CGO_LDFLAGS="--sysroot=$SYSROOT -L$ML -Wl,-rpath-link,$ML:$SYSROOT/lib/aarch64-linux-gnu $OPENCV_LIBS"
# capture/gige.go's `#cgo pkg-config: glib-2.0 gobject-2.0 gio-2.0`, answered
# from the sysroot's .pc files.
export PKG_CONFIG_LIBDIR="$ML/pkgconfig:$SYSROOT/usr/share/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$SYSROOT"
export PKG_CONFIG_PATH=""

TAGS="customenv${ALPR_ARM64_TAGS:+,$ALPR_ARM64_TAGS}"
TAGS=${TAGS// /,}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || true)}
LDFLAGS="-X main.version=$VERSION -X main.commit=$COMMIT -X main.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"

log "building $OUT (linux/arm64, tags $TAGS)"
t0=$(date +%s.%N)
mkdir -p "$(dirname "$OUT")"
"$GO" build -trimpath -tags "$TAGS" -ldflags "$LDFLAGS" -o "$OUT" ./cmd/alpr-agent \
  || die "go build for linux/arm64 failed (see above)"
t1=$(date +%s.%N)
file "$OUT" | grep -q 'ARM aarch64' || die "$OUT is not an aarch64 ELF: $(file -b "$OUT")"
log "built $OUT in $(printf '%.1f' "$(echo "$t1 - $t0" | bc)") s, $(( $(stat -c %s "$OUT") / 1024 )) KiB: $(file -b "$OUT" | cut -d, -f1-3)"
