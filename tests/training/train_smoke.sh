#!/usr/bin/env bash
# sam3-train end to end on a few steps (CPU, 2 workers): trains, checkpoints,
# resumes (bit-identical to the uninterrupted run, the --ema moving average
# included), writes safetensors files in the official key layout with their
# metadata, and the results load and run through the predictor (sam3-eval).
# Usage: train_smoke.sh BUILD_DIR SOURCE_DIR WORKDIR
set -euo pipefail
build=${1:?build dir} src=${2:?source dir} work=${3:?work dir}
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
train="$build/training/sam3-train --config $src/training/sam3-synth.json --images 2 --objects 2
  --threads 2 --workers 2 --log-every 2 --warmup 2 --locate-steps 2 --hr-warmup 3 --resume $work/ckpt --checkpoint-every 2 --ema 0.9"
# 4 steps with a checkpoint at step 2, then the same run resumed from step 2 to 4
$train --steps 4 --out "$work/full.safetensors" | tee "$work/log1"
grep -q "step     4/4" "$work/log1" || fail "no progress line for step 4"
[ -s "$work/ckpt/weights.safetensors" ] && [ -s "$work/ckpt/optimizer.pt" ] && [ -s "$work/ckpt/ema.pt" ] || fail "no checkpoint"
[ -s "$work/full.ema.safetensors" ] || fail "--ema wrote no full.ema.safetensors"
grep -q '"step":2' "$work/ckpt/state.json" || fail "checkpoint not at step 2: $(cat "$work/ckpt/state.json")"
$train --steps 4 --out "$work/resumed.safetensors" | tee "$work/log2"
grep -q "resumed from $work/ckpt at step 2" "$work/log2" || fail "did not resume"
grep -q "2 worker(s) x 1 thread(s)" "$work/log1" || fail "not 2 workers: $(head -1 "$work/log1")"
# official key names, config + command in the metadata
/usr/bin/python3 - "$work/resumed.safetensors" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
meta = h.pop("__metadata__")
assert "sam3-train" in meta["training_command"], meta
assert json.loads(meta["config"])["image_size"] == 336, meta["config"]
keys = set(h)
for k in ["detector.backbone.vision_backbone.trunk.patch_embed.proj.weight",
          "detector.backbone.vision_backbone.sam2_convs.0.conv_1x1.weight",
          "tracker.no_mem_embed", "tracker.sam_mask_decoder.iou_prediction_head.layers.0.weight",
          "tracker.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"]:
    assert k in keys, k
print("metadata and keys OK:", len(keys), "tensors")
PY
# the resumed run equals the uninterrupted one, tensor for tensor (2 workers:
# gradients are summed in worker order, draws are seeded per step and worker)
/usr/bin/python3 - "$work/full.safetensors" "$work/resumed.safetensors" "$work/full.ema.safetensors" "$work/resumed.ema.safetensors" <<'PY'
import json, struct, sys
def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    h.pop("__metadata__", None)
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in h.items()}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a.keys() == b.keys()
diff = [k for k in a if a[k] != b[k]]
assert not diff, f"{len(diff)} tensors differ after resuming, e.g. {diff[:3]}"
print("resumed == uninterrupted:", len(a), "tensors identical")
ea, eb = tensors(sys.argv[3]), tensors(sys.argv[4])
assert ea.keys() == a.keys()
diff = [k for k in ea if ea[k] != eb[k]]
assert not diff, f"{len(diff)} moving-average tensors differ after resuming, e.g. {diff[:3]}"
moved = [k for k in a if a[k] != ea[k]]
assert len(moved) > len(a) // 2, f"the moving average equals the weights in {len(a) - len(moved)} of {len(a)} tensors"
print("moving average: resumed == uninterrupted,", len(moved), "tensors differ from the raw weights")
PY
# bad arguments fail with a message
if "$build/training/sam3-train" --config "$src/training/sam3-synth.json" --steps 0 2>"$work/err"; then
  fail "--steps 0 accepted"
fi
grep -q "out-of-range" "$work/err" || fail "no message for --steps 0: $(cat "$work/err")"
if "$build/training/sam3-train" --config "$src/training/sam3-synth.json" --ema 1 2>"$work/err"; then
  fail "--ema 1 accepted"
fi
grep -q "\-\-ema in \[0, 1)" "$work/err" || fail "no message for --ema 1: $(cat "$work/err")"
if "$build/training/sam3-train" --config "$work/none.json" --steps 1 2>"$work/err"; then
  fail "missing config accepted"
fi
grep -q "none.json" "$work/err" || fail "missing config not named: $(cat "$work/err")"
# the trained file loads (config from its metadata) and runs
"$build/training/sam3-eval" --model "$work/resumed.safetensors" --scenes 1 --threads 2
"$build/training/sam3-eval" --model "$work/resumed.ema.safetensors" --scenes 1 --threads 2
echo "OK"
