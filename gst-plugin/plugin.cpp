/* gst-sam3: SAM 3 promptable segmentation for GStreamer
 * SPDX-License-Identifier: Apache-2.0
 */
/**
 * SECTION:plugin-sam3
 *
 * SAM 3 promptable segmentation elements: sam3segment runs the model and
 * attaches #GstSam3MaskMeta, sam3overlay draws it.
 */
#ifndef PACKAGE
#define PACKAGE "gst-sam3"
#endif
#ifndef VERSION
#define VERSION "0.1.0"
#endif

#include <gst/gst.h>

#include "gstsam3overlay.h"
#include "gstsam3segment.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ret = FALSE;
  ret |= GST_ELEMENT_REGISTER (sam3overlay, plugin);
  ret |= GST_ELEMENT_REGISTER (sam3segment, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, sam3,
    "SAM 3 promptable segmentation", plugin_init, VERSION, "Apache 2.0",
    "gst-sam3", "https://github.com/facebookresearch/sam3")
