/* gst-sam3: sam3segment — SAM 3 interactive segmentation on video frames.
 *
 * SECTION:element-sam3segment
 * @title: sam3segment
 *
 * Runs SAM 3's interactive image predictor (libsam3predictor) on each frame
 * with box / point prompts given as properties, and attaches the masks as
 * metadata: one #GstSam3MaskMeta (GRAY8 masks at frame resolution cropped to
 * their boxes, predicted IoU), one #GstVideoRegionOfInterestMeta per mask
 * (param structure `sam/mask`: iou, object-id, mask-width, mask-height) and a
 * `Sam3Result` #GstCustomMeta summarising the frame. The video passes
 * through unchanged. The image encoder runs once per distinct frame: a
 * repeated identical frame (imagefreeze, slideshows) and prompt changes on
 * it re-run only the mask decoder.
 *
 * Prompts are in pixel coordinates of the input frame: `boxes` is
 * `<<x0,y0,x1,y1>, ...>` (one object per box), `points` is
 * `<<x,y,label>, ...>` (label 1 = foreground, 0 = background; all points form
 * one object). Both can be changed while PLAYING and apply from the next
 * buffer. A malformed prompt posts a warning and the stream goes on.
 * Upstream #GstVideoRegionOfInterestMeta (detector boxes) become box prompts
 * too (`prompt-source` roi-meta, filtered by `object-class`); the mask's ROI
 * meta then has the detector ROI as parent.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=img0.png ! pngdec ! videoconvert ! imagefreeze num-buffers=5 ! \
 *   sam3segment model-file=sam3.pt boxes="<<264,54,408,162>>" points="<<144,126,1>>" ! \
 *   sam3overlay draw-boxes=true draw-labels=true ! videoconvert ! pngenc snapshot=true ! \
 *   filesink location=out.png
 * ]| segments two objects (a box and a point) in a still image; the encoder runs once for the
 * five frozen frames, the decoder five times.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstsam3segment.h"

#include <gst/video/gstvideometa.h>
#include <gst/video/video.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <opencv2/imgproc.hpp>
#include <sam3/sam3.h>
#include <string>
#include <vector>

#include "gstsam3maskmeta.h"

GST_DEBUG_CATEGORY_STATIC (sam3_segment_debug);
#define GST_CAT_DEFAULT sam3_segment_debug

namespace {

enum {
  PROP_0,
  PROP_MODEL_FILE,
  PROP_MODEL_CONFIG,
  PROP_DEVICE,
  PROP_PRECISION,
  PROP_NUM_THREADS,
  PROP_BOXES,
  PROP_POINTS,
  PROP_MULTIMASK_OUTPUT,
  PROP_MASK_THRESHOLD,
  PROP_MAX_HOLE_AREA,
  PROP_MAX_SPRINKLE_AREA,
  PROP_SCORE_THRESHOLD,
  PROP_OBJECT_CLASS,
  PROP_PROMPT_SOURCE,
  PROP_STATS,
};

enum Sam3Device { DEVICE_AUTO, DEVICE_CPU, DEVICE_CUDA };
enum Sam3Precision { PRECISION_FP32, PRECISION_BF16, PRECISION_FP16 };

constexpr double kDefaultMaskThreshold = 0.0;
constexpr double kDefaultMaxHoleArea = 256.0;
constexpr double kDefaultMaxSprinkleArea = 0.0;
constexpr double kDefaultScoreThreshold = 0.0;

GType sam3_device_get_type () {
  static GType type = 0;
  static const GEnumValue values[] = {
      {DEVICE_AUTO, "CUDA when the build and machine have it, else CPU", "auto"},
      {DEVICE_CPU, "CPU", "cpu"},
      {DEVICE_CUDA, "CUDA GPU (error if unavailable)", "cuda"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstSam3Device", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType sam3_precision_get_type () {
  static GType type = 0;
  static const GEnumValue values[] = {
      {PRECISION_FP32, "32-bit float", "fp32"},
      {PRECISION_BF16, "bfloat16 (normalisation and softmax in fp32)", "bf16"},
      {PRECISION_FP16, "float16, GPU only", "fp16"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstSam3Precision", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

enum PromptSourceFlags {
  SOURCE_PROPERTY = 1 << 0,
  SOURCE_ROI_META = 1 << 1,
  SOURCE_NAVIGATION = 1 << 2,
  SOURCE_SIGNAL = 1 << 3,
};
constexpr guint kDefaultPromptSource = SOURCE_PROPERTY | SOURCE_ROI_META | SOURCE_SIGNAL;

GType sam3_prompt_source_flags_get_type () {
  static GType type = 0;
  static const GFlagsValue values[] = {
      {SOURCE_PROPERTY, "The boxes and points properties", "property"},
      {SOURCE_ROI_META, "Upstream GstVideoRegionOfInterestMeta boxes (detectors)", "roi-meta"},
      {SOURCE_NAVIGATION,
          "Mouse clicks (navigation events): left = foreground point, right = background "
          "point, middle = clear", "navigation"},
      {SOURCE_SIGNAL, "The add-prompt / clear-prompts action signals", "signal"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter (&type)) {
    GType t = g_flags_register_static ("GstSam3PromptSourceFlags", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

// Property values: written by set_property on any thread under the object
// lock, copied once per buffer by the streaming thread.
struct Settings {
  std::string model_file;
  std::string model_config;
  int device = DEVICE_AUTO;
  int precision = PRECISION_FP32;
  int num_threads = 0;
  std::vector<std::array<float, 4>> boxes;
  std::vector<std::array<float, 3>> points;
  std::string prompt_error;  // non-empty: the last prompt property was malformed
  guint prompt_serial = 0;   // bumped on every prompt property write
  bool multimask_output = false;
  double mask_threshold = kDefaultMaskThreshold;
  double max_hole_area = kDefaultMaxHoleArea;
  double max_sprinkle_area = kDefaultMaxSprinkleArea;
  double score_threshold = kDefaultScoreThreshold;
  std::vector<std::string> object_classes;  // empty = every upstream ROI
  guint prompt_source = kDefaultPromptSource;
};

// A prompt added at run time by a click or an action signal: one object.
struct DynamicPrompt {
  guint object_id;
  GstSam3PromptSource source;
  std::vector<std::array<float, 4>> box;  // 0 or 1
  std::vector<std::array<float, 3>> points;
};

constexpr guint kFirstDynamicId = 1000;

// Streaming state: built in start(), dropped in stop().
struct State {
  std::shared_ptr<const sam3::Model> model;
  std::unique_ptr<sam3::InteractiveImagePredictor> predictor;
  GstVideoInfo info;
  GstVideoInfo rgb_info;
  GstVideoConverter *converter = nullptr;  // null when the input is RGB
  std::vector<uint8_t> rgb;                // converted frame
  GstBuffer *rgb_buffer = nullptr;         // wraps `rgb` for the converter
  std::vector<uint8_t> last_rgb;           // frame whose embedding is cached
  bool have_embedding = false;
  guint warned_serial = G_MAXUINT;
  ~State () {
    if (converter) gst_video_converter_free (converter);
    if (rgb_buffer) gst_buffer_unref (rgb_buffer);
  }
};

struct Stats {
  guint64 frames_in = 0, encoder_runs = 0, decoder_runs = 0;
  double encoder_ms = 0, decoder_ms = 0;
};

}  // namespace

struct _GstSam3Segment {
  GstBaseTransform parent;
  Settings *settings;
  State *state;
  Stats *stats;
  // Prompts from clicks and signals, under the object lock.
  std::vector<DynamicPrompt> *dynamic;
  guint next_dynamic_id;
};

enum { SIGNAL_ADD_PROMPT, SIGNAL_CLEAR_PROMPTS, LAST_SIGNAL };
static guint sam3_segment_signals[LAST_SIGNAL];

G_DEFINE_TYPE (GstSam3Segment, gst_sam3_segment, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (sam3segment, "sam3segment", GST_RANK_NONE,
    GST_TYPE_SAM3_SEGMENT,
    GST_DEBUG_CATEGORY_INIT (sam3_segment_debug, "sam3segment", 0, "SAM 3 segmentation"));

#define VIDEO_CAPS GST_VIDEO_CAPS_MAKE ("{ RGB, BGR, RGBA, BGRA, RGBx, BGRx, NV12, I420 }")

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE (
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE (
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));

namespace {

// Parses a GstValueArray of GstValueArrays of N numbers.
template <size_t N>
bool parse_nested (const GValue *value, std::vector<std::array<float, N>> *out, std::string *err,
    const char *what) {
  out->clear ();
  if (!value || !GST_VALUE_HOLDS_ARRAY (value)) return true;
  const guint n = gst_value_array_get_size (value);
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
      if (!g_value_transform (v, &d)) {
        *err = std::string (what) + " entry " + std::to_string (i) + " holds a non-number";
        out->clear ();
        return false;
      }
      a[k] = static_cast<float> (g_value_get_double (&d));
      if (!std::isfinite (a[k])) {
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

// Checks boxes and points against the frame; returns an error text or "".
std::string check_prompts (const std::vector<std::array<float, 4>> &boxes,
    const std::vector<std::array<float, 3>> &points, int width, int height) {
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

double ms_since (gint64 start_us) { return (g_get_monotonic_time () - start_us) / 1000.0; }

}  // namespace

static void gst_sam3_segment_set_property (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (object);
  GST_OBJECT_LOCK (self);
  Settings &s = *self->settings;
  switch (prop_id) {
    case PROP_MODEL_FILE:
      s.model_file = g_value_get_string (value) ? g_value_get_string (value) : "";
      break;
    case PROP_MODEL_CONFIG:
      s.model_config = g_value_get_string (value) ? g_value_get_string (value) : "";
      break;
    case PROP_DEVICE: s.device = g_value_get_enum (value); break;
    case PROP_PRECISION: s.precision = g_value_get_enum (value); break;
    case PROP_NUM_THREADS: s.num_threads = g_value_get_int (value); break;
    case PROP_BOXES:
      s.prompt_error.clear ();
      parse_nested<4> (value, &s.boxes, &s.prompt_error, "boxes");
      s.prompt_serial++;
      break;
    case PROP_POINTS:
      s.prompt_error.clear ();
      parse_nested<3> (value, &s.points, &s.prompt_error, "points");
      s.prompt_serial++;
      break;
    case PROP_MULTIMASK_OUTPUT: s.multimask_output = g_value_get_boolean (value); break;
    case PROP_MASK_THRESHOLD: s.mask_threshold = g_value_get_double (value); break;
    case PROP_MAX_HOLE_AREA: s.max_hole_area = g_value_get_double (value); break;
    case PROP_MAX_SPRINKLE_AREA: s.max_sprinkle_area = g_value_get_double (value); break;
    case PROP_SCORE_THRESHOLD: s.score_threshold = g_value_get_double (value); break;
    case PROP_OBJECT_CLASS: {
      s.object_classes.clear ();
      const gchar *str = g_value_get_string (value);
      gchar **parts = g_strsplit (str ? str : "", ",", -1);
      for (gchar **p = parts; *p; ++p) {
        gchar *t = g_strstrip (*p);
        if (*t) s.object_classes.emplace_back (t);
      }
      g_strfreev (parts);
      break;
    }
    case PROP_PROMPT_SOURCE: s.prompt_source = g_value_get_flags (value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void gst_sam3_segment_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (object);
  if (prop_id == PROP_STATS) {
    GST_OBJECT_LOCK (self);
    Stats st = *self->stats;
    GST_OBJECT_UNLOCK (self);
    GstStructure *s = gst_structure_new ("sam3segment/stats",
        "frames-in", G_TYPE_UINT64, st.frames_in,
        "encoder-runs", G_TYPE_UINT64, st.encoder_runs,
        "decoder-runs", G_TYPE_UINT64, st.decoder_runs,
        "mean-encoder-ms", G_TYPE_DOUBLE, st.encoder_runs ? st.encoder_ms / st.encoder_runs : 0.0,
        "mean-decoder-ms", G_TYPE_DOUBLE, st.decoder_runs ? st.decoder_ms / st.decoder_runs : 0.0,
        NULL);
    g_value_take_boxed (value, s);
    return;
  }
  GST_OBJECT_LOCK (self);
  const Settings &s = *self->settings;
  switch (prop_id) {
    case PROP_MODEL_FILE: g_value_set_string (value, s.model_file.c_str ()); break;
    case PROP_MODEL_CONFIG: g_value_set_string (value, s.model_config.c_str ()); break;
    case PROP_DEVICE: g_value_set_enum (value, s.device); break;
    case PROP_PRECISION: g_value_set_enum (value, s.precision); break;
    case PROP_NUM_THREADS: g_value_set_int (value, s.num_threads); break;
    case PROP_BOXES: to_nested<4> (s.boxes, value); break;
    case PROP_POINTS: to_nested<3> (s.points, value); break;
    case PROP_MULTIMASK_OUTPUT: g_value_set_boolean (value, s.multimask_output); break;
    case PROP_MASK_THRESHOLD: g_value_set_double (value, s.mask_threshold); break;
    case PROP_MAX_HOLE_AREA: g_value_set_double (value, s.max_hole_area); break;
    case PROP_MAX_SPRINKLE_AREA: g_value_set_double (value, s.max_sprinkle_area); break;
    case PROP_SCORE_THRESHOLD: g_value_set_double (value, s.score_threshold); break;
    case PROP_OBJECT_CLASS: {
      std::string joined;
      for (const auto &c : s.object_classes) joined += (joined.empty () ? "" : ",") + c;
      g_value_set_string (value, joined.c_str ());
      break;
    }
    case PROP_PROMPT_SOURCE: g_value_set_flags (value, s.prompt_source); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK (self);
}

static gboolean gst_sam3_segment_start (GstBaseTransform *trans) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (trans);
  GST_OBJECT_LOCK (self);
  Settings s = *self->settings;
  *self->stats = Stats{};
  GST_OBJECT_UNLOCK (self);
  if (s.model_file.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("No model file given"),
        ("set the model-file property to a SAM 3 checkpoint (.pt or .safetensors)"));
    return FALSE;
  }
  if (!g_file_test (s.model_file.c_str (), G_FILE_TEST_IS_REGULAR)) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("Model file not found"),
        ("model-file '%s' does not exist", s.model_file.c_str ()));
    return FALSE;
  }
  try {
    sam3::ModelOptions opt;
    opt.config_path = s.model_config;
    opt.num_threads = s.num_threads;
    opt.precision = s.precision == PRECISION_BF16   ? sam3::Precision::kBFloat16
                    : s.precision == PRECISION_FP16 ? sam3::Precision::kFloat16
                                                    : sam3::Precision::kFloat32;
    if (s.device == DEVICE_CUDA) {
      opt.device = "cuda";
    } else if (s.device == DEVICE_AUTO) {
#if defined(SAM3_WITH_CUDA)
      opt.device = torch::cuda::is_available () ? "cuda" : "cpu";
#else
      opt.device = "cpu";
#endif
    }
    auto state = std::make_unique<State> ();
    state->model = sam3::Model::load (s.model_file, opt);
    state->predictor = std::make_unique<sam3::InteractiveImagePredictor> (state->model);
    delete self->state;
    self->state = state.release ();
  } catch (const sam3::DeviceError &e) {
    GST_ELEMENT_ERROR (self, LIBRARY, INIT, ("Cannot use the requested device"), ("%s", e.what ()));
    return FALSE;
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS, ("Cannot load the model"), ("%s", e.what ()));
    return FALSE;
  }
  GST_INFO_OBJECT (self, "model %s loaded", s.model_file.c_str ());
  return TRUE;
}

static gboolean gst_sam3_segment_stop (GstBaseTransform *trans) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (trans);
  delete self->state;
  self->state = nullptr;
  return TRUE;
}

static gboolean gst_sam3_segment_set_caps (GstBaseTransform *trans, GstCaps *incaps,
    GstCaps *outcaps) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (trans);
  State *st = self->state;
  if (!st) return FALSE;
  if (!gst_video_info_from_caps (&st->info, incaps)) {
    GST_ERROR_OBJECT (self, "unsupported caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  if (st->converter) {
    gst_video_converter_free (st->converter);
    st->converter = nullptr;
  }
  const int w = GST_VIDEO_INFO_WIDTH (&st->info), h = GST_VIDEO_INFO_HEIGHT (&st->info);
  gst_video_info_set_format (&st->rgb_info, GST_VIDEO_FORMAT_RGB, w, h);
  if (GST_VIDEO_INFO_FORMAT (&st->info) != GST_VIDEO_FORMAT_RGB) {
    st->converter = gst_video_converter_new (&st->info, &st->rgb_info, nullptr);
    if (!st->converter) {
      GST_ERROR_OBJECT (self, "cannot convert %" GST_PTR_FORMAT " to RGB", incaps);
      return FALSE;
    }
    st->rgb.assign (GST_VIDEO_INFO_SIZE (&st->rgb_info), 0);
    if (st->rgb_buffer) gst_buffer_unref (st->rgb_buffer);
    st->rgb_buffer = gst_buffer_new_wrapped_full (GST_MEMORY_FLAG_NO_SHARE, st->rgb.data (),
        st->rgb.size (), 0, st->rgb.size (), nullptr, nullptr);
  }
  st->have_embedding = false;  // new geometry: the cache is void
  st->last_rgb.clear ();
  return TRUE;
}

namespace {

// The frame as an RGB cv::Mat (a view of the buffer for RGB input, else a
// conversion into the state's buffer).
bool frame_to_rgb (GstSam3Segment *self, State *st, GstVideoFrame *frame, cv::Mat *rgb) {
  const int w = GST_VIDEO_FRAME_WIDTH (frame), h = GST_VIDEO_FRAME_HEIGHT (frame);
  if (!st->converter) {
    *rgb = cv::Mat (h, w, CV_8UC3, GST_VIDEO_FRAME_PLANE_DATA (frame, 0),
        GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0));
    return true;
  }
  GstVideoFrame out;
  if (!gst_video_frame_map (&out, &st->rgb_info, st->rgb_buffer, GST_MAP_WRITE)) {
    GST_ERROR_OBJECT (self, "cannot map the RGB conversion buffer");
    return false;
  }
  gst_video_converter_frame (st->converter, frame, &out);
  gst_video_frame_unmap (&out);
  // a view of the state's buffer: valid until the next frame
  *rgb = cv::Mat (h, w, CV_8UC3, st->rgb.data (), GST_VIDEO_INFO_PLANE_STRIDE (&st->rgb_info, 0));
  return true;
}

bool same_frame (const std::vector<uint8_t> &last, const cv::Mat &rgb) {
  const size_t row = static_cast<size_t> (rgb.cols) * 3;
  if (last.size () != row * rgb.rows) return false;
  for (int y = 0; y < rgb.rows; ++y) {
    if (std::memcmp (last.data () + y * row, rgb.ptr (y), row) != 0) return false;
  }
  return true;
}

void remember_frame (std::vector<uint8_t> *last, const cv::Mat &rgb) {
  const size_t row = static_cast<size_t> (rgb.cols) * 3;
  last->resize (row * rgb.rows);
  for (int y = 0; y < rgb.rows; ++y) std::memcpy (last->data () + y * row, rgb.ptr (y), row);
}

struct ObjectResult {
  guint object_id;
  float iou;
  torch::Tensor mask;  // H x W float 0/1
  GstSam3PromptSource source = GST_SAM3_PROMPT_SOURCE_PROPERTY;
  gint parent_roi_id = -1;
};

// An upstream ROI (detector box) used as a box prompt.
struct RoiPrompt {
  std::array<float, 4> box;
  gint roi_id;
};

// Box prompts from the GstVideoRegionOfInterestMeta already on the buffer
// (ours, "sam3-mask", excluded), filtered by object-class, clipped to the frame.
std::vector<RoiPrompt> roi_prompts (GstBuffer *buf, const Settings &s, int width, int height) {
  std::vector<RoiPrompt> out;
  gpointer iter = nullptr;
  while (GstMeta *m = gst_buffer_iterate_meta_filtered (buf, &iter,
             GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    auto *roi = reinterpret_cast<GstVideoRegionOfInterestMeta *> (m);
    const gchar *type = g_quark_to_string (roi->roi_type);
    if (type && std::strcmp (type, "sam3-mask") == 0) continue;
    if (!s.object_classes.empty ()) {
      bool match = false;
      for (const auto &c : s.object_classes) match = match || (type && c == type);
      if (!match) continue;
    }
    const float x0 = std::max (0.f, static_cast<float> (roi->x));
    const float y0 = std::max (0.f, static_cast<float> (roi->y));
    const float x1 = std::min (static_cast<float> (width), static_cast<float> (roi->x + roi->w));
    const float y1 = std::min (static_cast<float> (height), static_cast<float> (roi->y + roi->h));
    if (x1 <= x0 || y1 <= y0) continue;  // empty or outside the frame
    out.push_back ({{x0, y0, x1, y1}, roi->id});
  }
  return out;
}

// PredictArgs for B boxes (B objects) or N points (one object); with one box
// and points, both describe the same object.
sam3::PredictArgs prompt_args (const std::vector<std::array<float, 4>> &boxes,
    const std::vector<std::array<float, 3>> &points, bool multimask) {
  sam3::PredictArgs a;
  if (!boxes.empty ()) {
    std::vector<float> flat;
    for (const auto &b : boxes) flat.insert (flat.end (), b.begin (), b.end ());
    a.box = torch::tensor (flat).reshape ({static_cast<int64_t> (boxes.size ()), 4});
    if (boxes.size () == 1) a.box = a.box.reshape ({4});
  }
  if (!points.empty ()) {
    std::vector<float> xy;
    std::vector<int64_t> labels;
    for (const auto &p : points) {
      xy.push_back (p[0]);
      xy.push_back (p[1]);
      labels.push_back (static_cast<int64_t> (p[2]));
    }
    a.point_coords = torch::tensor (xy).reshape ({static_cast<int64_t> (points.size ()), 2});
    a.point_labels = torch::tensor (labels);
  }
  a.multimask_output = multimask;
  return a;
}

// Checks a dynamic prompt against the frame ("" if fine).
std::string check_dynamic (const DynamicPrompt &d, int width, int height) {
  if (d.box.empty () && d.points.empty ()) return "prompt has neither box nor points";
  return check_prompts (d.box, d.points, width, height);
}

// Picks, per object, the mask to attach: the highest predicted IoU of the 3
// with multimask output, else the single mask.
void collect (const sam3::Prediction &p, guint first_id, std::vector<ObjectResult> *out) {
  auto masks = p.masks.dim () == 3 ? p.masks.unsqueeze (0) : p.masks;
  auto iou = p.iou_predictions.dim () == 1 ? p.iou_predictions.unsqueeze (0) : p.iou_predictions;
  for (int64_t b = 0; b < masks.size (0); ++b) {
    const int64_t best = iou[b].argmax ().item<int64_t> ();
    out->push_back ({first_id + static_cast<guint> (b), iou[b][best].item<float> (), masks[b][best]});
  }
}

void attach (GstBuffer *buf, const std::vector<ObjectResult> &objects, int width, int height,
    double score_threshold) {
  GstSam3MaskMeta *meta = gst_buffer_add_sam3_mask_meta (buf, width, height);
  for (const auto &o : objects) {
    if (o.iou < score_threshold) continue;
    auto m8 = o.mask.to (torch::kUInt8).mul_ (255).contiguous ();
    cv::Mat full (height, width, CV_8UC1, m8.data_ptr<uint8_t> ());
    cv::Rect box = cv::boundingRect (full);
    if (box.width <= 0 || box.height <= 0) continue;  // empty mask
    cv::Mat crop = full (box);
    GstSam3MaskObject *obj = gst_sam3_mask_meta_add_object (meta, o.object_id, o.source, box.x,
        box.y, box.width, box.height, o.iou, crop.data, crop.step[0]);
    GstVideoRegionOfInterestMeta *roi = gst_buffer_add_video_region_of_interest_meta (buf,
        "sam3-mask", box.x, box.y, box.width, box.height);
    roi->id = static_cast<gint> (o.object_id);
    roi->parent_id = o.parent_roi_id;
    gst_video_region_of_interest_meta_add_param (roi, gst_structure_new ("sam/mask",
        "iou", G_TYPE_DOUBLE, static_cast<double> (o.iou),
        "object-id", G_TYPE_UINT, o.object_id,
        "mask-width", G_TYPE_UINT, static_cast<guint> (box.width),
        "mask-height", G_TYPE_UINT, static_cast<guint> (box.height), NULL));
    if (obj) {
      obj->roi_id = roi->id;
      obj->parent_roi_id = o.parent_roi_id;
    }
  }
  gst_buffer_add_sam3_result_meta (buf, meta);
}

}  // namespace

static GstFlowReturn gst_sam3_segment_transform_ip (GstBaseTransform *trans, GstBuffer *buf) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (trans);
  State *st = self->state;
  if (!st) return GST_FLOW_FLUSHING;
  const int w = GST_VIDEO_INFO_WIDTH (&st->info), h = GST_VIDEO_INFO_HEIGHT (&st->info);
  GST_OBJECT_LOCK (self);
  Settings s = *self->settings;
  self->stats->frames_in++;
  // drop (and report below) run-time prompts that do not fit this frame
  std::vector<std::string> dynamic_problems;
  auto &dyn_all = *self->dynamic;
  for (auto it = dyn_all.begin (); it != dyn_all.end ();) {
    std::string why = check_dynamic (*it, w, h);
    if (why.empty ()) {
      ++it;
    } else {
      dynamic_problems.push_back ("object " + std::to_string (it->object_id) + ": " + why);
      it = dyn_all.erase (it);
    }
  }
  std::vector<DynamicPrompt> dynamic;
  for (const auto &d : dyn_all) {
    const guint flag = d.source == GST_SAM3_PROMPT_SOURCE_NAVIGATION ? SOURCE_NAVIGATION
                                                                     : SOURCE_SIGNAL;
    if (s.prompt_source & flag) dynamic.push_back (d);
  }
  GST_OBJECT_UNLOCK (self);
  for (const auto &why : dynamic_problems) {
    GST_ELEMENT_WARNING (self, LIBRARY, SETTINGS, ("Invalid prompt, removed"), ("%s",
        why.c_str ()));
  }

  if (!(s.prompt_source & SOURCE_PROPERTY)) {
    s.boxes.clear ();
    s.points.clear ();
    s.prompt_error.clear ();
  }
  std::string prompt_problem =
      s.prompt_error.empty () ? check_prompts (s.boxes, s.points, w, h) : s.prompt_error;
  if (!prompt_problem.empty ()) {
    if (st->warned_serial != s.prompt_serial) {
      st->warned_serial = s.prompt_serial;
      GST_ELEMENT_WARNING (self, LIBRARY, SETTINGS, ("Invalid prompt, ignored"), ("%s",
          prompt_problem.c_str ()));
    }
    s.boxes.clear ();
    s.points.clear ();
  }
  std::vector<RoiPrompt> rois;
  if (s.prompt_source & SOURCE_ROI_META) rois = roi_prompts (buf, s, w, h);
  if (s.boxes.empty () && s.points.empty () && rois.empty () && dynamic.empty ())
    return GST_FLOW_OK;

  GstVideoFrame frame;
  if (!gst_video_frame_map (&frame, &st->info, buf, GST_MAP_READ)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Cannot map the frame"), (NULL));
    return GST_FLOW_ERROR;
  }
  std::vector<ObjectResult> objects;
  double enc_ms = 0, dec_ms = 0;
  bool encoded = false;
  std::string failure;
  try {
    cv::Mat rgb;
    if (!frame_to_rgb (self, st, &frame, &rgb)) throw std::runtime_error ("RGB conversion failed");
    if (!st->have_embedding || !same_frame (st->last_rgb, rgb)) {
      gint64 t0 = g_get_monotonic_time ();
      st->predictor->set_image (rgb);
      enc_ms = ms_since (t0);
      encoded = true;
      remember_frame (&st->last_rgb, rgb);
      st->have_embedding = true;
    }
    st->predictor->mask_threshold = s.mask_threshold;
    st->predictor->max_hole_area = s.max_hole_area;
    st->predictor->max_sprinkle_area = s.max_sprinkle_area;
    gint64 t0 = g_get_monotonic_time ();
    // one decoder call per prompt group; objects keep stable ids
    auto run = [&] (const sam3::PredictArgs &a, guint first_id, GstSam3PromptSource source) {
      const size_t first = objects.size ();
      collect (st->predictor->predict (a), first_id, &objects);
      for (size_t i = first; i < objects.size (); ++i) objects[i].source = source;
      return first;
    };
    if (!s.boxes.empty ())
      run (prompt_args (s.boxes, {}, s.multimask_output), 0, GST_SAM3_PROMPT_SOURCE_PROPERTY);
    if (!s.points.empty ())
      run (prompt_args ({}, s.points, s.multimask_output), static_cast<guint> (s.boxes.size ()),
          GST_SAM3_PROMPT_SOURCE_PROPERTY);
    if (!rois.empty ()) {
      std::vector<std::array<float, 4>> boxes;
      for (const auto &r : rois) boxes.push_back (r.box);
      const guint first_id = static_cast<guint> (s.boxes.size () + (s.points.empty () ? 0 : 1));
      const size_t first = run (prompt_args (boxes, {}, s.multimask_output), first_id,
          GST_SAM3_PROMPT_SOURCE_ROI_META);
      for (size_t i = first; i < objects.size (); ++i)
        objects[i].parent_roi_id = rois[i - first].roi_id;
    }
    for (const auto &d : dynamic)
      run (prompt_args (d.box, d.points, s.multimask_output), d.object_id, d.source);
    dec_ms = ms_since (t0);
  } catch (const std::exception &e) {
    failure = e.what ();
  }
  gst_video_frame_unmap (&frame);
  if (!failure.empty ()) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Segmentation failed"), ("%s", failure.c_str ()));
    return GST_FLOW_ERROR;
  }
  try {
    attach (buf, objects, w, h, s.score_threshold);
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Cannot attach the masks"), ("%s", e.what ()));
    return GST_FLOW_ERROR;
  }
  GST_OBJECT_LOCK (self);
  if (encoded) {
    self->stats->encoder_runs++;
    self->stats->encoder_ms += enc_ms;
  }
  self->stats->decoder_runs++;
  self->stats->decoder_ms += dec_ms;
  GST_OBJECT_UNLOCK (self);
  return GST_FLOW_OK;
}

// add-prompt: a GstStructure with "box" (<x0,y0,x1,y1>) and/or "points"
// (<<x,y,label>, ...>) in input-frame pixels; returns the new object id, or
// G_MAXUINT (with a warning on the bus) when the structure is malformed.
static guint gst_sam3_segment_add_prompt (GstSam3Segment *self, GstStructure *prompt) {
  DynamicPrompt d;
  d.source = GST_SAM3_PROMPT_SOURCE_SIGNAL;
  std::string err;
  bool ok = prompt != nullptr;
  if (ok && gst_structure_has_field (prompt, "box")) {
    const GValue *v = gst_structure_get_value (prompt, "box");
    GValue nested = G_VALUE_INIT;
    gst_value_array_init (&nested, 1);
    gst_value_array_append_value (&nested, v);
    ok = parse_nested<4> (&nested, &d.box, &err, "box");
    g_value_unset (&nested);
  }
  if (ok && gst_structure_has_field (prompt, "points"))
    ok = parse_nested<3> (gst_structure_get_value (prompt, "points"), &d.points, &err, "points");
  if (ok && d.box.empty () && d.points.empty ()) {
    ok = false;
    err = "the prompt structure needs a box or points field";
  }
  if (!ok) {
    GST_ELEMENT_WARNING (self, LIBRARY, SETTINGS, ("Invalid prompt, ignored"), ("add-prompt: %s",
        err.empty () ? "no structure" : err.c_str ()));
    return G_MAXUINT;
  }
  GST_OBJECT_LOCK (self);
  d.object_id = self->next_dynamic_id++;
  self->dynamic->push_back (d);
  GST_OBJECT_UNLOCK (self);
  return d.object_id;
}

static void gst_sam3_segment_clear_prompts (GstSam3Segment *self) {
  GST_OBJECT_LOCK (self);
  self->dynamic->clear ();
  GST_OBJECT_UNLOCK (self);
}

// Mouse clicks: left adds a foreground point, right a background point (to
// the click object), middle clears it. Coordinates arrive in this element's
// input frame (upstream scalers translate them).
static gboolean gst_sam3_segment_src_event (GstBaseTransform *trans, GstEvent *event) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (trans);
  gint button = 0;
  gdouble x = 0, y = 0;
  if (GST_EVENT_TYPE (event) == GST_EVENT_NAVIGATION &&
      gst_navigation_event_get_type (event) == GST_NAVIGATION_EVENT_MOUSE_BUTTON_PRESS &&
      gst_navigation_event_parse_mouse_button_event (event, &button, &x, &y)) {
    GST_OBJECT_LOCK (self);
    if (self->settings->prompt_source & SOURCE_NAVIGATION) {
      auto &dyn = *self->dynamic;
      auto it = std::find_if (dyn.begin (), dyn.end (), [] (const DynamicPrompt &d) {
        return d.source == GST_SAM3_PROMPT_SOURCE_NAVIGATION;
      });
      if (button == 2) {
        if (it != dyn.end ()) dyn.erase (it);
      } else if (button == 1 || button == 3) {
        if (it == dyn.end ()) {
          DynamicPrompt d;
          d.source = GST_SAM3_PROMPT_SOURCE_NAVIGATION;
          d.object_id = self->next_dynamic_id++;
          dyn.push_back (d);
          it = dyn.end () - 1;
        }
        it->points.push_back ({static_cast<float> (x), static_cast<float> (y),
            button == 1 ? 1.f : 0.f});
      }
    }
    GST_OBJECT_UNLOCK (self);
  }
  return GST_BASE_TRANSFORM_CLASS (gst_sam3_segment_parent_class)->src_event (trans, event);
}

static void gst_sam3_segment_finalize (GObject *object) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (object);
  delete self->state;
  delete self->stats;
  delete self->settings;
  delete self->dynamic;
  G_OBJECT_CLASS (gst_sam3_segment_parent_class)->finalize (object);
}

static void gst_sam3_segment_init (GstSam3Segment *self) {
  self->settings = new Settings ();
  self->stats = new Stats ();
  self->state = nullptr;
  self->dynamic = new std::vector<DynamicPrompt> ();
  self->next_dynamic_id = kFirstDynamicId;
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), FALSE);
}

static void gst_sam3_segment_class_init (GstSam3SegmentClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  gobject_class->set_property = gst_sam3_segment_set_property;
  gobject_class->get_property = gst_sam3_segment_get_property;
  gobject_class->finalize = gst_sam3_segment_finalize;

  const auto ready = static_cast<GParamFlags> (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                               GST_PARAM_MUTABLE_READY);
  const auto playing = static_cast<GParamFlags> (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                                 GST_PARAM_MUTABLE_PLAYING);
  g_object_class_install_property (gobject_class, PROP_MODEL_FILE,
      g_param_spec_string ("model-file", "Model file",
          "SAM 3 checkpoint: the official sam3.pt or a .safetensors with its key names",
          nullptr, ready));
  g_object_class_install_property (gobject_class, PROP_MODEL_CONFIG,
      g_param_spec_string ("model-config", "Model config",
          "Optional JSON configuration (official argument names); empty = derive from the "
          "checkpoint", nullptr, ready));
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_enum ("device", "Device",
          "Where to run the model; cuda without CUDA is an error, never a silent CPU fallback",
          sam3_device_get_type (), DEVICE_AUTO, ready));
  g_object_class_install_property (gobject_class, PROP_PRECISION,
      g_param_spec_enum ("precision", "Precision", "Compute precision of the model",
          sam3_precision_get_type (), PRECISION_FP32, ready));
  g_object_class_install_property (gobject_class, PROP_NUM_THREADS,
      g_param_spec_int ("num-threads", "Threads",
          "CPU threads for LibTorch (process-wide); 0 = all cores, -1 = leave unchanged",
          -1, 1024, 0, ready));
  g_object_class_install_property (gobject_class, PROP_BOXES,
      gst_param_spec_array ("boxes", "Box prompts",
          "Boxes <<x0,y0,x1,y1>, ...> in input-frame pixels, one object per box",
          gst_param_spec_array ("box", "Box", "x0,y0,x1,y1",
              g_param_spec_float ("coordinate", "Coordinate", "pixels", -G_MAXFLOAT,
                  G_MAXFLOAT, 0, G_PARAM_READWRITE), G_PARAM_READWRITE), playing));
  g_object_class_install_property (gobject_class, PROP_POINTS,
      gst_param_spec_array ("points", "Point prompts",
          "Points <<x,y,label>, ...> in input-frame pixels (label 1 foreground, 0 background); "
          "all points form one object",
          gst_param_spec_array ("point", "Point", "x,y,label",
              g_param_spec_float ("value", "Value", "pixels or label", -G_MAXFLOAT, G_MAXFLOAT,
                  0, G_PARAM_READWRITE), G_PARAM_READWRITE), playing));
  g_object_class_install_property (gobject_class, PROP_MULTIMASK_OUTPUT,
      g_param_spec_boolean ("multimask-output", "Multimask output",
          "Predict 3 masks per object and attach the one with the highest predicted IoU "
          "(FALSE: one mask, chosen by SAM's stability rule)", FALSE, playing));
  g_object_class_install_property (gobject_class, PROP_MASK_THRESHOLD,
      g_param_spec_double ("mask-threshold", "Mask threshold",
          "Threshold on the mask logits", -100.0, 100.0, kDefaultMaskThreshold, playing));
  g_object_class_install_property (gobject_class, PROP_MAX_HOLE_AREA,
      g_param_spec_double ("max-hole-area", "Max hole area",
          "Fill holes up to this area (low-resolution mask pixels, 4G x 4G grid); 0 = off",
          0.0, G_MAXDOUBLE, kDefaultMaxHoleArea, playing));
  g_object_class_install_property (gobject_class, PROP_MAX_SPRINKLE_AREA,
      g_param_spec_double ("max-sprinkle-area", "Max sprinkle area",
          "Remove isolated regions up to this area (low-resolution mask pixels); 0 = off",
          0.0, G_MAXDOUBLE, kDefaultMaxSprinkleArea, playing));
  g_object_class_install_property (gobject_class, PROP_SCORE_THRESHOLD,
      g_param_spec_double ("score-threshold", "Score threshold",
          "Drop masks whose predicted IoU is lower", 0.0, 1.0, kDefaultScoreThreshold, playing));
  g_object_class_install_property (gobject_class, PROP_OBJECT_CLASS,
      g_param_spec_string ("object-class", "Object class",
          "Comma-separated roi_type names of the upstream GstVideoRegionOfInterestMeta that become "
          "box prompts; empty = all", "", playing));
  g_object_class_install_property (gobject_class, PROP_PROMPT_SOURCE,
      g_param_spec_flags ("prompt-source", "Prompt source", "Which prompt inputs are used",
          sam3_prompt_source_flags_get_type (), kDefaultPromptSource, playing));
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "frames-in, encoder-runs, decoder-runs, mean-encoder-ms, mean-decoder-ms",
          GST_TYPE_STRUCTURE, static_cast<GParamFlags> (G_PARAM_READABLE |
                                                         G_PARAM_STATIC_STRINGS)));

  gst_element_class_set_static_metadata (element_class, "SAM 3 segmentation",
      "Filter/Analyzer/Video",
      "Promptable segmentation (Segment Anything 3) with box/point prompts; attaches masks "
      "and IoU scores as metadata", "gst-sam3 developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_sam3_segment_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_sam3_segment_stop);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_sam3_segment_set_caps);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_sam3_segment_transform_ip);
  trans_class->src_event = GST_DEBUG_FUNCPTR (gst_sam3_segment_src_event);
  trans_class->passthrough_on_same_caps = FALSE;

  /**
   * GstSam3Segment::add-prompt:
   * @prompt: a #GstStructure with a `box` field (<x0,y0,x1,y1>) and/or a
   *   `points` field (<<x,y,label>, ...>), input-frame pixels
   *
   * Adds one object from the next buffer on. Returns its object id
   * (>= 1000), or G_MAXUINT if the structure is malformed (with a warning).
   */
  sam3_segment_signals[SIGNAL_ADD_PROMPT] = g_signal_new_class_handler ("add-prompt",
      G_TYPE_FROM_CLASS (klass), static_cast<GSignalFlags> (G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
      G_CALLBACK (gst_sam3_segment_add_prompt), nullptr, nullptr, nullptr, G_TYPE_UINT, 1,
      GST_TYPE_STRUCTURE);
  /**
   * GstSam3Segment::clear-prompts:
   *
   * Removes every prompt added by add-prompt or by clicks.
   */
  sam3_segment_signals[SIGNAL_CLEAR_PROMPTS] = g_signal_new_class_handler ("clear-prompts",
      G_TYPE_FROM_CLASS (klass), static_cast<GSignalFlags> (G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
      G_CALLBACK (gst_sam3_segment_clear_prompts), nullptr, nullptr, nullptr, G_TYPE_NONE, 0);

  gst_type_mark_as_plugin_api (sam3_device_get_type (), static_cast<GstPluginAPIFlags> (0));
  gst_type_mark_as_plugin_api (sam3_precision_get_type (), static_cast<GstPluginAPIFlags> (0));
  gst_type_mark_as_plugin_api (sam3_prompt_source_flags_get_type (),
      static_cast<GstPluginAPIFlags> (0));
}
