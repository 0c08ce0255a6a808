/* gst-sam3: the prompt model of sam3segment and its parsers
 * SPDX-License-Identifier: Apache-2.0
 *
 * Plain functions, no element state: the element calls them, and the fuzz
 * harnesses (fuzz/) and unit tests drive them without a pipeline.
 *
 * Usage:
 *
 *   std::vector<std::array<float, 4>> boxes;
 *   std::string err;
 *   if (!sam3gst::parse_boxes_string ("<<10,10,50,60>>", &boxes, &err))
 *     g_warning ("%s", err.c_str ());
 *   err = sam3gst::check_prompts (boxes, {}, width, height);  // "" when valid
 *
 * Every parser returns false (or an error text) with a message naming the
 * entry and the problem; none throws, none keeps state.
 *
 * Limits (docs/elements.md, "Limits"): at most kMaxBoxes boxes and
 * kMaxPoints points in the properties, kMaxPointsPerObject points in one
 * run-time prompt, kMaxRoiPrompts upstream ROI metas used per frame and
 * kMaxDynamicObjects run-time objects at once.
 *
 * Thread-safety: all functions are reentrant; they read only their arguments.
 */
#pragma once

#include <gst/gst.h>

#include <array>
#include <string>
#include <vector>

#include "gstsam3maskmeta.h"

namespace sam3gst {

using Box = std::array<float, 4>;    // x0, y0, x1, y1 in input-frame pixels
using Point = std::array<float, 3>;  // x, y, label (1 foreground, 0 background)

// Caps on the prompt model (bounded work and memory per frame).
constexpr size_t kMaxBoxes = 256;            // `boxes` property entries
constexpr size_t kMaxPoints = 256;           // `points` property entries
constexpr size_t kMaxPointsPerObject = 256;  // points of one run-time prompt (event, signal, clicks)
constexpr size_t kMaxRoiPrompts = 256;       // upstream ROI metas used per frame
constexpr size_t kMaxDynamicObjects = 256;   // run-time objects (events, signals, clicks)

// A prompt added at run time by a click, an event or an action signal: one object.
struct DynamicPrompt {
  guint object_id = 0;
  GstSam3PromptSource source = GST_SAM3_PROMPT_SOURCE_SIGNAL;
  std::vector<Box> box;  // 0 or 1
  std::vector<Point> points;
};

constexpr guint kFirstDynamicId = 1000;

// An upstream ROI (detector box) used as a box prompt.
struct RoiPrompt {
  Box box;
  gint roi_id;
};

// Reads a GstValueArray of GstValueArrays of 4 (boxes) / 3 (points) numbers,
// as the `boxes` / `points` properties hold them. NULL or a non-array value is
// an empty list. False + *err (entry index and problem) when malformed or
// longer than `max_entries`; *out is then empty.
bool parse_boxes (const GValue *value, std::vector<Box> *out, std::string *err,
    const char *what = "boxes", size_t max_entries = kMaxBoxes);
bool parse_points (const GValue *value, std::vector<Point> *out, std::string *err,
    const char *what = "points", size_t max_entries = kMaxPoints);

// The same from the serialized text of the properties ("<<x0,y0,x1,y1>, ...>",
// plain numbers, as gst-launch writes them): parsed by gst_value_deserialize,
// then as above. Text nested more than 2 levels or holding a type cast
// ("(float)") is refused before GStreamer parses it.
bool parse_boxes_string (const char *text, std::vector<Box> *out, std::string *err);
bool parse_points_string (const char *text, std::vector<Point> *out, std::string *err);

// Writes the lists back as nested GstValueArrays into an initialised
// GST_TYPE_ARRAY value (get_property).
void boxes_to_value (const std::vector<Box> &in, GValue *value);
void points_to_value (const std::vector<Point> &in, GValue *value);

// Reads `box` (<x0,y0,x1,y1>) and `points` (<<x,y,label>,...>) of a prompt
// structure (add-prompt signal, sam3/prompt event). False + *err if malformed.
bool parse_prompt_structure (const GstStructure *prompt, DynamicPrompt *d, std::string *err);

// Checks boxes and points against the frame; returns an error text or "".
std::string check_prompts (const std::vector<Box> &boxes, const std::vector<Point> &points,
    int width, int height);
std::string check_dynamic (const DynamicPrompt &d, int width, int height);

// Splits the `object-class` property ("person, car") into trimmed names.
std::vector<std::string> split_object_classes (const char *text);

// Box prompts from the GstVideoRegionOfInterestMeta already on the buffer
// (ours, "sam3-mask", excluded), filtered by `classes` (empty = all),
// clipped to the frame. At most kMaxRoiPrompts, in meta order; *dropped (if
// given) counts the usable ROIs beyond the cap.
std::vector<RoiPrompt> roi_prompts (GstBuffer *buf, const std::vector<std::string> &classes,
    int width, int height, size_t *dropped = nullptr);

}  // namespace sam3gst
