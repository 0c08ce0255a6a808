// sam3-pipeline-bench: frames/s and per-frame overhead of the sam3segment
// element beyond its encoder + decoder time.
//
//   appsrc (pre-generated distinct frames) ! sam3segment ! fakesink sync=false
//
// Runs one pipeline per batch size. The first --warmup frames (rounded up to a
// multiple of the batch size) are excluded: the element's `stats` are read
// when the first timed frame leaves appsrc (same streaming thread as the
// element, so every earlier frame has been fully processed) and again after
// EOS; the figures are the differences. A benchmark that prints figures, not
// a test; it only checks that every frame arrives, in order.
//
// Depends on GStreamer only: the plugin (and LibTorch) is loaded at run time.
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "sam3/cpu_kernels.h"

namespace {

constexpr const char *kProg = "sam3-pipeline-bench";
constexpr int kDistinctFrames = 8;  // cycled; consecutive frames always differ

#ifndef SAM3_SOURCE_ROOT
#define SAM3_SOURCE_ROOT ""
#endif
#ifndef SAM3_PLUGIN_BUILD_DIR
#define SAM3_PLUGIN_BUILD_DIR ""
#endif

// ---------------------------------------------------------------------------
// options

struct Options {
  std::string model;
  int width = 1920, height = 1080;
  std::string format = "RGB";
  int frames = 40;
  int warmup = 4;
  std::vector<guint> batch_sizes;
  int threads = 2;
  std::string boxes;  // property syntax, empty = default centre box
  std::string device = "cpu";  // the element's device property
  bool json = false;
};

int usage_error (const std::string &msg) {
  std::fprintf (stderr, "%s: error: %s\n", kProg, msg.c_str ());
  return 2;
}

bool parse_uint_list (const char *text, std::vector<guint> *out) {
  gchar **parts = g_strsplit (text, ",", -1);
  bool ok = parts[0] != nullptr;
  for (gchar **p = parts; ok && *p; ++p) {
    gchar *end = nullptr;
    const gchar *s = g_strstrip (*p);
    const guint64 v = g_ascii_strtoull (s, &end, 10);
    if (*s == '\0' || *end != '\0' || v == 0 || v > 1024) ok = false;
    else out->push_back (static_cast<guint> (v));
  }
  g_strfreev (parts);
  return ok;
}

// "x0,y0,x1,y1;x0,y0,x1,y1" -> "<<x0,y0,x1,y1>,<...>>"; property syntax as is
std::string boxes_property_syntax (const std::string &text) {
  if (!text.empty () && text[0] == '<') return text;
  std::string out = "<";
  gchar **parts = g_strsplit (text.c_str (), ";", -1);
  for (gchar **p = parts; *p; ++p) {
    if (p != parts) out += ",";
    out += "<" + std::string (g_strstrip (*p)) + ">";
  }
  g_strfreev (parts);
  return out + ">";
}

std::string find_default_model () {
  const char *rel = "../shared/fixtures/sam3/tiny-a/checkpoint.pt";
  std::vector<std::string> candidates;
  if (const char *fx = g_getenv ("SAM3_FIXTURES_DIR"))
    candidates.push_back (std::string (fx) + "/sam3/tiny-a/checkpoint.pt");
  candidates.push_back (rel);
  if (*SAM3_SOURCE_ROOT) candidates.push_back (std::string (SAM3_SOURCE_ROOT) + "/" + rel);
  for (const auto &c : candidates)
    if (g_file_test (c.c_str (), G_FILE_TEST_IS_REGULAR)) return c;
  return rel;  // reported as missing by the caller
}

// ---------------------------------------------------------------------------
// input frames

// K distinct frames of the requested format: a gradient background and a
// bright square that moves with the frame index. Written through the
// format's pack function (ARGB or AYUV lines), so any 8-bit format works.
bool make_frames (const GstVideoInfo *info, int count, std::vector<GstMemory *> *out) {
  const GstVideoFormatInfo *finfo = info->finfo;
  const GstVideoFormat unpack = finfo->unpack_format;
  if (unpack != GST_VIDEO_FORMAT_ARGB && unpack != GST_VIDEO_FORMAT_AYUV) return false;
  const bool yuv = unpack == GST_VIDEO_FORMAT_AYUV;
  const int w = GST_VIDEO_INFO_WIDTH (info), h = GST_VIDEO_INFO_HEIGHT (info);
  std::vector<guint8> line (static_cast<size_t> (w) * 4);
  for (int k = 0; k < count; ++k) {
    GstBuffer *buf = gst_buffer_new_allocate (nullptr, GST_VIDEO_INFO_SIZE (info), nullptr);
    GstVideoFrame frame;
    if (!gst_video_frame_map (&frame, const_cast<GstVideoInfo *> (info), buf, GST_MAP_WRITE)) {
      gst_buffer_unref (buf);
      return false;
    }
    const int side = std::max (8, std::min (w, h) / 4);
    const int sx = (w - side) * (k + 1) / (count + 1), sy = (h - side) * (count - k) / (count + 1);
    gpointer data[GST_VIDEO_MAX_PLANES];
    gint stride[GST_VIDEO_MAX_PLANES];
    for (guint i = 0; i < GST_VIDEO_MAX_PLANES; ++i) {
      data[i] = GST_VIDEO_FRAME_PLANE_DATA (&frame, i);
      stride[i] = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, i);
    }
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        guint8 *px = &line[static_cast<size_t> (x) * 4];
        const bool in_square = x >= sx && x < sx + side && y >= sy && y < sy + side;
        int r = (x * 255 / std::max (1, w - 1) + 29 * k) & 255;
        int g = (y * 255 / std::max (1, h - 1) + 53 * k) & 255;
        int b = ((x + y) / 4 + 17 * k) & 255;
        if (in_square) r = g = b = 240 - 10 * (k % 4);
        px[0] = 255;
        if (yuv) {  // BT.601 limited range
          px[1] = static_cast<guint8> ((66 * r + 129 * g + 25 * b + 128) / 256 + 16);
          px[2] = static_cast<guint8> ((-38 * r - 74 * g + 112 * b + 128) / 256 + 128);
          px[3] = static_cast<guint8> ((112 * r - 94 * g - 18 * b + 128) / 256 + 128);
        } else {
          px[1] = static_cast<guint8> (r);
          px[2] = static_cast<guint8> (g);
          px[3] = static_cast<guint8> (b);
        }
      }
      finfo->pack_func (finfo, GST_VIDEO_PACK_FLAG_NONE, line.data (), 0, data, stride,
          GST_VIDEO_CHROMA_SITE_UNKNOWN, y, w);
    }
    gst_video_frame_unmap (&frame);
    out->push_back (gst_memory_ref (gst_buffer_peek_memory (buf, 0)));
    gst_buffer_unref (buf);
  }
  return true;
}

// ---------------------------------------------------------------------------
// statistics

const char *const kUintFields[] = {"frames-in", "frames-inferred", "frames-skipped",
    "encoder-runs", "frames-encoded", "decoder-runs"};
const char *const kDoubleFields[] = {"mean-encoder-ms", "mean-decoder-ms", "total-encoder-ms",
    "total-decoder-ms", "total-process-ms"};

struct Value {
  bool ok = false;
  double v = 0;
};

struct Snapshot {
  bool taken = false;
  Value u[G_N_ELEMENTS (kUintFields)];
  Value d[G_N_ELEMENTS (kDoubleFields)];
};

Snapshot read_stats (GstElement *seg) {
  Snapshot s;
  GstStructure *st = nullptr;
  g_object_get (seg, "stats", &st, nullptr);
  s.taken = true;
  if (!st) return s;
  for (size_t i = 0; i < G_N_ELEMENTS (kUintFields); ++i) {
    guint64 u64;
    guint u32;
    if (gst_structure_get_uint64 (st, kUintFields[i], &u64)) {
      s.u[i] = {true, static_cast<double> (u64)};
    } else if (gst_structure_get_uint (st, kUintFields[i], &u32)) {
      s.u[i] = {true, static_cast<double> (u32)};
    }
  }
  for (size_t i = 0; i < G_N_ELEMENTS (kDoubleFields); ++i) {
    gdouble d;
    if (gst_structure_get_double (st, kDoubleFields[i], &d)) s.d[i] = {true, d};
  }
  gst_structure_free (st);
  return s;
}

int uidx (const char *name) {
  for (size_t i = 0; i < G_N_ELEMENTS (kUintFields); ++i)
    if (!strcmp (kUintFields[i], name)) return static_cast<int> (i);
  g_assert_not_reached ();
  return 0;
}
int didx (const char *name) {
  for (size_t i = 0; i < G_N_ELEMENTS (kDoubleFields); ++i)
    if (!strcmp (kDoubleFields[i], name)) return static_cast<int> (i);
  g_assert_not_reached ();
  return 0;
}

Value delta (const Value &end, const Value &start) {
  if (!end.ok || !start.ok) return {};
  return {true, end.v - start.v};
}
Value quot (const Value &a, const Value &b) {
  if (!a.ok || !b.ok || b.v == 0) return {};
  return {true, a.v / b.v};
}
Value sub (const Value &a, const Value &b) {
  if (!a.ok || !b.ok) return {};
  return {true, a.v - b.v};
}
Value scale (const Value &a, double f) { return a.ok ? Value{true, a.v * f} : Value{}; }

// ---------------------------------------------------------------------------
// one pipeline run

struct Run {
  guint batch_size = 1;
  int warmup = 0;   // frames excluded (multiple of batch_size)
  int frames = 0;   // timed frames
  GstClockTime frame_duration = 0;
  GstElement *seg = nullptr;

  // streaming-thread state
  Snapshot start;
  gint64 t_start_us = 0, t_playing_us = 0, t_first_out_us = 0;
  guint64 received = 0;
  guint64 meta_buffers = 0;
  std::string order_error;

  // results
  gint64 t_eos_us = 0;
  Snapshot end;
  std::string error;
};

GType g_mask_meta_api = G_TYPE_INVALID;

GstPadProbeReturn src_probe (GstPad *, GstPadProbeInfo *info, gpointer user) {
  auto *run = static_cast<Run *> (user);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  if (!run->start.taken && GST_BUFFER_OFFSET (buf) == static_cast<guint64> (run->warmup)) {
    // same thread as the element: all earlier frames are fully processed
    run->start = read_stats (run->seg);
    run->t_start_us = g_get_monotonic_time ();
  }
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn sink_probe (GstPad *, GstPadProbeInfo *info, gpointer user) {
  auto *run = static_cast<Run *> (user);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  const GstClockTime expected = run->received * run->frame_duration;
  if (run->received == 0) run->t_first_out_us = g_get_monotonic_time ();
  if (run->order_error.empty () && GST_BUFFER_PTS (buf) != expected) {
    gchar *msg = g_strdup_printf ("output buffer %" G_GUINT64_FORMAT " has PTS %" GST_TIME_FORMAT
        ", expected %" GST_TIME_FORMAT " (frame missing or out of order)", run->received,
        GST_TIME_ARGS (GST_BUFFER_PTS (buf)), GST_TIME_ARGS (expected));
    run->order_error = msg;
    g_free (msg);
  }
  if (g_mask_meta_api == G_TYPE_INVALID)  // registered when the element first attaches one
    g_mask_meta_api = g_type_from_name ("GstSam3MaskMetaAPI");
  if (g_mask_meta_api != G_TYPE_INVALID && gst_buffer_get_meta (buf, g_mask_meta_api))
    run->meta_buffers++;
  run->received++;
  return GST_PAD_PROBE_OK;
}

struct Pusher {
  GstAppSrc *src;
  const std::vector<GstMemory *> *memories;
  int total;
  GstClockTime duration;
};

gpointer push_thread (gpointer user) {
  auto *p = static_cast<Pusher *> (user);
  for (int i = 0; i < p->total; ++i) {
    GstBuffer *buf = gst_buffer_new ();
    gst_buffer_append_memory (buf,
        gst_memory_ref ((*p->memories)[static_cast<size_t> (i) % p->memories->size ()]));
    GST_BUFFER_PTS (buf) = static_cast<GstClockTime> (i) * p->duration;
    GST_BUFFER_DTS (buf) = GST_BUFFER_PTS (buf);
    GST_BUFFER_DURATION (buf) = p->duration;
    GST_BUFFER_OFFSET (buf) = static_cast<guint64> (i);
    GST_BUFFER_OFFSET_END (buf) = static_cast<guint64> (i) + 1;
    if (gst_app_src_push_buffer (p->src, buf) != GST_FLOW_OK) return nullptr;  // flushing/error
  }
  gst_app_src_end_of_stream (p->src);
  return nullptr;
}

bool run_pipeline (const Options &o, const GstVideoInfo *info,
    const std::vector<GstMemory *> &memories, bool set_batch, const std::string &boxes, Run *run) {
  GstElement *pipeline = gst_pipeline_new ("bench");
  GstElement *src = gst_element_factory_make ("appsrc", "src");
  GstElement *seg = gst_element_factory_make ("sam3segment", "seg");
  GstElement *sink = gst_element_factory_make ("fakesink", "sink");
  if (!pipeline || !src || !seg || !sink) {
    run->error = std::string ("cannot create ") +
                 (!src ? "appsrc (gst-plugins-base)" : !sink ? "fakesink (gstreamer core)"
                                                   : "sam3segment");
    for (GstElement *e : {src, seg, sink})
      if (e) gst_object_unref (gst_object_ref_sink (e));
    if (pipeline) gst_object_unref (pipeline);
    return false;
  }
  run->seg = seg;
  GstCaps *caps = gst_video_info_to_caps (const_cast<GstVideoInfo *> (info));
  g_object_set (src, "caps", caps, "format", GST_FORMAT_TIME, "is-live", FALSE, "block", TRUE,
      "max-bytes", static_cast<guint64> (3 * GST_VIDEO_INFO_SIZE (info)), nullptr);
  gst_caps_unref (caps);
  g_object_set (seg, "model-file", o.model.c_str (), "num-threads", o.threads, nullptr);
  gst_util_set_object_arg (G_OBJECT (seg), "device", o.device.c_str ());
  if (set_batch) g_object_set (seg, "batch-size", run->batch_size, nullptr);
  gst_util_set_object_arg (G_OBJECT (seg), "boxes", boxes.c_str ());
  g_object_set (sink, "sync", FALSE, "async", FALSE, nullptr);
  gst_bin_add_many (GST_BIN (pipeline), src, seg, sink, nullptr);
  if (!gst_element_link_many (src, seg, sink, nullptr)) {
    run->error = "cannot link appsrc ! sam3segment ! fakesink";
    gst_object_unref (pipeline);
    return false;
  }
  GstPad *srcpad = gst_element_get_static_pad (src, "src");
  gst_pad_add_probe (srcpad, GST_PAD_PROBE_TYPE_BUFFER, src_probe, run, nullptr);
  gst_object_unref (srcpad);
  GstPad *sinkpad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (sinkpad, GST_PAD_PROBE_TYPE_BUFFER, sink_probe, run, nullptr);
  gst_object_unref (sinkpad);

  run->t_playing_us = g_get_monotonic_time ();
  Pusher pusher{GST_APP_SRC (src), &memories, run->warmup + run->frames, run->frame_duration};
  GThread *thread = nullptr;
  bool ok = true;
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    ok = false;  // the bus holds the error message
  } else {
    thread = g_thread_new ("push", push_thread, &pusher);
  }
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, ok ? GST_CLOCK_TIME_NONE : 0,
      static_cast<GstMessageType> (GST_MESSAGE_ERROR | GST_MESSAGE_EOS));
  run->t_eos_us = g_get_monotonic_time ();
  if (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
    run->end = read_stats (seg);
  } else {
    ok = false;
    if (msg) {
      GError *err = nullptr;
      gchar *dbg = nullptr;
      gst_message_parse_error (msg, &err, &dbg);
      run->error = std::string ("pipeline error from ") + GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)) +
                   ": " + err->message + (dbg ? std::string ("\n  ") + dbg : std::string ());
      g_clear_error (&err);
      g_free (dbg);
    } else {
      run->error = "the pipeline failed to start";
    }
  }
  if (msg) gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);  // unblocks the pusher
  if (thread) g_thread_join (thread);
  gst_object_unref (pipeline);
  run->seg = nullptr;
  if (ok && !run->order_error.empty ()) {
    run->error = run->order_error;
    ok = false;
  }
  const guint64 expected = static_cast<guint64> (run->warmup + run->frames);
  if (ok && run->received != expected) {
    run->error = "fakesink received " + std::to_string (run->received) + " buffers, expected " +
                 std::to_string (expected);
    ok = false;
  }
  if (ok && !run->start.taken) {
    run->error = "the first timed frame was never seen";
    ok = false;
  }
  return ok;
}

// ---------------------------------------------------------------------------
// report

struct Figures {
  Value frames_in, frames_inferred, frames_skipped, encoder_runs, frames_encoded, decoder_runs;
  Value enc_total, dec_total, proc_total;
  Value enc_per_call, dec_per_call, enc_per_frame, dec_per_frame;
  Value overhead_per_frame, overhead_pct, external_per_frame, external_pct;
  double wall_ms = 0, fps = 0, wall_per_frame = 0, startup_ms = 0;
  double mask_meta_share = -1;
};

Figures compute (const Run &r) {
  Figures f;
  auto du = [&] (const char *n) { return delta (r.end.u[uidx (n)], r.start.u[uidx (n)]); };
  auto dd = [&] (const char *n) { return delta (r.end.d[didx (n)], r.start.d[didx (n)]); };
  f.frames_in = du ("frames-in");
  f.frames_inferred = du ("frames-inferred");
  f.frames_skipped = du ("frames-skipped");
  f.encoder_runs = du ("encoder-runs");
  f.frames_encoded = du ("frames-encoded");
  f.decoder_runs = du ("decoder-runs");
  f.enc_total = dd ("total-encoder-ms");
  f.dec_total = dd ("total-decoder-ms");
  f.proc_total = dd ("total-process-ms");
  f.enc_per_call = quot (f.enc_total, f.encoder_runs);
  f.dec_per_call = quot (f.dec_total, f.decoder_runs);
  f.enc_per_frame = quot (f.enc_total, f.frames_encoded);
  f.dec_per_frame = quot (f.dec_total, f.frames_in);
  f.overhead_per_frame = quot (sub (sub (f.proc_total, f.enc_total), f.dec_total), f.frames_in);
  f.overhead_pct = scale (quot (f.overhead_per_frame, f.enc_per_frame), 100.0);
  f.wall_ms = (r.t_eos_us - r.t_start_us) / 1000.0;
  f.fps = r.frames > 0 && f.wall_ms > 0 ? r.frames * 1000.0 / f.wall_ms : 0;
  f.wall_per_frame = r.frames > 0 ? f.wall_ms / r.frames : 0;
  f.external_per_frame =
      quot (sub (sub (Value{true, f.wall_ms}, f.enc_total), f.dec_total), Value{true,
          static_cast<double> (r.frames)});
  f.external_pct = scale (quot (f.external_per_frame, f.enc_per_frame), 100.0);
  f.startup_ms = r.t_first_out_us > 0 ? (r.t_first_out_us - r.t_playing_us) / 1000.0 : 0;
  if (g_mask_meta_api != G_TYPE_INVALID && r.received > 0)
    f.mask_meta_share = static_cast<double> (r.meta_buffers) / r.received;
  return f;
}

std::string fmt (const Value &v, const char *f = "%.3f") {
  if (!v.ok) return "n/a";
  char buf[64];
  std::snprintf (buf, sizeof buf, f, v.v);
  return buf;
}
std::string fmtd (double v, const char *f = "%.3f") { return fmt (Value{true, v}, f); }
std::string js (const Value &v) { return v.ok ? fmt (v, "%.6g") : "null"; }

std::string json_escape (const std::string &s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char> (c) < 0x20) {
      char b[8];
      std::snprintf (b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

int main (int argc, char **argv) {
  // No re-exec for OMP_WAIT_POLICY / OPENBLAS_CORETYPE: this program links
  // neither LibTorch nor OpenBLAS, and the plugin sets both before it loads
  // them (gst-plugin/plugin.cpp), as in any other GStreamer application.

  Options o;
  gchar *model = nullptr, *format = nullptr, *batch = nullptr, *boxes = nullptr,
        *device = nullptr;
  gint width = o.width, height = o.height, frames = o.frames, warmup = o.warmup,
       threads = o.threads;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model,
          "Checkpoint (default ../shared/fixtures/sam3/tiny-a/checkpoint.pt, relative to the "
          "current folder or the source tree)", "FILE"},
      {"width", 'W', 0, G_OPTION_ARG_INT, &width, "Frame width (default 1920)", "PX"},
      {"height", 'H', 0, G_OPTION_ARG_INT, &height, "Frame height (default 1080)", "PX"},
      {"format", 'f', 0, G_OPTION_ARG_STRING, &format,
          "Video format: RGB (default), BGR, RGBA, BGRA, RGBx, BGRx, NV12, I420", "FMT"},
      {"frames", 'n', 0, G_OPTION_ARG_INT, &frames, "Timed frames per batch size (default 40)",
          "N"},
      {"warmup", 0, 0, G_OPTION_ARG_INT, &warmup,
          "Frames excluded from the figures, rounded up to a multiple of the batch size "
          "(default 4)", "N"},
      {"batch-size", 'b', 0, G_OPTION_ARG_STRING, &batch,
          "Comma-separated batch sizes, one pipeline each (default 1,4)", "LIST"},
      {"threads", 't', 0, G_OPTION_ARG_INT, &threads,
          "num-threads of the element (default 2; 0 = all cores)", "N"},
      {"boxes", 0, 0, G_OPTION_ARG_STRING, &boxes,
          "Box prompts, \"x0,y0,x1,y1;...\" or the property syntax \"<<x0,y0,x1,y1>,...>\" "
          "(default: one box over the centre half of the frame)", "BOXES"},
      {"device", 'd', 0, G_OPTION_ARG_STRING, &device,
          "device of the element: cpu (default), cuda, auto", "DEV"},
      {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Also print one JSON object (last line)",
          nullptr},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};
  GOptionContext *ctx = g_option_context_new (
      "- frames/s and per-frame overhead of sam3segment beyond encoder + decoder time");
  g_option_context_add_main_entries (ctx, entries, nullptr);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  GError *err = nullptr;
  if (!g_option_context_parse (ctx, &argc, &argv, &err)) {
    const std::string m = err->message;
    g_clear_error (&err);
    g_option_context_free (ctx);
    return usage_error (m);
  }
  g_option_context_free (ctx);
  if (argc > 1) return usage_error (std::string ("unexpected argument '") + argv[1] + "'");
  o.width = width;
  o.height = height;
  o.frames = frames;
  o.warmup = warmup;
  o.threads = threads;
  o.json = json;
  if (format) o.format = format;
  o.model = model ? model : find_default_model ();
  if (boxes) o.boxes = boxes;
  if (device) o.device = device;
  g_free (device);
  g_free (model);
  g_free (format);
  g_free (boxes);
  if (!parse_uint_list (batch ? batch : "1,4", &o.batch_sizes)) {
    g_free (batch);
    return usage_error ("--batch-size wants a comma-separated list of positive integers");
  }
  g_free (batch);
  if (o.width < 16 || o.height < 16 || o.width > 16384 || o.height > 16384)
    return usage_error ("--width/--height must be 16..16384");
  if (o.frames < 1) return usage_error ("--frames must be at least 1");
  if (o.warmup < 0) return usage_error ("--warmup must be >= 0");
  if (o.threads < -1) return usage_error ("--threads must be >= -1");
  if (o.device != "cpu" && o.device != "cuda" && o.device != "auto")
    return usage_error ("--device must be cpu, cuda or auto, not '" + o.device + "'");
  if (!g_file_test (o.model.c_str (), G_FILE_TEST_IS_REGULAR))
    return usage_error ("model file '" + o.model + "' not found (--model)");

  const GstVideoFormat vfmt = gst_video_format_from_string (o.format.c_str ());
  static const GstVideoFormat kAccepted[] = {GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGR,
      GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_BGRx,
      GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_I420};
  if (std::find (std::begin (kAccepted), std::end (kAccepted), vfmt) == std::end (kAccepted))
    return usage_error ("--format '" + o.format + "' is not one of RGB, BGR, RGBA, BGRA, RGBx, "
                        "BGRx, NV12, I420");
  GstVideoInfo info;
  gst_video_info_set_format (&info, vfmt, static_cast<guint> (o.width),
      static_cast<guint> (o.height));
  GST_VIDEO_INFO_FPS_N (&info) = 30;
  GST_VIDEO_INFO_FPS_D (&info) = 1;

  std::string box_prop;
  if (o.boxes.empty ()) {
    char b[128];
    std::snprintf (b, sizeof b, "<<%d,%d,%d,%d>>", o.width / 4, o.height / 4, 3 * o.width / 4,
        3 * o.height / 4);
    box_prop = b;
  } else {
    box_prop = boxes_property_syntax (o.boxes);
  }

  // the element (the plugin and LibTorch are loaded here)
  GstElementFactory *factory = gst_element_factory_find ("sam3segment");
  if (!factory && *SAM3_PLUGIN_BUILD_DIR) {
    gst_registry_scan_path (gst_registry_get (), SAM3_PLUGIN_BUILD_DIR);
    factory = gst_element_factory_find ("sam3segment");
  }
  if (!factory) {
    std::fprintf (stderr, "%s: error: element sam3segment not found; set GST_PLUGIN_PATH to the "
        "folder of libgstsam3.so (e.g. build/gst-plugin)\n", kProg);
    return 1;
  }
  GstElement *probe_el = gst_element_factory_create (factory, nullptr);
  gst_object_unref (factory);
  if (!probe_el) {
    std::fprintf (stderr, "%s: error: cannot create sam3segment\n", kProg);
    return 1;
  }
  GObjectClass *klass = G_OBJECT_GET_CLASS (probe_el);
  GParamSpec *bs_spec = g_object_class_find_property (klass, "batch-size");
  const bool have_batch = bs_spec != nullptr;
  std::vector<std::string> notes;
  if (!have_batch) {
    notes.push_back ("sam3segment has no batch-size property: only batch size 1 is run");
    o.batch_sizes = {1};
  } else if (G_PARAM_SPEC_VALUE_TYPE (bs_spec) == G_TYPE_UINT) {
    const guint max = G_PARAM_SPEC_UINT (bs_spec)->maximum;
    for (guint b : o.batch_sizes) {
      if (b > max) {
        gst_object_unref (probe_el);
        return usage_error ("batch size " + std::to_string (b) + " exceeds the element's "
                            "maximum " + std::to_string (max));
      }
    }
  }
  if (!g_object_class_find_property (klass, "stats"))
    notes.push_back ("sam3segment has no stats property: only frames/s can be reported");
  // the prompt must parse: set it once and read it back
  gst_util_set_object_arg (G_OBJECT (probe_el), "boxes", box_prop.c_str ());
  {
    GValue v = G_VALUE_INIT;
    g_value_init (&v, GST_TYPE_ARRAY);
    g_object_get_property (G_OBJECT (probe_el), "boxes", &v);
    const guint n = gst_value_array_get_size (&v);
    g_value_unset (&v);
    if (n == 0) {
      gst_object_unref (probe_el);
      return usage_error ("--boxes '" + o.boxes + "' is not a list of x0,y0,x1,y1 boxes");
    }
  }
  gst_object_unref (probe_el);

  // context (LibTorch-independent)
  const char *omp_threads = g_getenv ("OMP_NUM_THREADS");
  const char *omp_wait = g_getenv ("OMP_WAIT_POLICY");
  gchar *gst_ver = gst_version_string ();
  const bool passive = omp_wait && !g_ascii_strcasecmp (omp_wait, "PASSIVE");
  if (!passive)
    notes.push_back (std::string ("OMP_WAIT_POLICY=") + (omp_wait ? omp_wait : "unset") +
                     ": LibTorch's OpenMP threads spin and steal the cores from OpenBLAS "
                     "(slower, noisier figures); export OMP_WAIT_POLICY=PASSIVE");
  std::printf ("%s\n", kProg);
  std::printf ("gstreamer        %s\n", gst_ver);
  std::printf ("cpus             %u\n", g_get_num_processors ());
  std::printf ("OMP_NUM_THREADS  %s\n", omp_threads ? omp_threads : "unset");
  std::printf ("OMP_WAIT_POLICY  %s\n", omp_wait ? omp_wait : "unset");
  const sam3::BlasKernels kernels = sam3::blas_kernels ();
  std::printf ("blas kernels     %s\n", kernels.summary ().c_str ());
  if (kernels.below_cpu) notes.push_back (kernels.summary ());
  std::printf ("model            %s\n", o.model.c_str ());
  std::printf ("input            %dx%d %s, 30/1, %d distinct frames cycled (appsrc)\n", o.width,
      o.height, o.format.c_str (), kDistinctFrames);
  std::printf ("element          device=%s num-threads=%d boxes=\"%s\"\n", o.device.c_str (), o.threads,
      box_prop.c_str ());
  std::printf ("frames           %d timed + warm-up %d (rounded up to the batch size)\n",
      o.frames, o.warmup);
  std::fflush (stdout);

  std::vector<GstMemory *> memories;
  if (!make_frames (&info, kDistinctFrames, &memories)) {
    std::fprintf (stderr, "%s: error: cannot generate %s frames\n", kProg, o.format.c_str ());
    return 1;
  }

  std::vector<Run> runs;
  int status = 0;
  for (guint b : o.batch_sizes) {
    Run run;
    run.batch_size = b;
    run.warmup = o.warmup == 0 ? 0 : (o.warmup + static_cast<int> (b) - 1) / static_cast<int> (b) *
                                         static_cast<int> (b);
    run.frames = o.frames;
    run.frame_duration = gst_util_uint64_scale_int (GST_SECOND, 1, 30);
    if (!run_pipeline (o, &info, memories, have_batch, box_prop, &run)) {
      std::fprintf (stderr, "%s: error: batch-size %u: %s\n", kProg, b, run.error.c_str ());
      status = 1;
      break;
    }
    runs.push_back (run);
  }
  for (GstMemory *m : memories) gst_memory_unref (m);

  std::vector<Figures> figs;
  for (const Run &r : runs) figs.push_back (compute (r));
  for (size_t i = 0; i < runs.size (); ++i) {
    const Figures &f = figs[i];
    if (!f.frames_in.ok || !f.enc_total.ok || !f.dec_total.ok || !f.proc_total.ok ||
        !f.frames_encoded.ok) {
      notes.push_back ("batch-size " + std::to_string (runs[i].batch_size) +
                       ": stats lacks frames-in, frames-encoded, total-encoder-ms, "
                       "total-decoder-ms or total-process-ms; the overhead is n/a");
      break;
    }
  }
  for (size_t i = 0; i < runs.size (); ++i) {
    const Figures &f = figs[i];
    if (f.frames_in.ok && f.frames_in.v != runs[i].frames)
      notes.push_back ("batch-size " + std::to_string (runs[i].batch_size) + ": stats counted " +
                       fmt (f.frames_in, "%.0f") + " frames-in for " +
                       std::to_string (runs[i].frames) + " timed frames");
    if (f.frames_encoded.ok && f.frames_in.ok && f.frames_encoded.v < f.frames_in.v)
      notes.push_back ("batch-size " + std::to_string (runs[i].batch_size) +
                       ": fewer frames encoded than received (embedding cache hits?)");
    if (f.mask_meta_share >= 0 && f.mask_meta_share < 1.0)
      notes.push_back ("batch-size " + std::to_string (runs[i].batch_size) + ": only " +
                       fmtd (100 * f.mask_meta_share, "%.0f") + " % of the buffers carried a "
                       "GstSam3MaskMeta");
  }

  if (!runs.empty ()) {
    std::printf ("\n%-44s", "batch-size");
    for (const Run &r : runs) std::printf (" %12u", r.batch_size);
    std::printf ("\n");
    auto row = [&] (const char *name, auto get) {
      std::printf ("%-44s", name);
      for (size_t i = 0; i < runs.size (); ++i) std::printf (" %12s", get (i).c_str ());
      std::printf ("\n");
    };
    row ("timed frames (warm-up)", [&] (size_t i) {
      return std::to_string (runs[i].frames) + " (" + std::to_string (runs[i].warmup) + ")";
    });
    row ("startup to first output [ms]", [&] (size_t i) { return fmtd (figs[i].startup_ms, "%.1f"); });
    row ("wall clock [ms]", [&] (size_t i) { return fmtd (figs[i].wall_ms, "%.1f"); });
    row ("frames/s", [&] (size_t i) { return fmtd (figs[i].fps, "%.2f"); });
    row ("wall clock per frame [ms]", [&] (size_t i) { return fmtd (figs[i].wall_per_frame); });
    row ("frames-in / -inferred / -skipped", [&] (size_t i) {
      return fmt (figs[i].frames_in, "%.0f") + "/" + fmt (figs[i].frames_inferred, "%.0f") + "/" +
             fmt (figs[i].frames_skipped, "%.0f");
    });
    row ("encoder-runs / frames-encoded", [&] (size_t i) {
      return fmt (figs[i].encoder_runs, "%.0f") + "/" + fmt (figs[i].frames_encoded, "%.0f");
    });
    row ("decoder-runs", [&] (size_t i) { return fmt (figs[i].decoder_runs, "%.0f"); });
    row ("buffers with GstSam3MaskMeta", [&] (size_t i) {
      return g_mask_meta_api == G_TYPE_INVALID ? std::string ("n/a")
                                               : std::to_string (runs[i].meta_buffers) + "/" +
                                                     std::to_string (runs[i].received);
    });
    row ("encoder per call [ms]", [&] (size_t i) { return fmt (figs[i].enc_per_call); });
    row ("decoder per call [ms]", [&] (size_t i) { return fmt (figs[i].dec_per_call); });
    row ("encoder per frame [ms] (A)", [&] (size_t i) { return fmt (figs[i].enc_per_frame); });
    row ("decoder per frame [ms] (B)", [&] (size_t i) { return fmt (figs[i].dec_per_frame); });
    row ("element process per frame [ms] (P)", [&] (size_t i) {
      return fmt (quot (figs[i].proc_total, figs[i].frames_in));
    });
    row ("element overhead per frame [ms] (P-A-B)",
        [&] (size_t i) { return fmt (figs[i].overhead_per_frame); });
    row ("element overhead / encoder [%] (target<=5)",
        [&] (size_t i) { return fmt (figs[i].overhead_pct, "%.2f"); });
    row ("wall - encoder - decoder per frame [ms]",
        [&] (size_t i) { return fmt (figs[i].external_per_frame); });
    row ("  same / encoder [%]", [&] (size_t i) { return fmt (figs[i].external_pct, "%.2f"); });
  }
  for (const auto &n : notes) std::printf ("note: %s\n", n.c_str ());
  std::fflush (stdout);

  if (o.json) {
    std::string j = "{\"program\":\"" + std::string (kProg) + "\",\"gstreamer\":\"" +
                    json_escape (gst_ver) + "\",\"cpus\":" +
                    std::to_string (g_get_num_processors ()) + ",\"omp_num_threads\":" +
                    (omp_threads ? "\"" + json_escape (omp_threads) + "\"" : "null") +
                    ",\"omp_wait_policy\":" +
                    (omp_wait ? "\"" + json_escape (omp_wait) + "\"" : "null") + ",\"model\":\"" +
                    json_escape (o.model) + "\",\"width\":" + std::to_string (o.width) +
                    ",\"height\":" + std::to_string (o.height) + ",\"format\":\"" +
                    json_escape (o.format) + "\",\"device\":\"" + json_escape (o.device) +
                    "\",\"num_threads\":" + std::to_string (o.threads) +
                    ",\"boxes\":\"" + json_escape (box_prop) + "\",\"results\":[";
    for (size_t i = 0; i < runs.size (); ++i) {
      const Figures &f = figs[i];
      if (i) j += ",";
      j += "{\"batch_size\":" + std::to_string (runs[i].batch_size) +
           ",\"frames\":" + std::to_string (runs[i].frames) +
           ",\"warmup_frames\":" + std::to_string (runs[i].warmup) +
           ",\"startup_ms\":" + js (Value{true, f.startup_ms}) +
           ",\"wall_ms\":" + js (Value{true, f.wall_ms}) +
           ",\"fps\":" + js (Value{true, f.fps}) +
           ",\"wall_ms_per_frame\":" + js (Value{true, f.wall_per_frame}) +
           ",\"buffers_with_mask_meta\":" +
           (g_mask_meta_api == G_TYPE_INVALID ? std::string ("null")
                                              : std::to_string (runs[i].meta_buffers)) +
           ",\"frames_in\":" + js (f.frames_in) + ",\"frames_inferred\":" + js (f.frames_inferred) +
           ",\"frames_skipped\":" + js (f.frames_skipped) +
           ",\"encoder_runs\":" + js (f.encoder_runs) + ",\"frames_encoded\":" +
           js (f.frames_encoded) + ",\"decoder_runs\":" + js (f.decoder_runs) +
           ",\"total_encoder_ms\":" + js (f.enc_total) + ",\"total_decoder_ms\":" +
           js (f.dec_total) + ",\"total_process_ms\":" + js (f.proc_total) +
           ",\"encoder_ms_per_call\":" + js (f.enc_per_call) + ",\"decoder_ms_per_call\":" +
           js (f.dec_per_call) + ",\"encoder_ms_per_frame\":" + js (f.enc_per_frame) +
           ",\"decoder_ms_per_frame\":" + js (f.dec_per_frame) +
           ",\"overhead_ms_per_frame\":" + js (f.overhead_per_frame) +
           ",\"overhead_pct_of_encoder\":" + js (f.overhead_pct) +
           ",\"external_overhead_ms_per_frame\":" + js (f.external_per_frame) +
           ",\"external_overhead_pct_of_encoder\":" + js (f.external_pct) + "}";
    }
    j += "],\"notes\":[";
    for (size_t i = 0; i < notes.size (); ++i)
      j += (i ? ",\"" : "\"") + json_escape (notes[i]) + "\"";
    j += "],\"ok\":" + std::string (status == 0 ? "true" : "false") + "}";
    std::printf ("%s\n", j.c_str ());
  }
  g_free (gst_ver);
  return status;
}
