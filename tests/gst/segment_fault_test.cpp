// sam3segment fault and storm cases (issue 17): flush storms during batching
// and racing the batch-timeout thread, EOS racing the timer, caps changes on
// every frame (1x1 to 8K, RGB and I420), buffers without timestamps, and a
// prompt event before every buffer, 10,000 ROI metas on one frame, the model
// file replaced or deleted between starts, property writes racing state
// changes, and the limits (maximum frame size, batch memory, decoder memory
// on 8K frames). Each case checks that every buffer that
// leaves does so in order with its timestamps and that the element still
// produces a mask afterwards. GstHarness with the tiny-a fixture model.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fixtures.h"
#include "gst_test_util.h"
#include "gstsam3maskmeta.h"

namespace {

const std::string kModel = "sam3/tiny-a/checkpoint.pt";
constexpr guint kMaxDynamicObjects = 256;  // sam3gst::kMaxDynamicObjects, gst-plugin/sam3prompts.h

class GstEnv : public ::testing::Environment {
 public:
  void SetUp () override { gst_init (nullptr, nullptr); }
};
const auto *const kEnv = ::testing::AddGlobalTestEnvironment (new GstEnv);

// A w x h frame of format fmt with a grey gradient and a bright square, PTS
// = i ms, DTS = i ms + 1, duration = 1 ms - i, offset = 100 + i.
GstBuffer *frame (int i, GstVideoFormat fmt, int w, int h, GstVideoInfo *info) {
  gst_video_info_set_format (info, fmt, w, h);
  info->fps_n = 1000;
  info->fps_d = 1;
  GstBuffer *b = gst_buffer_new_allocate (nullptr, GST_VIDEO_INFO_SIZE (info), nullptr);
  GstMapInfo map;
  gst_buffer_map (b, &map, GST_MAP_WRITE);
  // byte k = (7k + 13i) mod 256: period 256, so the first 256 bytes repeat
  for (gsize k = 0; k < map.size && k < 256; ++k) map.data[k] = (guint8) ((k * 7 + i * 13) & 0xff);
  for (gsize k = 256; k < map.size; k += 256) std::memcpy (map.data + k, map.data, std::min<gsize> (256, map.size - k));
  gst_buffer_unmap (b, &map);
  GST_BUFFER_PTS (b) = i * GST_MSECOND;
  GST_BUFFER_DTS (b) = i * GST_MSECOND + 1;
  GST_BUFFER_DURATION (b) = GST_MSECOND - i;
  GST_BUFFER_OFFSET (b) = 100 + i;
  return b;
}

// Sets the harness' caps to w x h of fmt (info: as frame() fills it).
void set_caps (GstHarness *h, GstVideoFormat fmt, int w, int hgt, GstVideoInfo *info) {
  gst_buffer_unref (frame (0, fmt, w, hgt, info));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (info));
}

// index of a frame() buffer from its offset
int index_of (GstBuffer *b) { return (int) GST_BUFFER_OFFSET (b) - 100; }

void expect_fields (GstBuffer *b, int i) {
  EXPECT_EQ (index_of (b), i);
  EXPECT_EQ (GST_BUFFER_PTS (b), (GstClockTime) (i * GST_MSECOND)) << "frame " << i;
  EXPECT_EQ (GST_BUFFER_DTS (b), (GstClockTime) (i * GST_MSECOND + 1)) << "frame " << i;
  EXPECT_EQ (GST_BUFFER_DURATION (b), (GstClockTime) (GST_MSECOND - i)) << "frame " << i;
}

GstHarness *harness (const std::string &props, GstElement **seg_out) {
  return sam3test::segment_harness (sam3::test::fixture_path (kModel), props, seg_out);
}

guint64 stat (GstElement *seg, const char *field) {
  GstStructure *s = nullptr;
  g_object_get (seg, "stats", &s, NULL);
  guint64 v = G_MAXUINT64;
  EXPECT_TRUE (gst_structure_get_uint64 (s, field, &v)) << field;
  gst_structure_free (s);
  return v;
}

guint n_objects (GstBuffer *b) {
  GstSam3MaskMeta *m = gst_buffer_get_sam3_mask_meta (b);
  return m ? gst_sam3_mask_meta_get_n_objects (m) : 0;
}

void flush (GstHarness *h) {
  ASSERT_TRUE (gst_harness_push_event (h, gst_event_new_flush_start ()));
  ASSERT_TRUE (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  ASSERT_TRUE (gst_harness_push_event (h, gst_event_new_segment (&segment)));
}

// Pulls everything received so far; checks strictly increasing frame
// indices (order kept) and each buffer's timestamps.
int drain (GstHarness *h, int last) {
  GstBuffer *b;
  while ((b = gst_harness_try_pull (h))) {
    const int i = index_of (b);
    EXPECT_GT (i, last) << "out of order";
    expect_fields (b, i);
    last = i;
    gst_buffer_unref (b);
  }
  return last;
}

// The element still works: a full batch of normal frames gets masks.
void expect_usable (GstHarness *h, int batch, int first) {
  GstVideoInfo info;
  set_caps (h, GST_VIDEO_FORMAT_RGB, 64, 48, &info);
  for (int i = first; i < first + batch; ++i)
    ASSERT_EQ (gst_harness_push (h, frame (i, GST_VIDEO_FORMAT_RGB, 64, 48, &info)), GST_FLOW_OK);
  for (int i = first; i < first + batch; ++i) {
    GstBuffer *b = gst_harness_pull (h);
    ASSERT_NE (b, nullptr);
    expect_fields (b, i);
    EXPECT_GE (n_objects (b), 1u) << "frame " << i;
    gst_buffer_unref (b);
  }
}

// batch-size 4, partial batches (1-3 frames) flushed away 30 times: nothing
// leaves, nothing is encoded, then a full batch works normally.
TEST (Sam3SegmentFault, FlushStormDuringBatching) {
  GstElement *seg = nullptr;
  GstHarness *h = harness ("batch-size=4 boxes=<<8,8,40,30>>", &seg);
  GstVideoInfo info;
  set_caps (h, GST_VIDEO_FORMAT_RGB, 64, 48, &info);
  int i = 0;
  for (int it = 0; it < 30; ++it) {
    for (int k = 0; k < 1 + it % 3; ++k)
      ASSERT_EQ (gst_harness_push (h, frame (i++, GST_VIDEO_FORMAT_RGB, 64, 48, &info)), GST_FLOW_OK);
    flush (h);
  }
  EXPECT_EQ (gst_harness_buffers_received (h), 0u);
  EXPECT_EQ (stat (seg, "encoder-runs"), 0u);
  expect_usable (h, 4, i);
  EXPECT_EQ (stat (seg, "encoder-runs"), 1u);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

// batch-timeout 1 ms with flushes racing the armed timer: each queued frame
// leaves at most once, in order, with its timestamps; none after its flush.
TEST (Sam3SegmentFault, FlushesRacingTheBatchTimeout) {
  GstElement *seg = nullptr;
  GstHarness *h = harness ("batch-size=8 batch-timeout=1000000 boxes=<<8,8,40,30>>", &seg);
  GstVideoInfo info;
  set_caps (h, GST_VIDEO_FORMAT_RGB, 64, 48, &info);
  int i = 0, last = -1;
  for (int it = 0; it < 40; ++it) {
    for (int k = 0; k < 2; ++k)
      ASSERT_EQ (gst_harness_push (h, frame (i++, GST_VIDEO_FORMAT_RGB, 64, 48, &info)), GST_FLOW_OK);
    if (it % 2) g_usleep (1000);
    flush (h);
    last = drain (h, last);
    EXPECT_LT (last, i);
  }
  // after the last flush nothing more comes for the flushed frames
  g_usleep (20000);
  EXPECT_EQ (gst_harness_buffers_in_queue (h), 0u);
  EXPECT_LE (stat (seg, "frames-encoded"), (guint64) i);
  // usable: a partial batch completes through the timer
  ASSERT_EQ (gst_harness_push (h, frame (i, GST_VIDEO_FORMAT_RGB, 64, 48, &info)), GST_FLOW_OK);
  GstBuffer *b = gst_harness_pull (h);
  ASSERT_NE (b, nullptr);
  expect_fields (b, i);
  EXPECT_EQ (n_objects (b), 1u);
  gst_buffer_unref (b);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

// EOS right after a partial batch while a 1 ms timer is armed, 40 times:
// every frame leaves exactly once before EOS is through, in order.
TEST (Sam3SegmentFault, EosRacingTheTimer) {
  GstElement *seg = nullptr;
  GstHarness *h = harness ("batch-size=8 batch-timeout=1000000 boxes=<<8,8,40,30>>", &seg);
  GstVideoInfo info;
  set_caps (h, GST_VIDEO_FORMAT_RGB, 64, 48, &info);
  int i = 0;
  for (int it = 0; it < 40; ++it) {
    const int first = i;
    for (int k = 0; k < 1 + it % 3; ++k)
      ASSERT_EQ (gst_harness_push (h, frame (i++, GST_VIDEO_FORMAT_RGB, 64, 48, &info)), GST_FLOW_OK);
    if (it % 2) g_usleep (1000);
    ASSERT_TRUE (gst_harness_push_event (h, gst_event_new_eos ()));
    ASSERT_EQ (gst_harness_buffers_in_queue (h), (guint) (i - first)) << "iteration " << it;
    for (int k = first; k < i; ++k) {
      GstBuffer *b = gst_harness_pull (h);
      ASSERT_NE (b, nullptr);
      expect_fields (b, k);
      EXPECT_EQ (n_objects (b), 1u);
      gst_buffer_unref (b);
    }
    flush (h);  // clears EOS
  }
  EXPECT_EQ (stat (seg, "frames-encoded"), (guint64) i);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

// New caps on every frame: 1x1, odd sizes, 8K; RGB and I420; a box that fits
// the small frames (and not the 1x1 one: it is clipped or warned about, no
// crash). batch-size 2, so a caps change lands mid-batch.
TEST (Sam3SegmentFault, CapsOnEveryFrame) {
  GstElement *seg = nullptr;
  GstHarness *h = harness ("batch-size=2 boxes=<<2,2,8,6>>", &seg);
  struct Sz {
    int w, h;
  };
  const Sz sizes[] = {{1, 1}, {17, 9}, {641, 479}, {7680, 4320}, {64, 48}, {2, 2}, {17, 9}};
  int i = 0;
  for (GstVideoFormat fmt : {GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_I420})
    for (const Sz &s : sizes) {
      GstVideoInfo info;
      GstBuffer *b = frame (i, fmt, s.w, s.h, &info);
      gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
      ASSERT_EQ (gst_harness_push (h, b), GST_FLOW_OK) << s.w << "x" << s.h;
      ++i;
    }
  ASSERT_TRUE (gst_harness_push_event (h, gst_event_new_eos ()));
  ASSERT_EQ (gst_harness_buffers_in_queue (h), (guint) i);
  for (int k = 0; k < i; ++k) {
    GstBuffer *b = gst_harness_pull (h);
    expect_fields (b, k);
    const Sz &s = sizes[k % G_N_ELEMENTS (sizes)];
    GstSam3MaskMeta *m = gst_buffer_get_sam3_mask_meta (b);
    if (m) {
      EXPECT_EQ (m->frame_width, (guint) s.w) << "frame " << k;
      EXPECT_EQ (m->frame_height, (guint) s.h) << "frame " << k;
    }
    if (s.w >= 17) {
      EXPECT_EQ (n_objects (b), 1u) << "frame " << k << " " << s.w << "x" << s.h;
    }
    gst_buffer_unref (b);
  }
  flush (h);
  expect_usable (h, 2, i);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

// Buffers without PTS/DTS/duration leave unchanged (still NONE), in order
// (offsets), with masks, also in batches.
TEST (Sam3SegmentFault, BuffersWithoutTimestamps) {
  GstElement *seg = nullptr;
  GstHarness *h = harness ("batch-size=3 boxes=<<8,8,40,30>>", &seg);
  GstVideoInfo info;
  set_caps (h, GST_VIDEO_FORMAT_I420, 64, 48, &info);
  for (int i = 0; i < 7; ++i) {
    GstBuffer *b = frame (i, GST_VIDEO_FORMAT_I420, 64, 48, &info);
    GST_BUFFER_PTS (b) = GST_BUFFER_DTS (b) = GST_BUFFER_DURATION (b) = GST_CLOCK_TIME_NONE;
    ASSERT_EQ (gst_harness_push (h, b), GST_FLOW_OK);
  }
  ASSERT_TRUE (gst_harness_push_event (h, gst_event_new_eos ()));
  ASSERT_EQ (gst_harness_buffers_in_queue (h), 7u);
  for (int i = 0; i < 7; ++i) {
    GstBuffer *b = gst_harness_pull (h);
    EXPECT_EQ (index_of (b), i);
    EXPECT_FALSE (GST_BUFFER_PTS_IS_VALID (b));
    EXPECT_FALSE (GST_BUFFER_DTS_IS_VALID (b));
    EXPECT_FALSE (GST_BUFFER_DURATION_IS_VALID (b));
    EXPECT_EQ (n_objects (b), 1u);
    gst_buffer_unref (b);
  }
  EXPECT_EQ (stat (seg, "encoder-runs"), 3u);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

GstEvent *prompt_event (const std::string &s) {
  GstStructure *st = gst_structure_from_string (s.c_str (), nullptr);
  EXPECT_NE (st, nullptr) << s;
  return gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM, st);
}

// A sam3/prompt event before each of 1,200 buffers (alternately with a new
// object-id and without one): every buffer leaves in order; the object count
// never exceeds kMaxDynamicObjects (events beyond it warn and are ignored).
TEST (Sam3SegmentFault, PromptEventBeforeEveryBuffer) {
  GstElement *seg = nullptr;
  // the model runs on every 100th frame only (the others get the last masks,
  // stale): with up to 256 objects decoded per inferred frame that keeps the
  // test short, while every event still goes through the element
  GstHarness *h = harness ("batch-size=4 inference-interval=100", &seg);
  GstVideoInfo info;
  set_caps (h, GST_VIDEO_FORMAT_RGB, 32, 24, &info);
  const int n = 1200;
  guint max_objects = 0, last_objects = 0;
  int last = -1;
  for (int i = 0; i < n; ++i) {
    const std::string ev = (i % 2)
        ? "sam3/prompt, box=<2,2,20,16>, object-id=(uint)" + std::to_string (5000 + (i / 2) % 4)
        : std::string ("sam3/prompt, points=<<(float)10,(float)10,(float)1>>");
    ASSERT_TRUE (gst_harness_push_event (h, prompt_event (ev)));
    ASSERT_EQ (gst_harness_push (h, frame (i % 900, GST_VIDEO_FORMAT_RGB, 32, 24, &info)), GST_FLOW_OK);
    GstBuffer *b;
    while ((b = gst_harness_try_pull (h))) {
      last_objects = n_objects (b);
      max_objects = std::max (max_objects, last_objects);
      ++last;
      EXPECT_EQ (index_of (b), last % 900);
      gst_buffer_unref (b);
    }
  }
  ASSERT_TRUE (gst_harness_push_event (h, gst_event_new_eos ()));
  GstBuffer *b;
  while ((b = gst_harness_try_pull (h))) {
    last_objects = n_objects (b);
    max_objects = std::max (max_objects, last_objects);
    ++last;
    EXPECT_EQ (index_of (b), last % 900);
    gst_buffer_unref (b);
  }
  EXPECT_EQ (last, n - 1);
  EXPECT_LE (max_objects, kMaxDynamicObjects);
  EXPECT_GE (last_objects, 2u);  // the events did take effect
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

}  // namespace

namespace {

// WARNING messages posted on `bus` so far (their debug texts), popped.
std::vector<std::string> pop_warnings (GstBus *bus) {
  std::vector<std::string> out;
  while (GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING)) {
    GError *err = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_warning (m, &err, &dbg);
    out.emplace_back (dbg ? dbg : "");
    g_clear_error (&err);
    g_free (dbg);
    gst_message_unref (m);
  }
  return out;
}

}  // namespace

// 10,000 detector ROI metas on one frame: the element uses the first 256 (the
// documented cap) as box prompts (+ the property box) and posts one warning, once per start, that
// names the 9,744 it did not use; the frames leave in order with masks.
TEST (Sam3SegmentFault, TenThousandRoiMetasOnOneFrame) {
  GstElement *seg = nullptr;
  GstHarness *h = harness ("boxes=<<8,8,40,30>>", &seg);  // + 1 property object
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (seg, bus);
  GstVideoInfo info;
  set_caps (h, GST_VIDEO_FORMAT_RGB, 64, 48, &info);
  for (int i = 0; i < 2; ++i) {
    GstBuffer *in = frame (i, GST_VIDEO_FORMAT_RGB, 64, 48, &info);
    for (int k = 0; k < 10000; ++k)
      gst_buffer_add_video_region_of_interest_meta (in, "det", 4 + k % 20, 4 + k % 10, 24, 20);
    ASSERT_EQ (gst_harness_push (h, in), GST_FLOW_OK);
    GstBuffer *out = gst_harness_pull (h);
    ASSERT_NE (out, nullptr);
    expect_fields (out, i);
    EXPECT_GE (n_objects (out), 1u) << "frame " << i;
    EXPECT_LE (n_objects (out), 257u) << "frame " << i;
    gst_buffer_unref (out);
  }
  const auto warnings = pop_warnings (bus);
  ASSERT_EQ (warnings.size (), 1u) << "one warning per start";
  EXPECT_NE (warnings[0].find ("9744 upstream ROI metas beyond the cap of 256"), std::string::npos)
      << warnings[0];
  expect_usable (h, 1, 10);
  gst_bus_set_flushing (bus, TRUE);
  gst_element_set_bus (seg, nullptr);
  gst_object_unref (bus);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

// The model file replaced, corrupted or deleted between two starts of the
// same element: a bad file fails the start with an error naming it; a good
// one (another model) starts; restoring the file recovers.
TEST (Sam3SegmentFault, ModelFileChangedBetweenStarts) {
  namespace fs = std::filesystem;
  const fs::path path = fs::temp_directory_path () /
                        ("sam3-fault-model-" + std::to_string (getpid ()) + ".pt");
  const fs::path a = sam3::test::fixture_path (kModel);
  const fs::path b = sam3::test::fixture_path ("sam3/tiny-b/checkpoint.pt");
  fs::copy_file (a, path, fs::copy_options::overwrite_existing);
  GstElement *seg = gst_element_factory_make ("sam3segment", nullptr);
  ASSERT_NE (seg, nullptr);
  gst_object_ref_sink (seg);
  g_object_set (seg, "model-file", path.c_str (), "num-threads", 2, NULL);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (seg, bus);
  // start (READY -> PAUSED loads the model); returns the error text or ""
  auto start = [&] () -> std::string {
    const GstStateChangeReturn r = gst_element_set_state (seg, GST_STATE_PAUSED);
    std::string err;
    while (GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR)) {
      GError *e = nullptr;
      gchar *dbg = nullptr;
      gst_message_parse_error (m, &e, &dbg);
      err += std::string (e ? e->message : "") + " | " + (dbg ? dbg : "");
      g_clear_error (&e);
      g_free (dbg);
      gst_message_unref (m);
    }
    EXPECT_EQ (gst_element_set_state (seg, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
    if (r == GST_STATE_CHANGE_FAILURE && err.empty ()) return "failed without an error message";
    return r == GST_STATE_CHANGE_FAILURE ? err : "";
  };
  EXPECT_EQ (start (), "");
  // replaced by another (valid) model
  fs::copy_file (b, path, fs::copy_options::overwrite_existing);
  EXPECT_EQ (start (), "");
  // truncated to half: a clear error naming the file
  {
    const auto size = fs::file_size (b);
    fs::resize_file (path, size / 2);
  }
  std::string err = start ();
  EXPECT_NE (err.find (path.string ()), std::string::npos) << err;
  // deleted
  fs::remove (path);
  err = start ();
  EXPECT_NE (err.find (path.string ()), std::string::npos) << err;
  // restored: starts again
  fs::copy_file (a, path, fs::copy_options::overwrite_existing);
  EXPECT_EQ (start (), "");
  fs::remove (path);
  gst_bus_set_flushing (bus, TRUE);
  gst_element_set_bus (seg, nullptr);
  gst_object_unref (bus);
  gst_object_unref (seg);
}

// ---------------------------------------------------------------------------
// Limits (docs/elements.md, "Limits"): mirrors of the element's constants.
namespace {

constexpr int kMaxFrameDim = 8192;
constexpr guint64 kMaxBatchBytes = guint64 (1) << 30;

// VmHWM / VmRSS of this process, bytes
guint64 proc_status_bytes (const char *key) {
  FILE *f = std::fopen ("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  guint64 kb = 0;
  const size_t n = std::strlen (key);
  while (std::fgets (line, sizeof line, f))
    if (std::strncmp (line, key, n) == 0 && line[n] == ':') kb = g_ascii_strtoull (line + n + 1, nullptr, 10);
  std::fclose (f);
  return kb * 1024;
}

// Resets VmHWM to the current RSS (Linux >= 4.0); false where not allowed.
bool reset_peak_rss () {
  FILE *f = std::fopen ("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool ok = std::fputs ("5", f) >= 0;
  return std::fclose (f) == 0 && ok;
}

}  // namespace

// Frames up to 8192 on a side negotiate and get masks; 8193 is refused at
// negotiation (not-negotiated), with one warning naming the size and the
// limit; the element then works at a normal size.
TEST (Sam3SegmentFault, MaximumFrameSize) {
  GstElement *seg = nullptr;
  GstHarness *h = harness ("boxes=<<2,2,12,12>>", &seg);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (seg, bus);
  GstVideoInfo info;
  GstBuffer *b = frame (0, GST_VIDEO_FORMAT_RGB, kMaxFrameDim, 16, &info);
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
  ASSERT_EQ (gst_harness_push (h, b), GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull (h);
  ASSERT_NE (out, nullptr);
  expect_fields (out, 0);
  EXPECT_EQ (n_objects (out), 1u);
  gst_buffer_unref (out);
  EXPECT_TRUE (pop_warnings (bus).empty ());
  for (const auto &sz : {std::pair<int, int>{kMaxFrameDim + 1, 16}, {16, kMaxFrameDim + 1}}) {
    b = frame (1, GST_VIDEO_FORMAT_I420, sz.first, sz.second, &info);
    gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
    EXPECT_EQ (gst_harness_push (h, b), GST_FLOW_NOT_NEGOTIATED) << sz.first << "x" << sz.second;
  }
  const auto warnings = pop_warnings (bus);
  ASSERT_EQ (warnings.size (), 1u) << "one warning per start";
  EXPECT_NE (warnings[0].find ("8193x16 frames exceed the maximum frame size 8192x8192"),
      std::string::npos) << warnings[0];
  EXPECT_EQ (gst_harness_buffers_in_queue (h), 0u);
  expect_usable (h, 1, 2);
  gst_bus_set_flushing (bus, TRUE);
  gst_element_set_bus (seg, nullptr);
  gst_object_unref (bus);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

// batch-size 64 on 8K frames: a batch holds at most 1 GiB of frames (the
// mapped input and, for YUV, its RGB conversion), so it completes after
// floor(1 GiB / frame bytes) frames: 10 for RGB, 7 for I420.
TEST (Sam3SegmentFault, MaximumBatchMemory) {
  for (GstVideoFormat fmt : {GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_I420}) {
    GstElement *seg = nullptr;
    GstHarness *h = harness ("batch-size=64 boxes=<<8,8,40,30>>", &seg);
    GstVideoInfo info, rgb;
    gst_buffer_unref (frame (0, fmt, 7680, 4320, &info));
    gst_video_info_set_format (&rgb, GST_VIDEO_FORMAT_RGB, 7680, 4320);
    const guint64 per_frame = GST_VIDEO_INFO_SIZE (&info) +
                              (fmt == GST_VIDEO_FORMAT_RGB ? 0 : GST_VIDEO_INFO_SIZE (&rgb));
    const int expected = (int) (kMaxBatchBytes / per_frame);
    ASSERT_EQ (expected, fmt == GST_VIDEO_FORMAT_RGB ? 10 : 7);
    gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
    for (int i = 0; i < expected; ++i) {
      EXPECT_EQ (gst_harness_buffers_in_queue (h), 0u) << "batch completed after " << i << " frames";
      ASSERT_EQ (gst_harness_push (h, frame (i, fmt, 7680, 4320, &info)), GST_FLOW_OK);
    }
    ASSERT_EQ (gst_harness_buffers_in_queue (h), (guint) expected);
    EXPECT_EQ (stat (seg, "encoder-runs"), 1u);
    EXPECT_EQ (stat (seg, "frames-encoded"), (guint64) expected);
    for (int i = 0; i < expected; ++i) {
      GstBuffer *b = gst_harness_pull (h);
      expect_fields (b, i);
      EXPECT_EQ (n_objects (b), 1u) << "frame " << i;
      gst_buffer_unref (b);
    }
    flush (h);
    g_object_set (seg, "batch-size", 2, NULL);  // small frames: a batch is batch-size again
    expect_usable (h, 2, expected);
    gst_object_unref (seg);
    gst_harness_teardown (h);
  }
}

// 16 detector boxes on an 8K frame with 3 masks each: decoded one object per
// call (the decoder's output at frame resolution is bounded per call) and
// cropped before the next call, so the peak RSS grows by about one object's
// ~1.4 GB, not the ~22 GB of 16 objects at once; every object gets its own
// id and its ROI's id as parent.
TEST (Sam3SegmentFault, DecoderMemoryIsBoundedOnLargeFrames) {
  GstElement *seg = nullptr;
  GstHarness *h = harness ("multimask-output=true", &seg);
  GstVideoInfo info;
  set_caps (h, GST_VIDEO_FORMAT_RGB, 7680, 4320, &info);
  // warm-up frame (allocator pools, model buffers)
  ASSERT_EQ (gst_harness_push (h, frame (0, GST_VIDEO_FORMAT_RGB, 7680, 4320, &info)), GST_FLOW_OK);
  gst_buffer_unref (gst_harness_pull (h));
  GstBuffer *in = frame (1, GST_VIDEO_FORMAT_RGB, 7680, 4320, &info);
  for (int k = 0; k < 16; ++k) {
    GstVideoRegionOfInterestMeta *roi = gst_buffer_add_video_region_of_interest_meta (
        in, "det", 200 + 440 * k, 300 + 200 * k, 300, 240);
    roi->id = 500 + k;
  }
  if (!reset_peak_rss ()) GTEST_SKIP () << "cannot reset VmHWM (/proc/self/clear_refs)";
  const guint64 rss0 = proc_status_bytes ("VmRSS");
  ASSERT_EQ (gst_harness_push (h, in), GST_FLOW_OK);
  const guint64 peak = proc_status_bytes ("VmHWM");
  GstBuffer *out = gst_harness_pull (h);
  ASSERT_NE (out, nullptr);
  expect_fields (out, 1);
  const double grew_mib = (double) (peak - std::min (peak, rss0)) / (1 << 20);
  std::printf ("decoding 16 objects x 3 masks at 7680x4320: peak RSS +%.0f MiB\n", grew_mib);
  EXPECT_LT (grew_mib, 2048.0);
  GstSam3MaskMeta *m = gst_buffer_get_sam3_mask_meta (out);
  ASSERT_NE (m, nullptr);
  std::vector<guint> ids;
  for (guint i = 0; i < gst_sam3_mask_meta_get_n_objects (m); ++i) {
    const GstSam3MaskObject *o = gst_sam3_mask_meta_get_object (m, i);
    ids.push_back (o->object_id);
    EXPECT_EQ (o->parent_roi_id, (gint) (500 + o->object_id)) << "object " << o->object_id;
  }
  EXPECT_GE (ids.size (), 1u);
  for (size_t i = 1; i < ids.size (); ++i) EXPECT_LT (ids[i - 1], ids[i]);
  gst_buffer_unref (out);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

// ---------------------------------------------------------------------------
// Property writes racing state changes: two application threads write every
// writable property (valid and malformed values, also the READY-only ones:
// model-file, num-threads) and call add-prompt / clear-prompts / read stats,
// while the main thread runs a pipeline NULL -> PLAYING -> EOS -> NULL 25
// times. Every run delivers all its frames in order with their timestamps;
// then a run without writers gets masks on every frame.
namespace {

struct RaceCounter {
  std::atomic<int> received{0};
  std::atomic<int> bad{0};
  std::atomic<int> with_meta{0};
};

GstPadProbeReturn race_probe (GstPad *, GstPadProbeInfo *info, gpointer user) {
  auto *c = static_cast<RaceCounter *> (user);
  GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER (info);
  const int n = c->received++;
  if (GST_BUFFER_OFFSET (b) != (guint64) n || GST_BUFFER_PTS (b) != gst_util_uint64_scale (n, GST_SECOND, 30))
    c->bad++;
  if (gst_buffer_get_sam3_mask_meta (b)) c->with_meta++;
  return GST_PAD_PROBE_OK;
}

void write_properties (GstElement *seg, unsigned seed, const std::atomic<bool> &stop,
    const std::string &model_a, const std::string &model_b, std::atomic<long> *writes) {
  std::mt19937 rng (seed);
  // malformed for the element (wrong counts); text GStreamer itself cannot
  // parse never reaches it (and gst_util_set_object_arg 1.22 leaks its GValue
  // on it, which LeakSanitizer reports)
  const char *boxes[] = {"<<8,8,40,30>>", "<<1,1,20,20>,<30,10,60,40>>", "<>", "<<8,8>>",
      "<<1,2,3,4,5>>"};
  const char *points[] = {"<<20,20,1>>", "<<5,5,1>,<30,30,0>>", "<>", "<<1,2,3,4>>"};
  while (!stop.load ()) {
    switch (rng () % 16) {
      case 0: gst_util_set_object_arg (G_OBJECT (seg), "boxes", boxes[rng () % 5]); break;
      case 1: gst_util_set_object_arg (G_OBJECT (seg), "points", points[rng () % 4]); break;
      case 2: g_object_set (seg, "batch-size", 1 + rng () % 4, NULL); break;
      case 3: g_object_set (seg, "batch-timeout", (guint64) (rng () % 2) * GST_MSECOND, NULL); break;
      case 4: g_object_set (seg, "inference-interval", 1 + rng () % 3, NULL); break;
      case 5: g_object_set (seg, "mask-threshold", (rng () % 3) * 0.5 - 0.5, NULL); break;
      case 6: g_object_set (seg, "multimask-output", (gboolean) (rng () % 2), NULL); break;
      case 7: g_object_set (seg, "score-threshold", (rng () % 2) * 0.1, NULL); break;
      case 8: g_object_set (seg, "attach-logits", (gboolean) (rng () % 2), NULL); break;
      case 9: gst_util_set_object_arg (G_OBJECT (seg), "skip-mode", rng () % 2 ? "stale" : "none"); break;
      case 10: g_object_set (seg, "object-class", rng () % 2 ? "person,car" : "", NULL); break;
      case 11: g_object_set (seg, "max-hole-area", (double) (rng () % 3) * 4 - 1, NULL); break;
      case 12:
        g_object_set (seg, "model-file", (rng () % 2 ? model_a : model_b).c_str (), "num-threads",
            1 + (int) (rng () % 2), NULL);
        break;
      case 13: {
        GstStructure *p = gst_structure_from_string ("prompt, box=(int)<2,2,30,30>", nullptr);
        guint id = 0;
        g_signal_emit_by_name (seg, "add-prompt", p, &id);
        gst_structure_free (p);
        break;
      }
      case 14: g_signal_emit_by_name (seg, "clear-prompts"); break;
      default: {
        GstStructure *s = nullptr;
        g_object_get (seg, "stats", &s, NULL);
        if (s) gst_structure_free (s);
      }
    }
    (*writes)++;
    if (rng () % 8 == 0) std::this_thread::yield ();
  }
}

}  // namespace

TEST (Sam3SegmentFault, PropertyWritesRacingStateChanges) {
  const std::string model_a = sam3::test::fixture_path (kModel);
  const std::string model_b = sam3::test::fixture_path ("sam3/tiny-b/checkpoint.pt");
  const std::string desc =
      "videotestsrc pattern=ball num-buffers=6 ! video/x-raw,format=RGB,width=64,height=48,"
      "framerate=30/1 ! sam3segment name=seg num-threads=2 boxes=<<8,8,40,30>> model-file=\"" +
      model_a + "\" ! fakesink name=sink sync=false";
  GError *err = nullptr;
  GstElement *pipe = gst_parse_launch (desc.c_str (), &err);
  ASSERT_NE (pipe, nullptr) << (err ? err->message : "");
  g_clear_error (&err);
  GstElement *seg = gst_bin_get_by_name (GST_BIN (pipe), "seg");
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipe), "sink");
  GstPad *pad = gst_element_get_static_pad (sink, "sink");
  RaceCounter counter;
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, race_probe, &counter, nullptr);
  GstBus *bus = gst_element_get_bus (pipe);
  // one run: PLAYING until EOS (or an error), then NULL; returns an error text or ""
  auto run = [&] () -> std::string {
    counter.received = 0;
    counter.bad = 0;
    counter.with_meta = 0;
    std::string out;
    if (gst_element_set_state (pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) out = "PLAYING failed";
    GstMessage *m = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
        (GstMessageType) (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    if (!m) {
      out = "no EOS within 60 s";
    } else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
      GError *e = nullptr;
      gst_message_parse_error (m, &e, nullptr);
      out = std::string ("error: ") + (e ? e->message : "");
      g_clear_error (&e);
    }
    if (m) gst_message_unref (m);
    EXPECT_EQ (gst_element_set_state (pipe, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
    return out;
  };
  std::atomic<bool> stop{false};
  std::atomic<long> writes{0};
  std::thread w1 (write_properties, seg, 1u, std::cref (stop), model_a, model_b, &writes);
  std::thread w2 (write_properties, seg, 2u, std::cref (stop), model_a, model_b, &writes);
  for (int cycle = 0; cycle < 25; ++cycle) {
    EXPECT_EQ (run (), "") << "cycle " << cycle;
    EXPECT_EQ (counter.received.load (), 6) << "cycle " << cycle;
    EXPECT_EQ (counter.bad.load (), 0) << "cycle " << cycle << ": out of order or wrong timestamps";
  }
  stop = true;
  w1.join ();
  w2.join ();
  EXPECT_GT (writes.load (), 1000);
  // usable afterwards, with the settings of a normal run
  g_signal_emit_by_name (seg, "clear-prompts");
  gst_util_set_object_arg (G_OBJECT (seg), "boxes", "<<8,8,40,30>>");
  gst_util_set_object_arg (G_OBJECT (seg), "points", "<>");
  g_object_set (seg, "model-file", model_a.c_str (), "batch-size", 1, "inference-interval", 1,
      "score-threshold", 0.0, "mask-threshold", 0.0, "max-hole-area", -1.0, "object-class", "", NULL);
  EXPECT_EQ (run (), "");
  EXPECT_EQ (counter.received.load (), 6);
  EXPECT_EQ (counter.bad.load (), 0);
  EXPECT_EQ (counter.with_meta.load (), 6);
  gst_object_unref (bus);
  gst_object_unref (pad);
  gst_object_unref (sink);
  gst_object_unref (seg);
  gst_object_unref (pipe);
}
