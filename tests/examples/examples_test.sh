#!/usr/bin/env bash
# Runs one launch example and checks what it produced (meson suite 'examples').
# Usage: examples_test.sh CASE WORKDIR
#   still-image   still-image-boxes.sh -> PNG of the input's size, overlay drawn
#   video-to-mp4  video-to-mp4.sh (generated clip) -> MP4 with every frame, overlay drawn
#   click-script  click-to-segment.sh with fakesink and 5 buffers -> exits 0 at EOS
#   read-results  read-results.py -> num-objects per frame = number of prompts
#   synthetic-demo  sam3-synthetic-demo with the bundled model -> MP4 with every
#                 frame, PNG snapshot, mean IoU vs ground truth >= SAM3_DEMO_MIN_IOU
# Environment (meson): SAM3_SOURCE_DIR, SAM3_BUILD_DIR, SAM3_MODEL,
# SAM3_FIXTURES_DIR, GST_PLUGIN_PATH_1_0, GST_REGISTRY.
set -euo pipefail
case_=${1:?case}
work=${2:?workdir}
src=${SAM3_SOURCE_DIR:?}
ex=$src/launch-examples
here=$(cd "$(dirname "$0")" && pwd)
img=${SAM3_FIXTURES_DIR:?}/sam3/tiny-a/img0.png
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

case $case_ in
still-image)
  SAM3_NUM_BUFFERS=3 "$ex/still-image-boxes.sh" "$img" "$work/still.png"
  /usr/bin/python3 "$here/check_media.py" png "$work/still.png" "$img" 480 360 \
    --region 264,54,408,162
  ;;
video-to-mp4)
  SAM3_NUM_BUFFERS=12 "$ex/video-to-mp4.sh" "" "$work/out.mp4"
  [ -s "$work/ball.mp4" ] || fail "no generated input $work/ball.mp4"
  /usr/bin/python3 "$here/check_media.py" video "$work/ball.mp4" 12 320 240
  /usr/bin/python3 "$here/check_media.py" video "$work/out.mp4" 12 320 240 \
    --differs-from "$work/ball.mp4"
  ;;
synthetic-demo)
  "${SAM3_BUILD_DIR:?}/launch-examples/sam3-synthetic-demo" --frames 12 --size 320x240 \
    --out "$work" --min-iou "${SAM3_DEMO_MIN_IOU:?}"
  /usr/bin/python3 "$here/check_media.py" video "$work/synthetic-demo.mp4" 12 320 240
  [ -s "$work/synthetic-demo.png" ] || fail "no snapshot"
  ;;
click-script)
  out=$(SAM3_SINK=fakesink SAM3_NUM_BUFFERS=5 "$ex/click-to-segment.sh" "$img" 2>&1) ||
    fail "click-to-segment.sh exited $?: $out"
  echo "$out"
  grep -q "Got EOS" <<<"$out" || fail "no EOS"
  ! grep -q "ERROR" <<<"$out" || fail "error message"
  ;;
read-results)
  run() {
    local want=$1 frames=$2; shift 2
    local out
    out=$(/usr/bin/python3 "$ex/read-results.py" --image "$img" --num-buffers "$frames" "$@") ||
      fail "read-results.py $* exited $?"
    echo "$out"
    [ "$(grep -c "^frame [0-9]*: num-objects $want (480x360)$" <<<"$out")" = "$frames" ] ||
      fail "expected $frames frames with num-objects $want"
    [ "$(grep -c "^  object [0-9]*: id [0-9]* source property box " <<<"$out")" = $((want * frames)) ] ||
      fail "expected $want property objects per frame"
    grep -q "^$frames frames$" <<<"$out" || fail "expected '$frames frames'"
  }
  run 2 3                                           # default: one box + one point object
  run 3 2 --boxes "<<264,54,408,162>,<20,30,120,110>>"  # two boxes + the point object
  ;;
*)
  fail "unknown case $case_"
  ;;
esac
echo "OK: $case_"
