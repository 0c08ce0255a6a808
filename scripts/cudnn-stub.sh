#!/usr/bin/env bash
# Satisfies Debian's cuDNN dependency of libtorch-cuda-2.6 where cuDNN cannot
# be had: Debian's `nvidia-cudnn` is only an installer that downloads cuDNN
# from NVIDIA when it is installed (licence), which fails on a machine that
# reaches Debian's archive only (and CI). For building and for the CPU suite
# of a CUDA build nothing calls cuDNN, so two stand-ins are enough:
#
#   cudnn-stub.sh placeholder
#       builds and installs (dpkg -i) an empty package `nvidia-cudnn`, version
#       9.0.0.312~cuda12+sam3stub (higher than the archive's, so apt keeps it),
#       so that `apt-get install libtorch-cuda-dev` does not pull the installer;
#   cudnn-stub.sh lib DIR
#       after libtorch-cuda is installed: for each libcudnn* soname that
#       Debian's libtorch_cuda.so needs, builds DIR/<soname>, a stub exporting
#       every cudnn* symbol LibTorch imports (with its symbol version, if
#       any); each one prints "cuDNN stub called" and aborts. Put DIR on
#       LD_LIBRARY_PATH for linking and running. Never install it where a real
#       cuDNN could be shadowed: on a GPU machine use NVIDIA's cuDNN.
#
# scripts/debian13.sh --cuda runs both. Needs a C compiler (gcc), binutils
# (nm, readelf) and dpkg-deb.
set -euo pipefail
say() { echo "cudnn-stub.sh: $*" >&2; }

placeholder() {
  local work
  work=$(mktemp -d)
  mkdir -p "$work/pkg/DEBIAN" "$work/pkg/usr/share/doc/nvidia-cudnn"
  cat > "$work/pkg/DEBIAN/control" <<'EOF'
Package: nvidia-cudnn
Version: 9.0.0.312~cuda12+sam3stub
Architecture: all
Maintainer: gst-sam3 <gst-sam3@localhost>
Section: contrib/libs
Priority: optional
Description: placeholder for NVIDIA cuDNN (gst-sam3 build machines, no cuDNN)
 Satisfies libtorch-cuda's dependency on nvidia-cudnn without downloading
 cuDNN. Contains no library; gst-sam3's scripts/cudnn-stub.sh builds a
 link-only stub beside it.
EOF
  echo "Placeholder of gst-sam3's scripts/cudnn-stub.sh: no cuDNN inside." \
    > "$work/pkg/usr/share/doc/nvidia-cudnn/README"
  dpkg-deb --root-owner-group --build "$work/pkg" "$work/nvidia-cudnn-placeholder.deb" >/dev/null
  dpkg -i "$work/nvidia-cudnn-placeholder.deb" >/dev/null
  rm -rf "$work"
  say "installed the nvidia-cudnn placeholder package"
}

find_torch_cuda() {
  local f
  for f in /usr/lib/*-linux-gnu/libtorch_cuda.so /usr/lib/libtorch_cuda.so; do
    [ -e "$f" ] && { readlink -f "$f"; return 0; }
  done
  return 1
}

lib() {
  local out=${1:?usage: cudnn-stub.sh lib DIR}
  local torch_cuda torch_dir
  torch_cuda=$(find_torch_cuda) || { say "no libtorch_cuda.so found: install libtorch-cuda-dev first"; exit 1; }
  torch_dir=$(dirname "$torch_cuda")
  mkdir -p "$out"
  local sonames
  sonames=$(for f in "$torch_dir"/libtorch_cuda.so* "$torch_dir"/libc10_cuda.so*; do
      [ -f "$f" ] && readelf -d "$f" | sed -n 's/.*NEEDED.*\[\(libcudnn[^]]*\)\].*/\1/p'
    done | sort -u)
  if [ -z "$sonames" ]; then say "$torch_cuda needs no libcudnn: nothing to do"; return 0; fi
  local so work syms n
  for so in $sonames; do
    work=$(mktemp -d)
    # every cudnn* symbol any library in LibTorch's folder imports: "name" or "name@VERSION"
    syms=$(for f in "$torch_dir"/lib*.so*; do
        [ -f "$f" ] && nm -D --undefined-only "$f" 2>/dev/null | awk '{print $NF}'
      done | grep -E '^cudnn' | sed 's/@@*/@/' | sort -u)
    n=$(printf '%s\n' "$syms" | grep -c . || true)
    {
      echo '#include <stdio.h>'
      echo '#include <stdlib.h>'
      echo 'static void stub(const char* name) {'
      echo '  fprintf(stderr, "cuDNN stub called (%s): this build links a placeholder, not cuDNN; install NVIDIA cuDNN\n", name);'
      echo '  abort();'
      echo '}'
      printf '%s\n' "$syms" | cut -d@ -f1 | sort -u |
        while read -r s; do [ -n "$s" ] && echo "void $s(void) { stub(\"$s\"); }"; done
    } > "$work/stub.c"
    local vflag=()
    if printf '%s\n' "$syms" | grep -q @; then
      printf '%s\n' "$syms" | grep @ | awk -F@ '{v[$2] = v[$2] " " $1 ";"} END {for (k in v) print k " {" v[k] " };"}' \
        > "$work/versions.map"
      # symbols without a version go into the first node's global list as well
      vflag=(-Wl,--version-script="$work/versions.map")
    fi
    gcc -shared -fPIC -O1 -o "$out/$so" -Wl,-soname,"$so" "${vflag[@]}" "$work/stub.c"
    rm -rf "$work"
    say "built $out/$so: $n cudnn* symbols stubbed (for $(basename "$torch_cuda"))"
  done
}

case "${1:-}" in
  placeholder) placeholder ;;
  lib) shift; lib "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2 ;;
esac
