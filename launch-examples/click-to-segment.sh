#!/usr/bin/env bash
# Click in a window to segment.
#
# Shows: interactive prompting through navigation events. A still image is
# shown in a video window; sam3segment (prompt-source includes navigation)
# turns mouse clicks in the window into one clicked object: left click = add
# a foreground point, right click = add a background point, middle click =
# clear the clicked object. The mask appears from the next frame (the image
# encoder ran once for the still; each frame re-runs only the mask decoder).
# Clicks reach sam3segment as upstream GstNavigation events from the video sink
# (coordinates in video pixels, translated by videoconvert/videoscale).
#
# Run (needs a display):
#   launch-examples/click-to-segment.sh [image.png]
# Default image: ../shared/fixtures/sam3/tiny-a/img0.png.
# Environment: SAM3_MODEL (default: sam3segment's default model-file,
#   the bundled model trained on synthetic scenes, docs/training.md),
#   SAM3_BUILD_DIR (default build),
#   SAM3_SINK (default autovideosink; e.g. "fakesink" to run without a display),
#   SAM3_NUM_BUFFERS (default -1 = until the window is closed; e.g. 10 to stop).
# `click-to-segment.sh --print-pipeline [image.png]` prints the pipeline
# description instead of running it (tests/examples/click_test.py sends clicks
# into that pipeline).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
abs() { case $1 in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }
build=$(abs "${SAM3_BUILD_DIR:-build}")
export GST_PLUGIN_PATH=$build/gst-plugin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}   # docs/elements.md, CPU threads

print=0
if [ "${1:-}" = --print-pipeline ]; then print=1; shift; fi
image=${1:-$root/../shared/fixtures/sam3/tiny-a/img0.png}

# The pipeline as arguments for gst-launch-1.0 (run) and as one description
# string for gst_parse_launch (print; values quoted).
run=() desc=()
tok() { for a; do run+=("$a"); desc+=("$a"); done; }
val() { run+=("$1=$2"); desc+=("$1=\"$2\""); }
tok filesrc; val location "$image"; tok ! pngdec ! videoconvert !
tok imagefreeze "num-buffers=${SAM3_NUM_BUFFERS:--1}" ! video/x-raw,framerate=30/1 !
tok sam3segment; [ -z "${SAM3_MODEL:-}" ] || val model-file "$(abs "$SAM3_MODEL")"; tok prompt-source=property+roi-meta+navigation+signal !
tok sam3overlay draw-boxes=true draw-labels=true ! videoconvert !
read -ra sink <<< "${SAM3_SINK:-autovideosink}"
tok "${sink[@]}"

if [ $print = 1 ]; then
  echo "${desc[*]}"
  exit 0
fi
echo "left click: foreground point, right click: background point, middle click: clear"
gst-launch-1.0 "${run[@]}"
