// Shared helpers for the GStreamer suites (GoogleTest + GstHarness).
#pragma once

#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "gstsam3maskmeta.h"

namespace sam3test {

// gst_init once per process; the plugin is found through the meson test
// environment (GST_PLUGIN_PATH_1_0 = plugin build dir, empty system path).
class GstTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gst_init(nullptr, nullptr); }
};

// A GstHarness around a new sam3segment with model-file = |model|, 2 threads
// and |props| ("name=value name=value", as gst-launch reads them). The
// element's floating reference is sunk (gst_harness_new_with_element does not
// take it): it is handed to the caller in *seg_out, or dropped.
inline GstHarness *segment_harness(const std::string &model, const std::string &props,
                                   GstElement **seg_out = nullptr) {
  GstElement *seg = gst_element_factory_make("sam3segment", nullptr);
  EXPECT_NE(seg, nullptr);
  g_object_set(seg, "model-file", model.c_str(), "num-threads", 2, NULL);
  gchar **kv = g_strsplit(props.c_str(), " ", -1);
  for (gchar **p = kv; *p; ++p) {
    if (!**p) continue;
    gchar **pair = g_strsplit(*p, "=", 2);
    gst_util_set_object_arg(G_OBJECT(seg), pair[0], pair[1]);
    g_strfreev(pair);
  }
  g_strfreev(kv);
  gst_object_ref_sink(seg);
  GstHarness *h = gst_harness_new_with_element(seg, "sink", "src");
  if (seg_out)
    *seg_out = seg;
  else
    gst_object_unref(seg);
  return h;
}

// A frame of |fmt| with every byte = base + (index % 5).
inline GstBuffer *make_frame(GstVideoFormat fmt, int w, int h,
                             GstVideoInfo *info_out = nullptr,
                             guint8 base = 180) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, fmt, w, h);
  GstBuffer *buf = gst_buffer_new_allocate(nullptr, info.size, nullptr);
  GstMapInfo map;
  gst_buffer_map(buf, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < map.size; i++) map.data[i] = (guint8)(base + i % 5);
  gst_buffer_unmap(buf, &map);
  GST_BUFFER_PTS(buf) = 0;
  GST_BUFFER_DURATION(buf) = GST_SECOND / 30;
  if (info_out) *info_out = info;
  return buf;
}

// A w x h GRAY8 mask (stride w) with pixel (u, v) = pred(u, v) ? 255 : 0.
inline std::vector<guint8> make_mask(int w, int h,
                                     const std::function<bool(int, int)> &pred) {
  std::vector<guint8> m((size_t)w * h);
  for (int v = 0; v < h; v++)
    for (int u = 0; u < w; u++) m[(size_t)v * w + u] = pred(u, v) ? 255 : 0;
  return m;
}

inline bool ellipse(int u, int v, int w, int h) {
  const double dx = (u + 0.5 - w / 2.0) / (w / 2.0);
  const double dy = (v + 0.5 - h / 2.0) / (h / 2.0);
  return dx * dx + dy * dy <= 0.8;
}

// Reads pixel bytes of a GRAY8 mask buffer (with its GstVideoMeta).
inline std::vector<guint8> read_mask(GstBuffer *mask, guint *w, guint *h) {
  GstVideoMeta *vmeta = gst_buffer_get_video_meta(mask);
  EXPECT_NE(vmeta, nullptr);
  if (!vmeta) return {};
  *w = vmeta->width;
  *h = vmeta->height;
  std::vector<guint8> out((size_t)vmeta->width * vmeta->height);
  GstMapInfo map;
  gst_buffer_map(mask, &map, GST_MAP_READ);
  for (guint v = 0; v < vmeta->height; v++)
    memcpy(&out[(size_t)v * vmeta->width],
           map.data + vmeta->offset[0] + (size_t)v * vmeta->stride[0],
           vmeta->width);
  gst_buffer_unmap(mask, &map);
  return out;
}

}  // namespace sam3test
