// SAM 1 predictor core (port of segment_anything/predictor.py SamPredictor and
// utils/transforms.py ResizeLongestSide) on top of the modules of
// modeling/sam1. Self-contained: the InteractiveImagePredictor family
// dispatch can call load_sam1 / encode / predict directly.
//
//   auto sd = sam3::load_state_dict("sam_vit_h_4b8939.pth");   // or .safetensors
//   auto model = sam3::sam1::load_sam1(sd);                    // size detected
//   auto feats = sam3::sam1::encode(*model, hwc_uint8_rgb);    // set_image
//   sam3::PredictArgs a; a.point_coords = ...; a.point_labels = ...;
//   sam3::Prediction p = sam3::sam1::predict(*model, feats, a);
//
// Outputs follow sam3::Prediction: masks float32 0/1 (or logits with
// return_logits), iou_predictions raw (no sigmoid), low_res_masks unclamped
// logits (SAM 1 does not clamp). Single prompt set: (C,H,W), (C), (C,4g,4g);
// batched prompts (B x 4 boxes or B x N x 2 points, the official
// predict_torch route): (B,C,H,W), (B,C), (B,C,4g,4g).
//
// Thread-safety: load_sam1's model is immutable afterwards; encode / predict
// may run concurrently on one model (they enter InferenceMode).
#pragma once

#include <torch/torch.h>

#include <opencv2/core.hpp>

#include <memory>
#include <string>
#include <utility>

#include "modeling/sam1/sam1_modeling.h"
#include "sam1/sam1_config.h"
#include "sam3/checkpoint.h"
#include "sam3/image_predictor.h"

namespace sam3::sam1 {

using Sam1Model = modeling::sam1::Sam1Model;

// Copies `sd` into a fresh model built from `cfg`. Strict: every missing
// model key, every shape mismatch, every non-floating tensor and every
// unexpected key under image_encoder./prompt_encoder./mask_decoder. is listed
// in one CheckpointError (problems()); keys outside those prefixes are ignored.
std::shared_ptr<Sam1Model> load_sam1(const StateDict& sd, const Sam1Config& cfg,
                                     torch::Device device = torch::kCPU,
                                     const std::string& source = "state dict");
// Size detected from the shapes (Sam1Config::from_state_dict).
std::shared_ptr<Sam1Model> load_sam1(const StateDict& sd, torch::Device device = torch::kCPU);
// .pth (flat state dict) or .safetensors with the same names.
std::shared_ptr<Sam1Model> load_sam1_file(const std::string& path,
                                          torch::Device device = torch::kCPU,
                                          const Sam1Config* cfg = nullptr);

// ResizeLongestSide.get_preprocess_shape: (h', w') with long side = target.
std::pair<int64_t, int64_t> preprocess_shape(int64_t h, int64_t w, int64_t target);

// PIL Image.resize((w', h'), BILINEAR) on uint8 (fixed-point separable filter,
// horizontal pass first), bit-exact. hwc: H x W x C uint8 CPU tensor.
torch::Tensor pil_resize_bilinear(const torch::Tensor& hwc_uint8, int64_t out_h, int64_t out_w);

// Per-image state of SamPredictor after set_image.
struct Sam1Features {
  torch::Tensor image_embed;                // 1 x d x g x g (model device)
  std::pair<int64_t, int64_t> original_size;  // (H, W)
  std::pair<int64_t, int64_t> input_size;     // (h', w') after ResizeLongestSide
};

// Optional intermediates (tests / debugging).
struct Sam1EncodeTrace {
  torch::Tensor resized_uint8;  // h' x w' x 3
  torch::Tensor input;          // 1 x 3 x R x R normalised + zero padded
  std::vector<torch::Tensor> encoder;  // patch_embed, block0..N-1 (NHWC)
};
struct Sam1PredictTrace {
  torch::Tensor point_coords, point_labels, boxes, mask_input;  // as given to the prompt encoder
  torch::Tensor sparse, dense;
  torch::Tensor all_low_res_logits, all_iou_predictions;  // before selection
  torch::Tensor low_res_selected, iou_selected;
};

// set_image: hwc uint8 RGB (or BGR with bgr=true) H x W x 3, any device.
Sam1Features encode(Sam1Model& model, const torch::Tensor& hwc_uint8, bool bgr = false,
                    Sam1EncodeTrace* trace = nullptr);

// predict / predict_torch. args.normalize_coords must be true (SAM 1 has no
// normalised-coordinate mode). InvalidArgument for bad prompts.
Prediction predict(Sam1Model& model, const Sam1Features& features, const PredictArgs& args,
                   Sam1PredictTrace* trace = nullptr);

// Sam.postprocess_masks: bilinear to R x R, crop [:h', :w'], bilinear to (H, W).
torch::Tensor postprocess_masks(const torch::Tensor& low_res, int64_t img_size,
                                std::pair<int64_t, int64_t> input_size,
                                std::pair<int64_t, int64_t> original_size);

// Convenience wrapper holding one image (SamPredictor).
class Sam1Predictor {
 public:
  explicit Sam1Predictor(std::shared_ptr<Sam1Model> model);
  void set_image(const cv::Mat& image, bool bgr = false);  // CV_8UC3
  void set_image(const torch::Tensor& hwc_uint8, bool bgr = false);
  Prediction predict(const PredictArgs& args = {}) const;
  torch::Tensor get_image_embedding() const;
  void reset_image() { features_.reset(); }
  bool is_image_set() const { return features_ != nullptr; }
  const Sam1Model& model() const { return *model_; }

 private:
  std::shared_ptr<Sam1Model> model_;
  std::unique_ptr<Sam1Features> features_;
};

}  // namespace sam3::sam1
