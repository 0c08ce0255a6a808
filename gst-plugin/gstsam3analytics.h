/* gst-sam3: SAM 3 promptable segmentation for GStreamer
 * SPDX-License-Identifier: Apache-2.0
 */
/**
 * SECTION:gstsam3analytics
 * @title: GstAnalytics output
 * @short_description: mirror #GstSam3MaskMeta into GstAnalytics (>= 1.26)
 *
 * When the plugin is built against GStreamer >= 1.26 (meson finds
 * `gstreamer-analytics-1.0 >= 1.26` and defines `HAVE_GST_ANALYTICS`),
 * gst_sam3_attach_analytics() adds, for every object of a #GstSam3MaskMeta,
 * the upstream instance-segmentation pattern of `yolosegv8tensordec`
 * (gst-plugins-bad gst/tensordecoders/gstyolosegtensordecoder.c):
 *
 *  - one #GstAnalyticsODMtd: class quark #GST_SAM3_ANALYTICS_OBJECT_CLASS,
 *    box = the object's box clipped to the frame, confidence = predicted IoU;
 *  - one #GstAnalyticsSegmentationMtd (%GST_SEGMENTATION_TYPE_INSTANCE): a
 *    GRAY8 mask buffer with a #GstVideoMeta, cropped to the same box
 *    (masks_loc = box), pixel = GST_SAM3_ANALYTICS_REGION_ID (object_id) on
 *    the object and 0 elsewhere; region ids { 0, region id };
 *  - the relations ODMtd RELATE_TO SegmentationMtd and SegmentationMtd
 *    RELATE_TO ODMtd.
 *
 * Stock `objectdetectionoverlay` (1.24+) and `segmentationoverlay` (1.28+)
 * draw this without further work. See docs/analytics.md.
 *
 * Built against an older GStreamer (1.22 on Debian 12) the function does
 * nothing and returns %TRUE: only #GstSam3MaskMeta, the ROI metas and the
 * "Sam3Result" custom meta are attached then.
 */
#ifndef __GST_SAM3_ANALYTICS_H__
#define __GST_SAM3_ANALYTICS_H__

#include <gst/gst.h>

#include "gstsam3maskmeta.h"

G_BEGIN_DECLS

/**
 * GST_SAM3_ANALYTICS_OBJECT_CLASS:
 *
 * The class (a #GQuark string) of every #GstAnalyticsODMtd that
 * gst_sam3_attach_analytics() adds. SAM 3 interactive prompts carry no class
 * label; the prompt source stays in #GstSam3MaskMeta.
 */
#define GST_SAM3_ANALYTICS_OBJECT_CLASS "sam3-object"

/**
 * GST_SAM3_ANALYTICS_REGION_ID:
 * @object_id: #GstSam3MaskObject object_id
 *
 * The region id (GRAY8 pixel value, 1 .. 255) of an object in its
 * #GstAnalyticsSegmentationMtd mask. It depends on the object id only, so an
 * object keeps its region id, and its colour in `segmentationoverlay`, from
 * frame to frame. 0 is the background. Two objects whose ids differ by a
 * multiple of 255 share a value, which is harmless because every object has
 * its own mask buffer.
 */
#define GST_SAM3_ANALYTICS_REGION_ID(object_id) \
  ((guint) (((guint) (object_id)) % 255u) + 1u)

/**
 * gst_sam3_analytics_available:
 *
 * Returns: %TRUE when the plugin was built with GstAnalytics support
 * (GStreamer >= 1.26), i.e. when gst_sam3_attach_analytics() does anything.
 */
gboolean gst_sam3_analytics_available (void);

/**
 * gst_sam3_attach_analytics:
 * @buf: (transfer none): a writable buffer carrying @meta
 * @meta: the #GstSam3MaskMeta just attached to @buf (its objects final:
 *   stale flags set)
 * @error: (out) (optional): set when an analytics meta could not be added
 *
 * Adds (or reuses) the #GstAnalyticsRelationMeta of @buf and adds, per
 * object, an ODMtd and, when the object has a mask, a SegmentationMtd,
 * related RELATE_TO both ways. Objects whose box lies completely outside the
 * frame are skipped. The relation meta is added even when @meta has no
 * objects (the frame was analysed, nothing was found), as the upstream
 * tensor decoders do. Call it once per buffer: a second call adds the
 * objects again.
 *
 * The mask buffers handed to the SegmentationMtds are new copies (pixel
 * values changed from 255 to the region id); the #GstSam3MaskMeta masks are
 * neither modified nor shared.
 *
 * Without GstAnalytics support (GStreamer < 1.26 at build time) this is a
 * no-op that returns %TRUE.
 *
 * Returns: %TRUE on success. On %FALSE, @error says why; the objects before
 * the failing one stay attached.
 */
gboolean gst_sam3_attach_analytics (GstBuffer * buf,
    const GstSam3MaskMeta * meta, GError ** error);

G_END_DECLS

#endif /* __GST_SAM3_ANALYTICS_H__ */
