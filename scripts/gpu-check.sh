#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU whose python3 has a pip torch
# 2.x with CUDA (its bundled LibTorch is what we build against), and whose
# system may lack the GStreamer / OpenCV headers:
#
#   scripts/gpu-check.sh OUT_DIR [--prefix DIR] [--build-dir DIR] [--skip-build]
#
#   1. finds torch (python3 -c 'import torch'), its CMake prefix, its CUDA
#      version and the GPU; without torch, without CUDA in it or without a
#      GPU it writes OUT_DIR/gpu-check.json with "status": "skipped" and the
#      reason, and exits 0: nothing was checked;
#   2. builds gst-sam3 with -Dcuda=enabled against that torch into
#      build-gpu (--build-dir); --prefix DIR adds a tree of Debian packages
#      unpacked with `dpkg -x` (GStreamer, OpenCV, nlohmann-json, GoogleTest
#      -dev packages and their libraries) to pkg-config, the compiler and the
#      loader;
#   3. runs the predictor suite (CUDA tests: CPU-vs-CUDA parity in fp32, bf16 /
#      fp16 agreement; they fail, not skip, when CUDA is there) and writes
#      meson's test log;
#   4. runs sam3-bench on cuda for SAM 3 full, SAM 2.1 t and b+ (random
#      weights, 1920x1080 input) in fp32 and bf16, and sam3-pipeline-bench with
#      device=cuda on the fixture model;
#   5. writes every figure as JSON into OUT_DIR: gpu-check.json (summary:
#      status, torch, CUDA, GPU, test counts, each benchmark's set_image and
#      predict medians), bench-<model>-<precision>.json, pipeline-bench.json,
#      tests.json (meson's testlog.json), and the logs.
# Exit status: 0 when everything ran and passed (or the check was skipped, see
# "status"), 1 when a step failed (the JSON says which), 2 on bad arguments.
# Environment: GPU_CHECK_PYTHON (default python3), GPU_CHECK_BENCH_RUNS
# (default 5), SAM3_FIXTURES_DIR (default ../shared/fixtures).
set -uo pipefail
cd "$(dirname "$0")/.."
src=$PWD

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d' >&2; exit 2; }
out="" prefix="" build=build-gpu skip_build=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift ;;
    --build-dir) [ $# -ge 2 ] || usage; build=$2; shift ;;
    --skip-build) skip_build=1 ;;
    -h|--help) usage ;;
    -*) echo "gpu-check.sh: unknown option $1" >&2; usage ;;
    *) [ -z "$out" ] || { echo "gpu-check.sh: one OUT_DIR only ($out, $1)" >&2; usage; }; out=$1 ;;
  esac
  shift
done
[ -n "$out" ] || { echo "gpu-check.sh: OUT_DIR missing" >&2; usage; }
if [ -n "$prefix" ] && [ ! -d "$prefix" ]; then
  echo "gpu-check.sh: --prefix $prefix is not a folder" >&2; exit 2
fi
mkdir -p "$out" || { echo "gpu-check.sh: cannot create $out" >&2; exit 2; }
out=$(cd "$out" && pwd)
py=${GPU_CHECK_PYTHON:-python3}
runs=${GPU_CHECK_BENCH_RUNS:-5}
fixtures=${SAM3_FIXTURES_DIR:-$(cd .. && pwd)/shared/fixtures}
say() { echo "gpu-check.sh: $*" >&2; }

# summary JSON, written by python3 from the environment (no jq needed)
steps=()   # "name=ok|failed|skipped"
write_summary() { # write_summary STATUS REASON
  GC_STATUS=$1 GC_REASON=$2 GC_STEPS="${steps[*]:-}" GC_OUT=$out GC_TORCH="${torch_info:-}" \
  "${py_json:-python3}" - <<'EOF'
import glob, json, os
out = os.environ["GC_OUT"]
doc = {"status": os.environ["GC_STATUS"], "reason": os.environ["GC_REASON"],
       "steps": dict(s.split("=", 1) for s in os.environ["GC_STEPS"].split() if "=" in s)}
t = os.environ.get("GC_TORCH", "")
if t:
    try:
        doc["torch"] = json.loads(t)
    except ValueError:
        doc["torch"] = {"raw": t}
log = os.path.join(out, "tests.json")
if os.path.exists(log):
    res = [json.loads(l) for l in open(log) if l.strip()]
    doc["tests"] = {"total": len(res),
                    "results": {r["name"]: r["result"] for r in res}}
bench = {}
for f in sorted(glob.glob(os.path.join(out, "bench-*.json"))):
    try:
        b = json.load(open(f))
        bench[os.path.basename(f)[6:-5]] = {
            "model": b.get("model"), "device": b.get("device"), "precision": b.get("precision"),
            "set_image_median_ms": b.get("set_image", {}).get("median_ms"),
            "predict_median_ms": b.get("predict", {}).get("median_ms"),
            "cuda_peak_allocated_bytes": b.get("cuda_peak_allocated_bytes")}
    except (ValueError, OSError) as e:
        bench[os.path.basename(f)] = {"error": str(e)}
if bench:
    doc["bench"] = bench
p = os.path.join(out, "pipeline-bench.json")
if os.path.exists(p):
    try:
        doc["pipeline_bench"] = json.load(open(p))
    except ValueError as e:
        doc["pipeline_bench"] = {"error": str(e)}
json.dump(doc, open(os.path.join(out, "gpu-check.json"), "w"), indent=2)
print(json.dumps({"status": doc["status"], "reason": doc["reason"], "steps": doc["steps"]}))
EOF
}
# the JSON writer needs a python3; the torch probe may use another interpreter
py_json=python3
command -v python3 >/dev/null || py_json=$py
skip() { say "skipped: $1"; write_summary skipped "$1"; exit 0; }
fail() { say "FAILED: $1"; write_summary failed "$1"; exit 1; }

# 1. torch, CUDA, GPU
command -v "$py" >/dev/null || skip "no $py on PATH"
torch_info=$("$py" - 2>"$out/torch-probe.err" <<'EOF'
import json
try:
    import torch
except Exception as e:
    print(json.dumps({"error": "import torch: %s" % e}))
    raise SystemExit(0)
d = {"version": torch.__version__, "cuda": torch.version.cuda,
     "cmake_prefix_path": torch.utils.cmake_prefix_path,
     "cuda_available": bool(torch.cuda.is_available()),
     "device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0}
if d["cuda_available"]:
    d["gpu"] = torch.cuda.get_device_name(0)
    d["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
print(json.dumps(d))
EOF
) || skip "$py failed: $(tail -1 "$out/torch-probe.err")"
field() { "$py_json" -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else v)' "$torch_info" "$1"; }
[ -z "$(field error)" ] || skip "$(field error)"
[ -n "$(field cuda)" ] || skip "torch $(field version) is a CPU-only build"
[ "$(field cuda_available)" = True ] || skip "torch $(field version) (CUDA $(field cuda)) sees no GPU"
say "torch $(field version), CUDA $(field cuda), $(field gpu) (sm $(field capability))"
torch_prefix=$(field cmake_prefix_path)

# extra prefix of unpacked .debs
if [ -n "$prefix" ]; then
  prefix=$(cd "$prefix" && pwd)
  multi=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  export CPATH="$prefix/usr/include:$prefix/usr/include/$multi${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$prefix/usr/lib/$multi${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$prefix/usr/lib/$multi:$prefix/lib/$multi${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export GST_PLUGIN_SYSTEM_PATH_1_0="$prefix/usr/lib/$multi/gstreamer-1.0"
  export PATH="$prefix/usr/bin:$PATH"
  # only the tree's .pc files; they say prefix=/usr: the sysroot points them into it
  export PKG_CONFIG_LIBDIR="$prefix/usr/lib/$multi/pkgconfig:$prefix/usr/share/pkgconfig:$prefix/usr/lib/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR="$prefix"
fi
# torch's own libraries (libtorch_cuda.so, libc10_cuda.so, CUDA runtime wheels)
export LD_LIBRARY_PATH="$torch_prefix/../../lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# 2. build
if [ "$skip_build" = 0 ]; then
  say "building $build against $torch_prefix"
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" --buildtype=release -Dcuda=enabled \
      -Dtorch-cmake-prefix="$torch_prefix" > "$out/meson-setup.log" 2>&1 ||
      { steps+=(build=failed); fail "meson setup failed (meson-setup.log)"; }
  fi
  ninja -C "$build" > "$out/build.log" 2>&1 || { steps+=(build=failed); fail "build failed (build.log)"; }
  steps+=(build=ok)
else
  [ -f "$build/build.ninja" ] || fail "--skip-build but no $build/build.ninja"
  steps+=(build=skipped)
fi

# 3. the predictor suite (the CUDA tests are in it)
result=0
SAM3_FIXTURES_DIR=$fixtures meson test -C "$build" --suite predictor --print-errorlogs \
  > "$out/tests.log" 2>&1 && steps+=(tests=ok) || { steps+=(tests=failed); result=1; }
cp "$build/meson-logs/testlog.json" "$out/tests.json" 2>/dev/null || true

# 4. benchmarks
bench=$build/predictor/tools/sam3-bench
for model in "full:--full" "sam2.1-t:--sam2.1 t" "sam2.1-bplus:--sam2.1 b+"; do
  name=${model%%:*} args=${model#*:}
  for prec in fp32 bf16; do
    say "sam3-bench $args --device cuda --precision $prec"
    # shellcheck disable=SC2086
    if "$bench" $args --device cuda --precision "$prec" --image-size 1920x1080 --runs "$runs" \
         --json > "$out/bench-$name-$prec.json" 2> "$out/bench-$name-$prec.err"; then
      steps+=("bench-$name-$prec=ok")
    else
      steps+=("bench-$name-$prec=failed"); result=1; rm -f "$out/bench-$name-$prec.json"
    fi
  done
done
pbench=$build/gst-plugin/tools/sam3-pipeline-bench
if [ -x "$pbench" ]; then
  GST_PLUGIN_PATH_1_0="$src/$build/gst-plugin" \
    "$pbench" --model "$fixtures/sam3/tiny-a/checkpoint.pt" --device cuda --json \
    > "$out/pipeline-bench.log" 2>&1 &&
    tail -1 "$out/pipeline-bench.log" > "$out/pipeline-bench.json" &&
    steps+=(pipeline-bench=ok) || { steps+=(pipeline-bench=failed); result=1; rm -f "$out/pipeline-bench.json"; }
else
  steps+=(pipeline-bench=skipped)
fi

# 5. summary
if [ "$result" = 0 ]; then write_summary ok "all steps passed"; else write_summary failed "a step failed (steps)"; fi
exit "$result"
