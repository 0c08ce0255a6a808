#!/usr/bin/env bash
# The main job until the GStreamer element lands: batch segmentation with the
# sam3-predict CLI on the tiny-a fixture model (random weights, official SAM 3
# architecture at 1/3 scale) and its two images, one point and one box prompt.
# Writes masks (PNG), scores (JSON) and raw tensors into sam3-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
fixtures=${SAM3_FIXTURES_DIR:-../shared/fixtures}/sam3/tiny-a
build=${SAM3_BUILD_DIR:-build}
out=${1:-sam3-out}
"$build/predictor/tools/sam3-predict" \
  --checkpoint "$fixtures/checkpoint.pt" \
  --image "$fixtures/img0.png" --image "$fixtures/img1.png" \
  --point 144,126,1 --box 60,40,300,260 --single-mask \
  --output-dir "$out" --save-raw "$out/raw.safetensors"
echo "demo.sh: results in $out/:"
ls -1 "$out"
