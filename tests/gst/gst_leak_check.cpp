// Linked into every GStreamer test program (tests/meson.build): a GoogleTest
// environment that runs the GStreamer `leaks` tracer over the whole program,
// as gst-check does upstream, and FAILS the program when any GstObject or
// mini object (buffer, meta-carrying buffer, event, message, caps, query,
// ...) is still alive once every test has finished.
//
// Objects legitimately alive at exit (registry, plugins, features, pad
// templates' caps, the tracers) carry GST_OBJECT_FLAG_MAY_BE_LEAKED /
// GST_MINI_OBJECT_FLAG_MAY_BE_LEAKED and are skipped by the tracer itself.
//
// GST_TRACERS is set to `leaks` by the meson test environment; when a test
// binary is run by hand without it, SetUp sets it before gst_init. Creation
// stack traces of leaked objects: run with
//   GST_LEAKS_TRACER_STACK_TRACE=full   (or GST_TRACERS="leaks(stack-traces-flags=full)")
#include "gst_leak_check.h"

#include <gst/gst.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct AllowedLeak {
  std::string type, must_contain, why;
  guint count;
};
std::mutex allowed_mutex;
std::vector<AllowedLeak> &allowed() {
  static std::vector<AllowedLeak> v;
  return v;
}

GstTracer *find_leaks_tracer() {
  GList *tracers = gst_tracing_get_active_tracers();
  GstTracer *found = nullptr;
  for (GList *l = tracers; l; l = l->next) {
    GstTracer *t = GST_TRACER(l->data);
    if (!found && std::strcmp(G_OBJECT_TYPE_NAME(t), "GstLeaksTracer") == 0)
      found = GST_TRACER(gst_object_ref(t));
  }
  g_list_free_full(tracers, gst_object_unref);
  return found;
}

// One line per live object: type, address, refcount, description, trace.
// Objects matching an allow_upstream_leak() entry (type, description
// substring, at most its count) are listed apart and not counted.
std::string describe_live_objects(const GstStructure *info, guint *count,
                                  std::string *allowed_text) {
  std::ostringstream out, allowed_out;
  std::vector<AllowedLeak> budget;
  {
    std::lock_guard<std::mutex> lk(allowed_mutex);
    budget = allowed();
  }
  *count = 0;
  const GValue *list = gst_structure_get_value(info, "live-objects-list");
  if (!list) return "(tracer returned no live-objects-list)\n";
  const guint n = gst_value_list_get_size(list);
  for (guint i = 0; i < n; i++) {
    const GstStructure *s =
        gst_value_get_structure(gst_value_list_get_value(list, i));
    const GValue *obj = gst_structure_get_value(s, "object");
    guint refcount = 0;
    gst_structure_get_uint(s, "ref-count", &refcount);
    const gchar *trace = gst_structure_get_string(s, "trace");
    // The tracer hands the leaked objects over WITHOUT taking a reference
    // (its list steals the one the leaker holds): add one back, so that
    // freeing the list does not destroy objects still in use.
    gpointer ptr = nullptr;
    if (obj && G_VALUE_HOLDS_OBJECT(obj)) {
      ptr = g_value_get_object(obj);
      if (ptr) g_object_ref(ptr);
    } else if (obj && G_VALUE_HOLDS_BOXED(obj)) {
      ptr = g_value_get_boxed(obj);
      if (ptr) gst_mini_object_ref(GST_MINI_OBJECT_CAST(ptr));
    }
    gchar *desc = ptr ? gst_info_strdup_printf("%" GST_PTR_FORMAT, ptr)
                      : g_strdup("?");
    const std::string type = obj ? G_VALUE_TYPE_NAME(obj) : "?";
    AllowedLeak *match = nullptr;
    for (AllowedLeak &a : budget)
      if (a.count > 0 && a.type == type && std::strstr(desc, a.must_contain.c_str()))
        match = &a;
    std::ostringstream &o = match ? allowed_out : out;
    o << "  " << type << " " << ptr << " refcount " << refcount << ": " << desc;
    if (match) {
      o << " (" << match->why << ")";
      match->count--;
    }
    o << "\n";
    if (trace && *trace) o << "    created at:\n" << trace << "\n";
    g_free(desc);
    if (!match) (*count)++;
  }
  *allowed_text = allowed_out.str();
  return out.str();
}

class GstLeakCheck : public ::testing::Environment {
 public:
  void SetUp() override {
    // Before gst_init: the tracers are set up from the environment there.
    g_setenv("GST_TRACERS", "leaks", FALSE);
    gst_init(nullptr, nullptr);
  }

  void TearDown() override {
    GstTracer *tracer = find_leaks_tracer();
    if (!tracer) {
      ADD_FAILURE() << "the GStreamer leaks tracer is not active (GST_TRACERS='"
                    << (g_getenv("GST_TRACERS") ? g_getenv("GST_TRACERS") : "")
                    << "'): leak check not run";
    } else {
      // A stopped GstTask is released by its pool thread shortly after the
      // join: wait for those threads first, as gst-check's teardown does
      // (a pipeline's videotestsrc task was once seen alive here in CI).
      gst_task_cleanup_all();
      GstStructure *info = nullptr;
      g_signal_emit_by_name(tracer, "get-live-objects", &info);
      if (!info) {
        ADD_FAILURE() << "leaks tracer: get-live-objects returned nothing";
      } else {
        guint n = 0;
        std::string allowed_text;
        const std::string text = describe_live_objects(info, &n, &allowed_text);
        if (!allowed_text.empty())
          std::printf("leak check: known upstream leaks, not ours:\n%s", allowed_text.c_str());
        EXPECT_EQ(n, 0u)
            << n << " GStreamer object(s) still alive after all tests "
            << "(leaked refs; GST_LEAKS_TRACER_STACK_TRACE=full for "
            << "creation stacks):\n"
            << text;
        gst_structure_free(info);
      }
      gst_object_unref(tracer);
    }
    gst_deinit();
  }
};

}  // namespace

namespace sam3test {

void allow_upstream_leak(const char *type_name, const char *must_contain, guint count,
                         const char *why) {
  std::lock_guard<std::mutex> lk(allowed_mutex);
  allowed().push_back({type_name, must_contain ? must_contain : "", why, count});
}

}  // namespace sam3test

namespace {

const auto *const kLeakCheck =
    ::testing::AddGlobalTestEnvironment(new GstLeakCheck);

}  // namespace
