#!/usr/bin/env bash
# The plugin chooses the CPU's best OpenBLAS kernels in a process that never
# heard of us: gst-launch-1.0 started from a clean environment (env -i: no
# OPENBLAS_CORETYPE, no OMP_WAIT_POLICY), sam3segment on the CPU. Read through
# the element's debug line "CPU kernels: OpenBLAS kernels X (the CPU's best: Y)"
# (gst-plugin/plugin.cpp, docs/elements.md "CPU kernels"), not through timing:
#   1. plain (and a Python application, PyGObject): X == Y, no "Slow CPU kernels" warning, OMP_WAIT_POLICY set by the plugin;
#   2. SAM3_BLAS_CORETYPE=Sandybridge: X == Sandybridge (the plugin's choice is what
#      OpenBLAS ran), and the element warns when that is below the CPU's;
#   3. SAM3_BLAS_CORETYPE=Bogus: a message naming it, the CPU's best kernels;
#      the user's own OPENBLAS_CORETYPE=Prescott is left as it is: X == Prescott and
#      the element warns on the bus.
#   4. sam3-bench (re-executes itself, cpu_kernels.h) from a clean environment:
#      its JSON reports the CPU's best kernels in use.
# Usage: cpu_kernels_test.sh PLUGIN_DIR SYSTEM_PLUGIN_DIR MODEL WORK_DIR [SAM3_BENCH PRESETS_DIR]
set -euo pipefail
plugin_dir=${1:?plugin dir} sys_dir=${2:?system plugin dir} model=${3:?model} work=${4:?work dir}
bench=${5:-} presets=${6:-}
rm -rf "$work"; mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

pipeline="videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48 ! \
  sam3segment model-file=$model num-threads=1 boxes=<<8,8,40,40>> ! fakesink"
# a Python application: PyGObject, Gst.parse_launch, run to EOS, bus messages printed
python_app='
import sys, gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
p = Gst.parse_launch(sys.argv[1])
p.set_state(Gst.State.PLAYING)
m = p.get_bus().timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
ok = m is not None and m.type == Gst.MessageType.EOS
p.set_state(Gst.State.NULL)
sys.exit(0 if ok else 1)
'
run() { # run NAME [VAR=VALUE...]: gst-launch-1.0 (or python3 when PY=1) from a clean environment
  local name=$1; shift
  local -a prog=(gst-launch-1.0 $pipeline)
  if [ "${1:-}" = PY=1 ]; then shift; prog=(python3 -c "$python_app" "$pipeline"); fi
  env -i PATH=/usr/bin:/bin HOME="$work" "$@" \
    GST_PLUGIN_SYSTEM_PATH_1_0= GST_PLUGIN_PATH_1_0="$plugin_dir:$sys_dir" \
    GST_REGISTRY_1_0="$work/registry-$name.bin" GST_DEBUG=sam3segment:4,sam3plugin:4 \
    GST_DEBUG_NO_COLOR=1 "${prog[@]}" \
      > "$work/$name.log" 2>&1 || { cat "$work/$name.log" >&2; fail "$name: ${prog[0]} failed"; }
  line=$(grep -o 'CPU kernels: OpenBLAS kernels [A-Za-z0-9_]* (the CPU.s best: [A-Za-z0-9_]*)' \
           "$work/$name.log" | head -1) || true
  [ -n "$line" ] || { cat "$work/$name.log" >&2; fail "$name: no 'CPU kernels' line from sam3segment"; }
  in_use=$(sed 's/.*OpenBLAS kernels \([A-Za-z0-9_]*\) .*/\1/' <<<"$line")
  best=$(sed 's/.*best: \([A-Za-z0-9_]*\))/\1/' <<<"$line")
  echo "$name: $line"
}
warned() { grep -q 'Slow CPU kernels in use' "$work/$1.log"; }

run plain
[ "$in_use" = "$best" ] || fail "plain: OpenBLAS runs $in_use, the CPU's best is $best"
! warned plain || fail "plain: the element warned about slow kernels"
grep -q 'OMP_WAIT_POLICY=PASSIVE set before libgomp is loaded' "$work/plain.log" ||
  fail "plain: the plugin did not set OMP_WAIT_POLICY"
! grep -q 'OMP_WAIT_POLICY is not set' "$work/plain.log" || fail "plain: OMP_WAIT_POLICY unset at start"
cpu_best=$best

run python PY=1
[ "$in_use" = "$best" ] || fail "python: OpenBLAS runs $in_use, the CPU's best is $best"

run forced SAM3_BLAS_CORETYPE=Sandybridge
[ "$in_use" = Sandybridge ] || fail "forced: OpenBLAS runs $in_use, SAM3_BLAS_CORETYPE asked Sandybridge"
case "$cpu_best" in
  Sandybridge|Nehalem|Core2|Prescott|"") ;;
  *) warned forced || fail "forced: Sandybridge is below $cpu_best and the element did not warn" ;;
esac

run bogus SAM3_BLAS_CORETYPE=Bogus
[ "$in_use" = "$best" ] || fail "bogus: OpenBLAS runs $in_use, expected the CPU's best $best"
grep -q 'SAM3_BLAS_CORETYPE=Bogus is not an OpenBLAS x86-64 kernel family' "$work/bogus.log" ||
  fail "bogus: no message naming the bad SAM3_BLAS_CORETYPE"

run user OPENBLAS_CORETYPE=Prescott
[ "$in_use" = Prescott ] || fail "user: OpenBLAS runs $in_use, the user's OPENBLAS_CORETYPE was Prescott"
if [ "$cpu_best" != Prescott ]; then
  warned user || fail "user: Prescott is below $cpu_best and the element did not warn"
fi
if [ -n "$bench" ]; then
  env -i PATH=/usr/bin:/bin "$bench" --preset tiny-a --presets-dir "$presets" --image-size 64x48 \
    --threads 1 --runs 1 --warmup 0 --json > "$work/bench.json" 2> "$work/bench.err" ||
    { cat "$work/bench.err" >&2; fail "sam3-bench failed"; }
  got=$(python3 -c 'import json,sys; k=json.load(open(sys.argv[1]))["blas_kernels"]; print(k["in_use"], k["cpu_best"], k["below_cpu"])' "$work/bench.json")
  echo "sam3-bench: kernels in use, CPU best, below: $got"
  [ "$got" = "$cpu_best $cpu_best False" ] || fail "sam3-bench: $got, expected $cpu_best $cpu_best False"
  ! grep -q warning "$work/bench.err" || fail "sam3-bench warned: $(cat "$work/bench.err")"
fi
echo "PASS: the plugin makes OpenBLAS run $cpu_best, the CPU's best"
