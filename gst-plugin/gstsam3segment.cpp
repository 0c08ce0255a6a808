/* gst-sam3: sam3segment — SAM 3 interactive segmentation on video frames.
 * SPDX-License-Identifier: Apache-2.0
 *
 * SECTION:element-sam3segment
 * @title: sam3segment
 *
 * Runs SAM 3's interactive image predictor (libsam3predictor) on video
 * frames with box / point prompts and attaches the masks as metadata: one
 * #GstSam3MaskMeta (GRAY8 masks at frame resolution cropped to their boxes,
 * predicted IoU), one #GstVideoRegionOfInterestMeta per mask (param
 * structure `sam/mask`: iou, object-id, mask-width, mask-height) and a
 * `Sam3Result` #GstCustomMeta summarising the frame. The video itself passes
 * through unchanged, every buffer in order with its timestamps and flags.
 *
 * Embedding cache: the image encoder runs once per distinct frame. A
 * repeated identical frame (imagefreeze, slideshows) and prompt changes on
 * it re-run only the mask decoder (stats: encoder-runs).
 *
 * Batching: with `batch-size` N > 1, N frames that need inference are
 * embedded in one encoder call. A partial batch is completed when
 * `batch-timeout` expires (0 = never), at EOS, at any serialized event
 * (segment, caps, gap, ...) and when the element stops; FLUSH drops it.
 * The LATENCY query reports the batching latency: (N - 1) frame durations,
 * or batch-timeout if that is shorter (or the frame rate unknown).
 *
 * `inference-interval` K runs the model on every K-th frame only; the
 * frames in between get the last masks re-attached with `stale` = TRUE
 * (`skip-mode` stale) or no masks (`skip-mode` none).
 *
 * Prompts, in pixel coordinates of the input frame, from five sources
 * (`prompt-source` flags):
 *
 *  - property: `boxes` is `<<x0,y0,x1,y1>, ...>` (one object per box, ids
 *    0 ..), `points` is `<<x,y,label>, ...>` (label 1 = foreground, 0 =
 *    background; all points form one object). Changeable while PLAYING,
 *    applied from the next buffer.
 *  - roi-meta: every upstream #GstVideoRegionOfInterestMeta (detector box)
 *    whose roi_type is listed in `object-class` (empty = all) becomes a box
 *    prompt; the mask's ROI meta has the detector ROI as parent.
 *  - event: a serialized custom downstream event, applied exactly from the
 *    next buffer in stream order (not forwarded):
 *    `sam3/prompt, box=(float)<x0,y0,x1,y1>, points=<<x,y,label>,...>`
 *    (box and/or points; optional `object-id=(uint)N` replaces the event
 *    object N) and `sam3/clear-prompts` (optional `object-id=(uint)N`)
 *    which removes the run-time prompts (events, signals, clicks).
 *  - navigation: mouse clicks from a video sink: left = foreground point,
 *    right = background point, middle = clear (off by default).
 *  - signal: the `add-prompt` / `clear-prompts` action signals.
 *
 * Run-time prompts (event, navigation, signal) get object ids >= 1000.
 * A malformed or out-of-frame prompt posts a warning naming the problem and
 * is ignored; the stream goes on.
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
#include <gst/video/navigation.h>
#include <gst/video/video.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <opencv2/imgproc.hpp>
#include <sam3/sam3.h>
#include <string>
#include <thread>
#include <vector>

#include "gstsam3analytics.h"
#include "gstsam3maskmeta.h"
#include "sam3prompts.h"

using sam3gst::DynamicPrompt;
using sam3gst::RoiPrompt;
using sam3gst::kFirstDynamicId;

GST_DEBUG_CATEGORY_STATIC (sam3_segment_debug);
#define GST_CAT_DEFAULT sam3_segment_debug

namespace {

enum {
  PROP_0,
  PROP_MODEL_FILE,
  PROP_MODEL_CONFIG,
  PROP_DEVICE,
  PROP_CUDA_DEVICE_ID,
  PROP_PRECISION,
  PROP_NUM_THREADS,
  PROP_BATCH_SIZE,
  PROP_BATCH_TIMEOUT,
  PROP_INFERENCE_INTERVAL,
  PROP_SKIP_MODE,
  PROP_BOXES,
  PROP_POINTS,
  PROP_MULTIMASK_OUTPUT,
  PROP_MASK_THRESHOLD,
  PROP_MAX_HOLE_AREA,
  PROP_MAX_SPRINKLE_AREA,
  PROP_SCORE_THRESHOLD,
  PROP_ATTACH_LOGITS,
  PROP_OBJECT_CLASS,
  PROP_PROMPT_SOURCE,
  PROP_STATS,
};

enum Sam3Device { DEVICE_AUTO, DEVICE_CPU, DEVICE_CUDA };
enum Sam3Precision { PRECISION_FP32, PRECISION_BF16, PRECISION_FP16 };
enum Sam3SkipMode { SKIP_STALE, SKIP_NONE };

constexpr double kDefaultMaskThreshold = 0.0;
// -1: the model's own default (its config: 256 / 0 for sam3.pt, 0 / 0 for
// SAM 2.1 and the bundled model; SAM 1 has no such pass)
constexpr double kDefaultMaxHoleArea = -1.0;
constexpr double kDefaultMaxSprinkleArea = -1.0;
constexpr double kDefaultScoreThreshold = 0.0;
constexpr guint kMaxBatchSize = 64;
// Limits (docs/elements.md, "Limits"). Frames up to 8192 x 8192 (8K UHD and
// DCI 8K); larger caps are refused.
#define SAM3_MAX_FRAME_DIM 8192
constexpr int kMaxFrameDim = SAM3_MAX_FRAME_DIM;
// Frames held by one batch (the mapped input plus its RGB conversion): a
// batch completes early when batch-size frames would exceed this.
constexpr guint64 kMaxBatchBytes = guint64 (1) << 30;
// The decoder's output at frame resolution in one call (upsampled float
// logits, the thresholded and float masks: ~14 bytes per pixel per mask,
// measured at 8K): box groups are decoded in chunks that stay under this,
// one object per call at least; each call's masks are cropped to their boxes
// before the next.
constexpr guint64 kMaxDecodeBytes = guint64 (512) << 20;
constexpr guint64 kDecodeBytesPerMaskPixel = 14;

GType sam3_device_get_type () {
  static GType type = 0;
  static const GEnumValue values[] = {
      {DEVICE_AUTO, "CUDA when the build and machine have it, else CPU", "auto"},
      {DEVICE_CPU, "CPU", "cpu"},
      {DEVICE_CUDA, "CUDA GPU cuda-device-id (error if unavailable)", "cuda"},
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

GType sam3_skip_mode_get_type () {
  static GType type = 0;
  static const GEnumValue values[] = {
      {SKIP_STALE, "Re-attach the last masks, marked stale", "stale"},
      {SKIP_NONE, "Attach no masks", "none"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstSam3SkipMode", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

enum PromptSourceFlags {
  SOURCE_PROPERTY = 1 << 0,
  SOURCE_ROI_META = 1 << 1,
  SOURCE_NAVIGATION = 1 << 2,
  SOURCE_SIGNAL = 1 << 3,
  SOURCE_EVENT = 1 << 4,
};
constexpr guint kDefaultPromptSource =
    SOURCE_PROPERTY | SOURCE_ROI_META | SOURCE_SIGNAL | SOURCE_EVENT;

GType sam3_prompt_source_flags_get_type () {
  static GType type = 0;
  static const GFlagsValue values[] = {
      {SOURCE_PROPERTY, "The boxes and points properties", "property"},
      {SOURCE_ROI_META, "Upstream GstVideoRegionOfInterestMeta boxes (detectors)", "roi-meta"},
      {SOURCE_NAVIGATION,
          "Mouse clicks (navigation events): left = foreground point, right = background "
          "point, middle = clear", "navigation"},
      {SOURCE_SIGNAL, "The add-prompt / clear-prompts action signals", "signal"},
      {SOURCE_EVENT, "Serialized sam3/prompt and sam3/clear-prompts custom events", "event"},
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
  std::string model_file = sam3::default_model_path ();  // the bundled model
  std::string model_config;
  int device = DEVICE_AUTO;
  int cuda_device_id = 0;
  int precision = PRECISION_FP32;
  int num_threads = 0;
  guint batch_size = 1;
  guint64 batch_timeout = 0;  // ns, 0 = none
  guint inference_interval = 1;
  int skip_mode = SKIP_STALE;
  std::vector<std::array<float, 4>> boxes;
  std::vector<std::array<float, 3>> points;
  std::string prompt_error;  // non-empty: the last prompt property was malformed
  guint prompt_serial = 0;   // bumped on every prompt property write
  bool multimask_output = false;
  double mask_threshold = kDefaultMaskThreshold;
  double max_hole_area = kDefaultMaxHoleArea;
  double max_sprinkle_area = kDefaultMaxSprinkleArea;
  double score_threshold = kDefaultScoreThreshold;
  bool attach_logits = false;
  std::vector<std::string> object_classes;  // empty = every upstream ROI
  guint prompt_source = kDefaultPromptSource;
};

// One object as attached to a frame (kept to re-attach it, stale, on
// frames that skip inference).
struct AttachedObject {
  guint object_id;
  GstSam3PromptSource source;
  cv::Rect box;
  float iou;
  std::vector<uint8_t> crop;  // box.width x box.height GRAY8, packed
  gint parent_roi_id;
  std::vector<float> logits;  // low-res logits (attach-logits), lw x lh
  int lw = 0, lh = 0;
};

// A frame waiting in the batch, with everything read for it on arrival.
struct Pending {
  GstBuffer *buf = nullptr;  // owned
  GstVideoFrame frame{};     // mapped (read) while queued when `infer`
  bool mapped = false;
  bool has_prompts = false;  // some prompt applies to this frame
  bool infer = false;        // run the model (else skipped by inference-interval)
  Settings s;
  std::vector<DynamicPrompt> dynamic;
  std::vector<RoiPrompt> rois;
  int pred = -1;     // predictor holding its embedding
  size_t index = 0;  // image index in that predictor
};

// Row layout of one plane of the input format (for frame comparison).
struct PlaneRows {
  size_t row_bytes;
  int rows;
};

// Streaming state: built in start(), dropped in stop(). Used only with the
// sink pad's stream lock held (streaming thread, serialized events, the
// batch-timeout thread).
struct State {
  std::shared_ptr<const sam3::Model> model;
  // Two predictors: one holds the cached embedding (last inferred frame),
  // the other takes the next encoder call; they swap roles.
  std::unique_ptr<sam3::InteractiveImagePredictor> predictors[2];
  GstVideoInfo info;
  bool have_caps = false;
  bool direct = false;  // packed RGB-family input: the predictor reads it as is
  sam3::PixelFormat direct_format = sam3::PixelFormat::kRGB;
  GstVideoConverter *converter = nullptr;  // YUV input -> RGB
  GstVideoInfo rgb_info;
  std::vector<std::vector<uint8_t>> rgb_slots;  // converted frames of one batch
  std::vector<GstBuffer *> rgb_slot_buffers;    // wrap rgb_slots for the converter
  std::vector<PlaneRows> planes;
  // the embedding cache
  bool cache_valid = false;
  int cache_pred = 0;
  size_t cache_index = 0;
  std::vector<uint8_t> cache_bytes;  // the cached frame's planes, packed rows
  // batching
  std::vector<Pending> pending;
  guint pending_infer = 0;
  std::deque<GstBuffer *> ready;  // processed, in order, for generate_output
  std::vector<AttachedObject> last_objects;
  bool have_last = false;
  guint64 frame_index = 0;
  guint warned_serial = G_MAXUINT;
  bool warned_roi_cap = false;  // the ROI-cap warning is posted once per start
  guint converter_threads = 1;
  cv::Mat mask_scratch;  // frame-size GRAY8, reused by crop_objects

  void drop_slots () {
    for (GstBuffer *b : rgb_slot_buffers) gst_buffer_unref (b);
    rgb_slot_buffers.clear ();
    rgb_slots.clear ();
  }
  void drop_queued () {
    for (auto &p : pending) {
      if (p.mapped) gst_video_frame_unmap (&p.frame);
      gst_buffer_unref (p.buf);
    }
    pending.clear ();
    pending_infer = 0;
    for (GstBuffer *b : ready) gst_buffer_unref (b);
    ready.clear ();
  }
  ~State () {
    drop_queued ();
    drop_slots ();
    if (converter) gst_video_converter_free (converter);
  }
};

struct Stats {
  guint64 frames_in = 0, frames_inferred = 0, frames_skipped = 0;
  guint64 encoder_runs = 0, frames_encoded = 0, decoder_runs = 0;
  double encoder_ms = 0, decoder_ms = 0, process_ms = 0;
};

// The batch-timeout thread: sleeps until the deadline of the partial batch,
// then completes it under the stream lock.
struct Timer {
  std::mutex mutex;
  std::condition_variable cond;
  bool quit = false;
  bool armed = false;
  std::chrono::steady_clock::time_point deadline;
  guint64 generation = 0;  // bumped whenever a batch is processed
  std::thread thread;
};

}  // namespace

struct _GstSam3Segment {
  GstBaseTransform parent;
  Settings *settings;
  State *state;
  Stats *stats;
  Timer *timer;
  // Prompts from clicks, events and signals, under the object lock.
  std::vector<DynamicPrompt> *dynamic;
  guint next_dynamic_id;
  // frame rate of the current caps, under the object lock (LATENCY query)
  gint fps_n, fps_d;
  // flow of the last push from the timer thread, returned by the next chain
  GstFlowReturn timer_flow;
  // caps beyond the maximum frame size were refused (warned once per start),
  // under the object lock
  gboolean warned_frame_size;
};

enum { SIGNAL_ADD_PROMPT, SIGNAL_CLEAR_PROMPTS, LAST_SIGNAL };
static guint sam3_segment_signals[LAST_SIGNAL];

G_DEFINE_TYPE (GstSam3Segment, gst_sam3_segment, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (sam3segment, "sam3segment", GST_RANK_NONE,
    GST_TYPE_SAM3_SEGMENT,
    GST_DEBUG_CATEGORY_INIT (sam3_segment_debug, "sam3segment", 0, "SAM 3 segmentation"));

#define VIDEO_CAPS                                                                  \
  "video/x-raw, format = (string) { RGB, BGR, RGBA, BGRA, RGBx, BGRx, NV12, I420 }, " \
  "width = (int) [ 1, " G_STRINGIFY (SAM3_MAX_FRAME_DIM) " ], "                       \
  "height = (int) [ 1, " G_STRINGIFY (SAM3_MAX_FRAME_DIM) " ], "                      \
  "framerate = (fraction) [ 0, max ]"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE (
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE (
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));

namespace {

double ms_since (gint64 start_us) { return (g_get_monotonic_time () - start_us) / 1000.0; }

}  // namespace

static void post_latency_changed (GstSam3Segment *self) {
  gst_element_post_message (GST_ELEMENT (self), gst_message_new_latency (GST_OBJECT (self)));
}

static void set_property_impl (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (object);
  bool latency_changed = false;
  GST_OBJECT_LOCK (self);
  Settings &s = *self->settings;
  switch (prop_id) {
    case PROP_MODEL_FILE:
      // NULL restores the default (the bundled model)
      s.model_file = g_value_get_string (value) ? g_value_get_string (value)
                                                : sam3::default_model_path ();
      break;
    case PROP_MODEL_CONFIG:
      s.model_config = g_value_get_string (value) ? g_value_get_string (value) : "";
      break;
    case PROP_DEVICE: s.device = g_value_get_enum (value); break;
    case PROP_CUDA_DEVICE_ID: s.cuda_device_id = g_value_get_int (value); break;
    case PROP_PRECISION: s.precision = g_value_get_enum (value); break;
    case PROP_NUM_THREADS: s.num_threads = g_value_get_int (value); break;
    case PROP_BATCH_SIZE:
      latency_changed = s.batch_size != g_value_get_uint (value);
      s.batch_size = g_value_get_uint (value);
      break;
    case PROP_BATCH_TIMEOUT:
      latency_changed = s.batch_timeout != g_value_get_uint64 (value);
      s.batch_timeout = g_value_get_uint64 (value);
      break;
    case PROP_INFERENCE_INTERVAL: s.inference_interval = g_value_get_uint (value); break;
    case PROP_SKIP_MODE: s.skip_mode = g_value_get_enum (value); break;
    case PROP_BOXES:
      s.prompt_error.clear ();
      sam3gst::parse_boxes (value, &s.boxes, &s.prompt_error);
      s.prompt_serial++;
      break;
    case PROP_POINTS:
      s.prompt_error.clear ();
      sam3gst::parse_points (value, &s.points, &s.prompt_error);
      s.prompt_serial++;
      break;
    case PROP_MULTIMASK_OUTPUT: s.multimask_output = g_value_get_boolean (value); break;
    case PROP_MASK_THRESHOLD: s.mask_threshold = g_value_get_double (value); break;
    case PROP_MAX_HOLE_AREA: s.max_hole_area = g_value_get_double (value); break;
    case PROP_MAX_SPRINKLE_AREA: s.max_sprinkle_area = g_value_get_double (value); break;
    case PROP_SCORE_THRESHOLD: s.score_threshold = g_value_get_double (value); break;
    case PROP_ATTACH_LOGITS: s.attach_logits = g_value_get_boolean (value); break;
    case PROP_OBJECT_CLASS:
      s.object_classes = sam3gst::split_object_classes (g_value_get_string (value));
      break;
    case PROP_PROMPT_SOURCE: s.prompt_source = g_value_get_flags (value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK (self);
  if (latency_changed && GST_STATE (self) >= GST_STATE_PAUSED) post_latency_changed (self);
}

static void get_property_impl (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (object);
  if (prop_id == PROP_STATS) {
    GST_OBJECT_LOCK (self);
    Stats st = *self->stats;
    GST_OBJECT_UNLOCK (self);
    GstStructure *s = gst_structure_new ("sam3segment/stats",
        "frames-in", G_TYPE_UINT64, st.frames_in,
        "frames-inferred", G_TYPE_UINT64, st.frames_inferred,
        "frames-skipped", G_TYPE_UINT64, st.frames_skipped,
        "encoder-runs", G_TYPE_UINT64, st.encoder_runs,
        "frames-encoded", G_TYPE_UINT64, st.frames_encoded,
        "decoder-runs", G_TYPE_UINT64, st.decoder_runs,
        "mean-encoder-ms", G_TYPE_DOUBLE, st.encoder_runs ? st.encoder_ms / st.encoder_runs : 0.0,
        "mean-decoder-ms", G_TYPE_DOUBLE, st.decoder_runs ? st.decoder_ms / st.decoder_runs : 0.0,
        "total-encoder-ms", G_TYPE_DOUBLE, st.encoder_ms,
        "total-decoder-ms", G_TYPE_DOUBLE, st.decoder_ms,
        "total-process-ms", G_TYPE_DOUBLE, st.process_ms, NULL);
    g_value_take_boxed (value, s);
    return;
  }
  GST_OBJECT_LOCK (self);
  const Settings &s = *self->settings;
  switch (prop_id) {
    case PROP_MODEL_FILE: g_value_set_string (value, s.model_file.c_str ()); break;
    case PROP_MODEL_CONFIG: g_value_set_string (value, s.model_config.c_str ()); break;
    case PROP_DEVICE: g_value_set_enum (value, s.device); break;
    case PROP_CUDA_DEVICE_ID: g_value_set_int (value, s.cuda_device_id); break;
    case PROP_PRECISION: g_value_set_enum (value, s.precision); break;
    case PROP_NUM_THREADS: g_value_set_int (value, s.num_threads); break;
    case PROP_BATCH_SIZE: g_value_set_uint (value, s.batch_size); break;
    case PROP_BATCH_TIMEOUT: g_value_set_uint64 (value, s.batch_timeout); break;
    case PROP_INFERENCE_INTERVAL: g_value_set_uint (value, s.inference_interval); break;
    case PROP_SKIP_MODE: g_value_set_enum (value, s.skip_mode); break;
    case PROP_BOXES: sam3gst::boxes_to_value (s.boxes, value); break;
    case PROP_POINTS: sam3gst::points_to_value (s.points, value); break;
    case PROP_MULTIMASK_OUTPUT: g_value_set_boolean (value, s.multimask_output); break;
    case PROP_MASK_THRESHOLD: g_value_set_double (value, s.mask_threshold); break;
    case PROP_MAX_HOLE_AREA: g_value_set_double (value, s.max_hole_area); break;
    case PROP_MAX_SPRINKLE_AREA: g_value_set_double (value, s.max_sprinkle_area); break;
    case PROP_SCORE_THRESHOLD: g_value_set_double (value, s.score_threshold); break;
    case PROP_ATTACH_LOGITS: g_value_set_boolean (value, s.attach_logits); break;
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

static void timer_loop (GstSam3Segment *self);

static gboolean gst_sam3_segment_start (GstBaseTransform *trans) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (trans);
  GST_OBJECT_LOCK (self);
  Settings s = *self->settings;
  *self->stats = Stats{};
  self->timer_flow = GST_FLOW_OK;
  self->warned_frame_size = FALSE;
  GST_OBJECT_UNLOCK (self);
  if (s.model_file.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("No model file given"),
        ("set the model-file property to a SAM 3 checkpoint (.pt or .safetensors)"));
    return FALSE;
  }
  if (!g_file_test (s.model_file.c_str (), G_FILE_TEST_IS_REGULAR)) {
    std::string where;
    if (s.model_file == sam3::default_model_path ()) {
      where = " (the bundled default model; looked in:";
      for (const auto &c : sam3::default_model_candidates ()) where += " " + c;
      where += ")";
    }
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("Model file not found"),
        ("model-file '%s' does not exist%s", s.model_file.c_str (), where.c_str ()));
    return FALSE;
  }
  try {
    sam3::ModelOptions opt;
    opt.config_path = s.model_config;
    opt.num_threads = s.num_threads;
    opt.precision = s.precision == PRECISION_BF16   ? sam3::Precision::kBFloat16
                    : s.precision == PRECISION_FP16 ? sam3::Precision::kFloat16
                                                    : sam3::Precision::kFloat32;
    const std::string cuda = "cuda:" + std::to_string (s.cuda_device_id);
    if (s.device == DEVICE_CUDA) {
      opt.device = cuda;
    } else if (s.device == DEVICE_AUTO) {
#if defined(SAM3_WITH_CUDA)
      opt.device = torch::cuda::is_available () ? cuda : "cpu";
#else
      opt.device = "cpu";
#endif
    }
    auto state = std::make_unique<State> ();
    state->model = sam3::Model::load (s.model_file, opt);
    for (auto &p : state->predictors)
      p = std::make_unique<sam3::InteractiveImagePredictor> (state->model);
    state->converter_threads = s.num_threads > 0 ? static_cast<guint> (s.num_threads)
                                                 : g_get_num_processors ();
    delete self->state;
    self->state = state.release ();
  } catch (const sam3::DeviceError &e) {
    GST_ELEMENT_ERROR (self, LIBRARY, INIT, ("Cannot use the requested device"), ("%s", e.what ()));
    return FALSE;
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS, ("Cannot load the model"), ("%s", e.what ()));
    return FALSE;
  }
  if (self->state->model->device ().is_cpu () && !g_getenv ("OMP_WAIT_POLICY")) {
    // libgomp's busy-waiting threads compete with the BLAS threads of the
    // next GEMM; the variable is read when libgomp loads, so only the user
    // can set it (sam3-predict and sam3-bench re-exec themselves with it)
    GST_ELEMENT_INFO (self, RESOURCE, SETTINGS, ("OMP_WAIT_POLICY is not set"),
        ("CPU inference is faster with OMP_WAIT_POLICY=PASSIVE in the environment "
         "(e.g. OMP_WAIT_POLICY=PASSIVE gst-launch-1.0 ...); see docs/elements.md"));
  }
  if (self->state->model->device ().is_cpu ()) {
    // the plugin's loader chose the kernels before OpenBLAS was loaded
    // (plugin.cpp); too late when the application had loaded OpenBLAS itself
    const sam3::BlasKernels k = sam3::blas_kernels ();
    GST_INFO_OBJECT (self, "CPU kernels: %s", k.summary ().c_str ());
    if (k.below_cpu)
      GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS, ("Slow CPU kernels in use"),
          ("%s (OpenBLAS was loaded before the sam3 plugin); docs/elements.md, \"CPU kernels\"",
           k.summary ().c_str ()));
  }
  {
    std::error_code ec;
    if (std::filesystem::equivalent (s.model_file, sam3::default_model_path (), ec))
      GST_ELEMENT_INFO (self, RESOURCE, SETTINGS, ("Running the bundled demo model"),
          ("%s is a small demo model trained on synthetic scenes (shapes, textures): it does "
           "not segment real photos; set model-file to an official SAM 3 / SAM 2.1 / SAM 1 "
           "checkpoint (README, \"Real checkpoints\")", s.model_file.c_str ()));
  }
  {
    std::lock_guard<std::mutex> lk (self->timer->mutex);
    self->timer->quit = false;
    self->timer->armed = false;
  }
  self->timer->thread = std::thread (timer_loop, self);
  GST_INFO_OBJECT (self, "model %s loaded", s.model_file.c_str ());
  return TRUE;
}

static gboolean gst_sam3_segment_stop (GstBaseTransform *trans) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (trans);
  {
    std::lock_guard<std::mutex> lk (self->timer->mutex);
    self->timer->quit = true;
  }
  self->timer->cond.notify_all ();
  if (self->timer->thread.joinable ()) self->timer->thread.join ();
  delete self->state;  // unrefs frames still queued
  self->state = nullptr;
  return TRUE;
}

namespace {

bool direct_format (GstVideoFormat f, sam3::PixelFormat *out) {
  switch (f) {
    case GST_VIDEO_FORMAT_RGB: *out = sam3::PixelFormat::kRGB; return true;
    case GST_VIDEO_FORMAT_BGR: *out = sam3::PixelFormat::kBGR; return true;
    case GST_VIDEO_FORMAT_RGBA: *out = sam3::PixelFormat::kRGBA; return true;
    case GST_VIDEO_FORMAT_BGRA: *out = sam3::PixelFormat::kBGRA; return true;
    case GST_VIDEO_FORMAT_RGBx: *out = sam3::PixelFormat::kRGBX; return true;
    case GST_VIDEO_FORMAT_BGRx: *out = sam3::PixelFormat::kBGRX; return true;
    default: return false;
  }
}

// Bytes per row and rows of each plane (what frame comparison looks at).
std::vector<PlaneRows> plane_rows (const GstVideoInfo *info) {
  std::vector<PlaneRows> planes (GST_VIDEO_INFO_N_PLANES (info), PlaneRows{0, 0});
  for (guint c = 0; c < GST_VIDEO_INFO_N_COMPONENTS (info); ++c) {
    const guint p = GST_VIDEO_INFO_COMP_PLANE (info, c);
    const size_t bytes = static_cast<size_t> (GST_VIDEO_INFO_COMP_WIDTH (info, c)) *
                         GST_VIDEO_INFO_COMP_PSTRIDE (info, c);
    planes[p].row_bytes = std::max (planes[p].row_bytes, bytes);
    planes[p].rows = std::max (planes[p].rows, GST_VIDEO_INFO_COMP_HEIGHT (info, c));
  }
  return planes;
}

bool frames_equal (const std::vector<PlaneRows> &planes, const GstVideoFrame *a,
    const GstVideoFrame *b) {
  for (size_t p = 0; p < planes.size (); ++p) {
    const auto *da = static_cast<const uint8_t *> (GST_VIDEO_FRAME_PLANE_DATA (a, p));
    const auto *db = static_cast<const uint8_t *> (GST_VIDEO_FRAME_PLANE_DATA (b, p));
    const int sa = GST_VIDEO_FRAME_PLANE_STRIDE (a, p), sb = GST_VIDEO_FRAME_PLANE_STRIDE (b, p);
    for (int y = 0; y < planes[p].rows; ++y)
      if (std::memcmp (da + y * sa, db + y * sb, planes[p].row_bytes) != 0) return false;
  }
  return true;
}

bool frame_equals_bytes (const std::vector<PlaneRows> &planes, const GstVideoFrame *a,
    const std::vector<uint8_t> &bytes) {
  size_t off = 0;
  for (size_t p = 0; p < planes.size (); ++p) {
    const auto *da = static_cast<const uint8_t *> (GST_VIDEO_FRAME_PLANE_DATA (a, p));
    const int sa = GST_VIDEO_FRAME_PLANE_STRIDE (a, p);
    for (int y = 0; y < planes[p].rows; ++y, off += planes[p].row_bytes) {
      if (off + planes[p].row_bytes > bytes.size ()) return false;
      if (std::memcmp (da + y * sa, bytes.data () + off, planes[p].row_bytes) != 0) return false;
    }
  }
  return off == bytes.size ();
}

void frame_to_bytes (const std::vector<PlaneRows> &planes, const GstVideoFrame *a,
    std::vector<uint8_t> *bytes) {
  size_t total = 0;
  for (const auto &p : planes) total += p.row_bytes * p.rows;
  bytes->resize (total);
  size_t off = 0;
  for (size_t p = 0; p < planes.size (); ++p) {
    const auto *da = static_cast<const uint8_t *> (GST_VIDEO_FRAME_PLANE_DATA (a, p));
    const int sa = GST_VIDEO_FRAME_PLANE_STRIDE (a, p);
    for (int y = 0; y < planes[p].rows; ++y, off += planes[p].row_bytes)
      std::memcpy (bytes->data () + off, da + y * sa, planes[p].row_bytes);
  }
}

}  // namespace

static GstFlowReturn process_pending (GstSam3Segment *self, State *st);

static gboolean set_caps_impl (GstBaseTransform *trans, GstCaps *incaps,
    GstCaps *outcaps) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (trans);
  State *st = self->state;
  if (!st) return FALSE;
  GstVideoInfo info;
  if (!gst_video_info_from_caps (&info, incaps)) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("Unsupported caps"),
        ("cannot parse %" GST_PTR_FORMAT, incaps));
    return FALSE;
  }
  // frames queued under the old caps are finished first (sink_event already
  // drains before CAPS events; this covers any other path)
  if (!st->pending.empty ()) process_pending (self, st);
  if (st->have_caps && gst_video_info_is_equal (&info, &st->info)) return TRUE;
  if (st->converter) {
    gst_video_converter_free (st->converter);
    st->converter = nullptr;
  }
  st->drop_slots ();
  st->info = info;
  st->have_caps = true;
  st->planes = plane_rows (&info);
  const int w = GST_VIDEO_INFO_WIDTH (&info), h = GST_VIDEO_INFO_HEIGHT (&info);
  st->direct = direct_format (GST_VIDEO_INFO_FORMAT (&info), &st->direct_format);
  if (!st->direct) {
    gst_video_info_set_format (&st->rgb_info, GST_VIDEO_FORMAT_RGB, w, h);
    // the converter wants the same rate and interlacing on both sides
    GST_VIDEO_INFO_FPS_N (&st->rgb_info) = GST_VIDEO_INFO_FPS_N (&info);
    GST_VIDEO_INFO_FPS_D (&st->rgb_info) = GST_VIDEO_INFO_FPS_D (&info);
    GST_VIDEO_INFO_PAR_N (&st->rgb_info) = GST_VIDEO_INFO_PAR_N (&info);
    GST_VIDEO_INFO_PAR_D (&st->rgb_info) = GST_VIDEO_INFO_PAR_D (&info);
    GST_VIDEO_INFO_INTERLACE_MODE (&st->rgb_info) = GST_VIDEO_INFO_INTERLACE_MODE (&info);
    GstStructure *opts = gst_structure_new ("sam3-converter",
        GST_VIDEO_CONVERTER_OPT_THREADS, G_TYPE_UINT, st->converter_threads, NULL);
    st->converter = gst_video_converter_new (&st->info, &st->rgb_info, opts);
    if (!st->converter) {
      GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("Unsupported caps"),
          ("cannot convert %" GST_PTR_FORMAT " to RGB", incaps));
      return FALSE;
    }
  }
  // new geometry or format: the cached embedding and stale masks are void
  st->cache_valid = false;
  st->cache_bytes.clear ();
  st->last_objects.clear ();
  st->have_last = false;
  GST_OBJECT_LOCK (self);
  self->fps_n = GST_VIDEO_INFO_FPS_N (&info);
  self->fps_d = GST_VIDEO_INFO_FPS_D (&info);
  GST_OBJECT_UNLOCK (self);
  GST_DEBUG_OBJECT (self, "caps %" GST_PTR_FORMAT " (%s)", incaps,
      st->direct ? "read directly" : "converted to RGB");
  return TRUE;
}

// The template refuses frames beyond kMaxFrameDim; this says so once per
// start (upstream only sees not-negotiated).
static gboolean accept_caps_impl (GstBaseTransform *trans, GstPadDirection direction,
    GstCaps *caps) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (trans);
  if (GST_BASE_TRANSFORM_CLASS (gst_sam3_segment_parent_class)->accept_caps (trans, direction, caps))
    return TRUE;
  gint w = 0, h = 0;
  const GstStructure *str = gst_caps_get_size (caps) > 0 ? gst_caps_get_structure (caps, 0) : nullptr;
  if (str && gst_structure_get_int (str, "width", &w) && gst_structure_get_int (str, "height", &h) &&
      (w > kMaxFrameDim || h > kMaxFrameDim)) {
    GST_OBJECT_LOCK (self);
    const bool warn = !self->warned_frame_size;
    self->warned_frame_size = TRUE;
    GST_OBJECT_UNLOCK (self);
    if (warn)
      GST_ELEMENT_WARNING (self, CORE, NEGOTIATION, ("Frame too large"),
          ("%dx%d frames exceed the maximum frame size %dx%d (docs/elements.md, Limits); "
           "scale them down before sam3segment (videoscale)", w, h, kMaxFrameDim, kMaxFrameDim));
  }
  return FALSE;
}

namespace {

struct ObjectResult {
  guint object_id;
  float iou;
  torch::Tensor mask;  // H x W float 0/1
  GstSam3PromptSource source = GST_SAM3_PROMPT_SOURCE_PROPERTY;
  gint parent_roi_id = -1;
  torch::Tensor logits;  // 4G x 4G low-res logits of the chosen mask
};

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

// Picks, per object, the mask to attach: the highest predicted IoU of the 3
// with multimask output, else the single mask.
void collect (const sam3::Prediction &p, guint first_id, GstSam3PromptSource source,
    std::vector<ObjectResult> *out) {
  auto masks = p.masks.dim () == 3 ? p.masks.unsqueeze (0) : p.masks;
  auto iou = p.iou_predictions.dim () == 1 ? p.iou_predictions.unsqueeze (0) : p.iou_predictions;
  auto low = p.low_res_masks.dim () == 3 ? p.low_res_masks.unsqueeze (0) : p.low_res_masks;
  for (int64_t b = 0; b < masks.size (0); ++b) {
    const int64_t best = iou[b].argmax ().item<int64_t> ();
    out->push_back ({first_id + static_cast<guint> (b), iou[b][best].item<float> (),
        masks[b][best], source, -1, low[b][best]});
  }
}

// Crops each mask to its bounding box; drops empty masks and those under
// the score threshold.
std::vector<AttachedObject> crop_objects (const std::vector<ObjectResult> &objects, int width,
    int height, double score_threshold, bool with_logits, cv::Mat &full) {
  std::vector<AttachedObject> out;
  for (const auto &o : objects) {
    // 0 = keep all (SAM 1's raw IoU head can go slightly below 0)
    if (score_threshold > 0 && o.iou < score_threshold) continue;
    auto mask = o.mask.contiguous ();  // float 0/1, H x W
    // one SIMD pass to 0/255 bytes (into a reused frame-size buffer: fresh
    // multi-megabyte allocations cost page faults every frame), then the bbox
    cv::compare (cv::Mat (height, width, CV_32FC1, mask.data_ptr<float> ()), 0.5, full,
        cv::CMP_GT);
    cv::Rect box = cv::boundingRect (full);
    if (box.width <= 0 || box.height <= 0) continue;  // empty mask
    AttachedObject a{o.object_id, o.source, box, o.iou, {}, o.parent_roi_id, {}, 0, 0};
    a.crop.resize (static_cast<size_t> (box.width) * box.height);
    cv::Mat dst (box.height, box.width, CV_8UC1, a.crop.data ());
    full (box).copyTo (dst);
    if (with_logits && o.logits.defined ()) {
      auto l = o.logits.to (torch::kFloat).contiguous ();
      a.lh = static_cast<int> (l.size (0));
      a.lw = static_cast<int> (l.size (1));
      a.logits.assign (l.data_ptr<float> (), l.data_ptr<float> () + l.numel ());
    }
    out.push_back (std::move (a));
  }
  return out;
}

// Objects per decoder call on a w x h frame: their masks at frame resolution
// stay under kMaxDecodeBytes (at least one object per call).
size_t decode_chunk (int w, int h, bool multimask) {
  const guint64 per_object = static_cast<guint64> (w) * static_cast<guint64> (h) *
                             (multimask ? 3 : 1) * kDecodeBytesPerMaskPixel;
  return static_cast<size_t> (std::max<guint64> (1, kMaxDecodeBytes / std::max<guint64> (1, per_object)));
}

// The decoder for one frame: every prompt group of its snapshot, on the
// embedding `pending.index` of `pred`, box groups in calls of at most
// `chunk` objects. Each call's masks are cropped (crop_objects, `full` is
// its scratch) before the next call, so only the crops outlive it. Objects
// keep stable ids: boxes 0..B-1, the points object B, upstream ROIs after,
// run-time prompts >= 1000.
std::vector<AttachedObject> decode (sam3::InteractiveImagePredictor &pred, const Pending &p,
    size_t chunk, int width, int height, cv::Mat &full) {
  const Settings &s = p.s;
  std::vector<AttachedObject> out;
  pred.mask_threshold = s.mask_threshold;
  const sam3::PredictorDefaults &model_default = pred.model ().config ().predictor;
  pred.max_hole_area = s.max_hole_area >= 0 ? s.max_hole_area : model_default.max_hole_area;
  pred.max_sprinkle_area =
      s.max_sprinkle_area >= 0 ? s.max_sprinkle_area : model_default.max_sprinkle_area;
  // parents: the prompting ROI ids of the call's objects (nullptr: none)
  auto run = [&] (const sam3::PredictArgs &a, guint first_id, GstSam3PromptSource source,
                 const gint *parents) {
    std::vector<ObjectResult> objects;
    collect (pred.predict_image (p.index, a), first_id, source, &objects);
    for (size_t i = 0; parents && i < objects.size (); ++i) objects[i].parent_roi_id = parents[i];
    auto cropped = crop_objects (objects, width, height, s.score_threshold, s.attach_logits, full);
    out.insert (out.end (), std::make_move_iterator (cropped.begin ()),
        std::make_move_iterator (cropped.end ()));
  };
  auto run_boxes = [&] (const std::vector<std::array<float, 4>> &boxes, guint first_id,
                       GstSam3PromptSource source, const std::vector<gint> *parents) {
    for (size_t k = 0; k < boxes.size (); k += chunk) {
      const size_t n = std::min (chunk, boxes.size () - k);
      const std::vector<std::array<float, 4>> part (boxes.begin () + k, boxes.begin () + k + n);
      run (prompt_args (part, {}, s.multimask_output), first_id + static_cast<guint> (k), source,
          parents ? parents->data () + k : nullptr);
    }
  };
  if (!s.boxes.empty ()) run_boxes (s.boxes, 0, GST_SAM3_PROMPT_SOURCE_PROPERTY, nullptr);
  if (!s.points.empty ())
    run (prompt_args ({}, s.points, s.multimask_output), static_cast<guint> (s.boxes.size ()),
        GST_SAM3_PROMPT_SOURCE_PROPERTY, nullptr);
  if (!p.rois.empty ()) {
    std::vector<std::array<float, 4>> boxes;
    std::vector<gint> parents;
    for (const auto &r : p.rois) {
      boxes.push_back (r.box);
      parents.push_back (r.roi_id);
    }
    const guint first_id = static_cast<guint> (s.boxes.size () + (s.points.empty () ? 0 : 1));
    run_boxes (boxes, first_id, GST_SAM3_PROMPT_SOURCE_ROI_META, &parents);
  }
  for (const auto &d : p.dynamic)
    run (prompt_args (d.box, d.points, s.multimask_output), d.object_id, d.source, nullptr);
  return out;
}

// Adds the mask meta, one ROI meta per object and the Sam3Result summary.
void attach (GstBuffer *buf, const std::vector<AttachedObject> &objects, int width, int height,
    bool stale) {
  GstSam3MaskMeta *meta = gst_buffer_add_sam3_mask_meta (buf, width, height);
  for (const auto &o : objects) {
    const gint parent = stale ? -1 : o.parent_roi_id;
    GstSam3MaskObject *obj = gst_sam3_mask_meta_add_object (meta, o.object_id, o.source, o.box.x,
        o.box.y, o.box.width, o.box.height, o.iou, o.crop.data (), o.box.width);
    GstVideoRegionOfInterestMeta *roi = gst_buffer_add_video_region_of_interest_meta (buf,
        "sam3-mask", o.box.x, o.box.y, o.box.width, o.box.height);
    roi->id = static_cast<gint> (o.object_id);
    roi->parent_id = parent;
    gst_video_region_of_interest_meta_add_param (roi, gst_structure_new ("sam/mask",
        "iou", G_TYPE_DOUBLE, static_cast<double> (o.iou),
        "object-id", G_TYPE_UINT, o.object_id,
        "mask-width", G_TYPE_UINT, static_cast<guint> (o.box.width),
        "mask-height", G_TYPE_UINT, static_cast<guint> (o.box.height),
        "stale", G_TYPE_BOOLEAN, stale, NULL));
    if (obj) {
      obj->roi_id = roi->id;
      obj->parent_roi_id = parent;
      obj->stale = stale;
      if (!o.logits.empty ())
        gst_sam3_mask_object_set_logits (obj, o.logits.data (), o.lw, o.lh);
    }
  }
  gst_buffer_add_sam3_result_meta (buf, meta);
  // GstAnalytics ODMtd + SegmentationMtd (GStreamer >= 1.26 builds; no-op on 1.22)
  GError *err = nullptr;
  if (!gst_sam3_attach_analytics (buf, meta, &err)) {
    GST_WARNING ("GstAnalytics output: %s", err ? err->message : "failed");
    g_clear_error (&err);
  }
}

// The RGB conversion buffer for slot k of a batch (YUV input).
GstBuffer *rgb_slot (State *st, size_t k) {
  while (st->rgb_slots.size () <= k) {
    st->rgb_slots.emplace_back (GST_VIDEO_INFO_SIZE (&st->rgb_info));
    auto &v = st->rgb_slots.back ();
    st->rgb_slot_buffers.push_back (gst_buffer_new_wrapped_full (GST_MEMORY_FLAG_NO_SHARE,
        v.data (), v.size (), 0, v.size (), nullptr, nullptr));
  }
  return st->rgb_slot_buffers[k];
}

}  // namespace

static void disarm_timer (GstSam3Segment *self) {
  std::lock_guard<std::mutex> lk (self->timer->mutex);
  self->timer->armed = false;
  self->timer->generation++;
}

// Runs the encoder on the distinct new frames of the batch (one call), the
// decoder on every frame with prompts, attaches the metadata and moves the
// frames, in order, to st->ready. On failure posts an error, drops the batch.
static GstFlowReturn process_pending (GstSam3Segment *self, State *st) {
  if (st->pending.empty ()) return GST_FLOW_OK;
  disarm_timer (self);
  const gint64 t_start = g_get_monotonic_time ();
  const int w = GST_VIDEO_INFO_WIDTH (&st->info), h = GST_VIDEO_INFO_HEIGHT (&st->info);
  auto &batch = st->pending;
  const int other = 1 - st->cache_pred;
  std::vector<size_t> to_encode;  // indices into batch
  double enc_ms = 0, dec_ms = 0;
  guint64 inferred = 0, skipped = 0;
  std::string failure;
  try {
    // 1. which embedding each frame uses: the cached one, a frame earlier in
    // this batch, or a new one
    for (size_t i = 0; i < batch.size (); ++i) {
      Pending &p = batch[i];
      if (!p.infer) continue;
      if (st->cache_valid && frame_equals_bytes (st->planes, &p.frame, st->cache_bytes)) {
        p.pred = st->cache_pred;
        p.index = st->cache_index;
        continue;
      }
      p.pred = other;
      p.index = to_encode.size ();
      for (size_t k = 0; k < to_encode.size (); ++k) {
        if (frames_equal (st->planes, &batch[to_encode[k]].frame, &p.frame)) {
          p.index = k;
          break;
        }
      }
      if (p.index == to_encode.size ()) to_encode.push_back (i);
    }
    // 2. one encoder call for the new frames
    if (!to_encode.empty ()) {
      std::vector<sam3::ImageView> views;
      for (size_t k = 0; k < to_encode.size (); ++k) {
        GstVideoFrame *f = &batch[to_encode[k]].frame;
        if (st->direct) {
          views.push_back ({static_cast<const uint8_t *> (GST_VIDEO_FRAME_PLANE_DATA (f, 0)), w, h,
              static_cast<size_t> (GST_VIDEO_FRAME_PLANE_STRIDE (f, 0)), st->direct_format});
        } else {
          GstVideoFrame out;
          if (!gst_video_frame_map (&out, &st->rgb_info, rgb_slot (st, k), GST_MAP_WRITE))
            throw std::runtime_error ("cannot map the RGB conversion buffer");
          gst_video_converter_frame (st->converter, f, &out);
          gst_video_frame_unmap (&out);
          views.push_back ({st->rgb_slots[k].data (), w, h,
              static_cast<size_t> (GST_VIDEO_INFO_PLANE_STRIDE (&st->rgb_info, 0)),
              sam3::PixelFormat::kRGB});
        }
      }
      const gint64 t0 = g_get_monotonic_time ();
      if (views.size () == 1)
        st->predictors[other]->set_image (views[0]);
      else
        st->predictors[other]->set_image_batch (views);
      enc_ms = ms_since (t0);
    }
    // 3. the last inferred frame becomes the cached one
    for (size_t i = batch.size (); i-- > 0;) {
      if (!batch[i].infer) continue;
      if (batch[i].pred == other) {
        frame_to_bytes (st->planes, &batch[i].frame, &st->cache_bytes);
        st->cache_pred = other;
        st->cache_index = batch[i].index;
        st->cache_valid = true;
      }
      break;
    }
  } catch (const std::exception &e) {
    failure = e.what ();
  }
  for (auto &p : batch) {
    if (p.mapped) gst_video_frame_unmap (&p.frame);
    p.mapped = false;
  }
  // 4. decoder + metadata, in stream order
  for (size_t i = 0; i < batch.size () && failure.empty (); ++i) {
    Pending &p = batch[i];
    try {
      if (p.infer) {
        const gint64 t0 = g_get_monotonic_time ();
        st->last_objects = decode (*st->predictors[p.pred], p,
            decode_chunk (w, h, p.s.multimask_output), w, h, st->mask_scratch);
        dec_ms += ms_since (t0);
        st->have_last = true;
        p.buf = gst_buffer_make_writable (p.buf);
        attach (p.buf, st->last_objects, w, h, false);
        inferred++;
      } else if (p.has_prompts) {
        skipped++;
        if (p.s.skip_mode == SKIP_STALE && st->have_last) {
          p.buf = gst_buffer_make_writable (p.buf);
          attach (p.buf, st->last_objects, w, h, true);
        }
      } else {
        st->last_objects.clear ();  // prompts gone: nothing to re-attach later
        st->have_last = false;
      }
    } catch (const std::exception &e) {
      failure = e.what ();
    }
  }
  if (!failure.empty ()) {
    st->drop_queued ();
    st->cache_valid = false;
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Segmentation failed"), ("%s", failure.c_str ()));
    return GST_FLOW_ERROR;
  }
  for (auto &p : batch) st->ready.push_back (p.buf);
  batch.clear ();
  st->pending_infer = 0;
  GST_OBJECT_LOCK (self);
  Stats &stats = *self->stats;
  if (!to_encode.empty ()) {
    stats.encoder_runs++;
    stats.frames_encoded += to_encode.size ();
    stats.encoder_ms += enc_ms;
  }
  stats.decoder_runs += inferred;
  stats.decoder_ms += dec_ms;
  stats.frames_inferred += inferred;
  stats.frames_skipped += skipped;
  stats.process_ms += ms_since (t_start);
  GST_OBJECT_UNLOCK (self);
  return GST_FLOW_OK;
}

// Pushes the processed frames downstream (streaming thread or timer thread,
// stream lock held).
static GstFlowReturn push_ready (GstSam3Segment *self, State *st) {
  GstFlowReturn ret = GST_FLOW_OK;
  while (!st->ready.empty ()) {
    GstBuffer *b = st->ready.front ();
    st->ready.pop_front ();
    if (ret == GST_FLOW_OK)
      ret = gst_pad_push (GST_BASE_TRANSFORM_SRC_PAD (self), b);
    else
      gst_buffer_unref (b);
  }
  return ret;
}

// Completes a partial batch and pushes it (EOS, serialized events, timeout).
static GstFlowReturn drain (GstSam3Segment *self) {
  State *st = self->state;
  if (!st) return GST_FLOW_OK;
  GstFlowReturn ret = process_pending (self, st);
  GstFlowReturn push = push_ready (self, st);
  return ret != GST_FLOW_OK ? ret : push;
}

static void timer_loop_impl (GstSam3Segment *self) {
  Timer &t = *self->timer;
  std::unique_lock<std::mutex> lk (t.mutex);
  while (!t.quit) {
    if (!t.armed) {
      t.cond.wait (lk);
      continue;
    }
    if (t.cond.wait_until (lk, t.deadline) != std::cv_status::timeout) continue;
    if (t.quit || !t.armed || std::chrono::steady_clock::now () < t.deadline) continue;
    const guint64 generation = t.generation;
    lk.unlock ();
    // the stream lock serialises this with chain and serialized events
    GST_PAD_STREAM_LOCK (GST_BASE_TRANSFORM_SINK_PAD (self));
    lk.lock ();
    const bool still_due = !t.quit && t.armed && t.generation == generation;
    lk.unlock ();
    GstFlowReturn ret = GST_FLOW_OK;
    if (still_due && !GST_PAD_IS_FLUSHING (GST_BASE_TRANSFORM_SINK_PAD (self))) {
      GST_DEBUG_OBJECT (self, "batch-timeout: completing a partial batch");
      ret = drain (self);
    }
    // still under the stream lock: a FLUSH_STOP (serialized) that follows
    // resets it; set after the unlock, a FLUSHING from a push racing a flush
    // would outlive that flush and fail the next chain call
    if (ret != GST_FLOW_OK) {
      GST_OBJECT_LOCK (self);
      self->timer_flow = ret;  // returned by the next chain call
      GST_OBJECT_UNLOCK (self);
    }
    GST_PAD_STREAM_UNLOCK (GST_BASE_TRANSFORM_SINK_PAD (self));
    lk.lock ();
  }
}

// Takes each input buffer from GstBaseTransform (which did negotiation and
// QoS), reads the settings and prompts for it once, and queues it; a full
// batch is processed at once. Processed frames leave via generate_output.
static GstFlowReturn submit_input_buffer_impl (GstBaseTransform *trans,
    gboolean is_discont, GstBuffer *input) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (trans);
  GstFlowReturn ret = GST_BASE_TRANSFORM_CLASS (gst_sam3_segment_parent_class)
                          ->submit_input_buffer (trans, is_discont, input);
  if (ret != GST_FLOW_OK) return ret;
  GstBuffer *buf = trans->queued_buf;
  trans->queued_buf = nullptr;
  if (!buf) return GST_FLOW_OK;
  State *st = self->state;
  if (!st || !st->have_caps) {
    gst_buffer_unref (buf);
    return GST_FLOW_NOT_NEGOTIATED;
  }
  const gint64 t_start = g_get_monotonic_time ();
  const int w = GST_VIDEO_INFO_WIDTH (&st->info), h = GST_VIDEO_INFO_HEIGHT (&st->info);

  Pending p;
  p.buf = buf;
  std::vector<std::string> dynamic_problems;
  GST_OBJECT_LOCK (self);
  if (self->timer_flow != GST_FLOW_OK) {
    ret = self->timer_flow;
    self->timer_flow = GST_FLOW_OK;
  }
  p.s = *self->settings;
  self->stats->frames_in++;
  // drop (and report below) run-time prompts that do not fit this frame
  auto &dyn_all = *self->dynamic;
  for (auto it = dyn_all.begin (); it != dyn_all.end ();) {
    std::string why = sam3gst::check_dynamic (*it, w, h);
    if (why.empty ()) {
      ++it;
    } else {
      dynamic_problems.push_back ("object " + std::to_string (it->object_id) + ": " + why);
      it = dyn_all.erase (it);
    }
  }
  for (const auto &d : dyn_all) {
    const guint flag = d.source == GST_SAM3_PROMPT_SOURCE_NAVIGATION ? SOURCE_NAVIGATION
                       : d.source == GST_SAM3_PROMPT_SOURCE_EVENT    ? SOURCE_EVENT
                                                                     : SOURCE_SIGNAL;
    if (p.s.prompt_source & flag) p.dynamic.push_back (d);
  }
  GST_OBJECT_UNLOCK (self);
  if (ret != GST_FLOW_OK) {
    gst_buffer_unref (buf);
    return ret;
  }
  for (const auto &why : dynamic_problems) {
    GST_ELEMENT_WARNING (self, LIBRARY, SETTINGS, ("Invalid prompt, removed"), ("%s",
        why.c_str ()));
  }
  Settings &s = p.s;
  if (!(s.prompt_source & SOURCE_PROPERTY)) {
    s.boxes.clear ();
    s.points.clear ();
    s.prompt_error.clear ();
  }
  const std::string prompt_problem =
      s.prompt_error.empty () ? sam3gst::check_prompts (s.boxes, s.points, w, h) : s.prompt_error;
  if (!prompt_problem.empty ()) {
    if (st->warned_serial != s.prompt_serial) {
      st->warned_serial = s.prompt_serial;
      GST_ELEMENT_WARNING (self, LIBRARY, SETTINGS, ("Invalid prompt, ignored"), ("%s",
          prompt_problem.c_str ()));
    }
    s.boxes.clear ();
    s.points.clear ();
  }
  if (s.prompt_source & SOURCE_ROI_META) {
    size_t dropped = 0;
    p.rois = sam3gst::roi_prompts (buf, s.object_classes, w, h, &dropped);
    if (dropped > 0 && !st->warned_roi_cap) {
      // once per start: a detector that floods every frame would flood the bus
      st->warned_roi_cap = true;
      GST_ELEMENT_WARNING (self, STREAM, TOO_LAZY, ("Too many ROI metas, some ignored"),
          ("frame %" G_GUINT64_FORMAT ": %zu upstream ROI metas beyond the cap of %zu per frame "
           "were not used as prompts (the first %zu in meta order were)", self->stats->frames_in,
              dropped, sam3gst::kMaxRoiPrompts, sam3gst::kMaxRoiPrompts));
    }
  }
  p.has_prompts = !s.boxes.empty () || !s.points.empty () || !p.rois.empty () ||
                  !p.dynamic.empty ();
  const guint interval = std::max (1u, s.inference_interval);
  p.infer = p.has_prompts && st->frame_index % interval == 0;
  if (p.has_prompts) st->frame_index++;

  if (p.infer) {
    if (!gst_video_frame_map (&p.frame, &st->info, buf, GST_MAP_READ)) {
      gst_buffer_unref (buf);
      GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Cannot map the frame"),
          ("buffer of %" G_GSIZE_FORMAT " bytes does not match the caps",
              gst_buffer_get_size (buf)));
      return GST_FLOW_ERROR;
    }
    p.mapped = true;
  }
  const bool infer = p.infer;
  const bool alone = !infer && st->pending.empty ();  // nothing before it: handle it now
  // at most kMaxBatchBytes of frames held (the mapped input and its RGB copy)
  const guint64 frame_bytes = GST_VIDEO_INFO_SIZE (&st->info) +
                              (st->direct ? 0 : GST_VIDEO_INFO_SIZE (&st->rgb_info));
  const guint batch_size = static_cast<guint> (std::min<guint64> (std::max (1u, s.batch_size),
      std::max<guint64> (1, kMaxBatchBytes / std::max<guint64> (1, frame_bytes))));
  const guint64 batch_timeout = s.batch_timeout;
  st->pending.push_back (std::move (p));
  if (infer) st->pending_infer++;
  const bool full = alone || st->pending_infer >= batch_size;
  if (!full && infer && st->pending_infer == 1 && batch_timeout > 0) {
    std::lock_guard<std::mutex> lk (self->timer->mutex);
    self->timer->armed = true;
    self->timer->deadline = std::chrono::steady_clock::now () +
                            std::chrono::nanoseconds (batch_timeout);
    self->timer->cond.notify_all ();
  }
  GST_OBJECT_LOCK (self);
  self->stats->process_ms += ms_since (t_start);
  GST_OBJECT_UNLOCK (self);
  if (full) ret = process_pending (self, st);
  return ret;
}

// Hands the processed frames to GstBaseTransform, one per call, in order
// (it calls this until it gets no buffer).
static GstFlowReturn gst_sam3_segment_generate_output (GstBaseTransform *trans,
    GstBuffer **outbuf) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (trans);
  State *st = self->state;
  *outbuf = nullptr;
  if (st && !st->ready.empty ()) {
    *outbuf = st->ready.front ();
    st->ready.pop_front ();
  }
  return GST_FLOW_OK;
}

// GstBaseTransform only treats an element with a transform function as
// non-passthrough; buffers never reach this one: submit_input_buffer and
// generate_output above replace the per-buffer path.
static GstFlowReturn gst_sam3_segment_transform_ip (GstBaseTransform *, GstBuffer *) {
  return GST_FLOW_OK;
}

// Applies a sam3/prompt or sam3/clear-prompts event structure.
static void handle_prompt_event (GstSam3Segment *self, const GstStructure *s) {
  const bool clear = gst_structure_has_name (s, "sam3/clear-prompts");
  guint id = G_MAXUINT;
  const bool has_id = gst_structure_get_uint (s, "object-id", &id);
  if (gst_structure_has_field (s, "object-id") && !has_id) {
    GST_ELEMENT_WARNING (self, STREAM, FORMAT, ("Invalid prompt event, ignored"),
        ("%s: object-id must be a guint", gst_structure_get_name (s)));
    return;
  }
  DynamicPrompt d;
  d.source = GST_SAM3_PROMPT_SOURCE_EVENT;
  std::string err;
  if (!clear && !sam3gst::parse_prompt_structure (s, &d, &err)) {
    GST_ELEMENT_WARNING (self, STREAM, FORMAT, ("Invalid prompt event, ignored"),
        ("sam3/prompt: %s", err.c_str ()));
    return;
  }
  GST_OBJECT_LOCK (self);
  const bool enabled = self->settings->prompt_source & SOURCE_EVENT;
  auto &dyn = *self->dynamic;
  bool full = false;
  if (enabled && clear) {
    dyn.erase (std::remove_if (dyn.begin (), dyn.end (), [&] (const DynamicPrompt &x) {
      return !has_id || x.object_id == id;
    }), dyn.end ());
  } else if (enabled) {
    if (has_id) {
      dyn.erase (std::remove_if (dyn.begin (), dyn.end (), [&] (const DynamicPrompt &x) {
        return x.object_id == id;
      }), dyn.end ());
      d.object_id = id;
    }
    full = dyn.size () >= sam3gst::kMaxDynamicObjects;
    if (!full) {
      if (!has_id) d.object_id = self->next_dynamic_id++;
      dyn.push_back (d);
    }
  }
  GST_OBJECT_UNLOCK (self);
  if (full) {
    GST_ELEMENT_WARNING (self, STREAM, TOO_LAZY, ("Too many run-time objects, prompt ignored"),
        ("sam3/prompt: %zu run-time objects (events, signals, clicks) already exist, the cap; "
         "end some with sam3/clear-prompts", sam3gst::kMaxDynamicObjects));
    return;
  }
  GST_DEBUG_OBJECT (self, "%s prompt event %" GST_PTR_FORMAT, enabled ? "applied" : "ignored", s);
}

static gboolean sink_event_impl (GstBaseTransform *trans, GstEvent *event) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (trans);
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_STOP:
      // frames queued before the flush are dropped
      if (self->state) {
        self->state->drop_queued ();
        self->state->frame_index = 0;
      }
      disarm_timer (self);
      GST_OBJECT_LOCK (self);
      self->timer_flow = GST_FLOW_OK;
      GST_OBJECT_UNLOCK (self);
      break;
    case GST_EVENT_CUSTOM_DOWNSTREAM: {
      const GstStructure *s = gst_event_get_structure (event);
      if (s && (gst_structure_has_name (s, "sam3/prompt") ||
                   gst_structure_has_name (s, "sam3/clear-prompts"))) {
        // frames already queued took their prompts on arrival: no drain
        handle_prompt_event (self, s);
        gst_event_unref (event);
        return TRUE;
      }
      drain (self);
      break;
    }
    default:
      // keep events in order with the queued frames
      if (GST_EVENT_IS_SERIALIZED (event)) drain (self);
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (gst_sam3_segment_parent_class)->sink_event (trans, event);
}

// Latency added by batching: a frame may wait for batch-size - 1 more
// frames, or batch-timeout if that is shorter.
static GstClockTime batching_latency (GstSam3Segment *self) {
  GST_OBJECT_LOCK (self);
  const guint n = self->settings->batch_size;
  const guint64 timeout = self->settings->batch_timeout;
  const gint fps_n = self->fps_n, fps_d = self->fps_d;
  GST_OBJECT_UNLOCK (self);
  if (n <= 1) return 0;
  GstClockTime wait = GST_CLOCK_TIME_NONE;
  if (fps_n > 0 && fps_d > 0)
    wait = gst_util_uint64_scale_int (GST_SECOND * (n - 1), fps_d, fps_n);
  if (timeout > 0 && (!GST_CLOCK_TIME_IS_VALID (wait) || timeout < wait)) wait = timeout;
  return GST_CLOCK_TIME_IS_VALID (wait) ? wait : 0;
}

static gboolean query_impl (GstBaseTransform *trans, GstPadDirection direction,
    GstQuery *query) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (trans);
  if (direction == GST_PAD_SRC && GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    if (!GST_BASE_TRANSFORM_CLASS (gst_sam3_segment_parent_class)->query (trans, direction, query))
      return FALSE;
    gboolean live;
    GstClockTime min, max;
    gst_query_parse_latency (query, &live, &min, &max);
    const GstClockTime ours = batching_latency (self);
    min += ours;
    if (GST_CLOCK_TIME_IS_VALID (max)) max += ours;
    GST_DEBUG_OBJECT (self, "batching latency %" GST_TIME_FORMAT, GST_TIME_ARGS (ours));
    gst_query_set_latency (query, live, min, max);
    return TRUE;
  }
  return GST_BASE_TRANSFORM_CLASS (gst_sam3_segment_parent_class)->query (trans, direction, query);
}

// add-prompt: a GstStructure with "box" (<x0,y0,x1,y1>) and/or "points"
// (<<x,y,label>, ...>) in input-frame pixels; returns the new object id, or
// G_MAXUINT (with a warning on the bus) when the structure is malformed.
static guint add_prompt_impl (GstSam3Segment *self, GstStructure *prompt) {
  DynamicPrompt d;
  d.source = GST_SAM3_PROMPT_SOURCE_SIGNAL;
  std::string err;
  if (!sam3gst::parse_prompt_structure (prompt, &d, &err)) {
    GST_ELEMENT_WARNING (self, LIBRARY, SETTINGS, ("Invalid prompt, ignored"), ("add-prompt: %s",
        err.c_str ()));
    return G_MAXUINT;
  }
  GST_OBJECT_LOCK (self);
  const bool full = self->dynamic->size () >= sam3gst::kMaxDynamicObjects;
  if (!full) {
    d.object_id = self->next_dynamic_id++;
    self->dynamic->push_back (d);
  }
  GST_OBJECT_UNLOCK (self);
  if (full) {
    GST_ELEMENT_WARNING (self, STREAM, TOO_LAZY, ("Too many run-time objects, prompt ignored"),
        ("add-prompt: %zu run-time objects (events, signals, clicks) already exist, the cap; "
         "end some with clear-prompts", sam3gst::kMaxDynamicObjects));
    return G_MAXUINT;
  }
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
static gboolean src_event_impl (GstBaseTransform *trans, GstEvent *event) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (trans);
  gint button = 0;
  gdouble x = 0, y = 0;
  if (GST_EVENT_TYPE (event) == GST_EVENT_NAVIGATION &&
      gst_navigation_event_get_type (event) == GST_NAVIGATION_EVENT_MOUSE_BUTTON_PRESS &&
      gst_navigation_event_parse_mouse_button_event (event, &button, &x, &y)) {
    bool click_ignored = false;
    GST_OBJECT_LOCK (self);
    if (self->settings->prompt_source & SOURCE_NAVIGATION) {
      auto &dyn = *self->dynamic;
      auto it = std::find_if (dyn.begin (), dyn.end (), [] (const DynamicPrompt &d) {
        return d.source == GST_SAM3_PROMPT_SOURCE_NAVIGATION;
      });
      if (button == 2) {
        if (it != dyn.end ()) dyn.erase (it);
      } else if (button == 1 || button == 3) {
        if (it == dyn.end () && dyn.size () < sam3gst::kMaxDynamicObjects) {
          DynamicPrompt d;
          d.source = GST_SAM3_PROMPT_SOURCE_NAVIGATION;
          d.object_id = self->next_dynamic_id++;
          dyn.push_back (d);
          it = dyn.end () - 1;
        }
        // beyond the caps the click is ignored (logged): the click object
        // holds at most kMaxPointsPerObject points
        if (it != dyn.end () && it->points.size () < sam3gst::kMaxPointsPerObject)
          it->points.push_back ({static_cast<float> (x), static_cast<float> (y),
              button == 1 ? 1.f : 0.f});
        else
          click_ignored = true;
      }
    }
    GST_OBJECT_UNLOCK (self);
    // (logged after the unlock: an object's debug line takes its lock)
    if (click_ignored)
      GST_WARNING_OBJECT (self, "click at %.1f,%.1f ignored: prompt caps reached", x, y);
  }
  return GST_BASE_TRANSFORM_CLASS (gst_sam3_segment_parent_class)->src_event (trans, event);
}


// No C++ exception may cross into GObject / GStreamer code: every vfunc,
// signal handler and the timer thread enter through these wrappers (what can
// still throw at that level is an allocation failure or a LibTorch error).
template <typename R, typename F>
static R guarded (GstSam3Segment *self, R fallback, F &&f) {
  try {
    return f ();
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR (self, CORE, FAILED, ("Internal error"), ("%s", e.what ()));
  } catch (...) {
    GST_ELEMENT_ERROR (self, CORE, FAILED, ("Internal error"), ("unknown exception"));
  }
  return fallback;
}

static void gst_sam3_segment_set_property (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec) {
  guarded (GST_SAM3_SEGMENT (object), 0, [&] {
    set_property_impl (object, prop_id, value, pspec);
    return 0;
  });
}

static void gst_sam3_segment_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec) {
  guarded (GST_SAM3_SEGMENT (object), 0, [&] {
    get_property_impl (object, prop_id, value, pspec);
    return 0;
  });
}

static gboolean gst_sam3_segment_set_caps (GstBaseTransform *trans, GstCaps *incaps,
    GstCaps *outcaps) {
  return guarded (GST_SAM3_SEGMENT (trans), FALSE,
      [&] { return set_caps_impl (trans, incaps, outcaps); });
}

static gboolean gst_sam3_segment_accept_caps (GstBaseTransform *trans, GstPadDirection direction,
    GstCaps *caps) {
  return guarded (GST_SAM3_SEGMENT (trans), FALSE,
      [&] { return accept_caps_impl (trans, direction, caps); });
}

static GstFlowReturn gst_sam3_segment_submit_input_buffer (GstBaseTransform *trans,
    gboolean is_discont, GstBuffer *input) {
  return guarded (GST_SAM3_SEGMENT (trans), GST_FLOW_ERROR,
      [&] { return submit_input_buffer_impl (trans, is_discont, input); });
}

static gboolean gst_sam3_segment_sink_event (GstBaseTransform *trans, GstEvent *event) {
  return guarded (GST_SAM3_SEGMENT (trans), FALSE,
      [&] { return sink_event_impl (trans, event); });
}

static gboolean gst_sam3_segment_src_event (GstBaseTransform *trans, GstEvent *event) {
  return guarded (GST_SAM3_SEGMENT (trans), FALSE, [&] { return src_event_impl (trans, event); });
}

static gboolean gst_sam3_segment_query (GstBaseTransform *trans, GstPadDirection direction,
    GstQuery *query) {
  return guarded (GST_SAM3_SEGMENT (trans), FALSE,
      [&] { return query_impl (trans, direction, query); });
}

static guint gst_sam3_segment_add_prompt (GstSam3Segment *self, GstStructure *prompt) {
  return guarded (self, G_MAXUINT, [&] { return add_prompt_impl (self, prompt); });
}

static void timer_loop (GstSam3Segment *self) {
  guarded (self, 0, [&] {
    timer_loop_impl (self);
    return 0;
  });
}

static void gst_sam3_segment_finalize (GObject *object) {
  GstSam3Segment *self = GST_SAM3_SEGMENT (object);
  delete self->state;
  delete self->stats;
  delete self->settings;
  delete self->dynamic;
  delete self->timer;
  G_OBJECT_CLASS (gst_sam3_segment_parent_class)->finalize (object);
}

static void gst_sam3_segment_init (GstSam3Segment *self) {
  self->settings = new Settings ();
  self->stats = new Stats ();
  self->state = nullptr;
  self->timer = new Timer ();
  self->dynamic = new std::vector<DynamicPrompt> ();
  self->next_dynamic_id = kFirstDynamicId;
  self->fps_n = 0;
  self->fps_d = 1;
  self->timer_flow = GST_FLOW_OK;
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
  // the default is resolved once: installed copy, else the source tree's
  static const std::string default_model = sam3::default_model_path ();
  g_object_class_install_property (gobject_class, PROP_MODEL_FILE,
      g_param_spec_string ("model-file", "Model file",
          "Checkpoint (loaded when the element starts): the official sam3.pt, a SAM 2.1 .pt, "
          "a SAM 1 .pth or a .safetensors with their key names. Default: the bundled small "
          "SAM 3 model trained on synthetic scenes (docs/training.md); NULL restores it",
          default_model.c_str (), ready));
  g_object_class_install_property (gobject_class, PROP_MODEL_CONFIG,
      g_param_spec_string ("model-config", "Model config",
          "Optional JSON configuration (official argument names); empty = derive from the "
          "checkpoint", nullptr, ready));
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_enum ("device", "Device",
          "Where to run the model; cuda without CUDA is an error, never a silent CPU fallback",
          sam3_device_get_type (), DEVICE_AUTO, ready));
  g_object_class_install_property (gobject_class, PROP_CUDA_DEVICE_ID,
      g_param_spec_int ("cuda-device-id", "CUDA device id",
          "Index of the CUDA GPU used when device is cuda (or auto with CUDA)", 0, 63, 0, ready));
  g_object_class_install_property (gobject_class, PROP_PRECISION,
      g_param_spec_enum ("precision", "Precision", "Compute precision of the model",
          sam3_precision_get_type (), PRECISION_FP32, ready));
  g_object_class_install_property (gobject_class, PROP_NUM_THREADS,
      g_param_spec_int ("num-threads", "Threads",
          "CPU threads for LibTorch and OpenBLAS (process-wide) and the YUV to RGB "
          "conversion; 0 = all cores, -1 = leave LibTorch's setting unchanged", -1, 1024, 0,
          ready));
  g_object_class_install_property (gobject_class, PROP_BATCH_SIZE,
      g_param_spec_uint ("batch-size", "Batch size",
          "Frames embedded in one encoder call (frames; adds up to batch-size - 1 frame "
          "durations of latency)", 1, kMaxBatchSize, 1, playing));
  g_object_class_install_property (gobject_class, PROP_BATCH_TIMEOUT,
      g_param_spec_uint64 ("batch-timeout", "Batch timeout",
          "Complete a partial batch after this long without filling it (nanoseconds, wall "
          "clock from its first frame); 0 = wait for batch-size frames, EOS or a serialized "
          "event", 0, G_MAXUINT64, 0, playing));
  g_object_class_install_property (gobject_class, PROP_INFERENCE_INTERVAL,
      g_param_spec_uint ("inference-interval", "Inference interval",
          "Run the model on every N-th frame with prompts (frames); 1 = every frame",
          1, G_MAXUINT, 1, playing));
  g_object_class_install_property (gobject_class, PROP_SKIP_MODE,
      g_param_spec_enum ("skip-mode", "Skip mode",
          "What frames between inference-interval frames get", sam3_skip_mode_get_type (),
          SKIP_STALE, playing));
  g_object_class_install_property (gobject_class, PROP_BOXES,
      gst_param_spec_array ("boxes", "Box prompts",
          "Boxes <<x0,y0,x1,y1>, ...> in input-frame pixels, one object per box (ids 0, 1, ..)",
          gst_param_spec_array ("box", "Box", "x0,y0,x1,y1",
              g_param_spec_float ("coordinate", "Coordinate", "pixels", -G_MAXFLOAT,
                  G_MAXFLOAT, 0, G_PARAM_READWRITE), G_PARAM_READWRITE), playing));
  g_object_class_install_property (gobject_class, PROP_POINTS,
      gst_param_spec_array ("points", "Point prompts",
          "Points <<x,y,label>, ...> in input-frame pixels (label 1 foreground, 0 background); "
          "all points form one object (id = number of boxes)",
          gst_param_spec_array ("point", "Point", "x,y,label",
              g_param_spec_float ("value", "Value", "pixels or label", -G_MAXFLOAT, G_MAXFLOAT,
                  0, G_PARAM_READWRITE), G_PARAM_READWRITE), playing));
  g_object_class_install_property (gobject_class, PROP_MULTIMASK_OUTPUT,
      g_param_spec_boolean ("multimask-output", "Multimask output",
          "Predict 3 masks per object and attach the one with the highest predicted IoU "
          "(FALSE: one mask, chosen by SAM's stability rule)", FALSE, playing));
  g_object_class_install_property (gobject_class, PROP_MASK_THRESHOLD,
      g_param_spec_double ("mask-threshold", "Mask threshold",
          "Threshold on the mask logits (logit units; 0 = probability 0.5)", -100.0, 100.0, kDefaultMaskThreshold, playing));
  g_object_class_install_property (gobject_class, PROP_MAX_HOLE_AREA,
      g_param_spec_double ("max-hole-area", "Max hole area",
          "Fill holes up to this area (low-resolution mask pixels, 4G x 4G grid); 0 = off, "
          "-1 = the model's default (256 for sam3.pt, 0 for SAM 2.1 and the bundled model)",
          -1.0, G_MAXDOUBLE, kDefaultMaxHoleArea, playing));
  g_object_class_install_property (gobject_class, PROP_MAX_SPRINKLE_AREA,
      g_param_spec_double ("max-sprinkle-area", "Max sprinkle area",
          "Remove isolated regions up to this area (low-resolution mask pixels); 0 = off, "
          "-1 = the model's default (0 for the official checkpoints and the bundled model)",
          -1.0, G_MAXDOUBLE, kDefaultMaxSprinkleArea, playing));
  g_object_class_install_property (gobject_class, PROP_SCORE_THRESHOLD,
      g_param_spec_double ("score-threshold", "Score threshold",
          "Drop masks whose predicted IoU is lower; 0 = keep all", 0.0, 1.0, kDefaultScoreThreshold, playing));
  g_object_class_install_property (gobject_class, PROP_ATTACH_LOGITS,
      g_param_spec_boolean ("attach-logits", "Attach logits",
          "Also attach each mask's low-resolution logits (float32, 4G x 4G model-space grid) "
          "to the mask meta (GstSam3MaskObject.logits)", FALSE, playing));
  g_object_class_install_property (gobject_class, PROP_OBJECT_CLASS,
      g_param_spec_string ("object-class", "Object class",
          "Comma-separated roi_type names of the upstream GstVideoRegionOfInterestMeta that become "
          "box prompts; empty = all", "", playing));
  g_object_class_install_property (gobject_class, PROP_PROMPT_SOURCE,
      g_param_spec_flags ("prompt-source", "Prompt source", "Which prompt inputs are used",
          sam3_prompt_source_flags_get_type (), kDefaultPromptSource, playing));
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "Counters since start: frames-in, frames-inferred, frames-skipped (inference-interval), "
          "encoder-runs (encoder calls, one per batch), frames-encoded, decoder-runs (frames "
          "decoded), mean-encoder-ms (per call), mean-decoder-ms (per frame), total-encoder-ms, "
          "total-decoder-ms, total-process-ms (all time in the element's streaming code)",
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
  trans_class->accept_caps = GST_DEBUG_FUNCPTR (gst_sam3_segment_accept_caps);
  trans_class->submit_input_buffer = GST_DEBUG_FUNCPTR (gst_sam3_segment_submit_input_buffer);
  trans_class->generate_output = GST_DEBUG_FUNCPTR (gst_sam3_segment_generate_output);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_sam3_segment_transform_ip);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_sam3_segment_sink_event);
  trans_class->src_event = GST_DEBUG_FUNCPTR (gst_sam3_segment_src_event);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_sam3_segment_query);
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
   * Removes every prompt added by add-prompt, events or clicks.
   */
  sam3_segment_signals[SIGNAL_CLEAR_PROMPTS] = g_signal_new_class_handler ("clear-prompts",
      G_TYPE_FROM_CLASS (klass), static_cast<GSignalFlags> (G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
      G_CALLBACK (gst_sam3_segment_clear_prompts), nullptr, nullptr, nullptr, G_TYPE_NONE, 0);

  gst_type_mark_as_plugin_api (sam3_device_get_type (), static_cast<GstPluginAPIFlags> (0));
  gst_type_mark_as_plugin_api (sam3_precision_get_type (), static_cast<GstPluginAPIFlags> (0));
  gst_type_mark_as_plugin_api (sam3_skip_mode_get_type (), static_cast<GstPluginAPIFlags> (0));
  gst_type_mark_as_plugin_api (sam3_prompt_source_flags_get_type (),
      static_cast<GstPluginAPIFlags> (0));
}
