#!/usr/bin/env bash
# Runs the README's test command on Debian 13 (trixie: LibTorch 2.6 with
# oneDNN, GStreamer 1.26 with GstAnalytics, OpenCV 4.10) from any Debian or
# Ubuntu machine, as root:
#   1. installs debootstrap if missing;
#   2. builds a trixie chroot (debootstrap minbase, components main contrib
#      non-free) from the Debian archive that this machine's own apt sources
#      use: the first active `URIs:` / `deb` line whose path ends in /debian
#      (no host name is written in the repository; DEBIAN_MIRROR overrides);
#   3. copies a clean copy of the checkout into it (the files git tracks plus
#      untracked, not ignored ones: no build folders) and binds ../shared
#      read-only beside it;
#   4. runs `./scripts/setup.sh && meson test -C build --print-errorlogs`
#      inside (setup.sh installs the trixie packages itself).
# With --cuda it runs the CUDA leg instead, in a chroot of its own (Debian's
# libtorch-cuda-dev conflicts with libtorch-dev): contrib's libtorch-cuda-dev
# 2.6 and non-free's nvidia-cuda-toolkit, a link-only cuDNN stub for the
# cuDNN that Debian cannot ship (scripts/cudnn-stub.sh, docs/tools.md),
# `-Dcuda=enabled --werror`, then the CPU suite of that build (the CUDA tests
# skip: no GPU).
#
# Network steps (debootstrap, apt) are retried. Everything mounted is unmounted
# on exit, on failure and on interrupt. A chroot that was built completely is
# reused by the next run (stamp file); --fresh builds it again.
#
# Usage: scripts/debian13.sh [--cuda] [--fresh] [--prepare] [--shell] [--root DIR]
#   --prepare only build the chroot and install the packages setup.sh (and
#             for --cuda the CUDA leg) needs; build and test nothing
#   --shell   open a shell in the prepared chroot instead of running the tests
# Environment: DEBIAN_MIRROR, DEBIAN13_ROOT (default /var/tmp/sam3-debian13,
#              with -cuda appended for --cuda), DEBIAN13_TEST_ARGS (extra
#              arguments for meson test, e.g. a suite).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
shared=$(cd .. && pwd)/shared

cuda=0
fresh=0
shell=0
prepare=0
root=${DEBIAN13_ROOT:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) cuda=1 ;;
    --fresh) fresh=1 ;;
    --shell) shell=1 ;;
    --prepare) prepare=1 ;;
    --root) root=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "debian13.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
say() { echo "debian13.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root (debootstrap, chroot, mount)"; exit 2; }
[ -d "$shared/fixtures" ] || { say "no ../shared/fixtures beside the checkout ($shared)"; exit 2; }
if [ -z "$root" ]; then
  root=/var/tmp/sam3-debian13
  if [ "$cuda" = 1 ]; then root=$root-cuda; fi
fi
suite=trixie

# retry N CMD...: runs CMD up to N times, 15 s, 30 s, ... apart.
retry() {
  local n=$1 i=1; shift
  until "$@"; do
    if [ "$i" -ge "$n" ]; then say "failed $n times: $*"; return 1; fi
    say "attempt $i failed, retrying in $((15 * i)) s: $*"
    sleep $((15 * i)); i=$((i + 1))
  done
}

# The Debian archive of this machine's apt sources (active lines only).
apt_mirror() {
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
      2>/dev/null || true; } |
    sed -n -e 's/^[[:space:]]*URIs:[[:space:]]*//p' \
      -e 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' |
    tr ' ' '\n' | sed 's#/*$##' | { grep -E '^(https?|ftp)://.*/debian$' || true; } | head -1
}
mirror=${DEBIAN_MIRROR:-$(apt_mirror)}
[ -n "$mirror" ] || { say "no Debian archive in the apt sources (/etc/apt/sources.list*); set DEBIAN_MIRROR"; exit 2; }

if ! command -v debootstrap >/dev/null || [ ! -e /usr/share/debootstrap/scripts/$suite ]; then
  say "installing debootstrap"
  retry 3 apt-get update -q -o Acquire::Retries=3
  retry 3 env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Acquire::Retries=3 debootstrap
fi

# Mounts, undone in reverse order whatever happens.
mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null ||
      say "could not unmount ${mounted[i]}"
  done
  mounted=()
}
# Long commands run in a process group of their own, waited for with `wait`,
# so that an interrupt reaches the trap at once and ends that group too (a
# chroot'd build would otherwise run on, holding the mounts, until it ends).
child=""
run_child() {
  local rc=0
  setsid "$@" &
  child=$!
  wait "$child" || rc=$?
  child=""
  return "$rc"
}
on_signal() {
  say "interrupted"
  if [ -n "$child" ]; then kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null || true; fi
  exit 130
}
trap cleanup EXIT
trap on_signal INT TERM HUP
mnt() { # mnt TARGET MOUNT-ARGS...
  local target=$1; shift
  mkdir -p "$target"
  mount "$@" "$target"
  mounted+=("$target")
}
# Nothing may stay mounted from an earlier, killed run before the root is touched.
if [ -d "$root" ]; then
  { grep -o " $root/[^ ]*" /proc/mounts || true; } | sort -r |
    while read -r m; do umount -l "$m" || true; done
fi

stamp=$root/.sam3-chroot-ready
if [ "$fresh" = 1 ] || [ ! -e "$stamp" ]; then
  attempt() {
    rm -rf "$root"
    run_child debootstrap --variant=minbase --components=main,contrib,non-free \
      --include=ca-certificates,python3,git,xz-utils,procps $suite "$root" "$mirror"
  }
  say "building a $suite chroot in $root"
  retry 3 attempt
  cat > "$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main contrib non-free
deb $mirror $suite-updates main contrib non-free
EOF
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  # apt inside retries its downloads too (setup.sh's apt calls included).
  echo 'Acquire::Retries "5";' > "$root/etc/apt/apt.conf.d/80-retries"
  touch "$stamp"
fi
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

mnt "$root/proc" -t proc proc
mnt "$root/sys" -t sysfs sys
mnt "$root/dev" --bind /dev
mnt "$root/dev/pts" -t devpts devpts
mnt "$root/dev/shm" -t tmpfs tmpfs
mnt "$root/src/shared" --bind "$shared"
mount -o remount,bind,ro "$root/src/shared"

say "copying a clean copy of the checkout to $root/src/main"
rm -rf "$root/src/main"
mkdir -p "$root/src/main"
git -C "$src" ls-files -z --cached --others --exclude-standard |
  (cd "$src" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
  tar -C "$src" --null -T - -cf - | tar -C "$root/src/main" -xf -

in_chroot() {
  run_child chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="${CI:-}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
retry 3 in_chroot apt-get update -q
if [ "$shell" = 1 ]; then
  # in the foreground: the shell needs the terminal
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin bash -c 'cd /src/main && exec bash -i'
  exit $?
fi

if [ "$cuda" = 1 ]; then
  # Debian's nvidia-cudnn is an installer that downloads cuDNN from NVIDIA:
  # a placeholder package satisfies libtorch-cuda's dependency instead, and a
  # link-only stub library stands in for libcudnn (scripts/cudnn-stub.sh).
  in_chroot bash -c 'cd /src/main && apt-get install -y -q --no-install-recommends gcc binutils >/dev/null &&
    ./scripts/cudnn-stub.sh placeholder'
  retry 3 in_chroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    libtorch-cuda-dev nvidia-cuda-toolkit
  in_chroot bash -c 'cd /src/main && ./scripts/cudnn-stub.sh lib /usr/local/lib/sam3-cudnn-stub'
fi
if [ "$prepare" = 1 ]; then
  # the packages setup.sh would install, so that a later run only builds
  # (.ci/run prepares in the background while the Debian 12 legs run)
  in_chroot bash -c 'cd /src/main && SAM3_SKIP_BUILD=1 ./scripts/setup.sh'
  say "chroot ready in $root"
  exit 0
fi
say "versions: $(in_chroot sh -c '. /etc/os-release; echo "$PRETTY_NAME"')"
if [ "$cuda" = 0 ]; then
  # The README's test command, exactly.
  # shellcheck disable=SC2016
  in_chroot bash -c 'cd /src/main && ./scripts/setup.sh && meson test -C build --print-errorlogs '"${DEBIAN13_TEST_ARGS:-}"
else
  # shellcheck disable=SC2016
  in_chroot bash -c 'cd /src/main && export LD_LIBRARY_PATH=/usr/local/lib/sam3-cudnn-stub &&
    SAM3_BUILD_DIR=build-cuda SAM3_MESON_ARGS="-Dcuda=enabled --werror" ./scripts/setup.sh &&
    meson test -C build-cuda --print-errorlogs '"${DEBIAN13_TEST_ARGS:-}"
fi
if [ "$cuda" = 1 ]; then say "OK: the CUDA build and its CPU suite passed in the $suite chroot"
else say "OK: the test command passed in the $suite chroot"; fi
