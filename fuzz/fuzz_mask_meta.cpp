// Fuzz harness: GstSam3MaskMeta (gst-plugin/meta/gstsam3maskmeta.h): build a
// meta from fuzzed objects, copy the buffer (whole and region copies), scale
// it as videoscale does, build the Sam3Result meta, read every object back.
#include <gst/gst.h>
#include <gst/video/video.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "gstsam3maskmeta.h"

namespace {

struct Reader {
  const uint8_t *d;
  size_t n;
  uint8_t u8 () { if (!n) return 0; n--; return *d++; }
  uint16_t u16 () { return (uint16_t) ((u8 () << 8) | u8 ()); }
  uint32_t u32 () { return ((uint32_t) u16 () << 16) | u16 (); }
};

[[noreturn]] void fail (const char *what) {
  fprintf (stderr, "invariant violated: %s\n", what);
  __builtin_trap ();
}

void check_objects (GstSam3MaskMeta *meta) {
  const guint n = gst_sam3_mask_meta_get_n_objects (meta);
  for (guint i = 0; i < n; i++) {
    GstSam3MaskObject *o = gst_sam3_mask_meta_get_object (meta, i);
    if (!o) fail ("object missing");
    if (o->mask) {
      GstVideoMeta *vm = gst_buffer_get_video_meta (o->mask);
      if (!vm || vm->width != o->width || vm->height != o->height) fail ("mask size != box");
      if (gst_buffer_get_size (o->mask) < (gsize) vm->stride[0] * vm->height) fail ("mask buffer too small");
      GstMapInfo map;
      if (!gst_buffer_map (o->mask, &map, GST_MAP_READ)) fail ("map mask");
      volatile guint8 acc = 0;
      for (gsize k = 0; k < map.size; k++) acc ^= map.data[k];
      gst_buffer_unmap (o->mask, &map);
    }
    if (o->logits && gst_buffer_get_size (o->logits) != (gsize) o->logits_width * o->logits_height * 4)
      fail ("logits size");
  }
  if (gst_sam3_mask_meta_get_object (meta, n) != nullptr) fail ("object past the end");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize (int *, char ***) {
  gst_init (nullptr, nullptr);
  gst_sam3_result_meta_register ();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  Reader r{data, size};
  const guint fw = r.u16 () % 4097, fh = r.u16 () % 4097;
  const guint n_obj = r.u8 () % 17;
  GstBuffer *buf = gst_buffer_new_allocate (nullptr, 16, nullptr);
  GstSam3MaskMeta *meta = gst_buffer_add_sam3_mask_meta (buf, fw, fh);
  if (!meta) fail ("add meta");
  guint added = 0;
  for (guint i = 0; i < n_obj && r.n; i++) {
    const guint id = r.u32 ();
    const gint x = (gint) r.u32 (), y = (gint) r.u32 ();
    const uint8_t flags = r.u8 ();
    // keep mask memory bounded: masks up to 256x256, boxes without mask any size
    guint w = r.u16 (), h = r.u16 ();
    const bool with_mask = flags & 1;
    if (with_mask) { w %= 257; h %= 257; }
    else if (flags & 2) { w = w * 65537u; h = h * 65537u; }
    const gsize stride = w + (r.u8 () % 8);
    std::vector<guint8> mask;
    if (with_mask) {
      mask.resize (stride * h + 1);
      for (gsize k = 0; k < mask.size (); k++) mask[k] = (k & 1) ? 255 : r.u8 ();
    }
    const bool valid = !with_mask || (w > 0 && h > 0);
    if (!valid) continue;  // g_return_val_if_fail precondition: programming error, not fuzzed
    GstSam3MaskObject *o = gst_sam3_mask_meta_add_object (meta, id,
        (GstSam3PromptSource) (flags >> 5 & 3), x, y, w, h, 0.5f,
        with_mask ? mask.data () : nullptr, stride);
    if (!o) fail ("add object failed");
    added++;
    if (flags & 4) {
      const guint lw = 1 + r.u8 () % 64, lh = 1 + r.u8 () % 64;
      std::vector<gfloat> logits ((gsize) lw * lh, 1.5f);
      if (!gst_sam3_mask_object_set_logits (o, logits.data (), lw, lh)) fail ("logits");
    }
  }
  if (gst_sam3_mask_meta_get_n_objects (meta) != added) fail ("object count");
  check_objects (meta);

  // whole copy keeps everything
  GstBuffer *copy = gst_buffer_copy (buf);
  GstSam3MaskMeta *cm = gst_buffer_get_sam3_mask_meta (copy);
  if (!cm || gst_sam3_mask_meta_get_n_objects (cm) != added) fail ("copy lost objects");
  check_objects (cm);
  // region copy: meta dropped (documented)
  GstBuffer *region = gst_buffer_copy_region (buf, GST_BUFFER_COPY_METADATA, 0, 8);
  if (region) gst_buffer_unref (region);

  // scale as videoscale does
  const guint iw = r.u16 () % 8193, ih = r.u16 () % 8193;
  const guint ow = r.u16 () % 8193, oh = r.u16 () % 8193;
  GstVideoInfo in_info, out_info;
  gst_video_info_init (&in_info);
  gst_video_info_init (&out_info);
  in_info.width = iw; in_info.height = ih;
  out_info.width = ow; out_info.height = oh;
  // keep mask memory bounded: an upscale of a 256x256 mask by 8192/1 is ~2 GB
  const guint ref_w = fw ? fw : iw, ref_h = fh ? fh : ih;
  const bool bounded = ref_w && ref_h && ow / ref_w <= 16 && oh / ref_h <= 16;
  if (bounded) {
    GstVideoMetaTransform trans = {&in_info, &out_info};
    GstBuffer *dst = gst_buffer_new ();
    const GstMetaInfo *info = GST_SAM3_MASK_META_INFO;
    const gboolean ok = info->transform_func (dst, (GstMeta *) meta, buf,
        gst_video_meta_transform_scale_get_quark (), &trans);
    GstSam3MaskMeta *sm = gst_buffer_get_sam3_mask_meta (dst);
    if (ok) {
      if (!sm || gst_sam3_mask_meta_get_n_objects (sm) != added) fail ("scale lost objects");
      check_objects (sm);
      GstCustomMeta *res = gst_buffer_add_sam3_result_meta (dst, sm);
      if (res) {
        GstStructure *s = gst_custom_meta_get_structure (res);
        gchar *str = gst_structure_to_string (s);
        g_free (str);
      }
    }
    gst_buffer_unref (dst);
  }
  GstCustomMeta *res = gst_buffer_add_sam3_result_meta (copy, cm);
  (void) res;
  gst_buffer_unref (copy);
  gst_buffer_unref (buf);
  return 0;
}
