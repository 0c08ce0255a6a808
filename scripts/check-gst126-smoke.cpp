/* gst-sam3: smoke test of gst_sam3_attach_analytics() against GStreamer >= 1.26.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Built and run by scripts/check-gst126.sh (--run) with Debian 13's
 * GStreamer 1.26; not part of the meson build or the test suites. Attaches a
 * GstSam3MaskMeta with two objects (one partly outside the frame, one without
 * a mask), calls gst_sam3_attach_analytics() and reads the result back the
 * way docs/analytics.md shows. Exit status 0 = all checks passed.
 */
#include <gst/analytics/analytics.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <cstdio>
#include <vector>

#include "gstsam3analytics.h"
#include "gstsam3maskmeta.h"

static int failures = 0;
#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::fprintf (stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                     \
    }                                                                 \
  } while (0)

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  gchar *version = gst_version_string ();
  std::printf ("running on %s, GLib %u.%u\n", version, glib_major_version,
      glib_minor_version);
  g_free (version);
  CHECK (gst_sam3_analytics_available ());

  GstBuffer *buf = gst_buffer_new_allocate (NULL, 64 * 48, NULL);
  GstSam3MaskMeta *meta = gst_buffer_add_sam3_mask_meta (buf, 64, 48);

  /* Object 7: 10x6 box at (-4, 2), left half of the mask set. */
  std::vector<guint8> m (10 * 6, 0);
  for (int v = 0; v < 6; v++)
    for (int u = 0; u < 5; u++)
      m[v * 10 + u] = 255;
  gst_sam3_mask_meta_add_object (meta, 7, GST_SAM3_PROMPT_SOURCE_PROPERTY,
      -4, 2, 10, 6, 0.9f, m.data (), 10);
  /* Object 1000: no mask pixels. */
  gst_sam3_mask_meta_add_object (meta, 1000, GST_SAM3_PROMPT_SOURCE_SIGNAL,
      20, 20, 8, 8, 0.5f, NULL, 0);

  GError *err = NULL;
  CHECK (gst_sam3_attach_analytics (buf, meta, &err));
  if (err) {
    std::fprintf (stderr, "error: %s\n", err->message);
    g_clear_error (&err);
  }

  GstAnalyticsRelationMeta *rmeta = gst_buffer_get_analytics_relation_meta (buf);
  CHECK (rmeta != NULL);
  if (rmeta == NULL)
    return 1;
  CHECK (gst_analytics_relation_get_length (rmeta) == 3);      /* 2 OD + 1 seg */

  gpointer state = NULL;
  GstAnalyticsODMtd od;
  int n_od = 0, n_seg = 0;
  while (gst_analytics_relation_meta_iterate (rmeta, &state,
          gst_analytics_od_mtd_get_mtd_type (), &od)) {
    n_od++;
    gint x, y, w, h;
    gfloat conf;
    CHECK (gst_analytics_od_mtd_get_location (&od, &x, &y, &w, &h, &conf));
    CHECK (gst_analytics_od_mtd_get_obj_type (&od) ==
        g_quark_from_string (GST_SAM3_ANALYTICS_OBJECT_CLASS));

    GstAnalyticsSegmentationMtd seg;
    gpointer rstate = NULL;
    gboolean has_seg = gst_analytics_relation_meta_get_direct_related (rmeta,
        od.id, GST_ANALYTICS_REL_TYPE_RELATE_TO,
        gst_analytics_segmentation_mtd_get_mtd_type (), &rstate, &seg);
    if (n_od == 1) {
      /* Object 7, clipped to x >= 0: (0, 2) 6x6. */
      CHECK (x == 0 && y == 2 && w == 6 && h == 6);
      CHECK (conf > 0.89f && conf < 0.91f);
      CHECK (has_seg);
      if (!has_seg)
        continue;
      n_seg++;
      CHECK (gst_analytics_relation_meta_get_relation (rmeta, seg.id, od.id) ==
          GST_ANALYTICS_REL_TYPE_RELATE_TO);
      gint mx, my;
      guint mw, mh;
      GstBuffer *mask = gst_analytics_segmentation_mtd_get_mask (&seg, &mx,
          &my, &mw, &mh);
      CHECK (mask != NULL);
      CHECK (mx == 0 && my == 2 && mw == 6 && mh == 6);
      const guint rid = GST_SAM3_ANALYTICS_REGION_ID (7);
      CHECK (gst_analytics_segmentation_mtd_get_region_count (&seg) == 2);
      CHECK (gst_analytics_segmentation_mtd_get_region_id (&seg, 1) == rid);
      GstVideoMeta *vm = gst_buffer_get_video_meta (mask);
      CHECK (vm && vm->format == GST_VIDEO_FORMAT_GRAY8 && vm->width == 6 &&
          vm->height == 6);
      GstMapInfo map;
      if (vm && gst_buffer_map (mask, &map, GST_MAP_READ)) {
        /* Source columns 4..9 -> only column 4 (u = 0) was set. */
        for (guint v = 0; v < 6; v++)
          for (guint u = 0; u < 6; u++)
            CHECK (map.data[vm->offset[0] + v * vm->stride[0] + u] ==
                (u == 0 ? rid : 0));
        gst_buffer_unmap (mask, &map);
      }
      gst_buffer_unref (mask);
    } else {
      CHECK (x == 20 && y == 20 && w == 8 && h == 8);
      CHECK (!has_seg);
    }
  }
  CHECK (n_od == 2);
  CHECK (n_seg == 1);

  /* The GstSam3MaskMeta masks are untouched (still 0/255). */
  GstSam3MaskObject *o = gst_sam3_mask_meta_get_object (meta, 0);
  GstMapInfo om;
  if (o && o->mask && gst_buffer_map (o->mask, &om, GST_MAP_READ)) {
    GstVideoMeta *vm = gst_buffer_get_video_meta (o->mask);
    CHECK (om.data[vm->offset[0]] == 255);
    gst_buffer_unmap (o->mask, &om);
  }

  /* A copy keeps the analytics (the relation meta transform copies mtds). */
  GstBuffer *copy = gst_buffer_copy (buf);
  GstAnalyticsRelationMeta *crmeta = gst_buffer_get_analytics_relation_meta (copy);
  CHECK (crmeta && gst_analytics_relation_get_length (crmeta) == 3);
  gst_buffer_unref (copy);

  gst_buffer_unref (buf);
  std::printf ("%s (%d failures)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}
