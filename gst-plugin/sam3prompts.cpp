/* gst-sam3: the prompt model of sam3segment and its parsers
 * SPDX-License-Identifier: Apache-2.0
 */
#include "sam3prompts.h"

#include <gst/video/gstvideometa.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace sam3gst {

namespace {

// Parses a GstValueArray of GstValueArrays of N numbers.
template <size_t N>
bool parse_nested (const GValue *value, std::vector<std::array<float, N>> *out, std::string *err,
    const char *what, size_t max_entries) {
  out->clear ();
  if (!value || !GST_VALUE_HOLDS_ARRAY (value)) return true;
  const guint n = gst_value_array_get_size (value);
  if (n > max_entries) {
    *err = std::string (what) + " has " + std::to_string (n) + " entries (at most " +
           std::to_string (max_entries) + ")";
    return false;
  }
  for (guint i = 0; i < n; ++i) {
    const GValue *item = gst_value_array_get_value (value, i);
    if (!GST_VALUE_HOLDS_ARRAY (item) || gst_value_array_get_size (item) != N) {
      *err = std::string (what) + " entry " + std::to_string (i) + " must have " +
             std::to_string (N) + " numbers";
      out->clear ();
      return false;
    }
    std::array<float, N> a{};
    for (guint k = 0; k < N; ++k) {
      const GValue *v = gst_value_array_get_value (item, k);
      GValue d = G_VALUE_INIT;
      g_value_init (&d, G_TYPE_DOUBLE);
      if (!g_value_type_transformable (G_VALUE_TYPE (v), G_TYPE_DOUBLE) ||
          !g_value_transform (v, &d)) {
        *err = std::string (what) + " entry " + std::to_string (i) + " holds a non-number";
        out->clear ();
        return false;
      }
      const double x = g_value_get_double (&d);
      a[k] = static_cast<float> (x);
      if (!std::isfinite (x) || !std::isfinite (a[k])) {
        *err = std::string (what) + " entry " + std::to_string (i) + " is not finite";
        out->clear ();
        return false;
      }
    }
    out->push_back (a);
  }
  return true;
}

template <size_t N>
void to_nested (const std::vector<std::array<float, N>> &in, GValue *value) {
  for (const auto &a : in) {
    GValue inner = G_VALUE_INIT;
    gst_value_array_init (&inner, N);
    for (float f : a) {
      GValue v = G_VALUE_INIT;
      g_value_init (&v, G_TYPE_FLOAT);
      g_value_set_float (&v, f);
      gst_value_array_append_and_take_value (&inner, &v);
    }
    gst_value_array_append_and_take_value (value, &inner);
  }
}

// Bracket levels a boxes / points string may open: the list and its entries.
constexpr int kMaxPromptNesting = 2;

// gst_value_deserialize and nothing else, in a function of its own: GStreamer
// 1.22 leaks a GValue when an element of a nested array fails to parse
// ("<<20<40,1>>"), and the fuzz leak suppression (fuzz/lsan-gst.supp) names
// this function, so that a leak anywhere else in our parsers still fails.
__attribute__ ((noinline)) bool deserialize_value (GValue *v, const char *text) {
  return gst_value_deserialize (v, text);
}

template <size_t N>
bool parse_string (const char *text, std::vector<std::array<float, N>> *out, std::string *err,
    const char *what, size_t max_entries) {
  out->clear ();
  if (!text || !*text) return true;
  // lists of lists of plain numbers only: GStreamer's parser recurses once
  // per bracket level, so deeper text is refused before it (stack depth; the
  // fuzz suppression must still see our frame), and so are type casts (a
  // "(float)" inside an entry crashed gst_value_deserialize in the
  // gst-prompts test program, not elsewhere: not understood, avoided)
  int depth = 0;
  for (const char *c = text; *c; ++c) {
    if (*c == '(' || *c == ')') {
      *err = std::string (what) + ": type casts are not accepted (offset " +
             std::to_string (c - text) + "); write plain numbers: <<1,2,3,4>, ...>";
      return false;
    }
    if (*c == '<' || *c == '{' || *c == '[') {
      if (++depth > kMaxPromptNesting) {
        *err = std::string (what) + " is nested more than " + std::to_string (kMaxPromptNesting) +
               " levels deep (at offset " + std::to_string (c - text) + ")";
        return false;
      }
    } else if (*c == '>' || *c == '}' || *c == ']') {
      depth = std::max (0, depth - 1);
    }
  }
  GValue v = G_VALUE_INIT;
  g_value_init (&v, GST_TYPE_ARRAY);
  if (!deserialize_value (&v, text)) {
    g_value_unset (&v);
    *err = std::string (what) + " is not a GstValueArray such as <<1,2,3,4>, ...>";
    return false;
  }
  const bool ok = parse_nested<N> (&v, out, err, what, max_entries);
  g_value_unset (&v);
  return ok;
}

}  // namespace

bool parse_boxes (const GValue *value, std::vector<Box> *out, std::string *err, const char *what,
    size_t max_entries) {
  return parse_nested<4> (value, out, err, what, max_entries);
}

bool parse_points (const GValue *value, std::vector<Point> *out, std::string *err,
    const char *what, size_t max_entries) {
  return parse_nested<3> (value, out, err, what, max_entries);
}

bool parse_boxes_string (const char *text, std::vector<Box> *out, std::string *err) {
  return parse_string<4> (text, out, err, "boxes", kMaxBoxes);
}

bool parse_points_string (const char *text, std::vector<Point> *out, std::string *err) {
  return parse_string<3> (text, out, err, "points", kMaxPoints);
}

void boxes_to_value (const std::vector<Box> &in, GValue *value) { to_nested<4> (in, value); }

void points_to_value (const std::vector<Point> &in, GValue *value) { to_nested<3> (in, value); }

bool parse_prompt_structure (const GstStructure *prompt, DynamicPrompt *d, std::string *err) {
  if (!prompt) {
    *err = "no structure";
    return false;
  }
  if (gst_structure_has_field (prompt, "box")) {
    const GValue *v = gst_structure_get_value (prompt, "box");
    GValue nested = G_VALUE_INIT;
    gst_value_array_init (&nested, 1);
    gst_value_array_append_value (&nested, v);
    const bool ok = GST_VALUE_HOLDS_ARRAY (v) && parse_nested<4> (&nested, &d->box, err, "box", 1);
    g_value_unset (&nested);
    if (!ok) {
      if (err->empty ()) *err = "box must be an array <x0,y0,x1,y1>";
      return false;
    }
  }
  if (gst_structure_has_field (prompt, "points")) {
    const GValue *v = gst_structure_get_value (prompt, "points");
    if (!GST_VALUE_HOLDS_ARRAY (v)) {
      *err = "points must be an array <<x,y,label>, ...>";
      return false;
    }
    if (!parse_nested<3> (v, &d->points, err, "points", kMaxPointsPerObject)) return false;
  }
  if (d->box.empty () && d->points.empty ()) {
    *err = "the prompt structure needs a box or points field";
    return false;
  }
  return true;
}

std::string check_prompts (const std::vector<Box> &boxes, const std::vector<Point> &points,
    int width, int height) {
  for (size_t i = 0; i < boxes.size (); ++i) {
    const auto &b = boxes[i];
    if (b[2] <= b[0] || b[3] <= b[1])
      return "boxes entry " + std::to_string (i) + " has x1 <= x0 or y1 <= y0";
    if (b[0] < 0 || b[1] < 0 || b[2] > width || b[3] > height)
      return "boxes entry " + std::to_string (i) + " lies outside the " + std::to_string (width) +
             "x" + std::to_string (height) + " frame";
  }
  for (size_t i = 0; i < points.size (); ++i) {
    const auto &p = points[i];
    if (p[2] != 0.f && p[2] != 1.f)
      return "points entry " + std::to_string (i) + " has label " + std::to_string (p[2]) +
             " (expected 1 = foreground or 0 = background)";
    if (p[0] < 0 || p[1] < 0 || p[0] >= width || p[1] >= height)
      return "points entry " + std::to_string (i) + " lies outside the " + std::to_string (width) +
             "x" + std::to_string (height) + " frame";
  }
  return "";
}

std::string check_dynamic (const DynamicPrompt &d, int width, int height) {
  if (d.box.empty () && d.points.empty ()) return "prompt has neither box nor points";
  return check_prompts (d.box, d.points, width, height);
}

std::vector<std::string> split_object_classes (const char *text) {
  std::vector<std::string> out;
  gchar **parts = g_strsplit (text ? text : "", ",", -1);
  for (gchar **p = parts; *p; ++p) {
    gchar *t = g_strstrip (*p);
    if (*t) out.emplace_back (t);
  }
  g_strfreev (parts);
  return out;
}

std::vector<RoiPrompt> roi_prompts (GstBuffer *buf, const std::vector<std::string> &classes,
    int width, int height, size_t *dropped) {
  std::vector<RoiPrompt> out;
  size_t over = 0;
  gpointer iter = nullptr;
  while (GstMeta *m = gst_buffer_iterate_meta_filtered (buf, &iter,
             GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    auto *roi = reinterpret_cast<GstVideoRegionOfInterestMeta *> (m);
    const gchar *type = g_quark_to_string (roi->roi_type);
    if (type && std::strcmp (type, "sam3-mask") == 0) continue;
    if (!classes.empty ()) {
      bool match = false;
      for (const auto &c : classes) match = match || (type && c == type);
      if (!match) continue;
    }
    // in double: x + w of two guints may not fit a guint
    const double x0 = std::max (0.0, static_cast<double> (roi->x));
    const double y0 = std::max (0.0, static_cast<double> (roi->y));
    const double x1 = std::min (static_cast<double> (width), static_cast<double> (roi->x) + roi->w);
    const double y1 = std::min (static_cast<double> (height), static_cast<double> (roi->y) + roi->h);
    if (x1 <= x0 || y1 <= y0) continue;  // empty or outside the frame
    if (out.size () >= kMaxRoiPrompts) {
      ++over;
      continue;
    }
    out.push_back ({{static_cast<float> (x0), static_cast<float> (y0), static_cast<float> (x1),
                        static_cast<float> (y1)},
        roi->id});
  }
  if (dropped) *dropped = over;
  return out;
}

}  // namespace sam3gst
