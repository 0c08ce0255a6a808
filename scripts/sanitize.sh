#!/usr/bin/env bash
# CI leg: the test suites under AddressSanitizer + UndefinedBehaviorSanitizer
# (+ LeakSanitizer), in ./build-asan (gcc). Any sanitizer report fails.
# The GStreamer suites also run the leaks tracer (tests/gst/gst_leak_check.cpp),
# as in the normal build.
# Run after ./scripts/setup.sh (packages). Unattended; exits non-zero on any
# finding.
# Environment: SAM3_ASAN_BUILD_DIR (default build-asan),
#              SAM3_SANITIZE_TEST_ARGS (`meson test` selection; default
#                "--suite predictor --suite gst" to fit the CI budget; "" = every suite),
#              SAM3_ASAN_MESON_ARGS (default "-Dtools=disabled -Dexamples=disabled"),
#              SAM3_JOBS (ninja -j, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${SAM3_ASAN_BUILD_DIR:-build-asan}
jobs=${SAM3_JOBS:-2}
command -v readelf >/dev/null || { echo "sanitize.sh: readelf (binutils) missing" >&2; exit 1; }

t0=$(date +%s)
if [ ! -f "$build/build.ninja" ]; then
  rm -rf "$build"
  # -O1 -g1: usable stacks (frame pointers, line tables) at a fraction of the
  # compile time/memory of -O2 -g with the LibTorch headers.
  # The tools and launch examples are not built (their suites are not in the
  # default selection; SAM3_ASAN_MESON_ARGS="-Dtools=enabled -Dexamples=enabled"
  # builds them).
  # shellcheck disable=SC2086
  meson setup "$build" --buildtype=plain \
    -Dcpp_args="-O1 -g1 -fno-omit-frame-pointer" \
    -Db_sanitize=address,undefined -Db_lundef=false \
    ${SAM3_ASAN_MESON_ARGS--Dtools=disabled -Dexamples=disabled}
fi
ninja -C "$build" -j"$jobs"
t1=$(date +%s)
echo "sanitize.sh: build $((t1 - t0)) s"

rc=0
# shellcheck disable=SC2086
meson test -C "$build" --setup asan --print-errorlogs --num-processes 1 \
  ${SAM3_SANITIZE_TEST_ARGS---suite predictor --suite gst} || rc=$?
t2=$(date +%s)
echo "sanitize.sh: tests $((t2 - t1)) s (build + tests $((t2 - t0)) s), rc $rc"
exit $rc
