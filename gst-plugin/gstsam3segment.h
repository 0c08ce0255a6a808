/* gst-sam3: sam3segment element (SAM 3 interactive segmentation). */
#pragma once

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_SAM3_SEGMENT (gst_sam3_segment_get_type ())
G_DECLARE_FINAL_TYPE (GstSam3Segment, gst_sam3_segment, GST, SAM3_SEGMENT, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (sam3segment);

G_END_DECLS
