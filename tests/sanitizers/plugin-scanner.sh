#!/bin/sh
# GST_PLUGIN_SCANNER_1_0 of the 'asan' test setup: the system
# gst-plugin-scanner (not instrumented) loads our instrumented plugin, so the
# ASan runtime is preloaded; leak detection is off (it loads every system
# plugin; their load-time allocations are not ours). Registry scanning thus
# stays out of the test processes, as in the normal build.
LD_PRELOAD="$SAM3_ASAN_RUNTIME${LD_PRELOAD:+:$LD_PRELOAD}"
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:verify_asan_link_order=0"
export LD_PRELOAD ASAN_OPTIONS
exec "$SAM3_REAL_PLUGIN_SCANNER" "$@"
