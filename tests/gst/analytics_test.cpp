// The GstAnalytics output (gst-plugin/gstsam3analytics.cpp, docs/analytics.md),
// GStreamer >= 1.26: read back through the GstAnalytics API, and drawn by
// upstream's objectdetectionoverlay. Built on every version; without the
// analytics library (GStreamer 1.22, Debian 12) each test skips, saying why.
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gst_leak_check.h"
#include "gstsam3analytics.h"
#include "gstsam3maskmeta.h"
#ifdef HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#endif

namespace {

class AnalyticsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gst_init(nullptr, nullptr); }
  void SetUp() override {
#ifndef HAVE_GST_ANALYTICS
    GTEST_SKIP() << "built against GStreamer " << GST_VERSION_MAJOR << "." << GST_VERSION_MINOR
                 << " without gstreamer-analytics-1.0 >= 1.26: no GstAnalytics output";
#endif
  }
};

#ifdef HAVE_GST_ANALYTICS

struct OdRead {
  GstAnalyticsODMtd od;
  gint x, y, w, h;
  gfloat conf;
};

std::vector<OdRead> read_ods(GstAnalyticsRelationMeta *rmeta) {
  std::vector<OdRead> out;
  gpointer state = nullptr;
  OdRead r{};
  while (gst_analytics_relation_meta_iterate(rmeta, &state, gst_analytics_od_mtd_get_mtd_type(),
                                             &r.od)) {
    EXPECT_TRUE(gst_analytics_od_mtd_get_location(&r.od, &r.x, &r.y, &r.w, &r.h, &r.conf));
    out.push_back(r);
  }
  return out;
}

void expect_box(const OdRead &r, gint x, gint y, gint w, gint h, gfloat conf) {
  EXPECT_EQ(r.x, x);
  EXPECT_EQ(r.y, y);
  EXPECT_EQ(r.w, w);
  EXPECT_EQ(r.h, h);
  EXPECT_NEAR(r.conf, conf, 1e-6);
}

// The SegmentationMtd RELATE_TO-linked from |od|, checking the link back.
bool related_segmentation(GstAnalyticsRelationMeta *rmeta, const GstAnalyticsODMtd &od,
                          GstAnalyticsSegmentationMtd *seg) {
  gpointer rstate = nullptr;
  if (!gst_analytics_relation_meta_get_direct_related(
          rmeta, od.id, GST_ANALYTICS_REL_TYPE_RELATE_TO,
          gst_analytics_segmentation_mtd_get_mtd_type(), &rstate, seg))
    return false;
  EXPECT_EQ(gst_analytics_relation_meta_get_relation(rmeta, od.id, seg->id),
            GST_ANALYTICS_REL_TYPE_RELATE_TO);
  EXPECT_EQ(gst_analytics_relation_meta_get_relation(rmeta, seg->id, od.id),
            GST_ANALYTICS_REL_TYPE_RELATE_TO);
  // and from the segmentation back to the same ODMtd
  GstAnalyticsODMtd back;
  gpointer bstate = nullptr;
  EXPECT_TRUE(gst_analytics_relation_meta_get_direct_related(
      rmeta, seg->id, GST_ANALYTICS_REL_TYPE_RELATE_TO, gst_analytics_od_mtd_get_mtd_type(),
      &bstate, &back));
  EXPECT_EQ(back.id, od.id);
  return true;
}

#endif  // HAVE_GST_ANALYTICS

TEST_F(AnalyticsTest, ReadBackBoxConfidenceMaskAndRegionLinkedBothWays) {
#ifdef HAVE_GST_ANALYTICS
  ASSERT_TRUE(gst_sam3_analytics_available());
  GstBuffer *buf = gst_buffer_new_allocate(nullptr, 64 * 48, nullptr);
  GstSam3MaskMeta *meta = gst_buffer_add_sam3_mask_meta(buf, 64, 48);
  // object 7: 10x6 box at (-4, 2) (partly outside the frame), left half of its mask set
  std::vector<guint8> m(10 * 6, 0);
  for (int v = 0; v < 6; v++)
    for (int u = 0; u < 5; u++) m[v * 10 + u] = 255;
  gst_sam3_mask_meta_add_object(meta, 7, GST_SAM3_PROMPT_SOURCE_PROPERTY, -4, 2, 10, 6, 0.9f,
                                m.data(), 10);
  // object 1000: a box, no mask pixels
  gst_sam3_mask_meta_add_object(meta, 1000, GST_SAM3_PROMPT_SOURCE_SIGNAL, 20, 20, 8, 8, 0.5f,
                                nullptr, 0);
  GError *err = nullptr;
  ASSERT_TRUE(gst_sam3_attach_analytics(buf, meta, &err)) << (err ? err->message : "");

  GstAnalyticsRelationMeta *rmeta = gst_buffer_get_analytics_relation_meta(buf);
  ASSERT_NE(rmeta, nullptr);
  EXPECT_EQ(gst_analytics_relation_get_length(rmeta), 3u);  // 2 ODMtd + 1 SegmentationMtd
  std::vector<OdRead> ods = read_ods(rmeta);
  ASSERT_EQ(ods.size(), 2u);
  for (const OdRead &r : ods)
    EXPECT_EQ(gst_analytics_od_mtd_get_obj_type(&r.od),
              g_quark_from_string(GST_SAM3_ANALYTICS_OBJECT_CLASS));

  // object 7, clipped to x >= 0: (0, 2) 6x6, confidence = its IoU
  expect_box(ods[0], 0, 2, 6, 6, 0.9f);
  GstAnalyticsSegmentationMtd seg;
  ASSERT_TRUE(related_segmentation(rmeta, ods[0].od, &seg));
  gint mx = -1, my = -1;
  guint mw = 0, mh = 0;
  GstBuffer *mask = gst_analytics_segmentation_mtd_get_mask(&seg, &mx, &my, &mw, &mh);
  ASSERT_NE(mask, nullptr);
  EXPECT_EQ(mx, 0);
  EXPECT_EQ(my, 2);
  EXPECT_EQ(mw, 6u);
  EXPECT_EQ(mh, 6u);
  const guint rid = GST_SAM3_ANALYTICS_REGION_ID(7);
  ASSERT_EQ(gst_analytics_segmentation_mtd_get_region_count(&seg), 2u);
  EXPECT_EQ(gst_analytics_segmentation_mtd_get_region_id(&seg, 0), 0u);
  EXPECT_EQ(gst_analytics_segmentation_mtd_get_region_id(&seg, 1), rid);
  GstVideoMeta *vm = gst_buffer_get_video_meta(mask);
  ASSERT_NE(vm, nullptr);
  EXPECT_EQ(vm->format, GST_VIDEO_FORMAT_GRAY8);
  EXPECT_EQ(vm->width, 6u);
  EXPECT_EQ(vm->height, 6u);
  GstMapInfo map;
  ASSERT_TRUE(gst_buffer_map(mask, &map, GST_MAP_READ));
  int wrong = 0;
  for (guint v = 0; v < 6; v++)
    for (guint u = 0; u < 6; u++)  // source columns 4..9: only column 4 (u = 0) was set
      wrong += map.data[vm->offset[0] + v * vm->stride[0] + u] != (u == 0 ? rid : 0u);
  EXPECT_EQ(wrong, 0);
  gst_buffer_unmap(mask, &map);
  gst_buffer_unref(mask);

  // object 1000: box and confidence, no segmentation
  expect_box(ods[1], 20, 20, 8, 8, 0.5f);
  GstAnalyticsSegmentationMtd none;
  EXPECT_FALSE(related_segmentation(rmeta, ods[1].od, &none));

  // a copy of the buffer keeps them (the relation meta's transform)
  GstBuffer *copy = gst_buffer_copy(buf);
  GstAnalyticsRelationMeta *crmeta = gst_buffer_get_analytics_relation_meta(copy);
  ASSERT_NE(crmeta, nullptr);
  EXPECT_EQ(gst_analytics_relation_get_length(crmeta), 3u);
  gst_buffer_unref(copy);
  gst_buffer_unref(buf);
#endif
}

// sam3segment (fixture model) on a black frame, then upstream's
// objectdetectionoverlay: the box outline it draws lies on the box of our
// ODMtd, read back from the same buffer; the frame away from it stays black.
TEST_F(AnalyticsTest, ObjectDetectionOverlayDrawsAroundOurObject) {
#ifdef HAVE_GST_ANALYTICS
  const char *fixtures = g_getenv("SAM3_FIXTURES_DIR");
  ASSERT_NE(fixtures, nullptr) << "SAM3_FIXTURES_DIR not set";
  GstElementFactory *f = gst_element_factory_find("objectdetectionoverlay");
  ASSERT_NE(f, nullptr) << "GStreamer " << GST_VERSION_MAJOR << "." << GST_VERSION_MINOR
                        << " has no objectdetectionoverlay (gstreamer1.0-plugins-bad)";
  gst_object_unref(f);
  const std::string model = std::string(fixtures) + "/sam3/tiny-a/checkpoint.pt";
  const int W = 160, H = 120;
  const std::string desc =
      "videotestsrc pattern=black num-buffers=1 ! video/x-raw,format=BGRA,width=" +
      std::to_string(W) + ",height=" + std::to_string(H) +
      " ! sam3segment name=seg num-threads=2 model-file=\"" + model +
      "\" boxes=\"<<40,30,120,90>>\" ! objectdetectionoverlay draw-labels=false"
      " ! appsink name=out sync=false";
  GError *err = nullptr;
  GstElement *pipe = gst_parse_launch(desc.c_str(), &err);
  ASSERT_NE(pipe, nullptr) << (err ? err->message : "");
  ASSERT_EQ(err, nullptr) << err->message;
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), "out");
  ASSERT_EQ(gst_element_set_state(pipe, GST_STATE_PLAYING), GST_STATE_CHANGE_ASYNC);
  GstSample *sample = nullptr;
  g_signal_emit_by_name(sink, "pull-sample", &sample);
  ASSERT_NE(sample, nullptr) << "no frame came out";
  GstBuffer *buf = gst_sample_get_buffer(sample);
  GstVideoInfo info;
  ASSERT_TRUE(gst_video_info_from_caps(&info, gst_sample_get_caps(sample)));
  ASSERT_EQ(GST_VIDEO_INFO_FORMAT(&info), GST_VIDEO_FORMAT_BGRA);

  GstAnalyticsRelationMeta *rmeta = gst_buffer_get_analytics_relation_meta(buf);
  ASSERT_NE(rmeta, nullptr) << "no GstAnalyticsRelationMeta on sam3segment's output";
  std::vector<OdRead> ods = read_ods(rmeta);
  ASSERT_EQ(ods.size(), 1u);
  const OdRead &od = ods[0];
  ASSERT_GE(od.w, 8);
  ASSERT_GE(od.h, 8);
  GstAnalyticsSegmentationMtd seg;
  EXPECT_TRUE(related_segmentation(rmeta, od.od, &seg));

  GstVideoFrame frame;
  ASSERT_TRUE(gst_video_frame_map(&frame, &info, buf, GST_MAP_READ));
  const guint8 *data = static_cast<const guint8 *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0));
  const int stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0);
  auto lit = [&](int x, int y) {
    const guint8 *p = data + y * stride + x * 4;
    return p[0] + p[1] + p[2] > 60;  // B, G, R over black
  };
  // the outline: on each side of the box, most pixels within 2 px of the edge are lit
  auto side_lit = [&](bool vertical, int fixed) {
    int lit_n = 0, n = 0;
    const int from = vertical ? od.y + 2 : od.x + 2;
    const int to = vertical ? od.y + od.h - 3 : od.x + od.w - 3;
    for (int t = from; t <= to; t++, n++) {
      bool any = false;
      for (int d = -2; d <= 2 && !any; d++) {
        const int x = vertical ? fixed + d : t, y = vertical ? t : fixed + d;
        if (x >= 0 && x < W && y >= 0 && y < H) any = lit(x, y);
      }
      lit_n += any;
    }
    return n > 0 && lit_n * 10 >= n * 9;
  };
  EXPECT_TRUE(side_lit(true, od.x)) << "left side of " << od.x << "," << od.y << " " << od.w
                                     << "x" << od.h;
  EXPECT_TRUE(side_lit(true, od.x + od.w - 1)) << "right side";
  EXPECT_TRUE(side_lit(false, od.y)) << "top side";
  EXPECT_TRUE(side_lit(false, od.y + od.h - 1)) << "bottom side";
  // away from the box (more than 4 px outside, more than 4 px inside): black
  int stray = 0;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      const bool outside = x < od.x - 4 || x > od.x + od.w + 3 || y < od.y - 4 ||
                           y > od.y + od.h + 3;
      const bool inside = x > od.x + 4 && x < od.x + od.w - 5 && y > od.y + 4 &&
                          y < od.y + od.h - 5;
      if ((outside || inside) && lit(x, y)) stray++;
    }
  EXPECT_EQ(stray, 0) << "pixels drawn away from the box";
  gst_video_frame_unmap(&frame);
  gst_sample_unref(sample);
  gst_element_set_state(pipe, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipe);
  // objectdetectionoverlay (gst-plugins-bad 1.24 - 1.26) keeps its last
  // composition (rectangle, canvas buffer of W x H x 4 bytes without
  // timestamps, its memory) past stop() and finalize: not ours
  const char *why = "objectdetectionoverlay keeps its last composition after stop";
  const std::string canvas = "size " + std::to_string(W * H * 4);
  sam3test::allow_upstream_leak("GstVideoOverlayComposition", "", 1, why);
  sam3test::allow_upstream_leak("GstVideoOverlayRectangle", "", 1, why);
  sam3test::allow_upstream_leak("GstBuffer", (canvas + ", offset none").c_str(), 1, why);
  sam3test::allow_upstream_leak("GstMemory", "", 1, why);
#endif
}

}  // namespace
