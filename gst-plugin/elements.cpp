/* gst-sam3: SAM 3 promptable segmentation for GStreamer
 * SPDX-License-Identifier: Apache-2.0
 *
 * The elements of the "sam3" plugin, in a library of their own
 * (libgstsam3elements.so.0) that links LibTorch: plugin.cpp, the plugin
 * GStreamer loads, prepares the CPU environment first and then opens this
 * library and calls gst_sam3_elements_register() (docs/elements.md,
 * "CPU kernels").
 */
#include <gmodule.h>
#include <gst/gst.h>

#include "gstsam3overlay.h"
#include "gstsam3segment.h"

extern "C" G_MODULE_EXPORT gboolean gst_sam3_elements_register (GstPlugin * plugin);

gboolean
gst_sam3_elements_register (GstPlugin * plugin)
{
  gboolean ret = FALSE;
  ret |= GST_ELEMENT_REGISTER (sam3overlay, plugin);
  ret |= GST_ELEMENT_REGISTER (sam3segment, plugin);
  return ret;
}
