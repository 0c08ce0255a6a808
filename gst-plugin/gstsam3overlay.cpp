/* gst-sam3: SAM 3 promptable segmentation for GStreamer
 * SPDX-License-Identifier: Apache-2.0
 */
/**
 * SECTION:element-sam3overlay
 * @title: sam3overlay
 * @short_description: draws SAM 3 masks onto video frames
 *
 * sam3overlay draws the #GstSam3MaskMeta attached to each buffer onto the
 * frame, in place: an alpha-blended fill per object, the mask contour, and
 * optionally the bounding box and a label with the object id and predicted
 * IoU. Each object id keeps the same colour across frames (fixed palette, or
 * the #GstSam3Overlay:colors property). Buffers without the meta pass
 * through unchanged. Only system memory is supported; on NV12/I420 contours,
 * boxes and labels are drawn on the luma plane only and the fill is blended
 * on luma and chroma.
 *
 * If the meta's frame size differs from the buffer's (an element scaled the
 * frame without transforming the meta), boxes and masks are rescaled to the
 * buffer size and a warning is logged. Boxes partly outside the frame are
 * clipped.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=1 ! sam3overlay ! fakesink
 * ]| Runs one frame through the overlay; without masks (no sam3segment
 * upstream) it passes through unchanged. With masks:
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! sam3segment model-file=sam3.pt ! sam3overlay draw-boxes=true draw-labels=true ! videoconvert ! autovideosink
 * ]|
 */
#include "gstsam3overlay.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "gstsam3maskmeta.h"

GST_DEBUG_CATEGORY_STATIC (sam3overlay_debug);
#define GST_CAT_DEFAULT sam3overlay_debug

enum
{
  PROP_0,
  PROP_ALPHA,
  PROP_DRAW_MASKS,
  PROP_DRAW_CONTOURS,
  PROP_DRAW_BOXES,
  PROP_DRAW_LABELS,
  PROP_CONTOUR_THICKNESS,
  PROP_COLORS,
};

#define DEFAULT_PROP_ALPHA 0.5
#define DEFAULT_PROP_DRAW_MASKS TRUE
#define DEFAULT_PROP_DRAW_CONTOURS TRUE
#define DEFAULT_PROP_DRAW_BOXES FALSE
#define DEFAULT_PROP_DRAW_LABELS FALSE
#define DEFAULT_PROP_CONTOUR_THICKNESS 2

#define SAM3_OVERLAY_FORMATS "{ RGB, BGR, RGBA, BGRA, RGBx, BGRx, NV12, I420 }"

namespace {

/* Settings: written by set_property under GST_OBJECT_LOCK, copied once per
 * buffer by the streaming thread. */
struct Settings
{
  double alpha = DEFAULT_PROP_ALPHA;
  bool draw_masks = DEFAULT_PROP_DRAW_MASKS;
  bool draw_contours = DEFAULT_PROP_DRAW_CONTOURS;
  bool draw_boxes = DEFAULT_PROP_DRAW_BOXES;
  bool draw_labels = DEFAULT_PROP_DRAW_LABELS;
  int contour_thickness = DEFAULT_PROP_CONTOUR_THICKNESS;
  std::vector<guint32> colors;      /* ARGB; empty: built-in palette */
};

/* ARGB 0xAARRGGBB, well separated hues (Sasha Trubetskoy's list). */
constexpr guint32 kPalette[] = {
  0xFFE6194B, 0xFF3CB44B, 0xFFFFE119, 0xFF4363D8, 0xFFF58231,
  0xFF911EB4, 0xFF42D4F4, 0xFFF032E6, 0xFFBFEF45, 0xFFFABED4,
};

struct Color
{
  guint8 r, g, b;
  double a;                     /* colour alpha (0..1) */
  guint8 y, u, v;               /* BT.601 limited range */
};

Color
color_for (const Settings & s, guint object_id)
{
  guint32 argb;
  if (!s.colors.empty ())
    argb = s.colors[object_id % s.colors.size ()];
  else
    argb = kPalette[object_id % G_N_ELEMENTS (kPalette)];
  Color c;
  c.a = ((argb >> 24) & 0xff) / 255.0;
  c.r = (argb >> 16) & 0xff;
  c.g = (argb >> 8) & 0xff;
  c.b = argb & 0xff;
  auto clamp8 = [](double v) {
    return (guint8) std::clamp ((int) std::lround (v), 0, 255);
  };
  c.y = clamp8 (16 + (65.481 * c.r + 128.553 * c.g + 24.966 * c.b) / 255.0);
  c.u = clamp8 (128 + (-37.797 * c.r - 74.203 * c.g + 112.0 * c.b) / 255.0);
  c.v = clamp8 (128 + (112.0 * c.r - 93.786 * c.g - 18.214 * c.b) / 255.0);
  return c;
}

inline guint8
blend (guint8 dst, guint8 src, int a256)
{
  return (guint8) ((dst * (256 - a256) + src * a256) >> 8);
}

/* One object, prepared for drawing in buffer coordinates. */
struct Object
{
  guint id = 0;
  float iou = 0.f;
  cv::Rect box;                 /* unclipped, buffer pixels */
  cv::Rect clip;                /* box ∩ frame */
  cv::Mat mask;                 /* clip.size(), CV_8UC1, 0/255; may be empty */
};

/* Reads the objects of @meta, scaled from the meta's frame size to
 * @fw x @fh, clipped to the frame. Masks are copied (small crops). */
std::vector<Object>
collect_objects (GstSam3MaskMeta * meta, int fw, int fh)
{
  std::vector<Object> out;
  const double sx = meta->frame_width ? (double) fw / meta->frame_width : 1.0;
  const double sy = meta->frame_height ? (double) fh / meta->frame_height : 1.0;
  const bool scaled = meta->frame_width != (guint) fw
      || meta->frame_height != (guint) fh;
  const cv::Rect frame_rect (0, 0, fw, fh);

  for (guint i = 0; i < gst_sam3_mask_meta_get_n_objects (meta); i++) {
    const GstSam3MaskObject *o = gst_sam3_mask_meta_get_object (meta, i);
    if (!o || o->width == 0 || o->height == 0)
      continue;
    Object obj;
    obj.id = o->object_id;
    obj.iou = o->iou;
    if (scaled) {
      int x0 = (int) std::lround (o->x * sx), y0 = (int) std::lround (o->y * sy);
      int x1 = (int) std::lround ((o->x + (double) o->width) * sx);
      int y1 = (int) std::lround ((o->y + (double) o->height) * sy);
      obj.box = cv::Rect (x0, y0, std::max (x1 - x0, 1), std::max (y1 - y0, 1));
    } else {
      obj.box = cv::Rect (o->x, o->y, (int) o->width, (int) o->height);
    }
    obj.clip = obj.box & frame_rect;
    if (obj.clip.empty ())
      continue;

    GstVideoMeta *vmeta = o->mask ? gst_buffer_get_video_meta (o->mask) : NULL;
    if (vmeta && vmeta->format == GST_VIDEO_FORMAT_GRAY8 &&
        vmeta->width > 0 && vmeta->height > 0) {
      GstMapInfo map;
      if (gst_buffer_map (o->mask, &map, GST_MAP_READ)) {
        if (vmeta->offset[0] + (gsize) vmeta->stride[0] * (vmeta->height - 1)
            + vmeta->width <= map.size) {
          cv::Mat src ((int) vmeta->height, (int) vmeta->width, CV_8UC1,
              map.data + vmeta->offset[0], (size_t) vmeta->stride[0]);
          cv::Mat full;
          if (src.cols != obj.box.width || src.rows != obj.box.height)
            cv::resize (src, full, obj.box.size (), 0, 0, cv::INTER_NEAREST);
          else
            full = src;
          cv::Rect roi (obj.clip.x - obj.box.x, obj.clip.y - obj.box.y,
              obj.clip.width, obj.clip.height);
          cv::threshold (full (roi), obj.mask, 127, 255, cv::THRESH_BINARY);
        }
        gst_buffer_unmap (o->mask, &map);
      }
    }
    out.push_back (std::move (obj));
  }
  return out;
}

std::string
label_for (const Object & o)
{
  char text[64];
  g_snprintf (text, sizeof (text), "%u %.2f", o.id, (double) o.iou);
  return text;
}

void
draw_box_and_label (cv::Mat & img, const Object & o, const cv::Scalar & col,
    const Settings & s)
{
  if (s.draw_boxes)
    cv::rectangle (img, o.box, col, std::max (1, s.contour_thickness / 2));
  if (s.draw_labels) {
    int base = 0;
    const std::string text = label_for (o);
    cv::Size ts = cv::getTextSize (text, cv::FONT_HERSHEY_SIMPLEX, 0.4, 1,
        &base);
    int ty = o.clip.y - 3;
    if (ty - ts.height < 0)
      ty = o.clip.y + ts.height + 2;
    cv::putText (img, text, cv::Point (o.clip.x + 1, ty),
        cv::FONT_HERSHEY_SIMPLEX, 0.4, col, 1, cv::LINE_8);
  }
}

void
draw_contours (cv::Mat & img, const Object & o, const cv::Scalar & col,
    const Settings & s)
{
  if (!s.draw_contours || o.mask.empty ())
    return;
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours (o.mask.clone (), contours, cv::RETR_EXTERNAL,
      cv::CHAIN_APPROX_SIMPLE, cv::Point (o.clip.x, o.clip.y));
  cv::drawContours (img, contours, -1, col, s.contour_thickness, cv::LINE_8);
}

void
draw_packed (GstVideoFrame * frame, const std::vector<Object> & objs,
    const Settings & s)
{
  const GstVideoFormatInfo *finfo = frame->info.finfo;
  const int n = GST_VIDEO_FRAME_COMP_PSTRIDE (frame, 0);
  const int ro = GST_VIDEO_FORMAT_INFO_POFFSET (finfo, GST_VIDEO_COMP_R);
  const int go = GST_VIDEO_FORMAT_INFO_POFFSET (finfo, GST_VIDEO_COMP_G);
  const int bo = GST_VIDEO_FORMAT_INFO_POFFSET (finfo, GST_VIDEO_COMP_B);
  cv::Mat img (GST_VIDEO_FRAME_HEIGHT (frame), GST_VIDEO_FRAME_WIDTH (frame),
      CV_8UC (n), GST_VIDEO_FRAME_PLANE_DATA (frame, 0),
      (size_t) GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0));

  for (const Object & o : objs) {
    const Color c = color_for (s, o.id);
    cv::Scalar col (255, 255, 255, 255);        /* alpha / padding: opaque */
    col[ro] = c.r;
    col[go] = c.g;
    col[bo] = c.b;
    if (s.draw_masks && !o.mask.empty ()) {
      const int a256 = (int) std::lround (s.alpha * c.a * 256.0);
      for (int y = 0; y < o.clip.height; y++) {
        guint8 *row = img.ptr<guint8> (o.clip.y + y) + (size_t) o.clip.x * n;
        const guint8 *m = o.mask.ptr<guint8> (y);
        for (int x = 0; x < o.clip.width; x++) {
          if (!m[x])
            continue;
          guint8 *p = row + (size_t) x * n;
          p[ro] = blend (p[ro], c.r, a256);
          p[go] = blend (p[go], c.g, a256);
          p[bo] = blend (p[bo], c.b, a256);
        }
      }
    }
    draw_contours (img, o, col, s);
    draw_box_and_label (img, o, col, s);
  }
}

void
draw_yuv (GstVideoFrame * frame, const std::vector<Object> & objs,
    const Settings & s)
{
  const bool nv12 = GST_VIDEO_FRAME_FORMAT (frame) == GST_VIDEO_FORMAT_NV12;
  const int w = GST_VIDEO_FRAME_WIDTH (frame), h = GST_VIDEO_FRAME_HEIGHT (frame);
  const int cw = GST_VIDEO_FRAME_COMP_WIDTH (frame, 1);
  const int chh = GST_VIDEO_FRAME_COMP_HEIGHT (frame, 1);
  cv::Mat luma (h, w, CV_8UC1, GST_VIDEO_FRAME_PLANE_DATA (frame, 0),
      (size_t) GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0));
  cv::Mat uplane, vplane, uvplane;
  if (nv12) {
    uvplane = cv::Mat (chh, cw, CV_8UC2, GST_VIDEO_FRAME_PLANE_DATA (frame, 1),
        (size_t) GST_VIDEO_FRAME_PLANE_STRIDE (frame, 1));
  } else {
    uplane = cv::Mat (chh, cw, CV_8UC1, GST_VIDEO_FRAME_COMP_DATA (frame, 1),
        (size_t) GST_VIDEO_FRAME_COMP_STRIDE (frame, 1));
    vplane = cv::Mat (chh, cw, CV_8UC1, GST_VIDEO_FRAME_COMP_DATA (frame, 2),
        (size_t) GST_VIDEO_FRAME_COMP_STRIDE (frame, 2));
  }

  for (const Object & o : objs) {
    const Color c = color_for (s, o.id);
    const cv::Scalar col (c.y);
    if (s.draw_masks && !o.mask.empty ()) {
      const int a256 = (int) std::lround (s.alpha * c.a * 256.0);
      for (int y = 0; y < o.clip.height; y++) {
        guint8 *row = luma.ptr<guint8> (o.clip.y + y) + o.clip.x;
        const guint8 *m = o.mask.ptr<guint8> (y);
        for (int x = 0; x < o.clip.width; x++)
          if (m[x])
            row[x] = blend (row[x], c.y, a256);
      }
      /* chroma: a sample is blended when any of its (up to 2x2) pixels is in
       * the mask */
      const int cy0 = o.clip.y / 2, cy1 = (o.clip.y + o.clip.height - 1) / 2;
      const int cx0 = o.clip.x / 2, cx1 = (o.clip.x + o.clip.width - 1) / 2;
      for (int cy = cy0; cy <= cy1 && cy < chh; cy++) {
        for (int cx = cx0; cx <= cx1 && cx < cw; cx++) {
          bool hit = false;
          for (int dy = 0; dy < 2 && !hit; dy++) {
            const int my = 2 * cy + dy - o.clip.y;
            if (my < 0 || my >= o.clip.height)
              continue;
            const guint8 *m = o.mask.ptr<guint8> (my);
            for (int dx = 0; dx < 2 && !hit; dx++) {
              const int mx = 2 * cx + dx - o.clip.x;
              if (mx >= 0 && mx < o.clip.width && m[mx])
                hit = true;
            }
          }
          if (!hit)
            continue;
          if (nv12) {
            guint8 *p = uvplane.ptr<guint8> (cy) + 2 * cx;
            p[0] = blend (p[0], c.u, a256);
            p[1] = blend (p[1], c.v, a256);
          } else {
            guint8 *pu = uplane.ptr<guint8> (cy) + cx;
            guint8 *pv = vplane.ptr<guint8> (cy) + cx;
            *pu = blend (*pu, c.u, a256);
            *pv = blend (*pv, c.v, a256);
          }
        }
      }
    }
    draw_contours (luma, o, col, s);
    draw_box_and_label (luma, o, col, s);
  }
}

}  // namespace

struct GstSam3OverlayPrivate
{
  Settings settings;
  bool warned_size = false;     /* streaming thread only */
};

struct _GstSam3Overlay
{
  GstVideoFilter parent;
  GstSam3OverlayPrivate *priv;
};

#define gst_sam3_overlay_parent_class parent_class
G_DEFINE_TYPE (GstSam3Overlay, gst_sam3_overlay, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE (sam3overlay, "sam3overlay", GST_RANK_NONE,
    GST_TYPE_SAM3_OVERLAY);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (SAM3_OVERLAY_FORMATS)));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (SAM3_OVERLAY_FORMATS)));

static void gst_sam3_overlay_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_sam3_overlay_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_sam3_overlay_finalize (GObject * object);
static GstFlowReturn gst_sam3_overlay_transform_frame_ip (GstVideoFilter *
    filter, GstVideoFrame * frame);

static void
gst_sam3_overlay_class_init (GstSam3OverlayClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);
  const GParamFlags flags = (GParamFlags) (G_PARAM_READWRITE |
      G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);

  GST_DEBUG_CATEGORY_INIT (sam3overlay_debug, "sam3overlay", 0,
      "SAM 3 mask overlay");

  gobject_class->set_property = gst_sam3_overlay_set_property;
  gobject_class->get_property = gst_sam3_overlay_get_property;
  gobject_class->finalize = gst_sam3_overlay_finalize;

  /**
   * GstSam3Overlay:alpha:
   *
   * Opacity of the mask fill, 0 (invisible) .. 1 (opaque). Multiplied by
   * the alpha byte of the object's colour.
   */
  g_object_class_install_property (gobject_class, PROP_ALPHA,
      g_param_spec_double ("alpha", "Alpha",
          "Opacity of the mask fill: 0 = invisible, 1 = opaque (multiplied by "
          "the colour's own alpha)", 0.0, 1.0, DEFAULT_PROP_ALPHA, flags));
  /**
   * GstSam3Overlay:draw-masks:
   *
   * Fill each mask with its object's colour, blended with #GstSam3Overlay:alpha.
   */
  g_object_class_install_property (gobject_class, PROP_DRAW_MASKS,
      g_param_spec_boolean ("draw-masks", "Draw masks",
          "Fill each mask with its object's colour (alpha-blended)",
          DEFAULT_PROP_DRAW_MASKS, flags));
  /**
   * GstSam3Overlay:draw-contours:
   *
   * Draw the outer contour of each mask, #GstSam3Overlay:contour-thickness
   * pixels wide (luma only on YUV formats).
   */
  g_object_class_install_property (gobject_class, PROP_DRAW_CONTOURS,
      g_param_spec_boolean ("draw-contours", "Draw contours",
          "Draw the outer contour of each mask (contour-thickness pixels; "
          "luma only on YUV formats)", DEFAULT_PROP_DRAW_CONTOURS, flags));
  /**
   * GstSam3Overlay:draw-boxes:
   *
   * Draw the bounding box of each object.
   */
  g_object_class_install_property (gobject_class, PROP_DRAW_BOXES,
      g_param_spec_boolean ("draw-boxes", "Draw boxes",
          "Draw each object's bounding box (max(1, contour-thickness/2) "
          "pixels; luma only on YUV formats)", DEFAULT_PROP_DRAW_BOXES, flags));
  /**
   * GstSam3Overlay:draw-labels:
   *
   * Draw "<object id> <predicted IoU>" above each box.
   */
  g_object_class_install_property (gobject_class, PROP_DRAW_LABELS,
      g_param_spec_boolean ("draw-labels", "Draw labels",
          "Draw '<object-id> <predicted IoU>' at the top-left of each box "
          "(luma only on YUV formats)", DEFAULT_PROP_DRAW_LABELS, flags));
  /**
   * GstSam3Overlay:contour-thickness:
   *
   * Contour line width, in pixels.
   */
  g_object_class_install_property (gobject_class, PROP_CONTOUR_THICKNESS,
      g_param_spec_int ("contour-thickness", "Contour thickness",
          "Contour line width in pixels", 1, 32,
          DEFAULT_PROP_CONTOUR_THICKNESS, flags));
  /**
   * GstSam3Overlay:colors:
   *
   * Colours as ARGB 0xAARRGGBB; object id N uses entry N modulo the length.
   * Empty (the default) selects the built-in 10-colour palette.
   */
  g_object_class_install_property (gobject_class, PROP_COLORS,
      gst_param_spec_array ("colors", "Colors",
          "Per-object colours as ARGB 0xAARRGGBB (guint); object id N uses "
          "entry N mod length; AA scales alpha. Empty: built-in 10-colour "
          "palette. Example: colors=\"<0xff00ff00, 0xffff0000>\"",
          g_param_spec_uint ("color", "Color", "ARGB colour 0xAARRGGBB",
              0, G_MAXUINT32, 0xffffffff,
              (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)),
          flags));

  gst_element_class_set_static_metadata (element_class, "SAM 3 mask overlay",
      "Filter/Effect/Video",
      "Draws the SAM 3 masks (GstSam3MaskMeta) of each frame: fill, contour, "
      "box and label", "gst-sam3 developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  filter_class->transform_frame_ip =
      GST_DEBUG_FUNCPTR (gst_sam3_overlay_transform_frame_ip);
}

static void
gst_sam3_overlay_init (GstSam3Overlay * self)
{
  self->priv = new GstSam3OverlayPrivate ();
}

static void
gst_sam3_overlay_finalize (GObject * object)
{
  GstSam3Overlay *self = GST_SAM3_OVERLAY (object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_sam3_overlay_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstSam3Overlay *self = GST_SAM3_OVERLAY (object);
  Settings & s = self->priv->settings;

  switch (prop_id) {
    case PROP_COLORS:{
      std::vector<guint32> colors;
      const guint n = gst_value_array_get_size (value);
      colors.reserve (n);
      for (guint i = 0; i < n; i++)
        colors.push_back (g_value_get_uint (gst_value_array_get_value (value,
                    i)));
      GST_OBJECT_LOCK (self);
      s.colors.swap (colors);
      GST_OBJECT_UNLOCK (self);
      return;
    }
    default:
      break;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_ALPHA:
      s.alpha = g_value_get_double (value);
      break;
    case PROP_DRAW_MASKS:
      s.draw_masks = g_value_get_boolean (value);
      break;
    case PROP_DRAW_CONTOURS:
      s.draw_contours = g_value_get_boolean (value);
      break;
    case PROP_DRAW_BOXES:
      s.draw_boxes = g_value_get_boolean (value);
      break;
    case PROP_DRAW_LABELS:
      s.draw_labels = g_value_get_boolean (value);
      break;
    case PROP_CONTOUR_THICKNESS:
      s.contour_thickness = g_value_get_int (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_sam3_overlay_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstSam3Overlay *self = GST_SAM3_OVERLAY (object);
  const Settings & s = self->priv->settings;

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_ALPHA:
      g_value_set_double (value, s.alpha);
      break;
    case PROP_DRAW_MASKS:
      g_value_set_boolean (value, s.draw_masks);
      break;
    case PROP_DRAW_CONTOURS:
      g_value_set_boolean (value, s.draw_contours);
      break;
    case PROP_DRAW_BOXES:
      g_value_set_boolean (value, s.draw_boxes);
      break;
    case PROP_DRAW_LABELS:
      g_value_set_boolean (value, s.draw_labels);
      break;
    case PROP_CONTOUR_THICKNESS:
      g_value_set_int (value, s.contour_thickness);
      break;
    case PROP_COLORS:
      for (guint32 c : s.colors) {
        GValue v = G_VALUE_INIT;
        g_value_init (&v, G_TYPE_UINT);
        g_value_set_uint (&v, c);
        gst_value_array_append_and_take_value (value, &v);
      }
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static GstFlowReturn
gst_sam3_overlay_transform_frame_ip (GstVideoFilter * filter,
    GstVideoFrame * frame)
{
  GstSam3Overlay *self = GST_SAM3_OVERLAY (filter);
  GstSam3OverlayPrivate *priv = self->priv;

  GstSam3MaskMeta *meta = gst_buffer_get_sam3_mask_meta (frame->buffer);
  if (!meta || gst_sam3_mask_meta_get_n_objects (meta) == 0)
    return GST_FLOW_OK;

  Settings s;
  GST_OBJECT_LOCK (self);
  s = priv->settings;
  GST_OBJECT_UNLOCK (self);
  if (!s.draw_masks && !s.draw_contours && !s.draw_boxes && !s.draw_labels)
    return GST_FLOW_OK;

  const int fw = GST_VIDEO_FRAME_WIDTH (frame);
  const int fh = GST_VIDEO_FRAME_HEIGHT (frame);
  if (meta->frame_width == 0 || meta->frame_height == 0) {
    GST_WARNING_OBJECT (self, "mask meta without frame size, skipping");
    return GST_FLOW_OK;
  }
  if ((meta->frame_width != (guint) fw || meta->frame_height != (guint) fh)
      && !priv->warned_size) {
    GST_WARNING_OBJECT (self, "mask meta is for %ux%u but the frame is %dx%d;"
        " scaling the masks", meta->frame_width, meta->frame_height, fw, fh);
    priv->warned_size = true;
  }

  try {
    std::vector<Object> objs = collect_objects (meta, fw, fh);
    if (GST_VIDEO_INFO_IS_YUV (&frame->info))
      draw_yuv (frame, objs, s);
    else
      draw_packed (frame, objs, s);
  } catch (const std::exception & e) {
    GST_ELEMENT_WARNING (self, STREAM, FAILED, (NULL),
        ("drawing masks failed: %s", e.what ()));
  } catch (...) {
    GST_ELEMENT_WARNING (self, STREAM, FAILED, (NULL),
        ("drawing masks failed: unknown exception"));
  }
  return GST_FLOW_OK;
}
