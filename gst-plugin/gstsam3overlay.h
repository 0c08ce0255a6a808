/* gst-sam3: SAM 3 promptable segmentation for GStreamer
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef __GST_SAM3_OVERLAY_H__
#define __GST_SAM3_OVERLAY_H__

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/video/gstvideofilter.h>

G_BEGIN_DECLS

#define GST_TYPE_SAM3_OVERLAY (gst_sam3_overlay_get_type ())
G_DECLARE_FINAL_TYPE (GstSam3Overlay, gst_sam3_overlay, GST, SAM3_OVERLAY,
    GstVideoFilter)

GST_ELEMENT_REGISTER_DECLARE (sam3overlay);

G_END_DECLS

#endif /* __GST_SAM3_OVERLAY_H__ */
