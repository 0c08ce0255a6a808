#!/bin/sh
# exe_wrapper of the 'asan' meson test setup (tests/meson.build,
# scripts/sanitize.sh): runs one test command of the sanitized build.
#  - Our instrumented programs (they link libasan themselves) run as they are,
#    with LeakSanitizer on (ASAN_OPTIONS of the setup).
#  - Anything else (bash drivers, python3, and through them gst-launch-1.0 and
#    gst-plugin-scanner) loads our instrumented plugin .so without the ASan
#    runtime: gcc's libasan is a shared runtime that must come first, so it is
#    preloaded for them, and leak detection is off there (their own exit-time
#    leaks are not ours and LSan is meaningless for them). ASan/UBSan errors
#    in our plugin still abort those processes.
prog=$1
if ! readelf -d "$prog" 2>/dev/null | grep -q 'NEEDED.*libasan'; then
  LD_PRELOAD="$SAM3_ASAN_RUNTIME${LD_PRELOAD:+:$LD_PRELOAD}"
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:verify_asan_link_order=0"
  export LD_PRELOAD ASAN_OPTIONS
fi
case ${prog##*/} in
test-gst-*)
  # GLib/GStreamer are built without frame pointers: the fast unwinder stops
  # in g_malloc, which attributes no leak and matches no suppression. Full
  # unwinding (slower) for the GStreamer test programs only.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
  export ASAN_OPTIONS ;;
esac
exec "$@"
