#!/usr/bin/env bash
# CPU speed of Debian 12 (LibTorch 1.13, OpenBLAS 0.3.21) against Debian 13
# (LibTorch 2.6 with oneDNN, OpenBLAS 0.3.29), side by side in one run on this
# machine: sam3-bench (fp32, 1920x1080, 2 threads) from ./build and from the
# chroot of scripts/debian13.sh (its build folder), taking turns model by
# model so that both see the same machine load. On LibTorch 2.6 it also times
# the CPU kernel choices of predictor/src/modeling/common.cpp against each
# other: attention (SAM3_CPU_ATTENTION=chunked | sdpa) and 1x1 convolutions
# (SAM3_CPU_CONV1X1=gemm | native).
#
# Usage: scripts/bench-platforms.sh OUT_DIR [MODEL...]
#   MODEL: sam2.1-t, sam2.1-bplus, full (default: all three; full runs
#   set_image once after one warm-up, the others three times)
# Needs: ./build (scripts/setup.sh) and a chroot where scripts/debian13.sh has
# run (DEBIAN13_ROOT, default /var/tmp/sam3-debian13). Root (chroot).
# Writes OUT_DIR/<platform>-<model>[-<variant>].json and prints a table.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench-platforms.sh OUT_DIR [MODEL...]}; shift
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(sam2.1-t sam2.1-bplus full)
root=${DEBIAN13_ROOT:-/var/tmp/sam3-debian13}
host_bench=build/predictor/tools/sam3-bench
chroot_bench=/src/main/build/predictor/tools/sam3-bench
[ -x "$host_bench" ] || { echo "bench-platforms.sh: no $host_bench (run scripts/setup.sh)" >&2; exit 2; }
[ -x "$root$chroot_bench" ] || { echo "bench-platforms.sh: no $root$chroot_bench (run scripts/debian13.sh)" >&2; exit 2; }
mkdir -p "$out"

args_for() {
  case "$1" in
    sam2.1-t) echo "--sam2.1 t --runs 3 --warmup 1" ;;
    sam2.1-bplus) echo "--sam2.1 b+ --runs 3 --warmup 1" ;;
    full) echo "--full --runs 1 --warmup 1" ;;
    *) echo "bench-platforms.sh: unknown model $1" >&2; exit 2 ;;
  esac
}
common="--threads 2 --image-size 1920x1080 --predict-runs 20 --predict-warmup 3 --json"
run_host() { # NAME ARGS...
  local name=$1; shift
  # shellcheck disable=SC2086
  env -i PATH=/usr/bin:/bin "$host_bench" "$@" $common > "$out/$name.json"
}
run_chroot() { # NAME VAR=VALUE... -- ARGS...
  local name=$1; shift
  local -a vars=()
  while [ "$1" != -- ]; do vars+=("$1"); shift; done; shift
  # shellcheck disable=SC2086
  chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin "${vars[@]}" "$chroot_bench" "$@" $common \
    > "$out/$name.json"
}

for m in "${models[@]}"; do
  read -r -a a <<<"$(args_for "$m")"
  echo "bench-platforms.sh: $m" >&2
  run_host "debian12-$m" "${a[@]}"
  run_chroot "debian13-$m" -- "${a[@]}"
  if [ "$m" != full ]; then
    run_chroot "debian13-$m-chunked-gemm" SAM3_CPU_ATTENTION=chunked SAM3_CPU_CONV1X1=gemm -- "${a[@]}"
    run_chroot "debian13-$m-sdpa-gemm" SAM3_CPU_ATTENTION=sdpa SAM3_CPU_CONV1X1=gemm -- "${a[@]}"
    run_chroot "debian13-$m-chunked-native" SAM3_CPU_ATTENTION=chunked SAM3_CPU_CONV1X1=native -- "${a[@]}"
    run_chroot "debian13-$m-sdpa-native" SAM3_CPU_ATTENTION=sdpa SAM3_CPU_CONV1X1=native -- "${a[@]}"
  fi
done

python3 - "$out" <<'EOF'
import glob, json, os, sys
out = sys.argv[1]
print("| run | LibTorch | kernels | set_image median (min) | predict median |")
print("|---|---|---|---|---|")
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    d = json.load(open(f))
    k = d.get("blas_kernels", {}).get("in_use", "?")
    s, p = d["set_image"], d["predict"]
    print("| %s | %s | %s | %.2f s (%.2f) | %.1f ms |" % (
        os.path.basename(f)[:-5], d["libtorch"], k, s["median_ms"] / 1000, s["min_ms"] / 1000,
        p["median_ms"]))
EOF
