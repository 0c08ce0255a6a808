// Fuzz harness: the prompt parsers of sam3segment (gst-plugin/sam3prompts.h),
// without a pipeline. Byte 0 selects the mode, bytes 1..4 give a frame size,
// the rest is text (modes 0-3) or ROI meta records (mode 4).
#include <gst/gst.h>
#include <gst/video/video.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "sam3prompts.h"

namespace {

[[noreturn]] void fail (const char *what) {
  fprintf (stderr, "invariant violated: %s\n", what);
  __builtin_trap ();
}

int frame_dim (uint8_t a, uint8_t b) { return (int) ((a << 8) | b) - 16; }

void check_parse_result (bool ok, size_t n, const std::string &err) {
  if (!ok && (err.empty () || n != 0))
    fail ("parse failure without error text or with a non-empty list");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize (int *, char ***) {
  gst_init (nullptr, nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  if (size < 5) return 0;
  const int mode = data[0] % 5;
  const int w = frame_dim (data[1], data[2]);
  const int h = frame_dim (data[3], data[4]);
  data += 5;
  size -= 5;
  const std::string text (reinterpret_cast<const char *> (data), size);
  const char *ctext = text.c_str ();  // stops at an embedded NUL, like a C caller

  switch (mode) {
    case 0: {
      std::vector<sam3gst::Box> boxes;
      std::string err;
      const bool ok = sam3gst::parse_boxes_string (ctext, &boxes, &err);
      check_parse_result (ok, boxes.size (), err);
      if (ok) {
        if (boxes.size () > sam3gst::kMaxBoxes) fail ("more than kMaxBoxes");
        (void) sam3gst::check_prompts (boxes, {}, w, h);
        GValue v = G_VALUE_INIT;
        g_value_init (&v, GST_TYPE_ARRAY);
        sam3gst::boxes_to_value (boxes, &v);
        std::vector<sam3gst::Box> again;
        std::string err2;
        if (!sam3gst::parse_boxes (&v, &again, &err2)) fail ("boxes round trip failed");
        if (again.size () != boxes.size ()) fail ("boxes round trip size");
        for (size_t i = 0; i < boxes.size (); ++i)
          for (int k = 0; k < 4; ++k)
            if (!(again[i][k] == boxes[i][k]) && !(again[i][k] != again[i][k] && boxes[i][k] != boxes[i][k]))
              fail ("boxes round trip value");
        g_value_unset (&v);
      }
      break;
    }
    case 1: {
      std::vector<sam3gst::Point> points;
      std::string err;
      const bool ok = sam3gst::parse_points_string (ctext, &points, &err);
      check_parse_result (ok, points.size (), err);
      if (ok) {
        if (points.size () > sam3gst::kMaxPoints) fail ("more than kMaxPoints");
        (void) sam3gst::check_prompts ({}, points, w, h);
        GValue v = G_VALUE_INIT;
        g_value_init (&v, GST_TYPE_ARRAY);
        sam3gst::points_to_value (points, &v);
        std::vector<sam3gst::Point> again;
        std::string err2;
        if (!sam3gst::parse_points (&v, &again, &err2)) fail ("points round trip failed");
        if (again.size () != points.size ()) fail ("points round trip size");
        g_value_unset (&v);
      }
      break;
    }
    case 2: {
      GstStructure *s = gst_structure_from_string (ctext, nullptr);
      if (!s) break;
      sam3gst::DynamicPrompt d;
      std::string err;
      const bool ok = sam3gst::parse_prompt_structure (s, &d, &err);
      if (!ok && err.empty ()) fail ("prompt structure failure without error text");
      if (ok) {
        if (d.box.size () > 1) fail ("more than one box in a prompt");
        if (d.points.size () > sam3gst::kMaxPointsPerObject) fail ("too many points");
        (void) sam3gst::check_dynamic (d, w, h);
      }
      gst_structure_free (s);
      break;
    }
    case 3: {
      for (const std::string &c : sam3gst::split_object_classes (ctext)) {
        if (c.empty ()) fail ("empty class name");
        if (c.front () == ' ' || c.back () == ' ') fail ("class name not trimmed");
      }
      break;
    }
    case 4: {
      // classes: first byte = length of a class text, then ROI records of 11 bytes.
      size_t clen = size ? data[0] : 0;
      if (clen + 1 > size) clen = size ? size - 1 : 0;
      const std::string ctxt (reinterpret_cast<const char *> (data) + (size ? 1 : 0), clen);
      const std::vector<std::string> classes = sam3gst::split_object_classes (ctxt.c_str ());
      const size_t off = (size ? 1 : 0) + clen;
      static const char *kTypes[] = {"person", "car", "sam3-mask", "dog", "", "Person"};
      GstBuffer *buf = gst_buffer_new ();
      size_t n = 0;
      for (size_t p = off; p + 11 <= size; p += 11) {
        const uint8_t *r = data + p;
        const guint x = (guint) ((r[0] << 8) | r[1]) * (r[9] & 0x80 ? 65536u : 1u);
        const guint y = (guint) ((r[2] << 8) | r[3]);
        const guint rw = (guint) ((r[4] << 8) | r[5]) * (r[9] & 0x40 ? 65536u : 1u);
        const guint rh = (guint) ((r[6] << 8) | r[7]);
        GstVideoRegionOfInterestMeta *m = gst_buffer_add_video_region_of_interest_meta (
            buf, kTypes[r[8] % 6], x, y, rw, rh);
        m->id = (gint) (int8_t) r[10];
        // repeat short inputs to exceed kMaxRoiPrompts
        if (r[9] & 0x20)
          for (int k = 0; k < 300; ++k)
            gst_buffer_add_video_region_of_interest_meta (buf, kTypes[r[8] % 6], x, y, rw, rh);
        n++;
      }
      size_t dropped = 0;
      const std::vector<sam3gst::RoiPrompt> rois = sam3gst::roi_prompts (buf, classes, w, h, &dropped);
      if (rois.size () > sam3gst::kMaxRoiPrompts) fail ("more than kMaxRoiPrompts");
      for (const sam3gst::RoiPrompt &r : rois) {
        if (!(r.box[0] >= 0 && r.box[1] >= 0 && r.box[2] <= w && r.box[3] <= h))
          fail ("ROI box outside the frame");
        if (!(r.box[2] > r.box[0] && r.box[3] > r.box[1])) fail ("empty ROI box");
      }
      if (dropped && rois.size () != sam3gst::kMaxRoiPrompts) fail ("dropped below the cap");
      (void) n;
      gst_buffer_unref (buf);
      break;
    }
  }
  return 0;
}
