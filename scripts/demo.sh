#!/usr/bin/env bash
# The main job: real GStreamer pipelines with the sam3 plugin built by
# scripts/setup.sh, on the tiny-a fixture model (official SAM 3 architecture at
# small scale, random weights: the masks are not meaningful until a trained
# default model ships; the pipeline, prompts, metadata and overlay are real).
#   1. a video (generated with videotestsrc when no file is given) -> decodebin
#      -> sam3segment (a box object and a point object, batch-size 4)
#      -> sam3overlay -> x264enc -> mp4mux: sam3-out/video-to-mp4.mp4
#   2. a still image -> sam3segment -> sam3overlay -> PNG: sam3-out/still-image-boxes.png
#   3. detector-style ROI metas -> box prompts -> masks parented to the ROIs,
#      printed per frame by launch-examples/detector-roi.cpp
# Usage: scripts/demo.sh [input-video]   (output folder: SAM3_OUT, default sam3-out)
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM3_BUILD_DIR=${SAM3_BUILD_DIR:-build}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export GST_PLUGIN_PATH=$PWD/$SAM3_BUILD_DIR/gst-plugin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}
model=${SAM3_MODEL:-${SAM3_FIXTURES_DIR:-../shared/fixtures}/sam3/tiny-a/checkpoint.pt}
export SAM3_MODEL=$model
out=${SAM3_OUT:-sam3-out}
mkdir -p "$out"

echo "== 1. video -> sam3segment -> sam3overlay -> MP4"
SAM3_BATCH_SIZE=4 launch-examples/video-to-mp4.sh "${1:-}" "$out/video-to-mp4.mp4"
echo "== 2. still image -> PNG"
launch-examples/still-image-boxes.sh "${SAM3_FIXTURES_DIR:-../shared/fixtures}/sam3/tiny-a/img0.png" \
  "$out/still-image-boxes.png"
echo "== 3. detector ROI metas -> masks"
"$SAM3_BUILD_DIR/launch-examples/sam3-detector-roi" "$model" 6
echo "demo.sh: results in $out/:"
ls -l "$out"
