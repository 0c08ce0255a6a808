#!/usr/bin/env bash
# `meson install --destdir` into a scratch tree, then builds and runs
# embed.cpp with nothing but pkg-config (sam3predictor + gstsam3meta) from it,
# as an application embedding the predictor would after `meson install`.
# Usage: install_test.sh BUILD_DIR WORK_DIR CHECKPOINT IMAGE
set -euo pipefail
build=${1:?build dir} work=${2:?work dir} ckpt=${3:?checkpoint} img=${4:?image}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
meson install -C "$build" --destdir "$work/root" --no-rebuild --quiet >/dev/null
pc=$(find "$work/root" -name sam3predictor.pc | head -1)
[ -n "$pc" ] || { echo "FAIL: no sam3predictor.pc installed" >&2; exit 1; }
[ -f "$(dirname "$pc")/gstsam3meta.pc" ] || { echo "FAIL: no gstsam3meta.pc next to it" >&2; exit 1; }
# the tree is not at its prefix: copies of our two .pc files with the prefix
# pointing into it (their Requires: are the system's)
mkdir -p "$work/pc"
for f in sam3predictor gstsam3meta; do
  prefix=$(sed -n 's/^prefix=//p' "$(dirname "$pc")/$f.pc")
  sed "s|^prefix=.*|prefix=$work/root$prefix|" "$(dirname "$pc")/$f.pc" > "$work/pc/$f.pc"
done
export PKG_CONFIG_PATH="$work/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
flags=$(pkg-config --cflags --libs sam3predictor gstsam3meta)
echo "pkg-config: $flags"
# shellcheck disable=SC2086
${CXX:-c++} -O0 -o "$work/embed" "$here/embed.cpp" $flags
LD_LIBRARY_PATH="$(pkg-config --variable=libdir sam3predictor)" "$work/embed" "$ckpt" "$img"
