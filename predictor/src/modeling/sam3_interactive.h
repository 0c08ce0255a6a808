// The modules of SAM 3's interactive image path, nested so that parameter
// names equal the sam3.pt keys:
//   detector.backbone.vision_backbone.trunk.*        (vitdet.py ViT)
//   detector.backbone.vision_backbone.sam2_convs.*   (necks.py, SAM 2 branch)
//   tracker.no_mem_embed                             (sam3_tracker_base.py)
//   tracker.sam_prompt_encoder.*                     (sam/prompt_encoder.py)
//   tracker.sam_mask_decoder.*                       (sam/mask_decoder.py)
// Wiring mirrors model_builder.py (_create_vit_backbone, _create_vit_neck,
// build_tracker) restricted to what SAM3InteractiveImagePredictor executes.
#pragma once

#include <torch/torch.h>

#include "modeling/mask_decoder.h"
#include "modeling/necks.h"
#include "modeling/prompt_encoder.h"
#include "sam3/config.h"

namespace sam3::modeling {

class BackboneImpl : public torch::nn::Module {
 public:
  explicit BackboneImpl(const ModelConfig& cfg);
  Sam3DualViTDetNeck vision_backbone{nullptr};
};
TORCH_MODULE(Backbone);

class DetectorImpl : public torch::nn::Module {
 public:
  explicit DetectorImpl(const ModelConfig& cfg);
  Backbone backbone{nullptr};
};
TORCH_MODULE(Detector);

class TrackerImpl : public torch::nn::Module {
 public:
  explicit TrackerImpl(const ModelConfig& cfg);
  torch::Tensor no_mem_embed;  // 1 x 1 x d
  PromptEncoder sam_prompt_encoder{nullptr};
  MaskDecoder sam_mask_decoder{nullptr};
};
TORCH_MODULE(Tracker);

// Per-image features (Sam3TrackerBase.forward_image + set_image).
struct EncoderOutput {
  torch::Tensor input;       // N x 3 x S x S (when requested)
  torch::Tensor trunk_out;   // N x C x G x G
  std::vector<torch::Tensor> neck_levels;  // the sam2 neck levels
  torch::Tensor image_embed;               // N x d x G x G
  std::vector<torch::Tensor> high_res_feats;  // N x d/8 x 4G x 4G, N x d/4 x 2G x 2G
  // SAM 2.1 only (when requested): Hiera stage outputs (NCHW, strides 4..32),
  // every block's NHWC output, the patch embedding (NHWC, before the position
  // embedding) and the position embedding (1 x h x w x C).
  std::vector<torch::Tensor> trunk_levels;
  std::vector<torch::Tensor> trunk_blocks;
  torch::Tensor patch_embed, trunk_pos_embed;
};

class Sam3InteractiveModelImpl : public torch::nn::Module {
 public:
  explicit Sam3InteractiveModelImpl(const ModelConfig& cfg);
  // x: N x 3 x S x S preprocessed. keep_intermediates keeps trunk/neck outputs.
  EncoderOutput encode_image(const torch::Tensor& x, bool keep_intermediates = false);

  Detector detector{nullptr};
  Tracker tracker{nullptr};
};
TORCH_MODULE(Sam3InteractiveModel);

}  // namespace sam3::modeling
