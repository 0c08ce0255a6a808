/* gst-sam3: SAM 3 promptable segmentation for GStreamer
 * SPDX-License-Identifier: Apache-2.0
 */
/**
 * SECTION:plugin-sam3
 *
 * SAM 3 promptable segmentation elements: sam3segment runs the model and
 * attaches #GstSam3MaskMeta, sam3overlay draws it.
 *
 * This file is the plugin GStreamer loads, and it links neither LibTorch nor
 * OpenBLAS. OpenBLAS picks its CPU kernels once, when it is loaded, and
 * Debian 12's OpenBLAS falls back to slow SSE3 kernels on CPUs it does not
 * know; libgomp reads OMP_WAIT_POLICY the same way. So plugin_init first sets
 * OPENBLAS_CORETYPE (the CPU's best kernels) and OMP_WAIT_POLICY=PASSIVE when
 * the process has not set them and has not loaded those libraries yet
 * (sam3::prepare_cpu_environment()), then opens the library that holds the
 * elements, libgstsam3elements.so.0, and registers them. It looks for that
 * library in <libdir>/gst-sam3/ (installed: this file is in
 * <libdir>/gstreamer-1.0/) and beside this file (build tree). Its name does
 * not end in .so, so GStreamer's plugin scan never takes it for a plugin.
 * GST_DEBUG=sam3plugin:4 shows what was done (docs/elements.md, "CPU kernels").
 */
#ifndef PACKAGE
#define PACKAGE "gst-sam3"
#endif
#ifndef VERSION
#define VERSION "0.1.0"
#endif

#include <gmodule.h>
#include <gst/gst.h>

#include <string>

#include "sam3/cpu_kernels.h"

GST_DEBUG_CATEGORY_STATIC (gst_sam3_plugin_debug);
#define GST_CAT_DEFAULT gst_sam3_plugin_debug

#define SAM3_ELEMENTS_LIBRARY "libgstsam3elements.so.0"

typedef gboolean (*Sam3RegisterFunc) (GstPlugin * plugin);

static GModule *
open_elements_library (GstPlugin * plugin)
{
  const gchar *self_path = gst_plugin_get_filename (plugin);
  gchar *dir = g_path_get_dirname (self_path ? self_path : ".");
  gchar *installed = g_build_filename (dir, "..", "gst-sam3", SAM3_ELEMENTS_LIBRARY, NULL);
  gchar *beside = g_build_filename (dir, SAM3_ELEMENTS_LIBRARY, NULL);
  GModule *module = NULL;
  std::string errors;
  for (const gchar *candidate : {installed, beside}) {
    if (!g_file_test (candidate, G_FILE_TEST_IS_REGULAR)) {
      errors += std::string (" ") + candidate + ": not found;";
      continue;
    }
    module = g_module_open (candidate,
        (GModuleFlags) (G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL));
    if (module) {
      GST_INFO ("elements from %s", candidate);
      break;
    }
    errors += std::string (" ") + candidate + ": " + g_module_error () + ";";
  }
  if (!module)
    GST_ERROR ("cannot open the sam3 elements library:%s", errors.c_str ());
  g_free (beside);
  g_free (installed);
  g_free (dir);
  return module;
}

static gboolean
plugin_init (GstPlugin * plugin)
{
  GST_DEBUG_CATEGORY_INIT (gst_sam3_plugin_debug, "sam3plugin", 0,
      "sam3 plugin loader (CPU environment, elements library)");
  const std::string env = sam3::prepare_cpu_environment ();
  GST_INFO ("%s", env.c_str ());
  GModule *module = open_elements_library (plugin);
  if (!module)
    return FALSE;
  gpointer sym = NULL;
  if (!g_module_symbol (module, "gst_sam3_elements_register", &sym) || !sym) {
    GST_ERROR ("%s has no gst_sam3_elements_register: %s", g_module_name (module),
        g_module_error ());
    g_module_close (module);
    return FALSE;
  }
  /* the element types live in it: never unloaded */
  g_module_make_resident (module);
  gboolean ret = ((Sam3RegisterFunc) sym) (plugin);
  GST_INFO ("%s", sam3::blas_kernels ().summary ().c_str ());
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, sam3,
    "SAM 3 promptable segmentation", plugin_init, VERSION, "Apache 2.0",
    "gst-sam3", "https://github.com/facebookresearch/sam3")
