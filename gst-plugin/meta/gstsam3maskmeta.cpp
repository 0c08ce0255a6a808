/* gst-sam3: SAM 3 promptable segmentation for GStreamer
 * SPDX-License-Identifier: Apache-2.0
 */
#include "gstsam3maskmeta.h"

#include <cmath>

#include <cstring>

GST_DEBUG_CATEGORY_STATIC (sam3maskmeta_debug);
#define GST_CAT_DEFAULT sam3maskmeta_debug

static void
ensure_debug_category (void)
{
  static gsize done = 0;
  if (g_once_init_enter (&done)) {
    GST_DEBUG_CATEGORY_INIT (sam3maskmeta_debug, "sam3maskmeta", 0,
        "SAM 3 mask meta");
    g_once_init_leave (&done, 1);
  }
}

GType
gst_sam3_prompt_source_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    {GST_SAM3_PROMPT_SOURCE_PROPERTY, "Prompt from a property", "property"},
    {GST_SAM3_PROMPT_SOURCE_ROI_META, "Prompt from an upstream ROI meta",
        "roi-meta"},
    {GST_SAM3_PROMPT_SOURCE_EVENT, "Prompt from a custom event", "event"},
    {GST_SAM3_PROMPT_SOURCE_NAVIGATION, "Prompt from a navigation event",
        "navigation"},
    {GST_SAM3_PROMPT_SOURCE_SIGNAL, "Prompt from an action signal", "signal"},
    {0, NULL, NULL},
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstSam3PromptSource", values);
    g_once_init_leave (&type, t);
  }
  return (GType) type;
}

/* Makes a GRAY8 buffer of w x h with a GstVideoMeta, rows copied from src. */
static GstBuffer *
make_mask_buffer (const guint8 * src, gsize src_stride, guint w, guint h)
{
  GstVideoInfo info;
  if (!gst_video_info_set_format (&info, GST_VIDEO_FORMAT_GRAY8, w, h))
    return NULL;
  GstBuffer *buf = gst_buffer_new_allocate (NULL, info.size, NULL);
  if (!buf)
    return NULL;
  GstMapInfo map;
  if (!gst_buffer_map (buf, &map, GST_MAP_WRITE)) {
    gst_buffer_unref (buf);
    return NULL;
  }
  const gsize dst_stride = (gsize) GST_VIDEO_INFO_PLANE_STRIDE (&info, 0);
  memset (map.data, 0, map.size);
  for (guint row = 0; row < h; row++)
    memcpy (map.data + row * dst_stride, src + row * src_stride, w);
  gst_buffer_unmap (buf, &map);
  gst_buffer_add_video_meta_full (buf, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_FORMAT_GRAY8, w, h, 1, info.offset, info.stride);
  return buf;
}

/* Nearest-neighbour resize of a mask buffer to w x h; NULL on failure. */
static GstBuffer *
resize_mask_buffer (GstBuffer * mask, guint w, guint h)
{
  GstVideoMeta *vmeta = gst_buffer_get_video_meta (mask);
  if (!vmeta || vmeta->width == 0 || vmeta->height == 0 || w == 0 || h == 0)
    return NULL;
  GstMapInfo in;
  if (!gst_buffer_map (mask, &in, GST_MAP_READ))
    return NULL;
  const guint sw = vmeta->width, sh = vmeta->height;
  const gsize sstride = vmeta->stride[0];
  const guint8 *sdata = in.data + vmeta->offset[0];
  guint8 *tmp = (guint8 *) g_malloc ((gsize) w * h);
  for (guint v = 0; v < h; v++) {
    guint sv = (guint) (((guint64) v * sh) / h);
    const guint8 *srow = sdata + sv * sstride;
    for (guint u = 0; u < w; u++)
      tmp[(gsize) v * w + u] = srow[((guint64) u * sw) / w];
  }
  gst_buffer_unmap (mask, &in);
  GstBuffer *out = make_mask_buffer (tmp, w, w, h);
  g_free (tmp);
  return out;
}

static void
clear_object (gpointer data)
{
  GstSam3MaskObject *obj = (GstSam3MaskObject *) data;
  gst_clear_buffer (&obj->mask);
  gst_clear_buffer (&obj->logits);
}

static gboolean
gst_sam3_mask_meta_init (GstMeta * meta, gpointer, GstBuffer *)
{
  GstSam3MaskMeta *m = (GstSam3MaskMeta *) meta;
  m->frame_width = 0;
  m->frame_height = 0;
  m->objects = g_array_new (FALSE, TRUE, sizeof (GstSam3MaskObject));
  g_array_set_clear_func (m->objects, clear_object);
  return TRUE;
}

static void
gst_sam3_mask_meta_free (GstMeta * meta, GstBuffer *)
{
  GstSam3MaskMeta *m = (GstSam3MaskMeta *) meta;
  g_clear_pointer (&m->objects, g_array_unref);
}

static gboolean
gst_sam3_mask_meta_transform (GstBuffer * dest, GstMeta * meta,
    GstBuffer * buffer, GQuark type, gpointer data)
{
  GstSam3MaskMeta *src = (GstSam3MaskMeta *) meta;
  (void) buffer;

  if (GST_META_TRANSFORM_IS_COPY (type)) {
    GstMetaTransformCopy *copy = (GstMetaTransformCopy *) data;
    if (copy->region) {
      /* a sub-region copy (not the whole frame): boxes would be wrong */
      GST_DEBUG ("dropping mask meta on region copy");
      return FALSE;
    }
    GstSam3MaskMeta *dst = gst_buffer_add_sam3_mask_meta (dest,
        src->frame_width, src->frame_height);
    if (!dst)
      return FALSE;
    for (guint i = 0; i < src->objects->len; i++) {
      GstSam3MaskObject obj = g_array_index (src->objects, GstSam3MaskObject, i);
      if (obj.mask)
        gst_buffer_ref (obj.mask);
      if (obj.logits)
        gst_buffer_ref (obj.logits);
      g_array_append_val (dst->objects, obj);
    }
    return TRUE;
  }

  if (GST_VIDEO_META_TRANSFORM_IS_SCALE (type)) {
    GstVideoMetaTransform *trans = (GstVideoMetaTransform *) data;
    const gint in_w = GST_VIDEO_INFO_WIDTH (trans->in_info);
    const gint in_h = GST_VIDEO_INFO_HEIGHT (trans->in_info);
    const gint out_w = GST_VIDEO_INFO_WIDTH (trans->out_info);
    const gint out_h = GST_VIDEO_INFO_HEIGHT (trans->out_info);
    if (in_w <= 0 || in_h <= 0 || out_w <= 0 || out_h <= 0) {
      GST_DEBUG ("dropping mask meta: invalid scale %dx%d -> %dx%d", in_w,
          in_h, out_w, out_h);
      return FALSE;
    }
    /* boxes refer to frame_width x frame_height; map them onto out frame */
    const gdouble ref_w = src->frame_width ? src->frame_width : in_w;
    const gdouble ref_h = src->frame_height ? src->frame_height : in_h;
    const gdouble sx = out_w / ref_w, sy = out_h / ref_h;
    GstSam3MaskMeta *dst = gst_buffer_add_sam3_mask_meta (dest, out_w, out_h);
    if (!dst)
      return FALSE;
    GST_DEBUG ("scaling mask meta %gx%g -> %dx%d", ref_w, ref_h, out_w, out_h);
    for (guint i = 0; i < src->objects->len; i++) {
      GstSam3MaskObject obj = g_array_index (src->objects, GstSam3MaskObject, i);
      /* in double, clamped before any cast (a hostile box or scale must not
       * overflow an int); the scaled mask is at most the output frame's size,
       * so its allocation is bounded by the frame */
      const gdouble x0 = std::floor (obj.x * sx + 0.5);
      const gdouble y0 = std::floor (obj.y * sy + 0.5);
      const gdouble x1 = std::floor ((obj.x + (gdouble) obj.width) * sx + 0.5);
      const gdouble y1 = std::floor ((obj.y + (gdouble) obj.height) * sy + 0.5);
      obj.x = (gint) CLAMP (x0, (gdouble) G_MININT, (gdouble) G_MAXINT);
      obj.y = (gint) CLAMP (y0, (gdouble) G_MININT, (gdouble) G_MAXINT);
      obj.width = (guint) CLAMP (x1 - x0, obj.width ? 1.0 : 0.0, (gdouble) out_w);
      obj.height = (guint) CLAMP (y1 - y0, obj.height ? 1.0 : 0.0, (gdouble) out_h);
      if (obj.mask)
        obj.mask = resize_mask_buffer (obj.mask, obj.width, obj.height);
      if (obj.logits)           /* model space: unchanged by scaling */
        gst_buffer_ref (obj.logits);
      g_array_append_val (dst->objects, obj);
    }
    return TRUE;
  }

  GST_DEBUG ("dropping mask meta on unsupported transform %s",
      g_quark_to_string (type));
  return FALSE;
}

GType
gst_sam3_mask_meta_api_get_type (void)
{
  static gsize type = 0;
  static const gchar *tags[] = { GST_META_TAG_VIDEO_STR, "size",
    "orientation", NULL
  };
  if (g_once_init_enter (&type)) {
    GType t = gst_meta_api_type_register ("GstSam3MaskMetaAPI", tags);
    g_once_init_leave (&type, t);
  }
  return (GType) type;
}

const GstMetaInfo *
gst_sam3_mask_meta_get_info (void)
{
  static const GstMetaInfo *info = NULL;
  if (g_once_init_enter ((GstMetaInfo **) & info)) {
    ensure_debug_category ();
    const GstMetaInfo *mi = gst_meta_register (GST_SAM3_MASK_META_API_TYPE,
        "GstSam3MaskMeta", sizeof (GstSam3MaskMeta),
        gst_sam3_mask_meta_init, gst_sam3_mask_meta_free,
        gst_sam3_mask_meta_transform);
    g_once_init_leave ((GstMetaInfo **) & info, (GstMetaInfo *) mi);
  }
  return info;
}

/**
 * gst_buffer_add_sam3_mask_meta:
 * @buffer: a writable #GstBuffer
 * @frame_width: width of the frame the boxes refer to
 * @frame_height: height of the frame the boxes refer to
 *
 * Returns: (transfer none): the new meta, with no objects.
 */
GstSam3MaskMeta *
gst_buffer_add_sam3_mask_meta (GstBuffer * buffer, guint frame_width,
    guint frame_height)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (gst_buffer_is_writable (buffer), NULL);
  GstSam3MaskMeta *meta = (GstSam3MaskMeta *) gst_buffer_add_meta (buffer,
      GST_SAM3_MASK_META_INFO, NULL);
  if (meta) {
    meta->frame_width = frame_width;
    meta->frame_height = frame_height;
  }
  return meta;
}

/**
 * gst_buffer_get_sam3_mask_meta:
 * @buffer: a #GstBuffer
 *
 * Returns: (transfer none) (nullable): the first mask meta of @buffer.
 */
GstSam3MaskMeta *
gst_buffer_get_sam3_mask_meta (GstBuffer * buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  return (GstSam3MaskMeta *) gst_buffer_get_meta (buffer,
      GST_SAM3_MASK_META_API_TYPE);
}

/**
 * gst_sam3_mask_meta_add_object:
 * @meta: a #GstSam3MaskMeta (of a writable buffer)
 * @object_id: object id
 * @source: prompt source
 * @x: bbox left, frame pixels
 * @y: bbox top, frame pixels
 * @width: bbox (and mask) width
 * @height: bbox (and mask) height
 * @iou: predicted IoU
 * @mask: (nullable) (array): @height rows of @width GRAY8 pixels (0/255),
 *   copied; NULL for an object without mask
 * @stride: bytes between rows of @mask (>= @width)
 *
 * Returns: (transfer none): the new object (roi_id and parent_roi_id -1,
 *   stale FALSE); valid until the next object is added.
 */
GstSam3MaskObject *
gst_sam3_mask_meta_add_object (GstSam3MaskMeta * meta, guint object_id,
    GstSam3PromptSource source, gint x, gint y, guint width, guint height,
    gfloat iou, const guint8 * mask, gsize stride)
{
  g_return_val_if_fail (meta != NULL, NULL);
  g_return_val_if_fail (meta->objects != NULL, NULL);
  g_return_val_if_fail (mask == NULL || stride >= width, NULL);
  g_return_val_if_fail (mask == NULL || (width > 0 && height > 0), NULL);

  GstSam3MaskObject obj = { };
  obj.object_id = object_id;
  obj.source = source;
  obj.x = x;
  obj.y = y;
  obj.width = width;
  obj.height = height;
  obj.iou = iou;
  obj.stale = FALSE;
  obj.roi_id = -1;
  obj.parent_roi_id = -1;
  obj.mask = mask ? make_mask_buffer (mask, stride, width, height) : NULL;
  if (mask && !obj.mask)
    return NULL;
  g_array_append_val (meta->objects, obj);
  return &g_array_index (meta->objects, GstSam3MaskObject,
      meta->objects->len - 1);
}

/**
 * gst_sam3_mask_object_set_logits:
 * @object: an object of a writable buffer's #GstSam3MaskMeta
 * @logits: (array): @height rows of @width float32 logits, copied
 * @width: columns
 * @height: rows
 *
 * Attaches (or replaces) the object's low-resolution logits.
 *
 * Returns: FALSE on bad arguments or allocation failure.
 */
gboolean
gst_sam3_mask_object_set_logits (GstSam3MaskObject * object,
    const gfloat * logits, guint width, guint height)
{
  g_return_val_if_fail (object != NULL, FALSE);
  g_return_val_if_fail (logits != NULL && width > 0 && height > 0, FALSE);
  const gsize size = (gsize) width * height * sizeof (gfloat);
  GstBuffer *buf = gst_buffer_new_allocate (NULL, size, NULL);
  if (!buf)
    return FALSE;
  gst_buffer_fill (buf, 0, logits, size);
  gst_clear_buffer (&object->logits);
  object->logits = buf;
  object->logits_width = width;
  object->logits_height = height;
  return TRUE;
}

guint
gst_sam3_mask_meta_get_n_objects (const GstSam3MaskMeta * meta)
{
  g_return_val_if_fail (meta != NULL, 0);
  g_return_val_if_fail (meta->objects != NULL, 0);
  return meta->objects->len;
}

/**
 * gst_sam3_mask_meta_get_object:
 * Returns: (transfer none) (nullable): object @index, NULL if out of range.
 */
GstSam3MaskObject *
gst_sam3_mask_meta_get_object (GstSam3MaskMeta * meta, guint index)
{
  g_return_val_if_fail (meta != NULL, NULL);
  g_return_val_if_fail (meta->objects != NULL, NULL);
  g_return_val_if_fail (index < meta->objects->len, NULL);
  return &g_array_index (meta->objects, GstSam3MaskObject, index);
}

/**
 * gst_sam3_result_meta_register:
 *
 * Registers the "Sam3Result" #GstCustomMeta (idempotent).
 *
 * Returns: TRUE when registered.
 */
gboolean
gst_sam3_result_meta_register (void)
{
  static gsize done = 0;
  static gboolean ok = FALSE;
  if (g_once_init_enter (&done)) {
    static const gchar *tags[] = { GST_META_TAG_VIDEO_STR, "size",
      "orientation", NULL
    };
    ok = gst_meta_register_custom (GST_SAM3_RESULT_META_NAME, tags, NULL,
        NULL, NULL) != NULL;
    g_once_init_leave (&done, 1);
  }
  return ok;
}

/**
 * gst_buffer_add_sam3_result_meta:
 * @buffer: a writable #GstBuffer
 * @meta: the mask meta to summarise
 *
 * Adds the "Sam3Result" custom meta (layout in the header documentation).
 *
 * Returns: (transfer none) (nullable): the custom meta.
 */
GstCustomMeta *
gst_buffer_add_sam3_result_meta (GstBuffer * buffer,
    const GstSam3MaskMeta * meta)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (gst_buffer_is_writable (buffer), NULL);
  g_return_val_if_fail (meta != NULL && meta->objects != NULL, NULL);
  if (!gst_sam3_result_meta_register ())
    return NULL;

  GstCustomMeta *cmeta = gst_buffer_add_custom_meta (buffer,
      GST_SAM3_RESULT_META_NAME);
  if (!cmeta)
    return NULL;
  GstStructure *s = gst_custom_meta_get_structure (cmeta);
  GEnumClass *eclass = (GEnumClass *) g_type_class_ref (
      GST_TYPE_SAM3_PROMPT_SOURCE);
  gst_structure_set (s, "num-objects", G_TYPE_UINT, meta->objects->len,
      "frame-width", G_TYPE_UINT, meta->frame_width,
      "frame-height", G_TYPE_UINT, meta->frame_height, NULL);
  for (guint i = 0; i < meta->objects->len; i++) {
    const GstSam3MaskObject *obj =
        &g_array_index (meta->objects, GstSam3MaskObject, i);
    GEnumValue *ev = g_enum_get_value (eclass, obj->source);
    gchar *f_id = g_strdup_printf ("object-%u-id", i);
    gchar *f_src = g_strdup_printf ("object-%u-source", i);
    gchar *f_box = g_strdup_printf ("object-%u-box", i);
    gchar *f_iou = g_strdup_printf ("object-%u-iou", i);
    gchar *f_stale = g_strdup_printf ("object-%u-stale", i);

    GValue box = G_VALUE_INIT;
    gst_value_array_init (&box, 4);
    const gint vals[4] = { obj->x, obj->y, (gint) obj->width,
      (gint) obj->height
    };
    for (gint v : vals) {
      GValue iv = G_VALUE_INIT;
      g_value_init (&iv, G_TYPE_INT);
      g_value_set_int (&iv, v);
      gst_value_array_append_and_take_value (&box, &iv);
    }
    gst_structure_set (s, f_id, G_TYPE_UINT, obj->object_id,
        f_src, G_TYPE_STRING, ev ? ev->value_nick : "unknown",
        f_iou, G_TYPE_FLOAT, obj->iou,
        f_stale, G_TYPE_BOOLEAN, obj->stale, NULL);
    gst_structure_take_value (s, f_box, &box);
    g_free (f_id);
    g_free (f_src);
    g_free (f_box);
    g_free (f_iou);
    g_free (f_stale);
  }
  gst_structure_set (s, "mask-location", G_TYPE_STRING, "GstSam3MaskMeta",
      NULL);
  g_type_class_unref (eclass);
  return cmeta;
}
