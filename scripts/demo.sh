#!/usr/bin/env bash
# The main job: real GStreamer pipelines with the sam3 plugin built by
# scripts/setup.sh, on the bundled default model (models/sam3-synth-small.
# safetensors: the SAM 3 interactive architecture at small scale, trained by
# this project on synthetic scenes, docs/training.md). No download.
#   1. a generated video with ground truth (moving, occluding objects) whose
#      per-frame boxes are given as detector ROI metas -> sam3segment
#      (batch-size 4) -> sam3overlay -> x264enc -> MP4, a PNG snapshot, and the
#      mean IoU of the masks against the ground truth:
#      sam3-out/synthetic-demo.mp4, sam3-out/synthetic-demo.png
#   2. a video (generated with videotestsrc when no file is given) with a box
#      and a point property prompt -> MP4: sam3-out/video-to-mp4.mp4
#   3. detector-style ROI metas -> box prompts -> masks parented to the ROIs,
#      printed per frame by launch-examples/detector-roi.cpp
# Usage: scripts/demo.sh [input-video]   (output folder: SAM3_OUT, default
# sam3-out; SAM3_MODEL=/path/to/sam3.pt runs another checkpoint)
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM3_BUILD_DIR=${SAM3_BUILD_DIR:-build}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export GST_PLUGIN_PATH=$PWD/$SAM3_BUILD_DIR/gst-plugin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}
out=${SAM3_OUT:-sam3-out}
mkdir -p "$out"

echo "== 1. generated video + ground truth -> sam3segment -> sam3overlay -> MP4 + PNG, mean IoU"
"$SAM3_BUILD_DIR/launch-examples/sam3-synthetic-demo" --out "$out" --frames 90 --size 640x360 \
  --batch-size 4
echo "== 2. video -> sam3segment (box + point properties) -> sam3overlay -> MP4"
SAM3_BATCH_SIZE=4 launch-examples/video-to-mp4.sh "${1:-}" "$out/video-to-mp4.mp4"
echo "== 3. detector ROI metas -> masks"
"$SAM3_BUILD_DIR/launch-examples/sam3-detector-roi" "${SAM3_MODEL:-$PWD/models/sam3-synth-small.safetensors}" 6
echo "demo.sh: results in $out/:"
ls -l "$out"
