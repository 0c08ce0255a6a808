// GstSam3MaskMeta / Sam3Result custom meta: API, copy and scale transforms.
#include <cstring>
#include <vector>

#include "gst_test_util.h"

using sam3test::GstTest;
using sam3test::make_frame;
using sam3test::make_mask;
using sam3test::read_mask;

namespace {

class MaskMetaTest : public GstTest {};

// A 30x10 object at (10, 20) whose mask is set on its left half.
GstSam3MaskObject *add_left_half_object(GstSam3MaskMeta *meta, guint id) {
  auto m = make_mask(30, 10, [](int u, int) { return u < 15; });
  return gst_sam3_mask_meta_add_object(meta, id,
                                       GST_SAM3_PROMPT_SOURCE_ROI_META, 10, 20,
                                       30, 10, 0.75f, m.data(), 30);
}

// Adding the meta returns it from get, with the frame size and no objects.
TEST_F(MaskMetaTest, AddAndGet) {
  GstBuffer *buf = gst_buffer_new_allocate(nullptr, 16, nullptr);
  EXPECT_EQ(gst_buffer_get_sam3_mask_meta(buf), nullptr);
  GstSam3MaskMeta *meta = gst_buffer_add_sam3_mask_meta(buf, 640, 480);
  ASSERT_NE(meta, nullptr);
  EXPECT_EQ(gst_buffer_get_sam3_mask_meta(buf), meta);
  EXPECT_EQ(meta->frame_width, 640u);
  EXPECT_EQ(meta->frame_height, 480u);
  EXPECT_EQ(gst_sam3_mask_meta_get_n_objects(meta), 0u);
  EXPECT_EQ(meta->meta.info->api, GST_SAM3_MASK_META_API_TYPE);
  EXPECT_TRUE(gst_meta_api_type_has_tag(GST_SAM3_MASK_META_API_TYPE,
                                        g_quark_from_string("size")));
  EXPECT_TRUE(gst_meta_api_type_has_tag(GST_SAM3_MASK_META_API_TYPE,
                                        g_quark_from_string("orientation")));
  EXPECT_TRUE(gst_meta_api_type_has_tag(
      GST_SAM3_MASK_META_API_TYPE, g_quark_from_string(GST_META_TAG_VIDEO_STR)));
  EXPECT_STREQ(g_type_name(GST_SAM3_MASK_META_API_TYPE), "GstSam3MaskMetaAPI");
  gst_buffer_unref(buf);
}

// Object fields and mask pixels round-trip (source stride != width).
TEST_F(MaskMetaTest, ObjectsAndPixelsRoundTrip) {
  GstBuffer *buf = gst_buffer_new();
  GstSam3MaskMeta *meta = gst_buffer_add_sam3_mask_meta(buf, 97, 61);
  const int w = 5, h = 3, stride = 8;
  std::vector<guint8> src(stride * h, 77);  // padding bytes are not copied
  for (int v = 0; v < h; v++)
    for (int u = 0; u < w; u++) src[v * stride + u] = ((u + v) % 2) ? 255 : 0;
  GstSam3MaskObject *o = gst_sam3_mask_meta_add_object(
      meta, 7, GST_SAM3_PROMPT_SOURCE_NAVIGATION, -2, 4, w, h, 0.5f,
      src.data(), stride);
  ASSERT_NE(o, nullptr);
  ASSERT_NE(gst_sam3_mask_meta_add_object(meta, 9, GST_SAM3_PROMPT_SOURCE_SIGNAL,
                                          1, 2, 3, 4, 0.25f, nullptr, 0),
            nullptr);
  ASSERT_EQ(gst_sam3_mask_meta_get_n_objects(meta), 2u);

  o = gst_sam3_mask_meta_get_object(meta, 0);
  EXPECT_EQ(o->object_id, 7u);
  EXPECT_EQ(o->source, GST_SAM3_PROMPT_SOURCE_NAVIGATION);
  EXPECT_EQ(o->x, -2);
  EXPECT_EQ(o->y, 4);
  EXPECT_EQ(o->width, 5u);
  EXPECT_EQ(o->height, 3u);
  EXPECT_FLOAT_EQ(o->iou, 0.5f);
  EXPECT_FALSE(o->stale);
  EXPECT_EQ(o->roi_id, -1);
  EXPECT_EQ(o->parent_roi_id, -1);
  ASSERT_NE(o->mask, nullptr);
  GstVideoMeta *vmeta = gst_buffer_get_video_meta(o->mask);
  ASSERT_NE(vmeta, nullptr);
  EXPECT_EQ(vmeta->format, GST_VIDEO_FORMAT_GRAY8);
  guint mw = 0, mh = 0;
  auto px = read_mask(o->mask, &mw, &mh);
  ASSERT_EQ(mw, 5u);
  ASSERT_EQ(mh, 3u);
  for (int v = 0; v < h; v++)
    for (int u = 0; u < w; u++)
      EXPECT_EQ(px[v * w + u], src[v * stride + u]) << u << "," << v;

  const GstSam3MaskObject *o2 = gst_sam3_mask_meta_get_object(meta, 1);
  EXPECT_EQ(o2->object_id, 9u);
  EXPECT_EQ(o2->mask, nullptr);
  gst_buffer_unref(buf);
}

// gst_buffer_copy and gst_buffer_copy_into keep the objects and share masks.
TEST_F(MaskMetaTest, CopyTransform) {
  GstBuffer *buf = gst_buffer_new_allocate(nullptr, 64, nullptr);
  GstSam3MaskMeta *meta = gst_buffer_add_sam3_mask_meta(buf, 100, 50);
  GstSam3MaskObject *o = add_left_half_object(meta, 3);
  o->stale = TRUE;
  o->roi_id = 12;
  o->parent_roi_id = 4;
  GstBuffer *mask = o->mask;

  GstBuffer *copy = gst_buffer_copy(buf);
  GstSam3MaskMeta *cmeta = gst_buffer_get_sam3_mask_meta(copy);
  ASSERT_NE(cmeta, nullptr);
  EXPECT_NE(cmeta, meta);
  EXPECT_EQ(cmeta->frame_width, 100u);
  EXPECT_EQ(cmeta->frame_height, 50u);
  ASSERT_EQ(gst_sam3_mask_meta_get_n_objects(cmeta), 1u);
  const GstSam3MaskObject *co = gst_sam3_mask_meta_get_object(cmeta, 0);
  EXPECT_EQ(co->object_id, 3u);
  EXPECT_EQ(co->source, GST_SAM3_PROMPT_SOURCE_ROI_META);
  EXPECT_EQ(co->x, 10);
  EXPECT_EQ(co->width, 30u);
  EXPECT_TRUE(co->stale);
  EXPECT_EQ(co->roi_id, 12);
  EXPECT_EQ(co->parent_roi_id, 4);
  EXPECT_EQ(co->mask, mask);  // shared, referenced
  EXPECT_GE(GST_MINI_OBJECT_REFCOUNT_VALUE(mask), 2);

  GstBuffer *into = gst_buffer_new();
  ASSERT_TRUE(gst_buffer_copy_into(into, buf, GST_BUFFER_COPY_METADATA, 0, -1));
  GstSam3MaskMeta *imeta = gst_buffer_get_sam3_mask_meta(into);
  ASSERT_NE(imeta, nullptr);
  ASSERT_EQ(gst_sam3_mask_meta_get_n_objects(imeta), 1u);
  EXPECT_EQ(gst_sam3_mask_meta_get_object(imeta, 0)->mask, mask);

  // Freeing the original leaves the copies' masks alive.
  gst_buffer_unref(buf);
  guint mw, mh;
  auto px = read_mask(gst_sam3_mask_meta_get_object(cmeta, 0)->mask, &mw, &mh);
  ASSERT_EQ(mw, 30u);
  EXPECT_EQ(px[0], 255);
  EXPECT_EQ(px[29], 0);
  gst_buffer_unref(copy);
  gst_buffer_unref(into);
}

// Low-res logits: copied in, shared by copies, kept (model space) by scaling.
TEST_F(MaskMetaTest, LogitsSetCopyAndScale) {
  GstBuffer *in = make_frame(GST_VIDEO_FORMAT_RGB, 100, 50);
  GstSam3MaskMeta *meta = gst_buffer_add_sam3_mask_meta(in, 100, 50);
  GstSam3MaskObject *o = add_left_half_object(meta, 5);
  EXPECT_EQ(o->logits, nullptr);
  const float values[6] = {-3.f, -1.f, 0.f, 0.5f, 2.f, 32.f};
  ASSERT_TRUE(gst_sam3_mask_object_set_logits(o, values, 3, 2));
  EXPECT_EQ(o->logits_width, 3u);
  EXPECT_EQ(o->logits_height, 2u);
  float back[6] = {};
  ASSERT_EQ(gst_buffer_extract(o->logits, 0, back, sizeof back), sizeof back);
  EXPECT_EQ(memcmp(back, values, sizeof back), 0);
  GstBuffer *copy = gst_buffer_copy(in);
  EXPECT_EQ(gst_sam3_mask_meta_get_object(gst_buffer_get_sam3_mask_meta(copy), 0)->logits,
            o->logits);
  gst_buffer_unref(copy);

  GstHarness *h = gst_harness_new_parse(
      "videoscale ! capsfilter caps=video/x-raw,width=200,height=100");
  gst_harness_set_src_caps_str(
      h, "video/x-raw,format=RGB,width=100,height=50,framerate=30/1");
  GstBuffer *out = gst_harness_push_and_pull(h, in);
  ASSERT_NE(out, nullptr);
  const GstSam3MaskObject *so =
      gst_sam3_mask_meta_get_object(gst_buffer_get_sam3_mask_meta(out), 0);
  ASSERT_NE(so->logits, nullptr);
  EXPECT_EQ(so->logits_width, 3u);
  EXPECT_EQ(so->logits_height, 2u);
  ASSERT_EQ(gst_buffer_extract(so->logits, 0, back, sizeof back), sizeof back);
  EXPECT_EQ(memcmp(back, values, sizeof back), 0);
  gst_buffer_unref(out);
  gst_harness_teardown(h);
}

// A real videoscale scales the boxes and resizes the masks.
TEST_F(MaskMetaTest, ScaleTransformThroughVideoscale) {
  GstHarness *h =
      gst_harness_new_parse(
      "videoscale ! capsfilter caps=video/x-raw,width=200,height=100");
  ASSERT_NE(h, nullptr);
  gst_harness_set_src_caps_str(
      h, "video/x-raw,format=RGB,width=100,height=50,framerate=30/1");
  GstBuffer *in = make_frame(GST_VIDEO_FORMAT_RGB, 100, 50);
  GstSam3MaskMeta *meta = gst_buffer_add_sam3_mask_meta(in, 100, 50);
  add_left_half_object(meta, 5);

  GstBuffer *out = gst_harness_push_and_pull(h, in);
  ASSERT_NE(out, nullptr);
  GstSam3MaskMeta *ometa = gst_buffer_get_sam3_mask_meta(out);
  ASSERT_NE(ometa, nullptr);
  EXPECT_EQ(ometa->frame_width, 200u);
  EXPECT_EQ(ometa->frame_height, 100u);
  ASSERT_EQ(gst_sam3_mask_meta_get_n_objects(ometa), 1u);
  const GstSam3MaskObject *o = gst_sam3_mask_meta_get_object(ometa, 0);
  EXPECT_EQ(o->object_id, 5u);
  EXPECT_EQ(o->x, 20);
  EXPECT_EQ(o->y, 40);
  EXPECT_EQ(o->width, 60u);
  EXPECT_EQ(o->height, 20u);
  ASSERT_NE(o->mask, nullptr);
  guint mw = 0, mh = 0;
  auto px = read_mask(o->mask, &mw, &mh);
  ASSERT_EQ(mw, 60u);
  ASSERT_EQ(mh, 20u);
  for (guint v = 0; v < mh; v++)
    for (guint u = 0; u < mw; u++)
      ASSERT_EQ(px[v * mw + u], u < 30 ? 255 : 0) << u << "," << v;
  gst_buffer_unref(out);
  gst_harness_teardown(h);
}

// The Sam3Result custom meta summarises the objects in its structure.
TEST_F(MaskMetaTest, ResultCustomMetaStructure) {
  EXPECT_TRUE(gst_sam3_result_meta_register());
  EXPECT_TRUE(gst_sam3_result_meta_register());  // idempotent
  GstBuffer *buf = gst_buffer_new();
  GstSam3MaskMeta *meta = gst_buffer_add_sam3_mask_meta(buf, 320, 240);
  add_left_half_object(meta, 11);
  GstSam3MaskObject *o = gst_sam3_mask_meta_add_object(
      meta, 12, GST_SAM3_PROMPT_SOURCE_NAVIGATION, 1, 2, 3, 4, 0.5f, nullptr, 0);
  o->stale = TRUE;
  ASSERT_NE(gst_buffer_add_sam3_result_meta(buf, meta), nullptr);

  GstCustomMeta *cmeta = gst_buffer_get_custom_meta(buf, "Sam3Result");
  ASSERT_NE(cmeta, nullptr);
  const GstStructure *s = gst_custom_meta_get_structure(cmeta);
  guint n = 0, fw = 0, fh = 0, id = 0;
  ASSERT_TRUE(gst_structure_get_uint(s, "num-objects", &n));
  EXPECT_EQ(n, 2u);
  ASSERT_TRUE(gst_structure_get_uint(s, "frame-width", &fw));
  ASSERT_TRUE(gst_structure_get_uint(s, "frame-height", &fh));
  EXPECT_EQ(fw, 320u);
  EXPECT_EQ(fh, 240u);
  ASSERT_TRUE(gst_structure_get_uint(s, "object-0-id", &id));
  EXPECT_EQ(id, 11u);
  EXPECT_STREQ(gst_structure_get_string(s, "object-0-source"), "roi-meta");
  EXPECT_STREQ(gst_structure_get_string(s, "object-1-source"), "navigation");
  const GValue *box = gst_structure_get_value(s, "object-0-box");
  ASSERT_NE(box, nullptr);
  ASSERT_TRUE(GST_VALUE_HOLDS_ARRAY(box));
  ASSERT_EQ(gst_value_array_get_size(box), 4u);
  const int expect_box[4] = {10, 20, 30, 10};
  for (guint i = 0; i < 4; i++)
    EXPECT_EQ(g_value_get_int(gst_value_array_get_value(box, i)),
              expect_box[i]);
  const GValue *iou = gst_structure_get_value(s, "object-0-iou");
  ASSERT_TRUE(iou && G_VALUE_HOLDS_FLOAT(iou));
  EXPECT_FLOAT_EQ(g_value_get_float(iou), 0.75f);
  gboolean stale = TRUE;
  ASSERT_TRUE(gst_structure_get_boolean(s, "object-0-stale", &stale));
  EXPECT_FALSE(stale);
  ASSERT_TRUE(gst_structure_get_boolean(s, "object-1-stale", &stale));
  EXPECT_TRUE(stale);
  EXPECT_STREQ(gst_structure_get_string(s, "mask-location"), "GstSam3MaskMeta");

  // it is copied with the buffer
  GstBuffer *copy = gst_buffer_copy(buf);
  EXPECT_NE(gst_buffer_get_custom_meta(copy, "Sam3Result"), nullptr);
  gst_buffer_unref(copy);
  gst_buffer_unref(buf);
}

// The prompt-source enum is registered with lowercase-dashed nicks.
TEST_F(MaskMetaTest, PromptSourceEnumNicks) {
  GEnumClass *klass =
      static_cast<GEnumClass *>(g_type_class_ref(GST_TYPE_SAM3_PROMPT_SOURCE));
  ASSERT_NE(klass, nullptr);
  EXPECT_EQ(klass->n_values, 5u);
  const char *nicks[] = {"property", "roi-meta", "event", "navigation",
                         "signal"};
  for (int i = 0; i < 5; i++) {
    GEnumValue *v = g_enum_get_value(klass, i);
    ASSERT_NE(v, nullptr);
    EXPECT_STREQ(v->value_nick, nicks[i]);
  }
  g_type_class_unref(klass);
}

}  // namespace
