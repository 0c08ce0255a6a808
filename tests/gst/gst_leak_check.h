// The whole-program leak check of the GStreamer tests (gst_leak_check.cpp).
#pragma once

#include <glib.h>

namespace sam3test {

// A leak of an upstream element that the test uses, not of ours: at the end,
// up to |count| live objects of GType |type_name| whose description (the
// GST_PTR_FORMAT text) contains |must_contain| are listed as such (|why|) and
// not counted. Everything else alive still fails the program.
void allow_upstream_leak(const char *type_name, const char *must_contain, guint count,
                         const char *why);

}  // namespace sam3test
