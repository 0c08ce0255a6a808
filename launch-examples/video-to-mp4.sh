#!/usr/bin/env bash
# Video file -> masks from box/point properties -> overlay -> H.264 MP4.
#
# Shows: decodebin feeding sam3segment (one box object + one point object,
# fixed prompts from properties, every frame through the image encoder),
# sam3overlay drawing the masks, x264enc + mp4mux writing the result.
# Without an input file, a test clip is made first: videotestsrc pattern=ball
# (320x240, 30 fps, SAM3_NUM_BUFFERS frames) encoded to sam3-out/ball.mp4.
#
# Run:
#   launch-examples/video-to-mp4.sh [input-video [output.mp4]]
# Default output: sam3-out/video-to-mp4.mp4. Needs gstreamer1.0-plugins-ugly
# (x264enc) and, to decode H.264 input, gstreamer1.0-libav (scripts/setup.sh).
# Environment: SAM3_MODEL (default: sam3segment's default model-file,
#   the bundled model trained on synthetic scenes, docs/training.md), SAM3_BUILD_DIR (default build),
#   SAM3_BOXES (default <<40,40,200,180>>), SAM3_POINTS (default <<240,60,1>>):
#   input-frame pixels, must lie inside the frame; SAM3_NUM_BUFFERS (default 60,
#   generated clip only), SAM3_BATCH_SIZE (default 1: frames per encoder call).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
abs() { case $1 in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }
model_prop=()   # empty: the element's default model
[ -z "${SAM3_MODEL:-}" ] || model_prop=("model-file=$(abs "$SAM3_MODEL")")
build=$(abs "${SAM3_BUILD_DIR:-build}")
export GST_PLUGIN_PATH=$build/gst-plugin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}   # docs/elements.md, CPU threads

output=${2:-sam3-out/video-to-mp4.mp4}
mkdir -p "$(dirname "$output")"
input=${1:-}
if [ -z "$input" ]; then
  input=$(dirname "$output")/ball.mp4
  gst-launch-1.0 -q \
    videotestsrc pattern=ball num-buffers="${SAM3_NUM_BUFFERS:-60}" ! \
    video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! \
    x264enc speed-preset=ultrafast ! mp4mux ! filesink location="$input"
  echo "generated $input"
fi

gst-launch-1.0 -q \
  filesrc location="$input" ! decodebin ! videoconvert ! \
  sam3segment "${model_prop[@]}" batch-size="${SAM3_BATCH_SIZE:-1}" \
    boxes="${SAM3_BOXES:-<<40,40,200,180>>}" points="${SAM3_POINTS:-<<240,60,1>>}" ! \
  sam3overlay draw-boxes=true draw-labels=true ! videoconvert ! \
  x264enc speed-preset=ultrafast ! mp4mux ! filesink location="$output"
echo "wrote $output"
