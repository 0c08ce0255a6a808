// sam3overlay: drawing per format, passthrough, toggles, stress, launch line.
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gst_test_util.h"

using sam3test::GstTest;
using sam3test::make_frame;
using sam3test::make_mask;

namespace {

struct Box {
  int x, y, w, h;
};

GstHarness *new_overlay(const char *props, GstVideoFormat fmt, int w, int h) {
  GstHarness *hr = gst_harness_new("sam3overlay");
  // props: "name=value name=value ..." (values without spaces)
  gchar **kv = g_strsplit(props, " ", -1);
  for (gchar **p = kv; *p; p++) {
    gchar **pair = g_strsplit(*p, "=", 2);
    if (pair[0] && pair[1])
      gst_util_set_object_arg(G_OBJECT(hr->element), pair[0], pair[1]);
    g_strfreev(pair);
  }
  g_strfreev(kv);
  gchar *caps = g_strdup_printf(
      "video/x-raw,format=%s,width=%d,height=%d,framerate=30/1",
      gst_video_format_to_string(fmt), w, h);
  gst_harness_set_src_caps_str(hr, caps);
  g_free(caps);
  return hr;
}

// Adds an object with an elliptic mask filling |b|; returns the mask.
std::vector<guint8> add_ellipse(GstBuffer *buf, guint fw, guint fh, guint id,
                                Box b) {
  GstSam3MaskMeta *meta = gst_buffer_get_sam3_mask_meta(buf);
  if (!meta) meta = gst_buffer_add_sam3_mask_meta(buf, fw, fh);
  auto m = make_mask(b.w, b.h, [&](int u, int v) {
    return sam3test::ellipse(u, v, b.w, b.h);
  });
  gst_sam3_mask_meta_add_object(meta, id, GST_SAM3_PROMPT_SOURCE_PROPERTY, b.x,
                                b.y, b.w, b.h, 0.87f, m.data(), b.w);
  return m;
}

// Maps |buf| read-only as a frame of |info|.
struct Frame {
  GstVideoFrame f;
  bool ok;
  Frame(GstBuffer *buf, GstVideoInfo *info) {
    ok = gst_video_frame_map(&f, info, buf, GST_MAP_READ);
  }
  ~Frame() {
    if (ok) gst_video_frame_unmap(&f);
  }
  const guint8 *px(int comp, int x, int y) const {
    const guint8 *d = (const guint8 *)GST_VIDEO_FRAME_COMP_DATA(&f, comp);
    return d + y * GST_VIDEO_FRAME_COMP_STRIDE(&f, comp) +
           x * GST_VIDEO_FRAME_COMP_PSTRIDE(&f, comp);
  }
};

bool buffers_equal(GstBuffer *a, GstBuffer *b) {
  GstMapInfo ma, mb;
  gst_buffer_map(a, &ma, GST_MAP_READ);
  gst_buffer_map(b, &mb, GST_MAP_READ);
  bool eq = ma.size == mb.size && memcmp(ma.data, mb.data, ma.size) == 0;
  gst_buffer_unmap(a, &ma);
  gst_buffer_unmap(b, &mb);
  return eq;
}

struct FormatCase {
  GstVideoFormat fmt;
  int w, h;
};

class OverlayFormatTest : public GstTest,
                          public ::testing::WithParamInterface<FormatCase> {};

// Fill only (no contour): every mask pixel changes, nothing outside does.
TEST_P(OverlayFormatTest, FillChangesInsideOnly) {
  const FormatCase fc = GetParam();
  GstHarness *hr = new_overlay("draw-contours=false", fc.fmt, fc.w, fc.h);
  GstVideoInfo info;
  GstBuffer *in = make_frame(fc.fmt, fc.w, fc.h, &info);
  const Box b{fc.w / 5, fc.h / 6, fc.w / 3 + 1, fc.h / 2 + 1};
  auto mask = add_ellipse(in, fc.w, fc.h, 0, b);
  auto in_mask = [&](int x, int y) {
    return x >= b.x && x < b.x + b.w && y >= b.y && y < b.y + b.h &&
           mask[(y - b.y) * b.w + (x - b.x)] != 0;
  };

  GstBuffer *out = gst_harness_push_and_pull(hr, gst_buffer_ref(in));
  ASSERT_NE(out, nullptr);
  {
    Frame fi(in, &info), fo(out, &info);
    ASSERT_TRUE(fi.ok && fo.ok);
    const bool yuv = GST_VIDEO_INFO_IS_YUV(&info);
    int changed = 0, inside = 0;
    for (int y = 0; y < fc.h; y++) {
      for (int x = 0; x < fc.w; x++) {
        if (yuv) {
          const bool diff = *fi.px(0, x, y) != *fo.px(0, x, y);
          if (in_mask(x, y)) {
            inside++;
            changed += diff;
          } else {
            ASSERT_FALSE(diff) << "luma outside at " << x << "," << y;
          }
        } else {
          bool diff = false;
          for (int c = 0; c < 3; c++)
            diff |= *fi.px(c, x, y) != *fo.px(c, x, y);
          if (in_mask(x, y)) {
            inside++;
            changed += diff;
          } else {
            ASSERT_FALSE(diff) << "outside at " << x << "," << y;
          }
          if (GST_VIDEO_INFO_HAS_ALPHA(&info)) {  // alpha never touched
            ASSERT_EQ(*fi.px(3, x, y), *fo.px(3, x, y));
          }
        }
      }
    }
    EXPECT_GT(inside, 0);
    EXPECT_EQ(changed, inside);
    if (yuv) {
      // chroma: samples whose 2x2 block has no mask pixel are untouched;
      // the sample at the mask centre changes
      const int cw = GST_VIDEO_INFO_COMP_WIDTH(&info, 1);
      const int ch = GST_VIDEO_INFO_COMP_HEIGHT(&info, 1);
      for (int cy = 0; cy < ch; cy++)
        for (int cx = 0; cx < cw; cx++) {
          bool any = false;
          for (int d = 0; d < 4; d++)
            any |= in_mask(2 * cx + d % 2, 2 * cy + d / 2);
          if (any) continue;
          for (int c = 1; c <= 2; c++)
            ASSERT_EQ(*fi.px(c, cx, cy), *fo.px(c, cx, cy))
                << "chroma outside at " << cx << "," << cy;
        }
      const int mx = (b.x + b.w / 2) / 2, my = (b.y + b.h / 2) / 2;
      EXPECT_NE(*fi.px(1, mx, my), *fo.px(1, mx, my));
      EXPECT_NE(*fi.px(2, mx, my), *fo.px(2, mx, my));
    }
  }
  gst_buffer_unref(in);
  gst_buffer_unref(out);
  gst_harness_teardown(hr);
}

// With contours (default): pixels more than the thickness away from the mask
// bbox stay identical, and the output differs from fill-only.
TEST_P(OverlayFormatTest, ContoursStayNearMask) {
  const FormatCase fc = GetParam();
  GstHarness *hr = new_overlay("contour-thickness=3", fc.fmt, fc.w, fc.h);
  GstVideoInfo info;
  GstBuffer *in = make_frame(fc.fmt, fc.w, fc.h, &info);
  const Box b{fc.w / 4, fc.h / 4, fc.w / 2, fc.h / 2};
  add_ellipse(in, fc.w, fc.h, 1, b);
  GstBuffer *out = gst_harness_push_and_pull(hr, gst_buffer_ref(in));
  ASSERT_NE(out, nullptr);
  {
    Frame fi(in, &info), fo(out, &info);
    const int m = 3;
    for (int y = 0; y < fc.h; y++)
      for (int x = 0; x < fc.w; x++) {
        if (x >= b.x - m && x < b.x + b.w + m && y >= b.y - m &&
            y < b.y + b.h + m)
          continue;
        ASSERT_EQ(*fi.px(0, x, y), *fo.px(0, x, y)) << x << "," << y;
      }
  }
  EXPECT_FALSE(buffers_equal(in, out));
  gst_buffer_unref(in);
  gst_buffer_unref(out);
  gst_harness_teardown(hr);
}

// Without meta the output is byte-identical to the input.
TEST_P(OverlayFormatTest, NoMetaIsUnchanged) {
  const FormatCase fc = GetParam();
  GstHarness *hr =
      new_overlay("draw-boxes=true draw-labels=true", fc.fmt, fc.w, fc.h);
  GstBuffer *in = make_frame(fc.fmt, fc.w, fc.h);
  GstBuffer *out = gst_harness_push_and_pull(hr, gst_buffer_ref(in));
  ASSERT_NE(out, nullptr);
  EXPECT_TRUE(buffers_equal(in, out));
  gst_buffer_unref(in);
  gst_buffer_unref(out);
  gst_harness_teardown(hr);
}

// alpha=1: the mask centre takes the object's palette colour exactly, in the
// right channel order (packed) or as its BT.601 luma/chroma (YUV).
TEST_P(OverlayFormatTest, AlphaOneGivesExactColour) {
  const FormatCase fc = GetParam();
  GstHarness *hr = new_overlay("alpha=1 draw-contours=false", fc.fmt, fc.w, fc.h);
  GstVideoInfo info;
  GstBuffer *in = make_frame(fc.fmt, fc.w, fc.h, &info);
  const Box b{2, 2, fc.w - 4, fc.h - 4};
  GstSam3MaskMeta *meta = gst_buffer_add_sam3_mask_meta(in, fc.w, fc.h);
  auto full = make_mask(b.w, b.h, [](int, int) { return true; });
  gst_sam3_mask_meta_add_object(meta, 3, GST_SAM3_PROMPT_SOURCE_PROPERTY, b.x,
                                b.y, b.w, b.h, 0.9f, full.data(), b.w);
  GstBuffer *out = gst_harness_push_and_pull(hr, in);
  ASSERT_NE(out, nullptr);
  {
    Frame fo(out, &info);
    const int x = fc.w / 2, y = fc.h / 2;
    const double r = 0x43, g = 0x63, bl = 0xD8;  // palette[3] = 0xFF4363D8
    if (GST_VIDEO_INFO_IS_YUV(&info)) {
      const int ey = (int)std::lround(
          16 + (65.481 * r + 128.553 * g + 24.966 * bl) / 255.0);
      const int eu = (int)std::lround(
          128 + (-37.797 * r - 74.203 * g + 112.0 * bl) / 255.0);
      const int ev = (int)std::lround(
          128 + (112.0 * r - 93.786 * g - 18.214 * bl) / 255.0);
      EXPECT_EQ(*fo.px(0, x, y), ey);
      EXPECT_EQ(*fo.px(1, x / 2, y / 2), eu);
      EXPECT_EQ(*fo.px(2, x / 2, y / 2), ev);
    } else {
      EXPECT_EQ(*fo.px(0, x, y), 0x43);
      EXPECT_EQ(*fo.px(1, x, y), 0x63);
      EXPECT_EQ(*fo.px(2, x, y), 0xD8);
    }
  }
  gst_buffer_unref(out);
  gst_harness_teardown(hr);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, OverlayFormatTest,
    ::testing::Values(FormatCase{GST_VIDEO_FORMAT_RGB, 97, 61},
                      FormatCase{GST_VIDEO_FORMAT_BGR, 97, 61},
                      FormatCase{GST_VIDEO_FORMAT_RGBA, 97, 61},
                      FormatCase{GST_VIDEO_FORMAT_BGRA, 64, 48},
                      FormatCase{GST_VIDEO_FORMAT_RGBx, 64, 48},
                      FormatCase{GST_VIDEO_FORMAT_BGRx, 97, 61},
                      FormatCase{GST_VIDEO_FORMAT_NV12, 97, 61},
                      FormatCase{GST_VIDEO_FORMAT_I420, 97, 61},
                      FormatCase{GST_VIDEO_FORMAT_NV12, 64, 48},
                      FormatCase{GST_VIDEO_FORMAT_I420, 33, 17}),
    [](const ::testing::TestParamInfo<FormatCase> &i) {
      return std::string(gst_video_format_to_string(i.param.fmt)) + "_" +
             std::to_string(i.param.w) + "x" + std::to_string(i.param.h);
    });

class OverlayTest : public GstTest {};

// RGB value at (x, y) of an RGB buffer of width w.
std::array<guint8, 3> rgb_at(GstBuffer *buf, GstVideoInfo *info, int x,
                             int y) {
  Frame f(buf, info);
  return {*f.px(0, x, y), *f.px(1, x, y), *f.px(2, x, y)};
}

// alpha=1: a mask pixel becomes exactly the object's colour, the same for the
// same id in every frame and position, from the palette or `colors`.
TEST_F(OverlayTest, ColourStablePerId) {
  GstHarness *hr = new_overlay("alpha=1.0 draw-contours=false",
                               GST_VIDEO_FORMAT_RGB, 97, 61);
  GstVideoInfo info;
  std::array<guint8, 3> first{};
  for (int i = 0; i < 3; i++) {
    GstBuffer *in = make_frame(GST_VIDEO_FORMAT_RGB, 97, 61, &info,
                               (guint8)(40 * i));
    const Box b{5 + 20 * i, 3 + 10 * i, 20, 20};
    add_ellipse(in, 97, 61, 3, b);
    GstBuffer *out = gst_harness_push_and_pull(hr, in);
    auto c = rgb_at(out, &info, b.x + 10, b.y + 10);
    if (i == 0) first = c;
    EXPECT_EQ(c, first);
    gst_buffer_unref(out);
  }
  // palette entry 3 is 0xFF4363D8
  EXPECT_EQ(first, (std::array<guint8, 3>{0x43, 0x63, 0xD8}));

  // a different id gets a different colour
  GstBuffer *in = make_frame(GST_VIDEO_FORMAT_RGB, 97, 61, &info);
  add_ellipse(in, 97, 61, 4, Box{5, 3, 20, 20});
  GstBuffer *out = gst_harness_push_and_pull(hr, in);
  EXPECT_NE(rgb_at(out, &info, 15, 13), first);
  gst_buffer_unref(out);

  // colors overrides the palette: id 3 -> entry 3 % 2 = 1
  gst_util_set_object_arg(G_OBJECT(hr->element), "colors",
                          "<0xff102030, 0xff405060>");
  in = make_frame(GST_VIDEO_FORMAT_RGB, 97, 61, &info);
  add_ellipse(in, 97, 61, 3, Box{5, 3, 20, 20});
  out = gst_harness_push_and_pull(hr, in);
  EXPECT_EQ(rgb_at(out, &info, 15, 13),
            (std::array<guint8, 3>{0x40, 0x50, 0x60}));
  gst_buffer_unref(out);
  gst_harness_teardown(hr);
}

// Runs one RGB frame with an object whose mask is empty near the bbox border
// through sam3overlay with |props|; returns whether the output changed.
bool changed_with(const char *props, bool *border_changed = nullptr) {
  GstHarness *hr = new_overlay(props, GST_VIDEO_FORMAT_RGB, 97, 61);
  GstVideoInfo info;
  GstBuffer *in = make_frame(GST_VIDEO_FORMAT_RGB, 97, 61, &info);
  add_ellipse(in, 97, 61, 2, Box{30, 20, 40, 30});
  GstBuffer *out = gst_harness_push_and_pull(hr, gst_buffer_ref(in));
  const bool changed = !buffers_equal(in, out);
  if (border_changed)  // middle of the bbox's bottom edge, outside the mask
    *border_changed = rgb_at(in, &info, 50, 49) != rgb_at(out, &info, 50, 49);
  gst_buffer_unref(in);
  gst_buffer_unref(out);
  gst_harness_teardown(hr);
  return changed;
}

// draw-boxes and draw-labels switch their drawing on and off.
TEST_F(OverlayTest, BoxAndLabelToggles) {
  const char *off = "draw-masks=false draw-contours=false";
  bool border = true;
  EXPECT_FALSE(changed_with(off, &border));
  EXPECT_FALSE(border);
  std::string boxes = std::string(off) + " draw-boxes=true";
  EXPECT_TRUE(changed_with(boxes.c_str(), &border));
  EXPECT_TRUE(border);
  std::string labels = std::string(off) + " draw-labels=true";
  EXPECT_TRUE(changed_with(labels.c_str(), &border));
  EXPECT_FALSE(border);
  EXPECT_TRUE(changed_with("draw-masks=true draw-contours=false"));
}

// A bbox partly outside the frame is clipped; no crash, visible part drawn.
TEST_F(OverlayTest, ClipsBoxOutsideFrame) {
  for (GstVideoFormat fmt : {GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_I420}) {
    GstHarness *hr = new_overlay("draw-boxes=true draw-labels=true", fmt, 97, 61);
    GstVideoInfo info;
    GstBuffer *in = make_frame(fmt, 97, 61, &info);
    GstSam3MaskMeta *meta = gst_buffer_add_sam3_mask_meta(in, 97, 61);
    auto full = make_mask(40, 40, [](int, int) { return true; });
    gst_sam3_mask_meta_add_object(meta, 1, GST_SAM3_PROMPT_SOURCE_PROPERTY, -20,
                                  40, 40, 40, 0.9f, full.data(), 40);
    gst_sam3_mask_meta_add_object(meta, 2, GST_SAM3_PROMPT_SOURCE_PROPERTY, 500,
                                  500, 40, 40, 0.9f, full.data(), 40);
    GstBuffer *out = gst_harness_push_and_pull(hr, gst_buffer_ref(in));
    ASSERT_NE(out, nullptr);
    {
      Frame fi(in, &info), fo(out, &info);
      EXPECT_NE(*fi.px(0, 5, 50), *fo.px(0, 5, 50));
      EXPECT_EQ(*fi.px(0, 60, 10), *fo.px(0, 60, 10));
    }
    gst_buffer_unref(in);
    gst_buffer_unref(out);
    gst_harness_teardown(hr);
  }
}

// A meta made for another frame size is rescaled to the buffer (no crash).
TEST_F(OverlayTest, MetaFrameSizeMismatchIsScaled) {
  GstHarness *hr = new_overlay("draw-contours=false", GST_VIDEO_FORMAT_RGB, 97, 61);
  GstVideoInfo info;
  GstBuffer *in = make_frame(GST_VIDEO_FORMAT_RGB, 97, 61, &info);
  GstSam3MaskMeta *meta = gst_buffer_add_sam3_mask_meta(in, 194, 122);
  auto full = make_mask(60, 50, [](int, int) { return true; });
  gst_sam3_mask_meta_add_object(meta, 1, GST_SAM3_PROMPT_SOURCE_PROPERTY, 40,
                                20, 60, 50, 0.9f, full.data(), 60);
  GstBuffer *out = gst_harness_push_and_pull(hr, gst_buffer_ref(in));
  ASSERT_NE(out, nullptr);
  EXPECT_NE(rgb_at(in, &info, 35, 22), rgb_at(out, &info, 35, 22));
  EXPECT_EQ(rgb_at(in, &info, 55, 22), rgb_at(out, &info, 55, 22));
  EXPECT_EQ(rgb_at(in, &info, 5, 5), rgb_at(out, &info, 5, 5));
  gst_buffer_unref(in);
  gst_buffer_unref(out);

  // a meta without frame size is skipped
  in = make_frame(GST_VIDEO_FORMAT_RGB, 97, 61, &info);
  meta = gst_buffer_add_sam3_mask_meta(in, 0, 0);
  gst_sam3_mask_meta_add_object(meta, 1, GST_SAM3_PROMPT_SOURCE_PROPERTY, 0, 0,
                                60, 50, 0.9f, full.data(), 60);
  out = gst_harness_push_and_pull(hr, gst_buffer_ref(in));
  EXPECT_TRUE(buffers_equal(in, out));
  gst_buffer_unref(in);
  gst_buffer_unref(out);
  gst_harness_teardown(hr);
}

// Properties read back what was set (defaults included).
TEST_F(OverlayTest, PropertyDefaults) {
  GstElement *e = gst_element_factory_make("sam3overlay", nullptr);
  ASSERT_NE(e, nullptr);
  gdouble alpha;
  gboolean masks, contours, boxes, labels;
  gint thick;
  g_object_get(e, "alpha", &alpha, "draw-masks", &masks, "draw-contours",
               &contours, "draw-boxes", &boxes, "draw-labels", &labels,
               "contour-thickness", &thick, nullptr);
  EXPECT_DOUBLE_EQ(alpha, 0.5);
  EXPECT_TRUE(masks);
  EXPECT_TRUE(contours);
  EXPECT_FALSE(boxes);
  EXPECT_FALSE(labels);
  EXPECT_EQ(thick, 2);
  gst_util_set_object_arg(G_OBJECT(e), "colors", "<0xff000001, 0x80ffffff>");
  GValue v = G_VALUE_INIT;
  g_value_init(&v, GST_TYPE_ARRAY);
  g_object_get_property(G_OBJECT(e), "colors", &v);
  ASSERT_EQ(gst_value_array_get_size(&v), 2u);
  EXPECT_EQ(g_value_get_uint(gst_value_array_get_value(&v, 0)), 0xff000001u);
  EXPECT_EQ(g_value_get_uint(gst_value_array_get_value(&v, 1)), 0x80ffffffu);
  g_value_unset(&v);
  gst_object_unref(e);
}

// Racing property writes against 1000 buffers with masks.
TEST_F(OverlayTest, StressPropertiesWhileStreaming) {
  GstHarness *hr = new_overlay("draw-boxes=true draw-labels=true",
                               GST_VIDEO_FORMAT_NV12, 97, 61);
  GValue alpha = G_VALUE_INIT, boxes = G_VALUE_INIT, thick = G_VALUE_INIT,
         colors = G_VALUE_INIT;
  g_value_init(&alpha, G_TYPE_DOUBLE);
  g_value_set_double(&alpha, 0.8);
  g_value_init(&boxes, G_TYPE_BOOLEAN);
  g_value_set_boolean(&boxes, FALSE);
  g_value_init(&thick, G_TYPE_INT);
  g_value_set_int(&thick, 7);
  g_value_init(&colors, GST_TYPE_ARRAY);
  for (guint c : {0xff00ff00u, 0x80ff0000u}) {
    GValue cv = G_VALUE_INIT;
    g_value_init(&cv, G_TYPE_UINT);
    g_value_set_uint(&cv, c);
    gst_value_array_append_and_take_value(&colors, &cv);
  }
  GstHarnessThread *t[] = {
      gst_harness_stress_property_start_full(hr, "alpha", &alpha, 0),
      gst_harness_stress_property_start_full(hr, "draw-boxes", &boxes, 0),
      gst_harness_stress_property_start_full(hr, "contour-thickness", &thick, 0),
      gst_harness_stress_property_start_full(hr, "colors", &colors, 0),
  };
  for (int i = 0; i < 1000; i++) {
    GstBuffer *in = make_frame(GST_VIDEO_FORMAT_NV12, 97, 61);
    add_ellipse(in, 97, 61, i % 13, Box{i % 50, i % 30, 40, 30});
    GstBuffer *out = gst_harness_push_and_pull(hr, in);
    ASSERT_NE(out, nullptr);
    gst_buffer_unref(out);
  }
  for (GstHarnessThread *th : t) EXPECT_GT(gst_harness_stress_thread_stop(th), 0u);
  g_value_unset(&alpha);
  g_value_unset(&boxes);
  g_value_unset(&thick);
  g_value_unset(&colors);
  gst_harness_teardown(hr);
}

// Timestamps and flags pass through.
TEST_F(OverlayTest, TimestampsAndFlagsPropagate) {
  GstHarness *hr = new_overlay("", GST_VIDEO_FORMAT_RGB, 97, 61);
  GstBuffer *in = make_frame(GST_VIDEO_FORMAT_RGB, 97, 61);
  add_ellipse(in, 97, 61, 1, Box{10, 10, 20, 20});
  GST_BUFFER_PTS(in) = 123 * GST_MSECOND;
  GST_BUFFER_DTS(in) = 120 * GST_MSECOND;
  GST_BUFFER_DURATION(in) = 33 * GST_MSECOND;
  GST_BUFFER_FLAG_SET(in, GST_BUFFER_FLAG_DISCONT);
  GstBuffer *out = gst_harness_push_and_pull(hr, in);
  EXPECT_EQ(GST_BUFFER_PTS(out), 123 * GST_MSECOND);
  EXPECT_EQ(GST_BUFFER_DTS(out), 120 * GST_MSECOND);
  EXPECT_EQ(GST_BUFFER_DURATION(out), 33 * GST_MSECOND);
  EXPECT_TRUE(GST_BUFFER_FLAG_IS_SET(out, GST_BUFFER_FLAG_DISCONT));
  EXPECT_NE(gst_buffer_get_sam3_mask_meta(out), nullptr);  // meta kept
  gst_buffer_unref(out);
  gst_harness_teardown(hr);
}

// The launch line of the element's doc comment runs to EOS.
TEST_F(OverlayTest, DocLaunchLineRuns) {
  const char *src = g_getenv("SAM3_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  std::ifstream f(std::string(src) + "/gst-plugin/gstsam3overlay.cpp");
  ASSERT_TRUE(f.good());
  std::string line, launch;
  bool in_example = false;
  while (std::getline(f, line)) {
    if (line.find("## Example launch line") != std::string::npos)
      in_example = true;
    auto pos = line.find("gst-launch-1.0 ");
    if (in_example && pos != std::string::npos) {
      launch = line.substr(pos + strlen("gst-launch-1.0 "));
      break;
    }
  }
  ASSERT_FALSE(launch.empty());
  GError *err = nullptr;
  GstElement *pipe = gst_parse_launch(launch.c_str(), &err);
  ASSERT_EQ(err, nullptr) << (err ? err->message : "") << ": " << launch;
  ASSERT_NE(pipe, nullptr);
  ASSERT_NE(gst_element_set_state(pipe, GST_STATE_PLAYING),
            GST_STATE_CHANGE_FAILURE);
  GstBus *bus = gst_element_get_bus(pipe);
  GstMessage *msg = gst_bus_timed_pop_filtered(
      bus, 20 * GST_SECOND,
      (GstMessageType)(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  ASSERT_NE(msg, nullptr) << "timeout: " << launch;
  EXPECT_EQ(GST_MESSAGE_TYPE(msg), GST_MESSAGE_EOS) << launch;
  gst_message_unref(msg);
  gst_object_unref(bus);
  gst_element_set_state(pipe, GST_STATE_NULL);
  gst_object_unref(pipe);
}

}  // namespace
