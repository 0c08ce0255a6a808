// Internal: one predict() step with all intermediates exposed (parity tests).
#pragma once

#include <torch/torch.h>

#include "model_impl.h"
#include "sam3/image_predictor.h"
#include "transforms.h"

namespace sam3::detail {

struct PredictTrace {
  torch::Tensor sparse, dense;           // prompt encoder outputs
  torch::Tensor all_masks, all_iou;      // decoder, every token
  torch::Tensor selected_logits;         // B x M x 4G x 4G (unclamped)
  torch::Tensor fill_map;                // int8, B x M x 4G x 4G
};

struct Thresholds {
  double mask_threshold = 0.0;
  double max_hole_area = 256.0;
  double max_sprinkle_area = 0.0;
};

// The official _predict for image `index` of `features`.
Prediction predict_image(const ModelImpl& m, const ImageFeatures& features, size_t index,
                         std::pair<int64_t, int64_t> orig_hw, const PredictArgs& args,
                         const Thresholds& th, PredictTrace* trace = nullptr);

// H x W x 3 uint8 images -> features (set_image / set_image_batch).
ImageFeatures encode_images(const ModelImpl& m, const std::vector<torch::Tensor>& hwc_uint8,
                            modeling::EncoderOutput* trace = nullptr);

}  // namespace sam3::detail
