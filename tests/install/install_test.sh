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
libdir=$(pkg-config --variable=libdir sam3predictor)
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/embed" "$ckpt" "$img"

# The installed plugin: the loader in <libdir>/gstreamer-1.0 finds the elements
# in <libdir>/gst-sam3 (gst-plugin/plugin.cpp) and registers both.
[ -f "$libdir/gstreamer-1.0/libgstsam3.so" ] || { echo "FAIL: no $libdir/gstreamer-1.0/libgstsam3.so" >&2; exit 1; }
[ -f "$libdir/gst-sam3/libgstsam3elements.so.0" ] ||
  { echo "FAIL: no $libdir/gst-sam3/libgstsam3elements.so.0" >&2; exit 1; }
for el in sam3segment sam3overlay; do
  LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" GST_PLUGIN_SYSTEM_PATH_1_0= GST_PLUGIN_PATH_1_0="$libdir/gstreamer-1.0" \
    GST_REGISTRY_1_0="$work/registry.bin" gst-inspect-1.0 "$el" > "$work/inspect-$el.txt" 2>&1 ||
    { cat "$work/inspect-$el.txt" >&2; echo "FAIL: gst-inspect-1.0 $el on the installed plugin" >&2; exit 1; }
  grep -q "$libdir/gstreamer-1.0/libgstsam3.so" "$work/inspect-$el.txt" ||
    { cat "$work/inspect-$el.txt" >&2; echo "FAIL: $el not from the installed plugin" >&2; exit 1; }
done
echo "installed plugin: sam3segment and sam3overlay from $libdir/gstreamer-1.0/libgstsam3.so"
