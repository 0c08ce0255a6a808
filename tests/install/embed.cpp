// A program that embeds gst-sam3 as an application would, built by
// install_test.sh against a `meson install --destdir` tree with nothing but
// pkg-config (sam3predictor, gstsam3meta): loads a model, segments one box,
// and registers the mask meta. Usage: embed CHECKPOINT IMAGE.png
#include <gst/gst.h>
#include <gst-sam3/gstsam3maskmeta.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sam3/sam3.h>

#include <cstdio>

int main (int argc, char **argv) {
  if (argc != 3) {
    std::fprintf (stderr, "usage: embed CHECKPOINT IMAGE\n");
    return 2;
  }
  sam3::reexec_with_cpu_environment (argv);  // the CPU's best BLAS kernels
  gst_init (&argc, &argv);
  if (gst_sam3_mask_meta_api_get_type () == G_TYPE_INVALID) return 1;
  cv::Mat bgr = cv::imread (argv[2], cv::IMREAD_COLOR), rgb;
  if (bgr.empty ()) return 1;
  cv::cvtColor (bgr, rgb, cv::COLOR_BGR2RGB);
  auto model = sam3::Model::load (argv[1]);
  sam3::InteractiveImagePredictor predictor (model);
  predictor.set_image (rgb);
  sam3::PredictArgs args;
  args.box = torch::tensor ({10.f, 10.f, 60.f, 50.f});
  args.multimask_output = false;
  sam3::Prediction p = predictor.predict (args);
  const sam3::BlasKernels kernels = sam3::blas_kernels ();
  std::printf ("embed: %s\n", kernels.summary ().c_str ());
  if (kernels.below_cpu) return 1;
  std::printf ("embed: mask %lldx%lld, %lld pixels set, iou %.3f\n",
      static_cast<long long> (p.masks.size (-1)), static_cast<long long> (p.masks.size (-2)),
      static_cast<long long> (p.masks.gt (0.5).sum ().item<int64_t> ()),
      p.iou_predictions.flatten ()[0].item<float> ());
  return p.masks.size (-1) == rgb.cols && p.masks.size (-2) == rgb.rows ? 0 : 1;
}
