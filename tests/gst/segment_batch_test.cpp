// sam3segment batching, embedding cache, inference-interval, prompt events,
// latency, EOS / FLUSH / caps changes, unsupported caps and corrupt models,
// under GstHarness with the tiny-a fixture model.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>
#include <sam3/sam3.h>

#include <cmath>
#include <string>
#include <vector>

#include "fixtures.h"
#include "gst_test_util.h"
#include "gstsam3maskmeta.h"

namespace {

const std::string kModel = "sam3/tiny-a/checkpoint.pt";

class GstEnv : public ::testing::Environment {
 public:
  void SetUp () override { gst_init (nullptr, nullptr); }
};
const auto *const kEnv = ::testing::AddGlobalTestEnvironment (new GstEnv);

// Frame i: img0 (or a w x h crop of it) with a small patch whose grey level
// depends on i, so frames with different i are distinct.
GstBuffer *frame (int i, GstVideoFormat fmt, GstVideoInfo *info, int w = 0, int h = 0) {
  cv::Mat img = sam3::test::read_rgb (sam3::test::fixture_path ("sam3/tiny-a/img0.png"));
  if (w > 0) img = img (cv::Rect (0, 0, w, h)).clone ();
  cv::rectangle (img, {2, 2, 6, 6}, cv::Scalar (10 * i % 256, 20, 30), -1);
  GstVideoInfo rgb;
  gst_video_info_set_format (&rgb, GST_VIDEO_FORMAT_RGB, img.cols, img.rows);
  gst_video_info_set_format (info, fmt, img.cols, img.rows);
  GstBuffer *src = gst_buffer_new_allocate (nullptr, GST_VIDEO_INFO_SIZE (&rgb), nullptr);
  GstVideoFrame f;
  gst_video_frame_map (&f, &rgb, src, GST_MAP_WRITE);
  for (int y = 0; y < img.rows; ++y)
    memcpy ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&f, 0) + y * GST_VIDEO_FRAME_PLANE_STRIDE (&f, 0),
        img.ptr (y), img.cols * 3);
  gst_video_frame_unmap (&f);
  GstBuffer *out = src;
  if (fmt != GST_VIDEO_FORMAT_RGB) {
    out = gst_buffer_new_allocate (nullptr, GST_VIDEO_INFO_SIZE (info), nullptr);
    GstVideoFrame in, o;
    gst_video_frame_map (&in, &rgb, src, GST_MAP_READ);
    gst_video_frame_map (&o, info, out, GST_MAP_WRITE);
    GstVideoConverter *c = gst_video_converter_new (&rgb, info, nullptr);
    gst_video_converter_frame (c, &in, &o);
    gst_video_converter_free (c);
    gst_video_frame_unmap (&in);
    gst_video_frame_unmap (&o);
    gst_buffer_unref (src);
  }
  info->fps_n = 30;  // the caps say 30 fps (LATENCY test)
  info->fps_d = 1;
  GST_BUFFER_PTS (out) = i * GST_SECOND / 30;
  GST_BUFFER_DTS (out) = i * GST_SECOND / 30 + 1;
  GST_BUFFER_DURATION (out) = GST_SECOND / 30 - i;
  GST_BUFFER_OFFSET (out) = 100 + i;
  if (i % 3 == 0) GST_BUFFER_FLAG_SET (out, GST_BUFFER_FLAG_DELTA_UNIT);
  return out;
}

GstHarness *harness (const std::string &props, GstElement **seg_out = nullptr) {
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

struct Obj {
  guint id;
  GstSam3PromptSource source;
  gint x, y;
  guint w, h;
  float iou;
  bool stale;
  std::vector<guint8> mask;
};

std::vector<Obj> objects (GstBuffer *buf) {
  std::vector<Obj> out;
  GstSam3MaskMeta *meta = gst_buffer_get_sam3_mask_meta (buf);
  if (!meta) return out;
  for (guint i = 0; i < gst_sam3_mask_meta_get_n_objects (meta); ++i) {
    const GstSam3MaskObject *o = gst_sam3_mask_meta_get_object (meta, i);
    Obj r{o->object_id, o->source, o->x, o->y, o->width, o->height, o->iou, o->stale != FALSE, {}};
    GstVideoMeta *vm = gst_buffer_get_video_meta (o->mask);
    GstMapInfo map;
    gst_buffer_map (o->mask, &map, GST_MAP_READ);
    for (guint v = 0; v < o->height; ++v)
      r.mask.insert (r.mask.end (), map.data + vm->offset[0] + v * vm->stride[0],
          map.data + vm->offset[0] + v * vm->stride[0] + o->width);
    gst_buffer_unmap (o->mask, &map);
    out.push_back (std::move (r));
  }
  return out;
}

void expect_same_buffer_fields (GstBuffer *out, int i) {
  EXPECT_EQ (GST_BUFFER_PTS (out), (GstClockTime) (i * GST_SECOND / 30)) << "frame " << i;
  EXPECT_EQ (GST_BUFFER_DTS (out), (GstClockTime) (i * GST_SECOND / 30 + 1)) << "frame " << i;
  EXPECT_EQ (GST_BUFFER_DURATION (out), (GstClockTime) (GST_SECOND / 30 - i)) << "frame " << i;
  EXPECT_EQ (GST_BUFFER_OFFSET (out), (guint64) (100 + i)) << "frame " << i;
  EXPECT_EQ (GST_BUFFER_FLAG_IS_SET (out, GST_BUFFER_FLAG_DELTA_UNIT), i % 3 == 0) << "frame " << i;
  EXPECT_FALSE (GST_BUFFER_FLAG_IS_SET (out, GST_BUFFER_FLAG_DISCONT)) << "frame " << i;
}

// Fraction of mask pixels (over the union of boxes) where a and b differ.
double mask_disagreement (const Obj &a, const Obj &b) {
  const int x0 = std::min (a.x, b.x), y0 = std::min (a.y, b.y);
  const int x1 = std::max (a.x + (int) a.w, b.x + (int) b.w);
  const int y1 = std::max (a.y + (int) a.h, b.y + (int) b.h);
  auto at = [] (const Obj &o, int x, int y) {
    if (x < o.x || y < o.y || x >= o.x + (int) o.w || y >= o.y + (int) o.h) return 0;
    return (int) o.mask[(size_t) (y - o.y) * o.w + (x - o.x)];
  };
  long diff = 0, on = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      diff += at (a, x, y) != at (b, x, y);
      on += at (a, x, y) || at (b, x, y);
    }
  return on ? (double) diff / on : 0.0;
}

class BatchTest : public ::testing::TestWithParam<GstVideoFormat> {};

// batch-size 4, 10 frames: two full batches go out as soon as they fill, the
// partial one at EOS; every buffer keeps order, timestamps, offset and
// flags; one encoder call per batch; masks equal batch-size 1's.
TEST_P (BatchTest, FullAndPartialBatchesKeepOrderAndMatchBatchSizeOne) {
  const GstVideoFormat fmt = GetParam ();
  GstVideoInfo info;
  GstBuffer *f0 = frame (0, fmt, &info);
  gst_buffer_unref (f0);
  GstElement *seg4 = nullptr, *seg1 = nullptr;
  GstHarness *h4 = harness ("batch-size=4 boxes=<<264,54,408,162>> points=<<144,126,1>>", &seg4);
  GstHarness *h1 = harness ("batch-size=1 boxes=<<264,54,408,162>> points=<<144,126,1>>", &seg1);
  gst_harness_set_src_caps (h4, gst_video_info_to_caps (&info));
  gst_harness_set_src_caps (h1, gst_video_info_to_caps (&info));
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ (gst_harness_push (h4, frame (i, fmt, &info)), GST_FLOW_OK);
    ASSERT_EQ (gst_harness_push (h1, frame (i, fmt, &info)), GST_FLOW_OK);
    // a batch leaves when it is full, not before
    EXPECT_EQ (gst_harness_buffers_received (h4), (guint) ((i + 1) / 4 * 4)) << "after " << i;
  }
  EXPECT_EQ (stat (seg4, "encoder-runs"), 2u);
  ASSERT_TRUE (gst_harness_push_event (h4, gst_event_new_eos ()));
  EXPECT_EQ (gst_harness_buffers_received (h4), 10u);
  EXPECT_EQ (stat (seg4, "encoder-runs"), 3u);
  EXPECT_EQ (stat (seg4, "frames-encoded"), 10u);
  EXPECT_EQ (stat (seg4, "decoder-runs"), 10u);
  EXPECT_EQ (stat (seg1, "encoder-runs"), 10u);
  for (int i = 0; i < 10; ++i) {
    GstBuffer *b4 = gst_harness_pull (h4);
    GstBuffer *b1 = gst_harness_pull (h1);
    ASSERT_NE (b4, nullptr);
    ASSERT_NE (b1, nullptr);
    expect_same_buffer_fields (b4, i);
    auto o4 = objects (b4), o1 = objects (b1);
    ASSERT_EQ (o4.size (), 2u) << "frame " << i;
    ASSERT_EQ (o1.size (), 2u) << "frame " << i;
    for (size_t k = 0; k < 2; ++k) {
      EXPECT_EQ (o4[k].id, o1[k].id);
      EXPECT_NEAR (o4[k].iou, o1[k].iou, 1e-4);
      // batched convolutions may round differently: pixels at the threshold
      EXPECT_LT (mask_disagreement (o4[k], o1[k]), 0.005) << "frame " << i << " object " << k;
    }
    gst_buffer_unref (b4);
    gst_buffer_unref (b1);
  }
  // the EOS event follows the last buffer
  GstEvent *ev;
  bool eos = false;
  while ((ev = gst_harness_try_pull_event (h4))) {
    eos = eos || GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
    gst_event_unref (ev);
  }
  EXPECT_TRUE (eos);
  gst_object_unref (seg4);
  gst_object_unref (seg1);
  gst_harness_teardown (h4);
  gst_harness_teardown (h1);
}

INSTANTIATE_TEST_SUITE_P (Formats, BatchTest,
    ::testing::Values (GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_I420),
    [] (const auto &info) { return std::string (gst_video_format_to_string (info.param)); });

// Identical frames share one embedding inside a batch and across batches.
TEST (Sam3SegmentBatch, RepeatedFramesReuseTheEmbedding) {
  GstVideoInfo info;
  GstElement *seg = nullptr;
  GstHarness *h = harness ("batch-size=4 boxes=<<264,54,408,162>>", &seg);
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_BGRx, &info));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
  const int ids[] = {1, 1, 2, 2, /* next batch: all the cached frame */ 2, 2, 2, 2};
  for (int id : ids) gst_harness_push (h, frame (id, GST_VIDEO_FORMAT_BGRx, &info));
  EXPECT_EQ (gst_harness_buffers_received (h), 8u);
  EXPECT_EQ (stat (seg, "encoder-runs"), 1u);
  EXPECT_EQ (stat (seg, "frames-encoded"), 2u);
  EXPECT_EQ (stat (seg, "decoder-runs"), 8u);
  std::vector<std::vector<Obj>> out;
  for (int i = 0; i < 8; ++i) {
    GstBuffer *b = gst_harness_pull (h);
    out.push_back (objects (b));
    gst_buffer_unref (b);
    ASSERT_EQ (out.back ().size (), 1u);
  }
  EXPECT_EQ (out[0][0].mask, out[1][0].mask);
  for (int i = 3; i < 8; ++i) EXPECT_EQ (out[2][0].mask, out[i][0].mask);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

// FLUSH drops a partial batch (never encoded); streaming goes on after it.
TEST (Sam3SegmentBatch, FlushMidBatchDropsQueuedFrames) {
  GstVideoInfo info;
  GstElement *seg = nullptr;
  GstHarness *h = harness ("batch-size=4 boxes=<<264,54,408,162>>", &seg);
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_RGB, &info));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
  gst_harness_push (h, frame (0, GST_VIDEO_FORMAT_RGB, &info));
  gst_harness_push (h, frame (1, GST_VIDEO_FORMAT_RGB, &info));
  EXPECT_EQ (gst_harness_buffers_received (h), 0u);
  ASSERT_TRUE (gst_harness_push_event (h, gst_event_new_flush_start ()));
  ASSERT_TRUE (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  ASSERT_TRUE (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  EXPECT_EQ (gst_harness_buffers_received (h), 0u);
  for (int i = 2; i < 6; ++i) ASSERT_EQ (gst_harness_push (h, frame (i, GST_VIDEO_FORMAT_RGB, &info)), GST_FLOW_OK);
  ASSERT_EQ (gst_harness_buffers_received (h), 4u);
  for (int i = 2; i < 6; ++i) {
    GstBuffer *b = gst_harness_pull (h);
    expect_same_buffer_fields (b, i);
    EXPECT_EQ (objects (b).size (), 1u);
    gst_buffer_unref (b);
  }
  EXPECT_EQ (stat (seg, "encoder-runs"), 1u);
  EXPECT_EQ (stat (seg, "frames-encoded"), 4u);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

// New caps mid-batch: the queued frames leave first, with masks in the old
// geometry; the next frames use the new one.
TEST (Sam3SegmentBatch, CapsChangeMidBatchCompletesTheBatchFirst) {
  GstVideoInfo a, b;
  GstElement *seg = nullptr;
  GstHarness *h = harness ("batch-size=4 points=<<100,90,1>>", &seg);
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_RGB, &a));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&a));
  gst_harness_push (h, frame (0, GST_VIDEO_FORMAT_RGB, &a));
  gst_harness_push (h, frame (1, GST_VIDEO_FORMAT_RGB, &a));
  EXPECT_EQ (gst_harness_buffers_received (h), 0u);
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_I420, &b, 201, 151));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&b));
  for (int i = 2; i < 6; ++i) gst_harness_push (h, frame (i, GST_VIDEO_FORMAT_I420, &b, 201, 151));
  ASSERT_EQ (gst_harness_buffers_received (h), 6u);
  for (int i = 0; i < 6; ++i) {
    GstBuffer *buf = gst_harness_pull (h);
    expect_same_buffer_fields (buf, i);
    GstSam3MaskMeta *m = gst_buffer_get_sam3_mask_meta (buf);
    ASSERT_NE (m, nullptr);
    EXPECT_EQ (m->frame_width, i < 2 ? (guint) a.width : 201u) << "frame " << i;
    EXPECT_EQ (m->frame_height, i < 2 ? (guint) a.height : 151u) << "frame " << i;
    gst_buffer_unref (buf);
  }
  EXPECT_EQ (stat (seg, "encoder-runs"), 2u);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

// batch-timeout completes a partial batch without more input.
TEST (Sam3SegmentBatch, BatchTimeoutCompletesAPartialBatch) {
  GstVideoInfo info;
  GstElement *seg = nullptr;
  GstHarness *h = harness ("batch-size=8 batch-timeout=30000000 boxes=<<264,54,408,162>>", &seg);
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_RGB, &info));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
  gst_harness_push (h, frame (0, GST_VIDEO_FORMAT_RGB, &info));
  gst_harness_push (h, frame (1, GST_VIDEO_FORMAT_RGB, &info));
  for (int i = 0; i < 2; ++i) {
    GstBuffer *b = gst_harness_pull (h);  // waits (up to 60 s) for the timer
    ASSERT_NE (b, nullptr);
    expect_same_buffer_fields (b, i);
    EXPECT_EQ (objects (b).size (), 1u);
    gst_buffer_unref (b);
  }
  EXPECT_EQ (stat (seg, "encoder-runs"), 1u);
  // and again for the next partial batch
  gst_harness_push (h, frame (2, GST_VIDEO_FORMAT_RGB, &info));
  GstBuffer *b = gst_harness_pull (h);
  ASSERT_NE (b, nullptr);
  expect_same_buffer_fields (b, 2);
  gst_buffer_unref (b);
  EXPECT_EQ (stat (seg, "encoder-runs"), 2u);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

// LATENCY: (batch-size - 1) frame durations, or batch-timeout if shorter.
TEST (Sam3SegmentBatch, LatencyQueryReportsBatchingLatency) {
  GstVideoInfo info;
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_RGB, &info));  // 30 fps
  struct Case { const char *props; GstClockTime expected; };
  const Case cases[] = {{"batch-size=1", 0},
      {"batch-size=4", 3 * GST_SECOND / 30},
      {"batch-size=4 batch-timeout=20000000", 20 * GST_MSECOND},
      {"batch-size=2 batch-timeout=900000000", GST_SECOND / 30}};
  for (const auto &c : cases) {
    GstHarness *h = harness (c.props);
    gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
    gst_harness_set_upstream_latency (h, 5 * GST_MSECOND);
    gst_harness_push (h, frame (0, GST_VIDEO_FORMAT_RGB, &info));
    EXPECT_EQ (gst_harness_query_latency (h), 5 * GST_MSECOND + c.expected) << c.props;
    gst_harness_teardown (h);
  }
}

// inference-interval 3: frames 0 and 3 run the model; the others get the
// last masks marked stale (skip-mode stale) or nothing (skip-mode none).
TEST (Sam3SegmentBatch, InferenceIntervalAndSkipModes) {
  for (const char *mode : {"stale", "none"}) {
    GstVideoInfo info;
    GstElement *seg = nullptr;
    GstHarness *h = harness (std::string ("inference-interval=3 skip-mode=") + mode +
        " boxes=<<264,54,408,162>>", &seg);
    gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_RGB, &info));
    gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
    std::vector<Obj> inferred;
    for (int i = 0; i < 6; ++i) {
      GstBuffer *b = gst_harness_push_and_pull (h, frame (i, GST_VIDEO_FORMAT_RGB, &info));
      expect_same_buffer_fields (b, i);
      auto o = objects (b);
      if (i % 3 == 0) {
        ASSERT_EQ (o.size (), 1u) << mode << " frame " << i;
        EXPECT_FALSE (o[0].stale);
        inferred = o;
      } else if (std::string (mode) == "stale") {
        ASSERT_EQ (o.size (), 1u) << "frame " << i;
        EXPECT_TRUE (o[0].stale);
        EXPECT_EQ (o[0].mask, inferred[0].mask);
        EXPECT_EQ (o[0].x, inferred[0].x);
        const GstCustomMeta *cm = gst_buffer_get_custom_meta (b, "Sam3Result");
        ASSERT_NE (cm, nullptr);
        gboolean stale = FALSE;
        gst_structure_get_boolean (gst_custom_meta_get_structure ((GstCustomMeta *) cm),
            "object-0-stale", &stale);
        EXPECT_TRUE (stale);
      } else {
        EXPECT_TRUE (o.empty ()) << "frame " << i;
      }
      gst_buffer_unref (b);
    }
    EXPECT_EQ (stat (seg, "frames-inferred"), 2u);
    EXPECT_EQ (stat (seg, "frames-skipped"), 4u);
    EXPECT_EQ (stat (seg, "encoder-runs"), 2u);
    gst_object_unref (seg);
    gst_harness_teardown (h);
  }
}

GstEvent *prompt_event (const char *s) {
  GstStructure *st = gst_structure_from_string (s, nullptr);
  EXPECT_NE (st, nullptr) << s;
  return gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM, st);
}

// sam3/prompt events apply from the next buffer in stream order, also inside
// a batch; sam3/clear-prompts removes them; malformed ones warn.
TEST (Sam3SegmentBatch, SerializedPromptEvents) {
  GstVideoInfo info;
  GstElement *seg = nullptr;
  GstHarness *h = harness ("batch-size=4 boxes=<<264,54,408,162>>", &seg);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (seg, bus);
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_RGB, &info));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
  gst_harness_push (h, frame (0, GST_VIDEO_FORMAT_RGB, &info));
  ASSERT_TRUE (gst_harness_push_event (h, prompt_event (
      "sam3/prompt, points=<<(float)144,(float)126,(float)1>>")));
  gst_harness_push (h, frame (1, GST_VIDEO_FORMAT_RGB, &info));
  ASSERT_TRUE (gst_harness_push_event (h, prompt_event (
      "sam3/prompt, box=<20,30,120,110>, object-id=(uint)5")));
  gst_harness_push (h, frame (2, GST_VIDEO_FORMAT_RGB, &info));
  ASSERT_TRUE (gst_harness_push_event (h, prompt_event (
      "sam3/clear-prompts, object-id=(uint)5")));
  gst_harness_push (h, frame (3, GST_VIDEO_FORMAT_RGB, &info));
  // one batch: the events did not split it
  EXPECT_EQ (stat (seg, "encoder-runs"), 1u);
  ASSERT_TRUE (gst_harness_push_event (h, prompt_event ("sam3/clear-prompts")));
  gst_harness_push (h, frame (4, GST_VIDEO_FORMAT_RGB, &info));
  // malformed: warning, nothing changes
  ASSERT_TRUE (gst_harness_push_event (h, prompt_event ("sam3/prompt, box=<1,2,3>")));
  ASSERT_TRUE (gst_harness_push_event (h, prompt_event ("sam3/prompt, colour=red")));
  {
    // NaN coordinates (built by hand: the string parser may not take "nan")
    GValue box = G_VALUE_INIT;
    gst_value_array_init (&box, 4);
    for (float f : {NAN, 2.f, 30.f, 40.f}) {
      GValue v = G_VALUE_INIT;
      g_value_init (&v, G_TYPE_FLOAT);
      g_value_set_float (&v, f);
      gst_value_array_append_and_take_value (&box, &v);
    }
    GstStructure *st = gst_structure_new_empty ("sam3/prompt");
    gst_structure_take_value (st, "box", &box);
    ASSERT_TRUE (gst_harness_push_event (h, gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM, st)));
  }
  gst_harness_push (h, frame (5, GST_VIDEO_FORMAT_RGB, &info));
  ASSERT_TRUE (gst_harness_push_event (h, gst_event_new_eos ()));
  const std::vector<std::vector<guint>> expected_ids = {
      {0}, {0, 1000}, {0, 1000, 5}, {0, 1000}, {0}, {0}};
  for (int i = 0; i < 6; ++i) {
    GstBuffer *b = gst_harness_pull (h);
    ASSERT_NE (b, nullptr);
    expect_same_buffer_fields (b, i);
    std::vector<guint> ids;
    for (const auto &o : objects (b)) {
      ids.push_back (o.id);
      if (o.id >= 5) {
        EXPECT_EQ (o.source, GST_SAM3_PROMPT_SOURCE_EVENT);
      }
    }
    EXPECT_EQ (ids, expected_ids[i]) << "frame " << i;
    gst_buffer_unref (b);
  }
  // the prompt events are consumed, not forwarded
  while (GstEvent *ev = gst_harness_try_pull_event (h)) {
    const GstStructure *s = gst_event_get_structure (ev);
    EXPECT_FALSE (s && g_str_has_prefix (gst_structure_get_name (s), "sam3/"));
    gst_event_unref (ev);
  }
  int warnings = 0;
  while (GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING)) {
    GError *e = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_warning (m, &e, &dbg);
    const std::string text = dbg ? dbg : "";
    EXPECT_TRUE (text.find ("box") != std::string::npos) << text;
    if (warnings == 2) {
      EXPECT_NE (text.find ("not finite"), std::string::npos) << text;
    }
    ++warnings;
    g_error_free (e);
    g_free (dbg);
    gst_message_unref (m);
  }
  EXPECT_EQ (warnings, 3);
  gst_element_set_bus (seg, nullptr);
  gst_object_unref (bus);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

// attach-logits: each object carries the predictor's low-res logits of the
// attached mask.
TEST (Sam3SegmentBatch, AttachLogitsEqualsThePredictorLowResMasks) {
  GstVideoInfo info;
  GstElement *seg = nullptr;
  GstHarness *h = harness ("attach-logits=true boxes=<<264,54,408,162>>", &seg);
  GstBuffer *in = frame (0, GST_VIDEO_FORMAT_RGB, &info);
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
  GstBuffer *out = gst_harness_push_and_pull (h, gst_buffer_ref (in));
  GstSam3MaskMeta *meta = gst_buffer_get_sam3_mask_meta (out);
  ASSERT_NE (meta, nullptr);
  const GstSam3MaskObject *o = gst_sam3_mask_meta_get_object (meta, 0);
  ASSERT_NE (o->logits, nullptr);
  GstVideoFrame f;
  ASSERT_TRUE (gst_video_frame_map (&f, &info, in, GST_MAP_READ));
  cv::Mat rgb = cv::Mat (info.height, info.width, CV_8UC3, GST_VIDEO_FRAME_PLANE_DATA (&f, 0),
      GST_VIDEO_FRAME_PLANE_STRIDE (&f, 0)).clone ();
  gst_video_frame_unmap (&f);
  sam3::InteractiveImagePredictor pred (sam3::Model::load (sam3::test::fixture_path (kModel)));
  pred.set_image (rgb);
  sam3::PredictArgs a;
  a.box = torch::tensor ({264.f, 54.f, 408.f, 162.f});
  a.multimask_output = false;
  auto ref = pred.predict (a).low_res_masks[0].contiguous ();
  ASSERT_EQ (o->logits_height, (guint) ref.size (0));
  ASSERT_EQ (o->logits_width, (guint) ref.size (1));
  std::vector<float> got (ref.numel ());
  ASSERT_EQ (gst_buffer_extract (o->logits, 0, got.data (), got.size () * 4), got.size () * 4);
  float max_diff = 0;
  for (int64_t k = 0; k < ref.numel (); ++k)
    max_diff = std::max (max_diff, std::abs (got[k] - ref.data_ptr<float> ()[k]));
  EXPECT_EQ (max_diff, 0.f);
  gst_buffer_unref (out);
  // off: no logits
  g_object_set (seg, "attach-logits", FALSE, NULL);
  out = gst_harness_push_and_pull (h, in);
  EXPECT_EQ (gst_sam3_mask_meta_get_object (gst_buffer_get_sam3_mask_meta (out), 0)->logits,
      nullptr);
  gst_buffer_unref (out);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

// SAM 2.1 and SAM 1 checkpoints run in the same element (family detected by
// the predictor library): the attached IoU equals the predictor's own.
TEST (Sam3SegmentBatch, Sam21AndSam1CheckpointsRunInTheElement) {
  const std::vector<std::string> models = {
      "sam2.1/sam2.1_tiny_r256_e32_d128/sam2.1_tiny_r256_e32_d128.pt",
      "sam1/sam1_tiny_r256_e64_d4/sam1_tiny_r256_e64_d4.pth"};
  for (const auto &m : models) {
    const std::string path = sam3::test::fixture_path (m);
    GstElement *seg = gst_element_factory_make ("sam3segment", nullptr);
    g_object_set (seg, "model-file", path.c_str (), "num-threads", 2, "batch-size", 2, NULL);
    gst_util_set_object_arg (G_OBJECT (seg), "boxes", "<<264,54,408,162>>");
    gst_object_ref_sink (seg);  // the harness does not take the floating ref
    GstHarness *h = gst_harness_new_with_element (seg, "sink", "src");
    gst_object_unref (seg);
    GstVideoInfo info;
    GstBuffer *in = frame (0, GST_VIDEO_FORMAT_BGRx, &info);
    gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
    gst_harness_push (h, gst_buffer_ref (in));
    gst_harness_push (h, frame (1, GST_VIDEO_FORMAT_BGRx, &info));
    GstBuffer *out = gst_harness_pull (h);
    ASSERT_NE (out, nullptr) << m;
    auto o = objects (out);
    ASSERT_EQ (o.size (), 1u) << m;
    GstVideoFrame f;
    ASSERT_TRUE (gst_video_frame_map (&f, &info, in, GST_MAP_READ));
    cv::Mat bgrx (info.height, info.width, CV_8UC4, GST_VIDEO_FRAME_PLANE_DATA (&f, 0),
        GST_VIDEO_FRAME_PLANE_STRIDE (&f, 0));
    cv::Mat rgb;
    cv::cvtColor (bgrx, rgb, cv::COLOR_BGRA2RGB);
    gst_video_frame_unmap (&f);
    sam3::InteractiveImagePredictor pred (sam3::Model::load (path));
    pred.set_image (rgb);
    sam3::PredictArgs a;
    a.box = torch::tensor ({264.f, 54.f, 408.f, 162.f});
    a.multimask_output = false;
    EXPECT_NEAR (o[0].iou, pred.predict (a).iou_predictions[0].item<float> (), 1e-4) << m;
    gst_buffer_unref (out);
    gst_buffer_unref (in);
    gst_harness_teardown (h);  // owns seg
  }
}

// Caps the element cannot take are refused (NOT_NEGOTIATED, no crash); it
// works with supported caps afterwards.
TEST (Sam3SegmentBatch, UnsupportedCapsAreRefused) {
  GstElement *seg = nullptr;
  GstHarness *h = harness ("boxes=<<1,1,20,20>>", &seg);
  GstCaps *gray = gst_caps_from_string ("video/x-raw,format=GRAY8,width=64,height=48,framerate=30/1");
  GstPad *sink = gst_element_get_static_pad (seg, "sink");
  EXPECT_FALSE (gst_pad_query_accept_caps (sink, gray));
  gst_object_unref (sink);
  gst_harness_set_src_caps (h, gray);
  EXPECT_EQ (gst_harness_push (h, gst_buffer_new_allocate (nullptr, 64 * 48, nullptr)),
      GST_FLOW_NOT_NEGOTIATED);
  GstVideoInfo info;
  gst_buffer_unref (frame (0, GST_VIDEO_FORMAT_RGB, &info, 64, 48));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
  GstBuffer *out = gst_harness_push_and_pull (h, frame (0, GST_VIDEO_FORMAT_RGB, &info, 64, 48));
  ASSERT_NE (out, nullptr);
  EXPECT_EQ (objects (out).size (), 1u);
  gst_buffer_unref (out);
  gst_object_unref (seg);
  gst_harness_teardown (h);
}

// A corrupt model file: the error names the file and the problem; the
// element can then start with a good model.
TEST (Sam3SegmentBatch, CorruptModelErrorsAndElementRecovers) {
  const std::string dir = sam3::test::temp_dir ();
  const std::string bad = dir + "/corrupt.pt";
  sam3::test::write_file (bad, std::string ("PK\x03\x04 this is not a checkpoint"));
  GstElement *pipe = gst_parse_launch (("videotestsrc num-buffers=2 ! "
      "video/x-raw,format=RGB,width=64,height=48 ! sam3segment name=s model-file=" + bad +
      " boxes=<<1,1,20,20>> ! fakesink").c_str (), nullptr);
  ASSERT_NE (pipe, nullptr);
  EXPECT_EQ (gst_element_set_state (pipe, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  GstBus *bus = gst_element_get_bus (pipe);
  GstMessage *m = gst_bus_timed_pop_filtered (bus, GST_SECOND, GST_MESSAGE_ERROR);
  ASSERT_NE (m, nullptr);
  GError *e = nullptr;
  gchar *dbg = nullptr;
  gst_message_parse_error (m, &e, &dbg);
  EXPECT_NE (std::string (dbg).find ("corrupt.pt"), std::string::npos) << dbg;
  g_error_free (e);
  g_free (dbg);
  gst_message_unref (m);
  gst_element_set_state (pipe, GST_STATE_NULL);
  GstElement *s = gst_bin_get_by_name (GST_BIN (pipe), "s");
  g_object_set (s, "model-file", sam3::test::fixture_path (kModel).c_str (), NULL);
  gst_object_unref (s);
  gst_element_set_state (pipe, GST_STATE_PLAYING);
  m = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
      (GstMessageType) (GST_MESSAGE_ERROR | GST_MESSAGE_EOS));
  ASSERT_NE (m, nullptr);
  EXPECT_EQ (GST_MESSAGE_TYPE (m), GST_MESSAGE_EOS);
  gst_message_unref (m);
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipe);
}

}  // namespace
