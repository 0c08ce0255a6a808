/* gst-sam3 launch example: a generated video with ground truth, segmented by
 * sam3segment from detector-style box prompts, drawn by sam3overlay, written
 * to MP4 + a PNG snapshot, and scored against the ground truth.
 * SPDX-License-Identifier: Apache-2.0
 *
 *   appsrc (synthetic frames, RGB, + one GstVideoRegionOfInterestMeta "object"
 *           per visible object: its ground-truth box, as a detector would give)
 *     ! sam3segment batch-size=4 object-class=object     <- probe: IoU vs ground truth
 *     ! sam3overlay draw-boxes=true                      <- probe: PNG snapshot
 *     ! videoconvert ! x264enc ! mp4mux ! filesink
 *
 * The frames come from sam3::synth::VideoScene (training/synth): objects of
 * every kind moving, rotating and passing in front of each other over a
 * textured background. For every frame, the probe after sam3segment pastes
 * each GstSam3MaskMeta mask into the frame, finds the object it belongs to by
 * its parent ROI id and computes the IoU with that object's visible mask.
 *
 * Run (after scripts/setup.sh; the default model is the bundled one):
 *   GST_PLUGIN_PATH=build/gst-plugin build/launch-examples/sam3-synthetic-demo \
 *       [--model FILE] [--out DIR] [--frames N] [--size WxH] [--seed N]
 *       [--objects N] [--batch-size N] [--min-iou X] [--no-mp4]
 * Writes DIR/synthetic-demo.mp4 and DIR/synthetic-demo.png (default DIR
 * sam3-out) and prints the mean IoU against the ground truth over the objects
 * that are at least 0.25 % of the frame and at least half visible (the
 * evaluation filter of sam3-eval), and over all visible objects.
 * Exit status 1 if a frame is lost, the pipeline fails, or the mean IoU is
 * below --min-iou (the examples test runs it so).
 */
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/gstvideometa.h>
#include <gst/video/video.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "gstsam3maskmeta.h"
#include "synth/scene_generator.h"

namespace {

struct Options {
  std::string model, out = "sam3-out";
  int frames = 60, width = 640, height = 360, objects = 4, batch = 4;
  guint64 seed = 7;
  double min_iou = -1;
  bool mp4 = true;
};

struct State {
  std::mutex lock;
  std::vector<sam3::synth::Scene> scenes;  // ground truth per frame
  guint64 frames_seen = 0;
  double iou_sum = 0, iou_all_sum = 0;
  int iou_n = 0, iou_all_n = 0;
  int snapshot_frame = 0;
  std::string snapshot_path;
  bool snapshot_written = false;
};

constexpr gint kIdsPerFrame = 1000;

[[noreturn]] void usage (const char *msg) {
  std::fprintf (stderr,
      "sam3-synthetic-demo: %s\n"
      "usage: sam3-synthetic-demo [--model FILE] [--out DIR] [--frames N] [--size WxH]\n"
      "  [--seed N] [--objects N] [--batch-size N] [--min-iou X] [--no-mp4]\n", msg);
  std::exit (2);
}

Options parse (int argc, char **argv) {
  Options o;
  if (const char *m = g_getenv ("SAM3_MODEL")) o.model = m;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&] () -> std::string {
      if (i + 1 >= argc) usage (("missing value after " + k).c_str ());
      return argv[++i];
    };
    auto integer = [&] () {
      const std::string v = val ();
      char *end = nullptr;
      const long long n = std::strtoll (v.c_str (), &end, 10);
      if (v.empty () || *end || n <= 0) usage ((k + ": expected a positive integer").c_str ());
      return n;
    };
    if (k == "--model") o.model = val ();
    else if (k == "--out") o.out = val ();
    else if (k == "--frames") o.frames = static_cast<int> (integer ());
    else if (k == "--seed") o.seed = static_cast<guint64> (integer ());
    else if (k == "--objects") o.objects = static_cast<int> (integer ());
    else if (k == "--batch-size") o.batch = static_cast<int> (integer ());
    else if (k == "--no-mp4") o.mp4 = false;
    else if (k == "--size") {
      const std::string v = val ();
      if (std::sscanf (v.c_str (), "%dx%d", &o.width, &o.height) != 2 || o.width < 16 ||
          o.height < 16 || o.width > 7680 || o.height > 4320)
        usage ("--size: expected WxH, 16..7680 x 16..4320");
    } else if (k == "--min-iou") {
      const std::string v = val ();
      char *end = nullptr;
      o.min_iou = std::strtod (v.c_str (), &end);
      if (v.empty () || *end || o.min_iou < 0 || o.min_iou > 1) usage ("--min-iou: 0..1");
    } else usage (("unknown option " + k).c_str ());
  }
  return o;
}

// Pastes a GRAY8 mask buffer (with its GstVideoMeta stride) into a frame-sized mask.
cv::Mat paste_mask (const GstSam3MaskObject *o, cv::Size frame) {
  cv::Mat full = cv::Mat::zeros (frame, CV_8U);
  if (!o->mask) return full;
  GstMapInfo map;
  if (!gst_buffer_map (o->mask, &map, GST_MAP_READ)) return full;
  GstVideoMeta *vm = gst_buffer_get_video_meta (o->mask);
  const size_t stride = vm ? vm->stride[0] : o->width;
  cv::Mat m (static_cast<int> (o->height), static_cast<int> (o->width), CV_8U, map.data, stride);
  const cv::Rect dst = cv::Rect (o->x, o->y, static_cast<int> (o->width),
      static_cast<int> (o->height)) & cv::Rect (0, 0, frame.width, frame.height);
  if (dst.area () > 0)
    m (cv::Rect (dst.x - o->x, dst.y - o->y, dst.width, dst.height)).copyTo (full (dst));
  gst_buffer_unmap (o->mask, &map);
  return full;
}

bool evaluable (const sam3::synth::Object &obj, cv::Size frame) {
  return sam3::synth::is_evaluable (obj,
      static_cast<int64_t> (0.0025 * frame.area ()), 0.5);
}

GstPadProbeReturn score (GstPad *, GstPadProbeInfo *info, gpointer user_data) {
  auto *st = static_cast<State *> (user_data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  std::lock_guard<std::mutex> g (st->lock);
  const guint64 n = buf->offset;  // appsrc frames are numbered by offset
  st->frames_seen++;
  if (n >= st->scenes.size ()) return GST_PAD_PROBE_OK;
  const auto &scene = st->scenes[n];
  const cv::Size frame = scene.image.size ();
  std::vector<cv::Mat> pred (scene.objects.size ());
  if (GstSam3MaskMeta *meta = gst_buffer_get_sam3_mask_meta (buf)) {
    for (guint i = 0; i < gst_sam3_mask_meta_get_n_objects (meta); ++i) {
      const GstSam3MaskObject *o = gst_sam3_mask_meta_get_object (meta, i);
      const gint k = o->parent_roi_id % kIdsPerFrame - 1;
      if (o->parent_roi_id / kIdsPerFrame == static_cast<gint> (n) && k >= 0 &&
          k < static_cast<gint> (pred.size ()))
        pred[k] = paste_mask (o, frame);
    }
  }
  for (size_t k = 0; k < scene.objects.size (); ++k) {
    const auto &obj = scene.objects[k];
    if (obj.area == 0) continue;
    double iou = 0;  // a missing mask scores 0
    if (!pred[k].empty ()) {
      const double inter = cv::countNonZero (pred[k] & obj.mask);
      const double uni = cv::countNonZero (pred[k] | obj.mask);
      iou = uni > 0 ? inter / uni : 0;
    }
    st->iou_all_sum += iou;
    st->iou_all_n++;
    if (evaluable (obj, frame)) {
      st->iou_sum += iou;
      st->iou_n++;
    }
  }
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn snapshot (GstPad *, GstPadProbeInfo *info, gpointer user_data) {
  auto *st = static_cast<State *> (user_data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  std::lock_guard<std::mutex> g (st->lock);
  if (st->snapshot_written || buf->offset != static_cast<guint64> (st->snapshot_frame))
    return GST_PAD_PROBE_OK;
  const cv::Size frame = st->scenes.at (buf->offset).image.size ();
  GstMapInfo map;
  if (gst_buffer_map (buf, &map, GST_MAP_READ)) {
    GstVideoMeta *vm = gst_buffer_get_video_meta (buf);
    const size_t stride = vm ? vm->stride[0] : GST_ROUND_UP_4 (frame.width * 3);
    cv::Mat rgb (frame.height, frame.width, CV_8UC3, map.data, stride), bgr;
    cv::cvtColor (rgb, bgr, cv::COLOR_RGB2BGR);
    st->snapshot_written = cv::imwrite (st->snapshot_path, bgr);
    gst_buffer_unmap (buf, &map);
  }
  return GST_PAD_PROBE_OK;
}

}  // namespace

int main (int argc, char **argv) {
  // before LibTorch's libgomp is loaded with the plugin (docs/elements.md)
  g_setenv ("OMP_WAIT_POLICY", "PASSIVE", FALSE);
  gst_init (&argc, &argv);
  const Options opt = parse (argc, argv);
  g_mkdir_with_parents (opt.out.c_str (), 0755);

  State st;
  sam3::synth::VideoScene video (opt.seed, opt.width, opt.height, opt.objects);
  for (int i = 0; i < opt.frames; ++i) st.scenes.push_back (video.frame (i));
  st.snapshot_frame = opt.frames / 2;
  st.snapshot_path = opt.out + "/synthetic-demo.png";
  const std::string mp4 = opt.out + "/synthetic-demo.mp4";

  gchar *sink = opt.mp4
      ? g_strdup_printf ("videoconvert ! x264enc speed-preset=faster ! mp4mux ! filesink location=\"%s\"",
            mp4.c_str ())
      : g_strdup ("fakesink");
  gchar *desc = g_strdup_printf (
      "appsrc name=src format=time is-live=false block=true max-bytes=%d "
      "caps=video/x-raw,format=RGB,width=%d,height=%d,framerate=30/1 ! "
      "sam3segment name=seg batch-size=%d object-class=object ! "
      "sam3overlay name=overlay draw-boxes=true ! %s",
      opt.width * opt.height * 3 * 4, opt.width, opt.height, opt.batch, sink);
  g_free (sink);
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch (desc, &err);
  g_free (desc);
  if (!pipeline || err) {
    // e.g. no sam3segment: set GST_PLUGIN_PATH to build/gst-plugin
    std::fprintf (stderr, "pipeline: %s\n", err ? err->message : "cannot build");
    g_clear_error (&err);
    if (pipeline) gst_object_unref (pipeline);
    return 1;
  }
  GstElement *seg = gst_bin_get_by_name (GST_BIN (pipeline), "seg");
  if (!opt.model.empty ()) g_object_set (seg, "model-file", opt.model.c_str (), nullptr);
  gchar *model = nullptr;
  g_object_get (seg, "model-file", &model, nullptr);
  std::printf ("sam3-synthetic-demo: %d frames %dx%d, %d objects (seed %" G_GUINT64_FORMAT
      "), model %s\n", opt.frames, opt.width, opt.height, opt.objects, opt.seed, model);
  g_free (model);
  GstPad *pad = gst_element_get_static_pad (seg, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, score, &st, nullptr);
  gst_object_unref (pad);
  gst_object_unref (seg);
  GstElement *overlay = gst_bin_get_by_name (GST_BIN (pipeline), "overlay");
  pad = gst_element_get_static_pad (overlay, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, snapshot, &st, nullptr);
  gst_object_unref (pad);
  gst_object_unref (overlay);

  int rc = 0;
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) rc = 1;
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  const GstClockTime dur = gst_util_uint64_scale_int (GST_SECOND, 1, 30);
  for (int i = 0; i < opt.frames && rc == 0; ++i) {
    const cv::Mat &img = st.scenes[i].image;
    const gsize row = static_cast<gsize> (opt.width) * 3;
    GstBuffer *buf = gst_buffer_new_allocate (nullptr, row * opt.height, nullptr);
    GstMapInfo map;
    gst_buffer_map (buf, &map, GST_MAP_WRITE);
    for (int y = 0; y < opt.height; ++y) memcpy (map.data + y * row, img.ptr (y), row);
    gst_buffer_unmap (buf, &map);
    gst_buffer_add_video_meta (buf, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_FORMAT_RGB, opt.width,
        opt.height);
    GST_BUFFER_PTS (buf) = i * dur;
    GST_BUFFER_DURATION (buf) = dur;
    GST_BUFFER_OFFSET (buf) = i;
    // the "detector": one box per visible object
    for (const auto &obj : st.scenes[i].objects) {
      if (obj.area == 0) continue;
      GstVideoRegionOfInterestMeta *roi = gst_buffer_add_video_region_of_interest_meta (buf,
          "object", obj.box.x, obj.box.y, obj.box.width, obj.box.height);
      roi->id = i * kIdsPerFrame + obj.id;
    }
    if (gst_app_src_push_buffer (GST_APP_SRC (src), buf) != GST_FLOW_OK) break;
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  gst_object_unref (src);

  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
      static_cast<GstMessageType> (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *e = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_error (msg, &e, &dbg);
    std::fprintf (stderr, "error from %s: %s (%s)\n", GST_OBJECT_NAME (msg->src), e->message,
        dbg ? dbg : "");
    g_error_free (e);
    g_free (dbg);
    rc = 1;
  }
  gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);

  const double miou = st.iou_n ? st.iou_sum / st.iou_n : 0.0;
  std::printf ("frames segmented: %" G_GUINT64_FORMAT " of %d\n", st.frames_seen, opt.frames);
  std::printf ("mean IoU vs ground truth: %.4f over %d object-frames (objects >= 0.25%% of the "
      "frame, >= half visible); %.4f over all %d visible object-frames\n", miou, st.iou_n,
      st.iou_all_n ? st.iou_all_sum / st.iou_all_n : 0.0, st.iou_all_n);
  if (opt.mp4 && rc == 0) std::printf ("wrote %s\n", mp4.c_str ());
  if (st.snapshot_written) std::printf ("wrote %s (frame %d)\n", st.snapshot_path.c_str (),
      st.snapshot_frame);
  if (rc == 0 && st.frames_seen != static_cast<guint64> (opt.frames)) {
    std::fprintf (stderr, "FAIL: %" G_GUINT64_FORMAT " of %d frames arrived\n", st.frames_seen,
        opt.frames);
    rc = 1;
  }
  if (rc == 0 && !st.snapshot_written) {
    std::fprintf (stderr, "FAIL: no snapshot written to %s\n", st.snapshot_path.c_str ());
    rc = 1;
  }
  if (rc == 0 && opt.min_iou >= 0 && !(miou >= opt.min_iou)) {
    std::fprintf (stderr, "FAIL: mean IoU %.4f < %.4f\n", miou, opt.min_iou);
    rc = 1;
  }
  gst_deinit ();  // lets GST_TRACERS=leaks report what is still alive (tests)
  return rc;
}
