#!/usr/bin/env bash
# Compile-checks the GStreamer >= 1.26 branch of gst-plugin/gstsam3analytics.cpp
# (GstAnalytics ODMtd + SegmentationMtd, HAVE_GST_ANALYTICS) on a machine that
# only has GStreamer 1.22 (Debian 12), using Debian 13 (trixie) packages:
#   1. downloads libgstreamer1.0-dev, libgstreamer-plugins-base1.0-dev and
#      libgstreamer-plugins-bad1.0-dev (gst/analytics headers,
#      gstreamer-analytics-1.0.pc) from a Debian mirror and extracts them
#      (dpkg-deb -x) into a temporary folder - nothing is installed;
#   2. g++ -fsyntax-only -Wall -Wextra -Werror on the translation unit with
#      -DHAVE_GST_ANALYTICS=1 against those 1.26 headers (GLib headers: the
#      system's), and once more without it against the system GStreamer (the
#      no-op branch).
# With --run it also builds scripts/check-gst126-smoke.cpp against the trixie
# libraries and runs it with trixie's own dynamic loader and libc (trixie's
# libgstreamer needs GLIBC_2.38; Debian 12 has 2.36), which attaches a
# GstSam3MaskMeta, calls gst_sam3_attach_analytics() and reads the analytics
# meta back.
# With --meson it also checks the build-time detection: meson setup in a
# temporary build folder with PKG_CONFIG_PATH pointing at the trixie .pc files
# (prefix rewritten to the extraction folder) must report "GstAnalytics output
# (>= 1.26): True", and ninja compiles only gstsam3analytics.cpp.o there.
#
# Not part of the meson build or the test suites. Needs: curl, xz, dpkg-deb,
# g++, pkg-config with glib-2.0. Network access to the mirror.
#
# Usage: scripts/check-gst126.sh [--run] [--meson] [--keep]
# Environment: DEBIAN_MIRROR (default: the Debian archive this machine's apt
#              sources use: the first active `URIs:` / `deb` entry ending in /debian),
#              DEBIAN_SUITE (default trixie), GST126_DIR (work folder; default
#              a new temporary folder, removed at the end unless --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
src_root=$PWD

run=0
meson_check=0
keep=0
for a in "$@"; do
  case "$a" in
    --run) run=1 ;;
    --meson) meson_check=1 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "check-gst126.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done

# The Debian archive of this machine's own apt sources (active lines only; no
# host name is written in the repository).
apt_mirror() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
      2>/dev/null |
    sed -n -e 's/^[[:space:]]*URIs:[[:space:]]*//p' \
      -e 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' |
    tr ' ' '\n' | sed 's#/*$##' | grep -E '^(https?|ftp)://.*/debian$' | head -1
}
mirror=${DEBIAN_MIRROR:-$(apt_mirror)}
if [ -z "$mirror" ]; then
  echo "check-gst126.sh: no Debian archive in the apt sources (/etc/apt/sources.list*); set DEBIAN_MIRROR" >&2
  exit 2
fi
suite=${DEBIAN_SUITE:-trixie}
arch=amd64
triplet=x86_64-linux-gnu

if [ -n "${GST126_DIR:-}" ]; then
  work=$GST126_DIR
  mkdir -p "$work"
else
  work=$(mktemp -d -t gst126.XXXXXX)
  if [ "$keep" = 0 ]; then trap 'rm -rf "$work"' EXIT; fi
fi
root=$work/root
mkdir -p "$work/debs" "$root"
echo "check-gst126.sh: work folder $work"

packages_index=$work/Packages
if [ ! -s "$packages_index" ]; then
  echo "check-gst126.sh: fetching $mirror/dists/$suite/main/binary-$arch/Packages.xz"
  curl -fsS --retry 3 -m 300 "$mirror/dists/$suite/main/binary-$arch/Packages.xz" |
    xz -dc > "$packages_index.tmp"
  mv "$packages_index.tmp" "$packages_index"
fi

# fetch_and_extract PACKAGE...: download each package's .deb and extract it into $root.
fetch_and_extract() {
  local p file
  for p in "$@"; do
    file=$(awk -v want="$p" '
      /^Package: / { pkg = $2 }
      /^Filename: / { if (pkg == want) { print $2; exit } }' "$packages_index")
    if [ -z "$file" ]; then
      echo "check-gst126.sh: package $p not found in $suite" >&2
      exit 1
    fi
    local deb
    deb=$work/debs/$(basename "$file")
    if [ ! -s "$deb" ]; then
      echo "check-gst126.sh: downloading $file"
      curl -fsS --retry 3 -m 300 -o "$deb.tmp" "$mirror/$file"
      mv "$deb.tmp" "$deb"
    fi
    dpkg-deb -x "$deb" "$root"
  done
}

fetch_and_extract libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
  libgstreamer-plugins-bad1.0-dev

gst_version=$(sed -n 's/^Version: *//p' "$root/usr/lib/$triplet/pkgconfig/gstreamer-analytics-1.0.pc")
echo "check-gst126.sh: gstreamer-analytics-1.0 $gst_version headers in $root/usr/include/gstreamer-1.0"

glib_cflags=$(pkg-config --cflags-only-I glib-2.0)
gst126_cflags="-I$root/usr/include/gstreamer-1.0 -I$root/usr/lib/$triplet/gstreamer-1.0/include $glib_cflags"
common="-std=c++17 -Wall -Wextra -Werror -I$src_root/gst-plugin/meta -I$src_root/gst-plugin"

set -x
# shellcheck disable=SC2086
g++ $common -fsyntax-only -DHAVE_GST_ANALYTICS=1 $gst126_cflags \
  "$src_root/gst-plugin/gstsam3analytics.cpp"
set +x
echo "check-gst126.sh: OK: gstsam3analytics.cpp compiles against GStreamer $gst_version with HAVE_GST_ANALYTICS"

if pkg-config --exists gstreamer-1.0 gstreamer-video-1.0; then
  set -x
  # shellcheck disable=SC2086,SC2046
  g++ $common -fsyntax-only $(pkg-config --cflags gstreamer-1.0 gstreamer-video-1.0) \
    "$src_root/gst-plugin/gstsam3analytics.cpp"
  set +x
  echo "check-gst126.sh: OK: no-op branch compiles against the system GStreamer $(pkg-config --modversion gstreamer-1.0)"
fi

if [ "$run" = 1 ]; then
  # Runtime: trixie's libc/loader, GLib, orc and the GStreamer core/base/bad libraries.
  fetch_and_extract libc6 libgcc-s1 libstdc++6 libglib2.0-0t64 libffi8 libpcre2-8-0 \
    liborc-0.4-0t64 libgstreamer1.0-0 libgstreamer-plugins-base1.0-0 \
    libgstreamer-plugins-bad1.0-0
  libdir=$root/usr/lib/$triplet
  loader=$root/usr/lib64/ld-linux-x86-64.so.2
  [ -e "$loader" ] || loader=$root/lib64/ld-linux-x86-64.so.2
  exe=$work/analytics-smoke
  set -x
  # Link against the trixie libraries. GLib by soname (the runtime package
  # has no libglib-2.0.so dev link, and the system's 2.74 must not be picked).
  # The trixie libraries need newer glibc symbols (GLIBC_2.38) than the
  # system's libc that g++ links with: leave those to the run-time loader
  # (--allow-shlib-undefined); the program then runs on trixie's loader + libc.
  # shellcheck disable=SC2086
  g++ $common -DHAVE_GST_ANALYTICS=1 $gst126_cflags -o "$exe" \
    "$src_root/scripts/check-gst126-smoke.cpp" \
    "$src_root/gst-plugin/gstsam3analytics.cpp" \
    "$src_root/gst-plugin/meta/gstsam3maskmeta.cpp" \
    -L"$libdir" -Wl,-rpath-link,"$libdir" -Wl,--allow-shlib-undefined \
    -lgstanalytics-1.0 -lgstvideo-1.0 -lgstbase-1.0 -lgstreamer-1.0 \
    -l:libgobject-2.0.so.0 -l:libglib-2.0.so.0
  GST_REGISTRY=$work/registry.bin GST_PLUGIN_SYSTEM_PATH_1_0='' GST_PLUGIN_PATH_1_0='' \
    "$loader" --library-path "$libdir" "$exe"
  set +x
  echo "check-gst126.sh: OK: smoke test passed against GStreamer $gst_version"
fi

if [ "$meson_check" = 1 ]; then
  pcdir=$work/pkgconfig
  mkdir -p "$pcdir"
  for pc in "$root/usr/lib/$triplet/pkgconfig/"*.pc; do
    sed "s|^prefix=/usr\$|prefix=$root/usr|" "$pc" > "$pcdir/$(basename "$pc")"
  done
  builddir=$work/meson-build
  rm -rf "$builddir"
  set -x
  PKG_CONFIG_PATH=$pcdir meson setup "$builddir" "$src_root" -Dtests=disabled -Dtools=disabled \
    > "$work/meson-setup.log"
  set +x
  if ! grep -q "GstAnalytics output (>= 1.26) *: True" "$work/meson-setup.log"; then
    cat "$work/meson-setup.log" >&2
    echo "check-gst126.sh: meson did not detect gstreamer-analytics-1.0 >= 1.26" >&2
    exit 1
  fi
  set -x
  ninja -C "$builddir" gst-plugin/libgstsam3.so.p/gstsam3analytics.cpp.o
  set +x
  grep -q -- "-DHAVE_GST_ANALYTICS=1" "$builddir/compile_commands.json"
  echo "check-gst126.sh: OK: meson detects GStreamer $gst_version analytics and defines HAVE_GST_ANALYTICS"
fi
