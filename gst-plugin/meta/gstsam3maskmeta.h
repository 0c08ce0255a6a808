/* gst-sam3: SAM 3 promptable segmentation for GStreamer
 * SPDX-License-Identifier: Apache-2.0
 */
/**
 * SECTION:gstsam3maskmeta
 * @title: GstSam3MaskMeta
 * @short_description: per-frame instance masks produced by sam3segment
 *
 * #GstSam3MaskMeta carries the masks of one video frame. Each object is a
 * bounding box in *frame pixels* (origin top-left, x right, y down) plus a
 * GRAY8 mask (0 = background, 255 = object) cropped to that box, stored as
 * a #GstBuffer of width x height pixels with a #GstVideoMeta (use its
 * stride). This follows the upstream instance-segmentation layout
 * (frame-resolution uint8 cropped to the bbox).
 *
 * Usage (producer):
 * |[<!-- language="C" -->
 *   GstSam3MaskMeta *meta =
 *       gst_buffer_add_sam3_mask_meta (buf, info.width, info.height);
 *   GstSam3MaskObject *obj = gst_sam3_mask_meta_add_object (meta, 1,
 *       GST_SAM3_PROMPT_SOURCE_PROPERTY, x, y, w, h, 0.93f, pixels, w);
 *   gst_buffer_add_sam3_result_meta (buf, meta);   // optional, for Python
 * ]|
 * Usage (consumer):
 * |[<!-- language="C" -->
 *   GstSam3MaskMeta *meta = gst_buffer_get_sam3_mask_meta (buf);
 *   for (guint i = 0; meta && i < gst_sam3_mask_meta_get_n_objects (meta); i++) {
 *     const GstSam3MaskObject *obj = gst_sam3_mask_meta_get_object (meta, i);
 *     GstVideoMeta *vmeta = gst_buffer_get_video_meta (obj->mask);
 *     GstMapInfo map;
 *     gst_buffer_map (obj->mask, &map, GST_MAP_READ);
 *     // pixel (u, v) of the crop = map.data[vmeta->offset[0] + v * vmeta->stride[0] + u]
 *     gst_buffer_unmap (obj->mask, &map);
 *   }
 * ]|
 *
 * Ownership: the meta owns its objects array and one reference to each
 * object's @mask buffer; both are released when the meta is freed. Objects
 * returned by gst_sam3_mask_meta_get_object() are borrowed and valid as long
 * as the meta (i.e. the buffer) is alive and no object is added (adding may
 * reallocate the array). Do not modify a mask buffer in place: it may be
 * shared with copies of the frame (copy transform refs, not copies, masks).
 *
 * Thread safety: like any #GstMeta, the meta is protected by the buffer's
 * writability. Reading is safe from any thread; adding objects requires a
 * writable buffer and must not race with readers.
 *
 * Transforms: the API is tagged "video", "size" and "orientation". Copies
 * (gst_buffer_copy(), in-place elements) keep the meta; scaling elements
 * (videoscale, videoconvertscale) scale the boxes and resize the masks with
 * nearest-neighbour; any other transform (crop, flip, ...) drops the meta.
 *
 * Sam3Result custom meta (for applications on GStreamer 1.22, Python
 * included): gst_buffer_add_sam3_result_meta() adds a #GstCustomMeta named
 * "Sam3Result" whose #GstStructure (name "Sam3Result") holds a summary:
 *
 *  - `num-objects` (guint), `frame-width` (guint), `frame-height` (guint)
 *  - for each object i in 0 .. num-objects-1:
 *    - `object-<i>-id` (guint)
 *    - `object-<i>-source` (gchararray: nick of #GstSam3PromptSource)
 *    - `object-<i>-box` (#GstValueArray of 4 gint: x, y, width, height)
 *    - `object-<i>-iou` (gfloat: predicted IoU)
 *    - `object-<i>-stale` (gboolean)
 *  - `mask-location` (gchararray) = "GstSam3MaskMeta": the masks themselves
 *    are only in the #GstSam3MaskMeta.
 *
 * Python (PyGObject, 1.22):
 * |[<!-- language="Python" -->
 *   s = buf.get_custom_meta("Sam3Result").get_structure()
 *   n = s.get_value("num-objects")
 *   ok, box = s.get_array("object-0-box")   # GValueArray
 *   x, y, w, h = (box.get_nth(k) for k in range(4))
 * ]|
 * (Checked with PyGObject 3.42 on GStreamer 1.22 without the gst-python
 * overrides: s.get_value() cannot convert a #GstValueArray there, while
 * s.get_array() works. The gst-python overrides (python3-gst-1.0) add
 * Gst.ValueArray conversion; that path was not checked.)
 * The custom meta is a snapshot: it is copied with the buffer but dropped by
 * scaling elements (its boxes would be stale).
 */
#ifndef __GST_SAM3_MASK_META_H__
#define __GST_SAM3_MASK_META_H__

#include <gst/gst.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

/**
 * GstSam3PromptSource:
 * @GST_SAM3_PROMPT_SOURCE_PROPERTY: prompt from an element property
 * @GST_SAM3_PROMPT_SOURCE_ROI_META: prompt from an upstream ROI meta
 * @GST_SAM3_PROMPT_SOURCE_EVENT: prompt from a custom event
 * @GST_SAM3_PROMPT_SOURCE_NAVIGATION: prompt from a navigation (click) event
 * @GST_SAM3_PROMPT_SOURCE_SIGNAL: prompt from an action signal
 *
 * Where the prompt of an object came from.
 */
typedef enum {
  GST_SAM3_PROMPT_SOURCE_PROPERTY = 0,
  GST_SAM3_PROMPT_SOURCE_ROI_META = 1,
  GST_SAM3_PROMPT_SOURCE_EVENT = 2,
  GST_SAM3_PROMPT_SOURCE_NAVIGATION = 3,
  GST_SAM3_PROMPT_SOURCE_SIGNAL = 4,
} GstSam3PromptSource;

GType gst_sam3_prompt_source_get_type (void);
#define GST_TYPE_SAM3_PROMPT_SOURCE (gst_sam3_prompt_source_get_type ())

/**
 * GstSam3MaskObject:
 * @object_id: object (track) id, stable across frames
 * @source: where the prompt came from
 * @x: left of the bbox, frame pixels (may be negative: box partly outside)
 * @y: top of the bbox, frame pixels
 * @width: bbox width, pixels (= mask width)
 * @height: bbox height, pixels (= mask height)
 * @iou: predicted IoU of the mask
 * @stale: TRUE when re-attached from an earlier frame without inference
 * @mask: (nullable): GRAY8 0/255 buffer of @width x @height with a
 *   #GstVideoMeta; NULL when the object has no mask pixels
 * @roi_id: id of the #GstVideoRegionOfInterestMeta made for it, -1 if none
 * @parent_roi_id: id of the prompting ROI meta, -1 if none
 * @logits: (nullable): the object's low-resolution mask logits, float32,
 *   @logits_height rows of @logits_width values, row-major, no padding, in
 *   the model's input space (the 4G x 4G grid over the frame resized to the
 *   model's square input, as SAM's low_res_masks; usable as the next
 *   mask_input); NULL unless sam3segment's attach-logits is set. Not
 *   changed by scaling transforms (model space).
 * @logits_width: columns of @logits (0 without)
 * @logits_height: rows of @logits (0 without)
 */
typedef struct {
  guint object_id;
  GstSam3PromptSource source;
  gint x, y;
  guint width, height;
  gfloat iou;
  gboolean stale;
  GstBuffer *mask;
  gint roi_id;
  gint parent_roi_id;
  GstBuffer *logits;
  guint logits_width, logits_height;
} GstSam3MaskObject;

/**
 * GstSam3MaskMeta:
 * @meta: parent #GstMeta
 * @frame_width: width of the frame the boxes refer to
 * @frame_height: height of the frame the boxes refer to
 * @objects: #GArray of #GstSam3MaskObject
 */
typedef struct {
  GstMeta meta;
  guint frame_width, frame_height;
  GArray *objects;
} GstSam3MaskMeta;

GType gst_sam3_mask_meta_api_get_type (void);
#define GST_SAM3_MASK_META_API_TYPE (gst_sam3_mask_meta_api_get_type ())
const GstMetaInfo *gst_sam3_mask_meta_get_info (void);
#define GST_SAM3_MASK_META_INFO (gst_sam3_mask_meta_get_info ())

GstSam3MaskMeta *gst_buffer_add_sam3_mask_meta (GstBuffer * buffer,
    guint frame_width, guint frame_height);
GstSam3MaskMeta *gst_buffer_get_sam3_mask_meta (GstBuffer * buffer);

GstSam3MaskObject *gst_sam3_mask_meta_add_object (GstSam3MaskMeta * meta,
    guint object_id, GstSam3PromptSource source, gint x, gint y,
    guint width, guint height, gfloat iou, const guint8 * mask, gsize stride);
gboolean gst_sam3_mask_object_set_logits (GstSam3MaskObject * object,
    const gfloat * logits, guint width, guint height);
guint gst_sam3_mask_meta_get_n_objects (const GstSam3MaskMeta * meta);
GstSam3MaskObject *gst_sam3_mask_meta_get_object (GstSam3MaskMeta * meta,
    guint index);

#define GST_SAM3_RESULT_META_NAME "Sam3Result"
gboolean gst_sam3_result_meta_register (void);
GstCustomMeta *gst_buffer_add_sam3_result_meta (GstBuffer * buffer,
    const GstSam3MaskMeta * meta);

G_END_DECLS

#endif /* __GST_SAM3_MASK_META_H__ */
