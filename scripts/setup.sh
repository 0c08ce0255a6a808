#!/usr/bin/env bash
# Sets up a Debian 12 machine for gst-sam3 and builds it into ./build.
#   - installs the Debian packages the project needs (root or sudo);
#   - selects OpenBLAS for LibTorch's CPU GEMM (the reference BLAS is ~15x slower);
#   - configures (meson) and builds (ninja).
# Idempotent: re-running only rebuilds what changed.
# Environment: SAM3_BUILD_DIR (default build), SAM3_MESON_ARGS (extra meson args),
#              SAM3_SKIP_APT=1 to skip the package step, SAM3_SKIP_BUILD=1 to
#              stop after it.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  g++ meson ninja-build pkg-config cmake
  libtorch-dev libopenblas0-pthread
  libopencv-dev nlohmann-json3-dev libgtest-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
  python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
)

# GStreamer >= 1.26 (Debian 13): the GstAnalytics library (headers in
# gst-plugins-bad's -dev package) and upstream's objectdetectionoverlay, which
# the analytics tests draw with. Debian 12's 1.22 has neither.
. /etc/os-release 2>/dev/null || true
if [ "${ID:-}" = debian ] && [ "${VERSION_ID:-0}" -ge 13 ] 2>/dev/null; then
  packages+=(libgstreamer-plugins-bad1.0-dev gstreamer1.0-plugins-bad)
fi
# The CUDA build (scripts/debian13.sh --cuda) installs libtorch-cuda-dev,
# which replaces libtorch-dev.
if dpkg-query -W -f='${Status}' libtorch-cuda-dev 2>/dev/null | grep -q "install ok installed"; then
  packages=("${packages[@]/libtorch-dev/libtorch-cuda-dev}")
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup.sh: need root (or sudo) to install: ${packages[*]}" >&2; exit 1; fi
}

if [ "${SAM3_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    as_root apt-get update -q -o Acquire::Retries=3
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      -o Acquire::Retries=3 "${missing[@]}"
  fi
  blas=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
  if [ -e "$blas" ]; then
    as_root update-alternatives --set libblas.so.3-x86_64-linux-gnu "$blas" >/dev/null 2>&1 || true
  fi
fi

if [ "${SAM3_SKIP_BUILD:-0}" = 1 ]; then echo "setup.sh: packages ready (SAM3_SKIP_BUILD=1: no build)"; exit 0; fi

build=${SAM3_BUILD_DIR:-build}
if [ ! -f "$build/build.ninja" ]; then
  rm -rf "$build"
  # shellcheck disable=SC2086
  meson setup "$build" --buildtype=release ${SAM3_MESON_ARGS:-}
fi
ninja -C "$build"
echo "setup.sh: built into $build"
