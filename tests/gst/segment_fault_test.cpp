// sam3segment fault and storm cases (issue 17): flush storms during batching
// and racing the batch-timeout thread, EOS racing the timer, caps changes on
// every frame (1x1 to 8K, RGB and I420), buffers without timestamps, and a
// prompt event before every buffer, 10,000 ROI metas on one frame, the model
// file replaced or deleted between starts. Each case checks that every buffer that
// leaves does so in order with its timestamps and that the element still
// produces a mask afterwards. GstHarness with the tiny-a fixture model.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>
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
  for (gsize k = 0; k < map.size; ++k) map.data[k] = (guint8) ((k * 7 + i * 13) & 0xff);
  gst_buffer_unmap (b, &map);
  GST_BUFFER_PTS (b) = i * GST_MSECOND;
  GST_BUFFER_DTS (b) = i * GST_MSECOND + 1;
  GST_BUFFER_DURATION (b) = GST_MSECOND - i;
  GST_BUFFER_OFFSET (b) = 100 + i;
  return b;
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
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_RGB, 64, 48, &info));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
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
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_RGB, 64, 48, &info));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
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
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_RGB, 64, 48, &info));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
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
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_RGB, 64, 48, &info));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
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
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_I420, 64, 48, &info));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
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
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_RGB, 32, 24, &info));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
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
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_RGB, 64, 48, &info));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
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
