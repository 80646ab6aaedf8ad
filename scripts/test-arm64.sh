#!/usr/bin/env bash
# Runs the cross-built bin/alpr-agent-arm64 under qemu-aarch64 (user mode,
# Debian qemu-user) on `alpr-agent read --json` of the bundled test image and
# checks that it reads the same plates as the amd64 bin/alpr-agent, and the
# plate the image was made with. Prints both latencies (the `ms` of --json:
# recognition only, not model loading).
#
# The arm64 binary's loader and libraries come from .deps/sysroot-arm64
# (QEMU_LD_PREFIX), ONNX Runtime from .deps/onnxruntime-arm64, the models are
# the same files as amd64's (.deps/models). Builds what is missing first
# (scripts/build-arm64.sh, `make build`).
#
# Env: ALPR_ARM64_QEMU_CPU  emulated CPU (default cortex-a72: qemu's default
#                           "max" CPU has SVE, and ONNX Runtime's SVE paths are
#                           ~15x slower to emulate than NEON ones)
#      ALPR_ARM64_READ_ARGS extra `read` flags for both binaries (e.g.
#                           "--det-side 320", ~5x faster under qemu)
#      ALPR_ARM64_IMAGE     image to read (default testdata/images/plate-YG9X2G.jpg;
#                           the plate expected is the part of the name after
#                           "plate-", if any)
#      ALPR_ARM64_TIMEOUT   seconds the emulated read may take (default 900)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
DEPS=${ALPR_DEPS_DIR:-$PWD/.deps}
SYSROOT=${ALPR_ARM64_SYSROOT:-$DEPS/sysroot-arm64}
ARM_BIN=${ARM_BIN:-bin/alpr-agent-arm64}
AMD_BIN=${AMD_BIN:-bin/alpr-agent}
IMAGE=${ALPR_ARM64_IMAGE:-testdata/images/plate-YG9X2G.jpg}
CPU=${ALPR_ARM64_QEMU_CPU:-cortex-a72}
TIMEOUT=${ALPR_ARM64_TIMEOUT:-900}
read -r -a READ_ARGS <<< "${ALPR_ARM64_READ_ARGS:-}"

log() { printf 'test-arm64: %s\n' "$*" >&2; }
die() { printf 'test-arm64: FAIL: %s\n' "$*" >&2; exit 1; }

[ -f "$IMAGE" ] || die "no test image $IMAGE"
if [ ! -x "$ARM_BIN" ]; then
  bash scripts/build-arm64.sh || die "arm64 build failed"
else
  bash scripts/setup-arm64.sh || die "scripts/setup-arm64.sh failed"
fi
file "$ARM_BIN" | grep -q 'ARM aarch64' || die "$ARM_BIN is not an aarch64 ELF"
if [ ! -x "$AMD_BIN" ]; then
  log "no $AMD_BIN: make build"
  make -s build || die "make build failed"
fi
[ -f "$DEPS/models/ch_PP-OCRv4_det_infer.onnx" ] || die "no models in $DEPS/models (scripts/setup.sh)"
command -v qemu-aarch64 >/dev/null || die "qemu-aarch64 not found (apt-get install qemu-user)"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

log "amd64: $AMD_BIN read --json ${READ_ARGS[*]} $IMAGE"
ALPR_MODEL_DIR=$DEPS/models ALPR_ORT_LIB=$DEPS/onnxruntime/libonnxruntime.so.1 \
  "$AMD_BIN" read --json "${READ_ARGS[@]}" "$IMAGE" >"$out/amd64.json" 2>"$out/amd64.err" \
  || { cat "$out/amd64.err" >&2; die "amd64 read failed"; }

log "arm64: qemu-aarch64 -cpu $CPU $ARM_BIN read --json ${READ_ARGS[*]} $IMAGE"
t0=$(date +%s.%N)
# QEMU_LD_PREFIX: the guest's /lib/ld-linux-aarch64.so.1 and every library
# path it opens are looked up in the sysroot first. The sysroot has no
# ld.so.cache, so name the multiarch dirs.
QEMU_LD_PREFIX=$SYSROOT ALPR_MODEL_DIR=$DEPS/models ALPR_ORT_LIB=$DEPS/onnxruntime-arm64/libonnxruntime.so.1 \
  timeout "$TIMEOUT" qemu-aarch64 -cpu "$CPU" -E LD_LIBRARY_PATH=/lib/aarch64-linux-gnu:/usr/lib/aarch64-linux-gnu \
  "$ARM_BIN" read --json "${READ_ARGS[@]}" "$IMAGE" >"$out/arm64.json" 2>"$out/arm64.err" \
  || { rc=$?; cat "$out/arm64.err" >&2; [ $rc -eq 124 ] && die "arm64 read under qemu took more than ${TIMEOUT}s"; die "arm64 read under qemu failed (exit $rc)"; }
wall=$(echo "$(date +%s.%N) - $t0" | bc)

want=$(basename "$IMAGE"); want=${want%.*}; case "$want" in plate-*) want=${want#plate-} ;; *) want="" ;; esac
python3 - "$out/amd64.json" "$out/arm64.json" "$want" "$wall" "$CPU" <<'EOF'
import json, sys
amd = json.loads(open(sys.argv[1]).read().splitlines()[0])
arm = json.loads(open(sys.argv[2]).read().splitlines()[0])
want, wall, cpu = sys.argv[3], float(sys.argv[4]), sys.argv[5]
pa = [p["plate"] for p in amd["plates"]]
pr = [p["plate"] for p in arm["plates"]]
print(f"test-arm64: amd64 native      : {pa} in {amd['ms']} ms", file=sys.stderr)
print(f"test-arm64: arm64 qemu ({cpu}): {pr} in {arm['ms']} ms ({wall:.1f} s wall, incl. start and model load)", file=sys.stderr)
for a, r in zip(amd["plates"], arm["plates"]):
    print(f"test-arm64:   {a['plate']}: confidence {a['confidence']} vs {r['confidence']}, box {a['box']} vs {r['box']}", file=sys.stderr)
fails = []
if pr != pa:
    fails.append(f"arm64 read {pr}, amd64 read {pa}")
if want and want not in pr:
    fails.append(f"arm64 did not read {want}")
if want and want not in pa:
    fails.append(f"amd64 did not read {want}")
if fails:
    for f in fails:
        print("test-arm64: FAIL:", f, file=sys.stderr)
    sys.exit(1)
print(f"test-arm64: PASS: arm64 under qemu reads {pr} like amd64 "
      f"(read {arm['ms']:.0f} ms emulated vs {amd['ms']:.0f} ms native)")
EOF
