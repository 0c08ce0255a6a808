/* gst-sam3: SAM 3 promptable segmentation for GStreamer
 * SPDX-License-Identifier: Apache-2.0
 *
 * GstAnalytics output (GStreamer >= 1.26 only). See gstsam3analytics.h and
 * docs/analytics.md. The layout follows upstream yolosegv8tensordec
 * (gst-plugins-bad gst/tensordecoders/gstyolosegtensordecoder.c,
 * object_found): per object an ODMtd, a GRAY8 instance mask cropped to the
 * box whose pixels are the region id, a SegmentationMtd placing it at the box
 * (masks_loc = box) and RELATE_TO relations in both directions.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstsam3analytics.h"

#ifdef HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#include <gst/video/video.h>

#include <algorithm>
#include <cstring>
#endif

gboolean
gst_sam3_analytics_available (void)
{
#ifdef HAVE_GST_ANALYTICS
  return TRUE;
#else
  return FALSE;
#endif
}

#ifdef HAVE_GST_ANALYTICS

namespace {

struct ClippedBox {
  gint x, y;
  guint w, h;
};

/* The object's box intersected with the frame; FALSE when empty. */
gboolean
clip_box (const GstSam3MaskObject & obj, guint frame_w, guint frame_h,
    ClippedBox * out)
{
  const gint64 x0 = std::max<gint64> (obj.x, 0);
  const gint64 y0 = std::max<gint64> (obj.y, 0);
  const gint64 x1 = std::min<gint64> ((gint64) obj.x + obj.width, frame_w);
  const gint64 y1 = std::min<gint64> ((gint64) obj.y + obj.height, frame_h);
  if (x1 <= x0 || y1 <= y0)
    return FALSE;
  out->x = (gint) x0;
  out->y = (gint) y0;
  out->w = (guint) (x1 - x0);
  out->h = (guint) (y1 - y0);
  return TRUE;
}

/* A new GRAY8 buffer (with GstVideoMeta) of box->w x box->h holding the part
 * of obj.mask under @box, 255 -> @region_id (any non-zero pixel counts as
 * object). NULL with @error set on failure. */
GstBuffer *
make_region_mask (const GstSam3MaskObject & obj, const ClippedBox & box,
    guint region_id, GError ** error)
{
  GstVideoInfo info;
  if (!gst_video_info_set_format (&info, GST_VIDEO_FORMAT_GRAY8, box.w, box.h)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "object %u: invalid mask size %ux%u", obj.object_id, box.w, box.h);
    return NULL;
  }

  GstVideoMeta *svmeta = gst_buffer_get_video_meta (obj.mask);
  const gsize soffset = svmeta ? svmeta->offset[0] : 0;
  const gsize sstride = svmeta ? (gsize) svmeta->stride[0] : obj.width;

  GstMapInfo smap;
  if (!gst_buffer_map (obj.mask, &smap, GST_MAP_READ)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "object %u: cannot map the mask buffer", obj.object_id);
    return NULL;
  }
  /* Crop origin inside the object's mask. */
  const gsize u0 = (gsize) (box.x - obj.x);
  const gsize v0 = (gsize) (box.y - obj.y);
  if (soffset + (v0 + box.h - 1) * sstride + u0 + box.w > smap.size) {
    gst_buffer_unmap (obj.mask, &smap);
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "object %u: mask buffer smaller than its %ux%u box", obj.object_id,
        obj.width, obj.height);
    return NULL;
  }

  GstBuffer *out = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&info),
      NULL);
  GstMapInfo dmap;
  if (out == NULL || !gst_buffer_map (out, &dmap, GST_MAP_WRITE)) {
    gst_buffer_unmap (obj.mask, &smap);
    if (out)
      gst_buffer_unref (out);
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "object %u: cannot allocate a %ux%u mask", obj.object_id, box.w,
        box.h);
    return NULL;
  }

  const gsize dstride = (gsize) GST_VIDEO_INFO_PLANE_STRIDE (&info, 0);
  const gsize doffset = GST_VIDEO_INFO_PLANE_OFFSET (&info, 0);
  const guint8 value = (guint8) region_id;
  for (guint v = 0; v < box.h; v++) {
    const guint8 *s = smap.data + soffset + (v0 + v) * sstride + u0;
    guint8 *d = dmap.data + doffset + v * dstride;
    for (guint u = 0; u < box.w; u++)
      d[u] = s[u] ? value : 0;
    if (dstride > box.w)
      std::memset (d + box.w, 0, dstride - box.w);
  }
  gst_buffer_unmap (out, &dmap);
  gst_buffer_unmap (obj.mask, &smap);

  gst_buffer_add_video_meta_full (out, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_FORMAT_GRAY8, box.w, box.h, 1, info.offset, info.stride);
  return out;
}

}  // namespace

gboolean
gst_sam3_attach_analytics (GstBuffer * buf, const GstSam3MaskMeta * meta,
    GError ** error)
{
  g_return_val_if_fail (GST_IS_BUFFER (buf), FALSE);
  g_return_val_if_fail (gst_buffer_is_writable (buf), FALSE);
  g_return_val_if_fail (meta != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  const guint n = gst_sam3_mask_meta_get_n_objects (meta);

  /* Reuses the relation meta when upstream (a detector) already added one,
   * like gst_buffer_add_analytics_relation_meta() does. Two mtds per object. */
  GstAnalyticsRelationMetaInitParams params = {
    std::max<gsize> (2 * (gsize) n, 5), 1024 + 512 * (gsize) n
  };
  GstAnalyticsRelationMeta *rmeta =
      gst_buffer_add_analytics_relation_meta_full (buf, &params);
  if (rmeta == NULL) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "cannot add a GstAnalyticsRelationMeta");
    return FALSE;
  }

  const GQuark object_class =
      g_quark_from_static_string (GST_SAM3_ANALYTICS_OBJECT_CLASS);

  for (guint i = 0; i < n; i++) {
    const GstSam3MaskObject & obj =
        g_array_index (meta->objects, GstSam3MaskObject, i);
    ClippedBox box;
    if (!clip_box (obj, meta->frame_width, meta->frame_height, &box))
      continue;

    GstAnalyticsODMtd od_mtd;
    if (!gst_analytics_relation_meta_add_od_mtd (rmeta, object_class, box.x,
            box.y, (gint) box.w, (gint) box.h, obj.iou, &od_mtd)) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
          "object %u: cannot add an ODMtd", obj.object_id);
      return FALSE;
    }

    if (obj.mask == NULL)
      continue;                 /* no mask pixels: detection only */

    const guint region_id = GST_SAM3_ANALYTICS_REGION_ID (obj.object_id);
    GstBuffer *mask = make_region_mask (obj, box, region_id, error);
    if (mask == NULL)
      return FALSE;

    /* Index 0 = background, index 1 = this object (the region table of
     * gstanalyticssegmentationmtd.c's documentation). yolo-seg passes the
     * same { 0, id } array but a count of 1. */
    guint region_ids[2] = { 0, region_id };
    GstAnalyticsSegmentationMtd seg_mtd;
    /* The mtd takes ownership of @mask on success only. */
    if (!gst_analytics_relation_meta_add_segmentation_mtd (rmeta, mask,
            GST_SEGMENTATION_TYPE_INSTANCE, G_N_ELEMENTS (region_ids),
            region_ids, box.x, box.y, box.w, box.h, &seg_mtd)) {
      gst_buffer_unref (mask);
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
          "object %u: cannot add a SegmentationMtd", obj.object_id);
      return FALSE;
    }

    if (!gst_analytics_relation_meta_set_relation (rmeta,
            GST_ANALYTICS_REL_TYPE_RELATE_TO, od_mtd.id, seg_mtd.id) ||
        !gst_analytics_relation_meta_set_relation (rmeta,
            GST_ANALYTICS_REL_TYPE_RELATE_TO, seg_mtd.id, od_mtd.id)) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
          "object %u: cannot relate its ODMtd and SegmentationMtd",
          obj.object_id);
      return FALSE;
    }
  }

  return TRUE;
}

#else /* !HAVE_GST_ANALYTICS */

gboolean
gst_sam3_attach_analytics (GstBuffer * buf, const GstSam3MaskMeta * meta,
    GError ** error)
{
  /* Same preconditions as the real implementation, so that misuse shows up
   * on GStreamer 1.22 builds too; otherwise nothing to do. */
  g_return_val_if_fail (GST_IS_BUFFER (buf), FALSE);
  g_return_val_if_fail (gst_buffer_is_writable (buf), FALSE);
  g_return_val_if_fail (meta != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  return TRUE;
}

#endif /* HAVE_GST_ANALYTICS */
