// sam3-soak: long-run memory check of sam3segment (docs/tools.md, "sam3-soak").
//
//   frames soak:  videotestsrc pattern=ball ! capsfilter ! [probe: 1-3 moving
//                 detector ROI metas] ! sam3segment ! sam3overlay ! fakesink
//                 boxes/points properties changed every K frames from the
//                 application thread; RSS sampled every --sample-every frames.
//   state cycles: the same pipeline object cycled NULL -> PLAYING -> (frames
//                 flowing) -> NULL; RSS sampled every --cycle-sample-every cycles.
//
// Rule: RSS growth over the last 80 % of the run (frames or cycles) must be
// <= --max-growth MiB. Exits 1 on FAIL, on a pipeline error, a missing or
// out-of-order frame, a wrong timestamp or a frame without mask metadata.
//
// Depends on GStreamer only: the plugin (and LibTorch) is loaded at run time.
#include <gst/gst.h>
#include <gst/video/video.h>

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr const char *kProg = "sam3-soak";

#ifndef SAM3_SOURCE_ROOT
#define SAM3_SOURCE_ROOT ""
#endif

struct Options {
  std::string model;        // empty = the element's default (bundled model)
  std::string cycle_model;  // empty = same as model
  int width = 320, height = 240;
  std::string format = "RGB";
  int frames = 10000;
  int cycles = 1000;
  std::vector<guint> batch_sizes{1, 4};
  guint cycle_batch = 4;
  int cycle_frames = 3;
  int prompt_every = 50;
  int sample_every = 500;
  int cycle_sample_every = 50;
  int threads = 2;
  double max_growth = 2.0;
  bool trim = true;
  std::string json;
};

double rss_mib (bool trim) {
  if (trim) malloc_trim (0);
  long pages = 0, rss = 0;
  FILE *f = std::fopen ("/proc/self/statm", "r");
  if (f) {
    if (std::fscanf (f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    std::fclose (f);
  }
  return static_cast<double> (rss) * sysconf (_SC_PAGESIZE) / (1024.0 * 1024.0);
}

struct Sample {
  long x;  // frame or cycle
  double rss;
};

// ---------------------------------------------------------------------------
// shared pipeline state (streaming thread writes, main thread reads)

struct State {
  GMutex lock;
  GCond cond;
  guint64 received = 0;  // in this run / cycle
  guint64 with_meta = 0, with_objects = 0, total_frames = 0;
  int fps_n = 30, fps_d = 1;
  std::string error;
  int sample_every = 0;
  bool trim = true;
  std::vector<Sample> *samples = nullptr;
  long frame_base = 0;
};

GType g_mask_meta_api = G_TYPE_INVALID;

GstPadProbeReturn roi_probe (GstPad *, GstPadProbeInfo *info, gpointer) {
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  buf = gst_buffer_make_writable (buf);
  GST_PAD_PROBE_INFO_DATA (info) = buf;
  const guint64 i = GST_BUFFER_OFFSET (buf);
  const int n = 1 + static_cast<int> (i / 7 % 3);  // 1-3 boxes, moving
  for (int k = 0; k < n; ++k) {
    const guint x = static_cast<guint> ((i * 3 + k * 90) % 220), y = static_cast<guint> ((i * 2 + k * 60) % 150);
    GstVideoRegionOfInterestMeta *roi =
        gst_buffer_add_video_region_of_interest_meta (buf, k == 2 ? "car" : "person", x, y, 80, 70);
    roi->id = 100 + k;
  }
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn sink_probe (GstPad *, GstPadProbeInfo *info, gpointer user) {
  auto *s = static_cast<State *> (user);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  g_mutex_lock (&s->lock);
  const guint64 n = s->received;
  const GstClockTime pts = gst_util_uint64_scale (n, GST_SECOND * s->fps_d, s->fps_n);
  const GstClockTime next = gst_util_uint64_scale (n + 1, GST_SECOND * s->fps_d, s->fps_n);
  if (s->error.empty () && (GST_BUFFER_PTS (buf) != pts || GST_BUFFER_OFFSET (buf) != n ||
                               GST_BUFFER_DURATION (buf) != next - pts)) {
    gchar *m = g_strdup_printf ("frame %" G_GUINT64_FORMAT ": PTS %" GST_TIME_FORMAT " offset %"
        G_GUINT64_FORMAT " duration %" GST_TIME_FORMAT ", expected %" GST_TIME_FORMAT " / %"
        G_GUINT64_FORMAT " / %" GST_TIME_FORMAT " (missing, out of order or wrong timestamps)",
        n, GST_TIME_ARGS (GST_BUFFER_PTS (buf)), GST_BUFFER_OFFSET (buf),
        GST_TIME_ARGS (GST_BUFFER_DURATION (buf)), GST_TIME_ARGS (pts), n, GST_TIME_ARGS (next - pts));
    s->error = m;
    g_free (m);
  }
  if (g_mask_meta_api == G_TYPE_INVALID) g_mask_meta_api = g_type_from_name ("GstSam3MaskMetaAPI");
  if (g_mask_meta_api != G_TYPE_INVALID && gst_buffer_get_meta (buf, g_mask_meta_api)) {
    s->with_meta++;
    gpointer st = nullptr;
    GstMeta *m;
    while ((m = gst_buffer_iterate_meta_filtered (buf, &st, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
      auto *roi = reinterpret_cast<GstVideoRegionOfInterestMeta *> (m);
      if (roi->roi_type == g_quark_from_static_string ("sam3-mask")) {
        s->with_objects++;
        break;
      }
    }
  } else if (s->error.empty ()) {
    s->error = "frame " + std::to_string (n) + " has no GstSam3MaskMeta (prompts were present)";
  }
  s->received++;
  s->total_frames++;
  if (s->samples && s->sample_every > 0 && s->received % s->sample_every == 0)
    s->samples->push_back ({static_cast<long> (s->received), rss_mib (s->trim)});
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
  return GST_PAD_PROBE_OK;
}

struct Pipeline {
  GstElement *pipe = nullptr, *src = nullptr, *seg = nullptr;
};

bool build (const Options &o, const std::string &model, guint batch, int num_buffers, State *st,
    Pipeline *p, std::string *err) {
  gchar *desc = g_strdup_printf ("videotestsrc name=src pattern=ball is-live=false num-buffers=%d ! "
      "capsfilter caps=video/x-raw,format=%s,width=%d,height=%d,framerate=30/1 name=cf ! "
      "sam3segment name=seg ! sam3overlay ! fakesink name=sink sync=false async=false",
      num_buffers, o.format.c_str (), o.width, o.height);
  GError *e = nullptr;
  p->pipe = gst_parse_launch (desc, &e);
  g_free (desc);
  if (!p->pipe || e) {
    *err = std::string ("cannot build the pipeline: ") + (e ? e->message : "?");
    g_clear_error (&e);
    return false;
  }
  p->src = gst_bin_get_by_name (GST_BIN (p->pipe), "src");
  p->seg = gst_bin_get_by_name (GST_BIN (p->pipe), "seg");
  if (!model.empty ()) g_object_set (p->seg, "model-file", model.c_str (), nullptr);
  g_object_set (p->seg, "num-threads", o.threads, "batch-size", batch, nullptr);
  GstElement *cf = gst_bin_get_by_name (GST_BIN (p->pipe), "cf");
  GstPad *pad = gst_element_get_static_pad (cf, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, roi_probe, nullptr, nullptr);
  gst_object_unref (pad);
  gst_object_unref (cf);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (p->pipe), "sink");
  pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, sink_probe, st, nullptr);
  gst_object_unref (pad);
  gst_object_unref (sink);
  return true;
}

void release (Pipeline *p) {
  if (p->src) gst_object_unref (p->src);
  if (p->seg) gst_object_unref (p->seg);
  if (p->pipe) {
    gst_element_set_state (p->pipe, GST_STATE_NULL);
    gst_object_unref (p->pipe);
  }
  *p = Pipeline{};
}

// the application thread's prompt changes: step k of a fixed cycle of 4
void set_prompts (GstElement *seg, long k, int w, int h) {
  char boxes[128], points[128];
  const int x = static_cast<int> (k * 13 % (w / 2)), y = static_cast<int> (k * 7 % (h / 2));
  switch (k % 4) {
    case 0:
      g_snprintf (boxes, sizeof boxes, "<<%d,%d,%d,%d>>", x, y, x + w / 3, y + h / 3);
      gst_util_set_object_arg (G_OBJECT (seg), "boxes", boxes);
      gst_util_set_object_arg (G_OBJECT (seg), "points", "<>");
      break;
    case 1:
      g_snprintf (points, sizeof points, "<<%d,%d,1>,<%d,%d,0>>", x + 10, y + 10, x + 40, y + 30);
      gst_util_set_object_arg (G_OBJECT (seg), "points", points);
      break;
    case 2:
      g_snprintf (boxes, sizeof boxes, "<<%d,%d,%d,%d>,<%d,%d,%d,%d>>", x, y, x + 60, y + 50, w / 2,
          h / 2, w - 1, h - 1);
      gst_util_set_object_arg (G_OBJECT (seg), "boxes", boxes);
      break;
    default:  // only the detector ROI metas
      gst_util_set_object_arg (G_OBJECT (seg), "boxes", "<>");
      gst_util_set_object_arg (G_OBJECT (seg), "points", "<>");
  }
}

std::string bus_error (GstMessage *msg) {
  GError *err = nullptr;
  gchar *dbg = nullptr;
  gst_message_parse_error (msg, &err, &dbg);
  std::string s = std::string ("pipeline error from ") + GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)) +
                  ": " + err->message + (dbg ? std::string ("\n  ") + dbg : std::string ());
  g_clear_error (&err);
  g_free (dbg);
  return s;
}

// RSS at one sample includes whatever the frames in flight hold at that
// instant (with batch-size 4, samples alternate between two levels ~11 MiB
// apart), so growth is judged on medians: the samples of the last quarter of
// the measured span (the last 80 % of the run) against those of its first
// quarter. Also reported: last minus first sample, and the least-squares slope.
struct Verdict {
  double growth = 0;      // median(last quarter) - median(first quarter), MiB
  double point = 0;       // last sample - first sample of the span, MiB
  double slope = 0;       // MiB per 1000 frames / cycles over the span
  long from = 0, to = 0;  // the span
  long first_end = 0, last_begin = 0;  // the quarters: [from, first_end], [last_begin, to]
  bool pass = false;
};

double median (std::vector<double> v) {
  if (v.empty ()) return 0;
  std::sort (v.begin (), v.end ());
  const size_t n = v.size ();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Verdict judge (const std::vector<Sample> &s, long total, double max_growth) {
  Verdict v;
  if (s.empty ()) return v;
  const long start = total - total * 8 / 10;  // last 80 %
  const Sample *a = &s.front ();
  for (const auto &x : s)
    if (x.x <= start) a = &x;
  v.from = a->x;
  v.to = s.back ().x;
  v.point = s.back ().rss - a->rss;
  const long quarter = (v.to - v.from) / 4;
  v.first_end = v.from + quarter;
  v.last_begin = v.to - quarter;
  std::vector<double> first, last;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int n = 0;
  for (const auto &x : s) {
    if (x.x < v.from) continue;
    if (x.x <= v.first_end) first.push_back (x.rss);
    if (x.x >= v.last_begin) last.push_back (x.rss);
    sx += x.x;
    sy += x.rss;
    sxx += static_cast<double> (x.x) * x.x;
    sxy += x.x * x.rss;
    ++n;
  }
  const double den = n * sxx - sx * sx;
  v.slope = n > 1 && den > 0 ? (n * sxy - sx * sy) / den * 1000.0 : 0.0;
  v.growth = median (last) - median (first);
  v.pass = v.growth <= max_growth;
  return v;
}

void print_verdict (const char *what, const Verdict &v, double max_growth) {
  std::printf ("  RSS growth %s %ld -> %ld: %+.2f MiB (median of the samples %ld..%ld vs %ld..%ld; "
      "limit %.2f): %s\n  last - first sample %+.2f MiB, slope %+.3f MiB per 1000 %ss\n", what,
      v.from, v.to, v.growth, v.last_begin, v.to, v.from, v.first_end, max_growth,
      v.pass ? "PASS" : "FAIL", v.point, v.slope, what);
}

void print_curve (const char *what, const std::vector<Sample> &s) {
  std::printf ("  %-8s RSS MiB\n", what);
  for (const auto &x : s) std::printf ("  %-8ld %.2f\n", x.x, x.rss);
}

std::string json_samples (const std::vector<Sample> &s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size (); ++i) {
    char b[64];
    g_snprintf (b, sizeof b, "%s[%ld,%.3f]", i ? "," : "", s[i].x, s[i].rss);
    out += b;
  }
  return out + "]";
}

// ---------------------------------------------------------------------------

int frames_soak (const Options &o, guint batch, std::string *json) {
  State st;
  g_mutex_init (&st.lock);
  g_cond_init (&st.cond);
  std::vector<Sample> samples;
  st.samples = &samples;
  st.sample_every = o.sample_every;
  st.trim = o.trim;
  Pipeline p;
  std::string err;
  std::printf ("\nframes soak: batch-size %u, %d frames, prompts change every %d frames\n", batch,
      o.frames, o.prompt_every);
  std::fflush (stdout);
  if (!build (o, o.model, batch, o.frames, &st, &p, &err)) {
    std::fprintf (stderr, "%s: error: %s\n", kProg, err.c_str ());
    return 1;
  }
  set_prompts (p.seg, 0, o.width, o.height);
  samples.push_back ({0, rss_mib (o.trim)});
  const gint64 t0 = g_get_monotonic_time ();
  bool ok = gst_element_set_state (p.pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
  GstBus *bus = gst_element_get_bus (p.pipe);
  long step = 0;
  while (ok) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, 20 * GST_MSECOND,
        static_cast<GstMessageType> (GST_MESSAGE_ERROR | GST_MESSAGE_EOS));
    if (msg) {
      if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
        err = bus_error (msg);
        ok = false;
      }
      gst_message_unref (msg);
      break;
    }
    g_mutex_lock (&st.lock);
    const long got = static_cast<long> (st.received);
    g_mutex_unlock (&st.lock);
    if (o.prompt_every > 0 && got / o.prompt_every > step) {
      step = got / o.prompt_every;
      set_prompts (p.seg, step, o.width, o.height);
    }
  }
  if (!ok && err.empty ()) {
    GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    err = m ? bus_error (m) : "the pipeline failed to start";
    if (m) gst_message_unref (m);
  }
  gst_object_unref (bus);
  const double secs = (g_get_monotonic_time () - t0) / 1e6;
  release (&p);
  if (ok && !st.error.empty ()) { err = st.error; ok = false; }
  if (ok && st.received != static_cast<guint64> (o.frames)) {
    err = "fakesink received " + std::to_string (st.received) + " frames, expected " +
          std::to_string (o.frames);
    ok = false;
  }
  print_curve ("frame", samples);
  const Verdict v = judge (samples, o.frames, o.max_growth);
  std::printf ("  frames received %" G_GUINT64_FORMAT " / %d in order with timestamps; with mask "
      "meta %" G_GUINT64_FORMAT ", with >= 1 mask object %" G_GUINT64_FORMAT "\n", st.received,
      o.frames, st.with_meta, st.with_objects);
  std::printf ("  %.1f s, %.2f frames/s\n", secs, st.received / (secs > 0 ? secs : 1));
  print_verdict ("frame", v, o.max_growth);
  if (!ok) std::fprintf (stderr, "%s: error: batch-size %u: %s\n", kProg, batch, err.c_str ());
  std::fflush (stdout);
  char b[512];
  g_snprintf (b, sizeof b, "{\"kind\":\"frames\",\"batch_size\":%u,\"frames\":%d,\"received\":%"
      G_GUINT64_FORMAT ",\"with_mask_meta\":%" G_GUINT64_FORMAT ",\"with_objects\":%" G_GUINT64_FORMAT
      ",\"seconds\":%.2f,\"growth_mib\":%.3f,\"point_growth_mib\":%.3f,\"slope_mib_per_1000\":%.4f,"
      "\"from\":%ld,\"pass\":%s,\"ok\":%s,\"samples\":",
      batch, o.frames, st.received, st.with_meta, st.with_objects, secs, v.growth, v.point, v.slope, v.from,
      v.pass ? "true" : "false", ok ? "true" : "false");
  *json = std::string (b) + json_samples (samples) + "}";
  g_mutex_clear (&st.lock);
  g_cond_clear (&st.cond);
  return ok && v.pass ? 0 : 1;
}

int state_cycles (const Options &o, std::string *json) {
  State st;
  g_mutex_init (&st.lock);
  g_cond_init (&st.cond);
  std::vector<Sample> samples;
  Pipeline p;
  std::string err;
  const std::string model = o.cycle_model.empty () ? o.model : o.cycle_model;
  std::printf ("\nstate cycles: %d x NULL -> PLAYING -> (>= %d frames at the sink) -> NULL, one "
      "pipeline object, batch-size %u, model %s\n", o.cycles, o.cycle_frames, o.cycle_batch,
      model.empty () ? "(element default)" : model.c_str ());
  std::fflush (stdout);
  if (!build (o, model, o.cycle_batch, -1, &st, &p, &err)) {
    std::fprintf (stderr, "%s: error: %s\n", kProg, err.c_str ());
    return 1;
  }
  set_prompts (p.seg, 2, o.width, o.height);
  GstBus *bus = gst_element_get_bus (p.pipe);
  samples.push_back ({0, rss_mib (o.trim)});
  const gint64 t0 = g_get_monotonic_time ();
  bool ok = true;
  int c = 0;
  for (; ok && c < o.cycles; ++c) {
    g_mutex_lock (&st.lock);
    st.received = 0;
    g_mutex_unlock (&st.lock);
    if (c % 4 == 1) set_prompts (p.seg, c, o.width, o.height);
    if (gst_element_set_state (p.pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) ok = false;
    while (ok) {
      GstMessage *msg = gst_bus_pop_filtered (bus,
          static_cast<GstMessageType> (GST_MESSAGE_ERROR | GST_MESSAGE_EOS));
      if (msg) {
        err = GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR ? bus_error (msg) : "unexpected EOS";
        gst_message_unref (msg);
        ok = false;
        break;
      }
      g_mutex_lock (&st.lock);
      const gint64 end = g_get_monotonic_time () + 20 * G_TIME_SPAN_MILLISECOND;
      if (st.received < static_cast<guint64> (o.cycle_frames)) g_cond_wait_until (&st.cond, &st.lock, end);
      const bool done = st.received >= static_cast<guint64> (o.cycle_frames) || !st.error.empty ();
      g_mutex_unlock (&st.lock);
      if (done) break;
    }
    if (ok && gst_element_set_state (p.pipe, GST_STATE_NULL) == GST_STATE_CHANGE_FAILURE) {
      err = "PLAYING -> NULL failed";
      ok = false;
    }
    gst_bus_set_flushing (bus, TRUE);  // drop this cycle's messages
    gst_bus_set_flushing (bus, FALSE);
    if (ok && !st.error.empty ()) { err = "cycle " + std::to_string (c) + ": " + st.error; ok = false; }
    if (ok && (c + 1) % o.cycle_sample_every == 0) samples.push_back ({c + 1, rss_mib (o.trim)});
  }
  if (!ok && err.empty ()) {
    GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    err = m ? bus_error (m) : "the pipeline failed to start";
    if (m) gst_message_unref (m);
  }
  gst_object_unref (bus);
  const double secs = (g_get_monotonic_time () - t0) / 1e6;
  release (&p);
  print_curve ("cycle", samples);
  const Verdict v = judge (samples, o.cycles, o.max_growth);
  std::printf ("  cycles %d / %d, frames at the sink %" G_GUINT64_FORMAT " (all with mask meta, in "
      "order from PTS 0 each cycle)\n", ok ? c : c - 1, o.cycles, st.total_frames);
  std::printf ("  %.1f s, %.2f cycles/s\n", secs, c / (secs > 0 ? secs : 1));
  print_verdict ("cycle", v, o.max_growth);
  if (!ok) std::fprintf (stderr, "%s: error: state cycles: %s\n", kProg, err.c_str ());
  std::fflush (stdout);
  char b[512];
  g_snprintf (b, sizeof b, "{\"kind\":\"cycles\",\"batch_size\":%u,\"cycles\":%d,\"frames\":%"
      G_GUINT64_FORMAT ",\"seconds\":%.2f,\"growth_mib\":%.3f,\"point_growth_mib\":%.3f,"
      "\"slope_mib_per_1000\":%.4f,\"from\":%ld,\"pass\":%s,\"ok\":%s,"
      "\"samples\":", o.cycle_batch, c, st.total_frames, secs, v.growth, v.point, v.slope, v.from,
      v.pass ? "true" : "false", ok ? "true" : "false");
  *json = std::string (b) + json_samples (samples) + "}";
  g_mutex_clear (&st.lock);
  g_cond_clear (&st.cond);
  return ok && v.pass ? 0 : 1;
}

bool parse_uint_list (const char *text, std::vector<guint> *out) {
  out->clear ();
  gchar **parts = g_strsplit (text, ",", -1);
  bool ok = parts[0] != nullptr;
  for (gchar **q = parts; ok && *q; ++q) {
    gchar *end = nullptr;
    const guint64 v = g_ascii_strtoull (*q, &end, 10);
    if (**q == '\0' || *end != '\0' || v == 0 || v > 64) ok = false;
    else out->push_back (static_cast<guint> (v));
  }
  g_strfreev (parts);
  return ok;
}

}  // namespace

int main (int argc, char **argv) {
  // OMP_WAIT_POLICY / OPENBLAS_CORETYPE: the plugin sets them before it loads
  // LibTorch (gst-plugin/plugin.cpp; see sam3-pipeline-bench)

  Options o;
  gchar *model = nullptr, *cmodel = nullptr, *format = nullptr, *batch = nullptr, *json = nullptr;
  gint cbatch = 4;
  gboolean no_trim = FALSE;
  GOptionEntry entries[] = {
      {"frames", 'n', 0, G_OPTION_ARG_INT, &o.frames, "Frames per frames-soak run, 0 = skip (default 10000)", "N"},
      {"batch-size", 'b', 0, G_OPTION_ARG_STRING, &batch, "Comma list of batch sizes, one frames-soak run (one pipeline) each (default 1,4)", "LIST"},
      {"cycles", 'c', 0, G_OPTION_ARG_INT, &o.cycles, "NULL->PLAYING->NULL cycles, 0 = skip (default 1000)", "M"},
      {"cycle-frames", 0, 0, G_OPTION_ARG_INT, &o.cycle_frames, "Frames that must reach the sink before each PLAYING->NULL (default 3)", "N"},
      {"cycle-batch-size", 0, 0, G_OPTION_ARG_INT, &cbatch, "batch-size in the state cycles (default 4: a partial batch is dropped at every stop)", "B"},
      {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "model-file (default: the element's default, the bundled model)", "FILE"},
      {"cycle-model", 0, 0, G_OPTION_ARG_FILENAME, &cmodel, "model-file for the state cycles (default: --model)", "FILE"},
      {"width", 'W', 0, G_OPTION_ARG_INT, &o.width, "Frame width (default 320)", "PX"},
      {"height", 'H', 0, G_OPTION_ARG_INT, &o.height, "Frame height (default 240)", "PX"},
      {"format", 'f', 0, G_OPTION_ARG_STRING, &format, "RGB (default), I420, NV12, ... (caps of both elements)", "FMT"},
      {"prompt-every", 'k', 0, G_OPTION_ARG_INT, &o.prompt_every, "Change the boxes/points properties every K frames (default 50)", "K"},
      {"sample-every", 0, 0, G_OPTION_ARG_INT, &o.sample_every, "RSS sample every N frames (default 500)", "N"},
      {"cycle-sample-every", 0, 0, G_OPTION_ARG_INT, &o.cycle_sample_every, "RSS sample every N cycles (default 50)", "N"},
      {"threads", 't', 0, G_OPTION_ARG_INT, &o.threads, "num-threads of the element (default 2)", "N"},
      {"max-growth", 0, 0, G_OPTION_ARG_DOUBLE, &o.max_growth, "Allowed RSS growth over the last 80 % in MiB (default 2)", "MIB"},
      {"no-malloc-trim", 0, 0, G_OPTION_ARG_NONE, &no_trim, "Do not call malloc_trim(0) before each RSS sample", nullptr},
      {"json", 0, 0, G_OPTION_ARG_FILENAME, &json, "Write the runs and their RSS samples as JSON", "FILE"},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};
  GOptionContext *ctx = g_option_context_new ("- RSS soak and state-cycle test of sam3segment");
  g_option_context_set_summary (ctx,
      "Frames soak: videotestsrc pattern=ball ! capsfilter ! [1-3 moving detector ROI metas] !\n"
      "sam3segment ! sam3overlay ! fakesink, prompts changed from the application thread.\n"
      "State cycles: one pipeline object cycled NULL -> PLAYING -> frames -> NULL.\n"
      "Rule: RSS growth over the last 80 % of frames / cycles <= --max-growth MiB.\n"
      "Exit status 1 on FAIL, a pipeline error, a missing, out-of-order or mis-timed frame,\n"
      "or a frame without mask metadata; 2 on a usage error.");
  g_option_context_add_main_entries (ctx, entries, nullptr);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  GError *err = nullptr;
  if (!g_option_context_parse (ctx, &argc, &argv, &err)) {
    std::fprintf (stderr, "%s: error: %s\n", kProg, err->message);
    return 2;
  }
  g_option_context_free (ctx);
  if (argc > 1) { std::fprintf (stderr, "%s: error: unexpected argument '%s'\n", kProg, argv[1]); return 2; }
  if (model) o.model = model;
  if (cmodel) o.cycle_model = cmodel;
  if (format) o.format = format;
  if (json) o.json = json;
  o.trim = !no_trim;
  if (batch && !parse_uint_list (batch, &o.batch_sizes)) {
    std::fprintf (stderr, "%s: error: --batch-size '%s' is not a list of 1-64\n", kProg, batch);
    return 2;
  }
  if (o.frames < 0 || o.cycles < 0 || o.cycle_frames < 1 || cbatch < 1 || cbatch > 64 ||
      o.width < 64 || o.height < 64 || o.sample_every < 1 || o.cycle_sample_every < 1 ||
      o.prompt_every < 0) {
    std::fprintf (stderr, "%s: error: bad option value (see --help)\n", kProg);
    return 2;
  }
  o.cycle_batch = static_cast<guint> (cbatch);
  gst_init (nullptr, nullptr);
  GstElementFactory *f = gst_element_factory_find ("sam3segment");
  if (!f) {
    std::fprintf (stderr, "%s: error: no sam3segment element (set GST_PLUGIN_PATH to the build's gst-plugin folder)\n", kProg);
    return 1;
  }
  gst_object_unref (f);
  const char *arena = g_getenv ("MALLOC_ARENA_MAX");
  std::printf ("%s\ncpus %u, OMP_WAIT_POLICY %s, MALLOC_ARENA_MAX %s, malloc_trim before samples %s\n",
      kProg, g_get_num_processors (),
      g_getenv ("OMP_WAIT_POLICY") ? g_getenv ("OMP_WAIT_POLICY") : "unset",
      arena ? arena : "unset",
      o.trim ? "yes" : "no");
  std::printf ("input %dx%d %s 30/1 videotestsrc pattern=ball, model %s, num-threads %d\n", o.width,
      o.height, o.format.c_str (), o.model.empty () ? "(element default: bundled)" : o.model.c_str (),
      o.threads);
  std::fflush (stdout);

  int status = 0;
  std::vector<std::string> parts;
  if (o.frames > 0)
    for (guint b : o.batch_sizes) {
      std::string j;
      status |= frames_soak (o, b, &j);
      parts.push_back (j);
    }
  if (o.cycles > 0) {
    std::string j;
    status |= state_cycles (o, &j);
    parts.push_back (j);
  }
  if (!o.json.empty ()) {
    std::string all = "{\"program\":\"sam3-soak\",\"runs\":[";
    for (size_t i = 0; i < parts.size (); ++i) all += (i ? "," : "") + parts[i];
    all += "]}\n";
    if (!g_file_set_contents (o.json.c_str (), all.c_str (), -1, nullptr)) {
      std::fprintf (stderr, "%s: error: cannot write %s\n", kProg, o.json.c_str ());
      status = 1;
    }
  }
  std::printf ("\n%s: %s\n", kProg, status == 0 ? "PASS" : "FAIL");
  g_free (model);
  g_free (cmodel);
  g_free (format);
  g_free (batch);
  g_free (json);
  return status;
}
