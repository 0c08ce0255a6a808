#!/usr/bin/env bash
# scripts/gpu-check.sh without a GPU: what can be checked of it here.
#   - argument handling: no OUT_DIR, two OUT_DIRs, an unknown option, a
#     --prefix that is no folder: exit 2 with a message;
#   - the skip paths, each with a fake `torch` module on PYTHONPATH: no torch,
#     a CPU-only torch, a CUDA torch that sees no GPU: exit 0, gpu-check.json
#     with "status": "skipped" and the reason;
#   - a fake torch that sees a GPU, with --skip-build and no build: exit 1,
#     "status": "failed", the reason names the missing build.ninja;
#   - the JSON is valid and holds status, reason and steps every time.
# Usage: gpu_check_test.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=${1:?source dir} work=${2:?work dir}
script=$src/scripts/gpu-check.sh
rm -rf "$work"; mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

expect_usage() { # expect_usage WHAT ARGS...
  local what=$1; shift
  set +e; "$script" "$@" > "$work/usage.out" 2> "$work/usage.err"; local rc=$?; set -e
  [ "$rc" = 2 ] || fail "$what: exit $rc, expected 2"
  grep -q "gpu-check.sh" "$work/usage.err" || fail "$what: no message on stderr"
  echo "ok: $what -> exit 2: $(head -1 "$work/usage.err")"
}
expect_usage "no OUT_DIR"
expect_usage "two OUT_DIRs" "$work/a" "$work/b"
expect_usage "unknown option" "$work/a" --frobnicate
expect_usage "--prefix not a folder" "$work/a" --prefix "$work/no-such-folder"
expect_usage "--prefix without value" "$work/a" --prefix

fake_torch() { # fake_torch DIR PYTHON-SOURCE: a `torch` package in DIR
  mkdir -p "$1/torch"
  printf '%s\n' "$2" > "$1/torch/__init__.py"
}
fake_torch "$work/none" 'raise ImportError("No module named torch (fake)")'
# fake_torch_build DIR VERSION CUDA(None|"x.y") GPU(""|name): a torch with that build and device
fake_torch_build() {
  local avail=False count=0 dev=""
  if [ -n "$4" ]; then
    avail=True count=1
    dev="
    @staticmethod
    def get_device_name(i): return \"$4\"
    @staticmethod
    def get_device_capability(i): return (9, 0)"
  fi
  fake_torch "$1" "
__version__ = \"$2\"
class version: cuda = $3
class utils: cmake_prefix_path = \"/nonexistent/share/cmake\"
class cuda:
    @staticmethod
    def is_available(): return $avail
    @staticmethod
    def device_count(): return $count$dev"
}
fake_torch_build "$work/cpu" 2.6.0+cpu None ""
fake_torch_build "$work/nogpu" 2.6.0+cu124 '"12.4"' ""
fake_torch_build "$work/gpu" 2.6.0+cu124 '"12.4"' "Fake GPU"

check() { # check NAME EXPECTED_RC EXPECTED_STATUS REASON_REGEX [ARGS...]
  local name=$1 want_rc=$2 want_status=$3 reason=$4; shift 4
  local out=$work/out-$name
  set +e
  PYTHONPATH="$work/$name" GPU_CHECK_PYTHON=python3 "$script" "$out" "$@" \
    > "$work/$name.out" 2> "$work/$name.err"
  local rc=$?
  set -e
  [ "$rc" = "$want_rc" ] || { cat "$work/$name.err" >&2; fail "$name: exit $rc, expected $want_rc"; }
  [ -f "$out/gpu-check.json" ] || fail "$name: no $out/gpu-check.json"
  python3 - "$out/gpu-check.json" "$want_status" "$reason" <<'PY' || fail "$name: gpu-check.json"
import json, re, sys
d = json.load(open(sys.argv[1]))
for k in ("status", "reason", "steps"):
    assert k in d, "no %r in %s" % (k, d)
assert d["status"] == sys.argv[2], "status %r, expected %r" % (d["status"], sys.argv[2])
assert re.search(sys.argv[3], d["reason"]), "reason %r does not match %r" % (d["reason"], sys.argv[3])
print("ok: %s -> %s: %s" % (sys.argv[1].split("/")[-2], d["status"], d["reason"]))
PY
}
check none 0 skipped 'import torch: No module named torch'
check cpu 0 skipped 'CPU-only build'
check nogpu 0 skipped 'CUDA 12.4\) sees no GPU'
check gpu 1 failed 'no .*build.ninja' --skip-build --build-dir "$work/no-build"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["torch"]["gpu"] == "Fake GPU", d' \
  "$work/out-gpu/gpu-check.json" || fail "gpu: the torch probe is not in the JSON"
echo "PASS: gpu-check.sh argument handling, skip paths and JSON"
