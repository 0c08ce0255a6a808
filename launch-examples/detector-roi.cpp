/* gst-sam3 launch example: detector-style ROI metas -> SAM 3 masks.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Shows: how a detector's boxes become sam3segment prompts. A pad probe
 * plays the detector: on every frame it adds three GstVideoRegionOfInterestMeta
 * boxes on SMPTE colour bars ("person" hopping over the first three bars with
 * the frame number, "car" on the sixth bar, "dog" fixed);
 * sam3segment object-class=person,car turns the person and car boxes into box
 * prompts (the dog is filtered out) and attaches one mask per box, whose
 * parent_roi_id is the id of the detector ROI that prompted it. A probe on
 * the sink reads GstSam3MaskMeta (libgstsam3meta) and prints per frame:
 * object id, source, parent ROI id and type, mask box, predicted IoU.
 *
 *   videotestsrc pattern=smpte ! RGB 320x240 ! identity name=detector (+ ROI metas)
 *     ! sam3segment object-class=person,car ! sam3overlay draw-boxes=true ! fakesink
 *
 * Run (build/launch-examples/sam3-detector-roi):
 *   GST_PLUGIN_PATH=build/gst-plugin build/launch-examples/sam3-detector-roi \
 *       [MODEL [FRAMES]]
 * MODEL defaults to $SAM3_MODEL, FRAMES to 10.
 * Exit status 0 only if every frame arrived with exactly two masks, from the
 * ROI-meta prompt source, whose parent_roi_id are that frame's person and car
 * ROI ids (and whose sam3-mask ROI metas carry the same parents); 1 otherwise
 * (the launch-examples test runs it with the fixture model).
 */
#include <gst/gst.h>
#include <gst/video/gstvideometa.h>
#include <gst/video/video.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "gstsam3maskmeta.h"

namespace {

constexpr int kWidth = 320, kHeight = 240;

// ROI ids of frame n: 10 n + 1 (person), + 2 (car), + 3 (dog).
gint roi_id (guint64 frame, int k) { return static_cast<gint> (frame * 10 + k); }

struct Check {
  guint64 frames = 0;
  int bad_frames = 0;
};

// The "detector": adds its boxes to each frame before sam3segment.
GstPadProbeReturn detect (GstPad *, GstPadProbeInfo *info, gpointer user_data) {
  auto *count = static_cast<guint64 *> (user_data);
  GstBuffer *buf = gst_buffer_make_writable (GST_PAD_PROBE_INFO_BUFFER (info));
  GST_PAD_PROBE_INFO_DATA (info) = buf;
  const guint64 n = (*count)++;
  // SMPTE bars: 7 bars of width / 7 over the top two thirds; the "person"
  // hops over the first three bars, the "car" is the sixth bar
  auto bar_x = [] (guint k) { return k * kWidth / 7; };
  const guint bar_w = bar_x (1), bar_h = kHeight * 2 / 3;
  struct { const char *type; guint x, y, w, h; } boxes[] = {
      {"person", bar_x (static_cast<guint> (n % 3)), 0, bar_w, bar_h},
      {"car", bar_x (5), 0, bar_w, bar_h},
      {"dog", 10, 180, 60, 40},
  };
  for (int k = 0; k < 3; ++k) {
    GstVideoRegionOfInterestMeta *roi = gst_buffer_add_video_region_of_interest_meta (
        buf, boxes[k].type, boxes[k].x, boxes[k].y, boxes[k].w, boxes[k].h);
    roi->id = roi_id (n, k + 1);
    // a detector would add its confidence as a param
    gst_video_region_of_interest_meta_add_param (roi,
        gst_structure_new ("detection", "confidence", G_TYPE_DOUBLE, 0.9, nullptr));
  }
  return GST_PAD_PROBE_OK;
}

const char *source_nick (GstSam3PromptSource s) {
  GEnumClass *klass = static_cast<GEnumClass *> (g_type_class_ref (GST_TYPE_SAM3_PROMPT_SOURCE));
  GEnumValue *v = g_enum_get_value (klass, s);
  const char *nick = v ? v->value_nick : "?";
  g_type_class_unref (klass);
  return nick;
}

// The application side: reads the masks of each frame and checks them.
GstPadProbeReturn read_masks (GstPad *, GstPadProbeInfo *info, gpointer user_data) {
  auto *check = static_cast<Check *> (user_data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  const guint64 n = check->frames++;
  const std::set<gint> expected{roi_id (n, 1), roi_id (n, 2)};
  std::set<gint> parents;
  bool ok = true;
  GstSam3MaskMeta *meta = gst_buffer_get_sam3_mask_meta (buf);
  const guint n_obj = meta ? gst_sam3_mask_meta_get_n_objects (meta) : 0;
  std::printf ("frame %" G_GUINT64_FORMAT ": %u masks\n", n, n_obj);
  for (guint i = 0; i < n_obj; ++i) {
    const GstSam3MaskObject *o = gst_sam3_mask_meta_get_object (meta, i);
    const char *type = "?";
    if (GstVideoRegionOfInterestMeta *p = gst_buffer_get_video_region_of_interest_meta_id (
            buf, o->parent_roi_id))
      type = g_quark_to_string (p->roi_type);
    std::printf ("  object %u (%s): parent ROI %d (%s), box %d,%d %ux%u, iou %.3f%s\n",
        o->object_id, source_nick (o->source), o->parent_roi_id, type, o->x, o->y, o->width,
        o->height, o->iou, o->stale ? " (stale)" : "");
    ok = ok && o->source == GST_SAM3_PROMPT_SOURCE_ROI_META && !o->stale && o->mask;
    parents.insert (o->parent_roi_id);
  }
  // the sam3-mask ROI metas carry the same parents
  std::set<gint> roi_parents;
  gpointer state = nullptr;
  while (GstMeta *m = gst_buffer_iterate_meta_filtered (buf, &state,
             GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    auto *roi = reinterpret_cast<GstVideoRegionOfInterestMeta *> (m);
    if (roi->roi_type == g_quark_from_static_string ("sam3-mask"))
      roi_parents.insert (roi->parent_id);
  }
  if (!ok || n_obj != 2 || parents != expected || roi_parents != expected) {
    std::printf ("  FAIL: expected 2 roi-meta masks with parents %d (person) and %d (car)\n",
        roi_id (n, 1), roi_id (n, 2));
    check->bad_frames++;
  }
  return GST_PAD_PROBE_OK;
}

}  // namespace

int main (int argc, char **argv) {
  // before LibTorch's libgomp is loaded with the plugin (docs/elements.md)
  g_setenv ("OMP_WAIT_POLICY", "PASSIVE", FALSE);
  gst_init (&argc, &argv);
  const char *model = argc > 1 ? argv[1] : g_getenv ("SAM3_MODEL");
  const int frames = argc > 2 ? std::atoi (argv[2]) : 10;
  if (!model || !*model || frames <= 0) {
    std::fprintf (stderr, "usage: %s MODEL [FRAMES]  (or SAM3_MODEL=...)\n", argv[0]);
    return 2;
  }
  gst_sam3_result_meta_register ();

  GError *err = nullptr;
  gchar *desc = g_strdup_printf (
      "videotestsrc pattern=smpte num-buffers=%d ! "
      "video/x-raw,format=RGB,width=%d,height=%d,framerate=30/1 ! identity name=detector ! "
      "sam3segment name=seg object-class=person,car ! sam3overlay draw-boxes=true ! "
      "fakesink name=sink",
      frames, kWidth, kHeight);
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
  g_object_set (seg, "model-file", model, nullptr);
  gst_object_unref (seg);

  guint64 detected = 0;
  Check check;
  GstElement *det = gst_bin_get_by_name (GST_BIN (pipeline), "detector");
  GstPad *pad = gst_element_get_static_pad (det, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, detect, &detected, nullptr);
  gst_object_unref (pad);
  gst_object_unref (det);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, read_masks, &check, nullptr);
  gst_object_unref (pad);
  gst_object_unref (sink);

  int rc = 0;
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
    rc = 1;  // the error message is on the bus
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

  if (rc == 0 && (check.frames != static_cast<guint64> (frames) || check.bad_frames > 0)) {
    std::fprintf (stderr, "FAIL: %" G_GUINT64_FORMAT " of %d frames arrived, %d with wrong masks\n",
        check.frames, frames, check.bad_frames);
    rc = 1;
  }
  if (rc == 0)
    std::printf ("OK: %d frames, two ROI-prompted masks each, parents match the detector ROIs\n",
        frames);
  gst_deinit ();  // lets GST_TRACERS=leaks report what is still alive (tests)
  return rc;
}
