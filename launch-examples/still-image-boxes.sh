#!/usr/bin/env bash
# Still image + prompts -> PNG.
#
# Shows: sam3segment on a still image with one box prompt and one point
# prompt (two objects), sam3overlay drawing masks, boxes and "id iou" labels,
# pngenc writing the first frame. imagefreeze repeats the image N times: the
# image encoder runs once (embedding cache), the mask decoder N times.
#
# Run (from anywhere; builds in ./build by default):
#   launch-examples/still-image-boxes.sh [input.png [output.png]]
# Defaults: input ../shared/fixtures/sam3/tiny-a/img0.png (480x360),
#           output sam3-out/still-image-boxes.png.
# Environment: SAM3_MODEL (default: sam3segment's default model-file, the
#   bundled model trained on synthetic scenes, docs/training.md),
#   SAM3_BUILD_DIR (default build), SAM3_BOXES (default <<264,54,408,162>>),
#   SAM3_POINTS (default <<144,126,1>>), SAM3_NUM_BUFFERS (default 5).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
abs() { case $1 in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }
model_prop=()   # empty: the element's default model
[ -z "${SAM3_MODEL:-}" ] || model_prop=("model-file=$(abs "$SAM3_MODEL")")
build=$(abs "${SAM3_BUILD_DIR:-build}")
export GST_PLUGIN_PATH=$build/gst-plugin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}   # docs/elements.md, CPU threads

input=${1:-$root/../shared/fixtures/sam3/tiny-a/img0.png}
output=${2:-sam3-out/still-image-boxes.png}
mkdir -p "$(dirname "$output")"

gst-launch-1.0 -q \
  filesrc location="$input" ! pngdec ! videoconvert ! \
  imagefreeze num-buffers="${SAM3_NUM_BUFFERS:-5}" ! \
  sam3segment "${model_prop[@]}" \
    boxes="${SAM3_BOXES:-<<264,54,408,162>>}" points="${SAM3_POINTS:-<<144,126,1>>}" ! \
  sam3overlay draw-boxes=true draw-labels=true ! videoconvert ! \
  pngenc snapshot=true ! filesink location="$output"
echo "wrote $output"
