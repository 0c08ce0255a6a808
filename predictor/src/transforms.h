// Port of SAM2Transforms (sam3/model/utils/sam1_utils.py) and the prompt
// preparation of SAM3InteractiveImagePredictor (_prep_prompts, _predict).
#pragma once

#include <torch/torch.h>

#include <utility>
#include <vector>

#include "sam3/image_predictor.h"

namespace sam3::detail {

// H x W x 3 uint8 (any device) -> 1 x 3 x S x S: /255, antialiased bilinear
// resize (align_corners=False), (x - 0.5) / 0.5. fp32.
torch::Tensor preprocess_image(const torch::Tensor& hwc_uint8, int64_t image_size);
// Same with per-channel normalisation (x - mean[c]) / std[c] (SAM 2.1: ImageNet).
torch::Tensor preprocess_image(const torch::Tensor& hwc_uint8, int64_t image_size,
                               const std::vector<double>& mean, const std::vector<double>& std);

// transform_coords: (..., 2) float32 -> model frame (S).
torch::Tensor transform_coords(const torch::Tensor& coords, bool normalize,
                               std::pair<int64_t, int64_t> orig_hw, int64_t image_size);

// Prompt tensors ready for the prompt encoder.
struct PreparedPrompt {
  torch::Tensor coords;      // B x N x 2 in the S frame (box corners first), or undefined
  torch::Tensor labels;      // B x N int32, or undefined
  torch::Tensor mask_input;  // B x 1 x 4G x 4G, or undefined
  int64_t num_objects = 1;
  bool batched_mode = false;  // decoder repeats the image embedding per object
};

// Validates and converts predict() arguments (InvalidArgument naming the
// argument on any problem) and applies the official box/point concatenation.
PreparedPrompt prepare_prompt(const PredictArgs& args, std::pair<int64_t, int64_t> orig_hw,
                              int64_t image_size, int64_t low_res_size, torch::Device device);

}  // namespace sam3::detail
