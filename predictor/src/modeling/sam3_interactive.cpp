// Module wiring of the interactive path (model_builder.py, sam3_tracker_base.py).
#include "modeling/sam3_interactive.h"

#include "modeling/common.h"

namespace sam3::modeling {

BackboneImpl::BackboneImpl(const ModelConfig& cfg) {
  vision_backbone = register_module("vision_backbone", Sam3DualViTDetNeck(cfg));
}

DetectorImpl::DetectorImpl(const ModelConfig& cfg) {
  backbone = register_module("backbone", Backbone(cfg));
}

TrackerImpl::TrackerImpl(const ModelConfig& cfg) {
  no_mem_embed = register_parameter("no_mem_embed", torch::zeros({1, 1, cfg.hidden_dim}));
  sam_prompt_encoder = register_module("sam_prompt_encoder", PromptEncoder(cfg));
  sam_mask_decoder = register_module("sam_mask_decoder", MaskDecoder(cfg));
}

Sam3InteractiveModelImpl::Sam3InteractiveModelImpl(const ModelConfig& cfg) {
  detector = register_module("detector", Detector(cfg));
  tracker = register_module("tracker", Tracker(cfg));
}

EncoderOutput Sam3InteractiveModelImpl::encode_image(const torch::Tensor& x,
                                                     bool keep_intermediates) {
  EncoderOutput out;
  torch::Tensor trunk_out;
  auto levels = detector->backbone->vision_backbone->forward(x, &trunk_out);
  // conv_s0 / conv_s1 are applied once per image (forward_image).
  auto& dec = tracker->sam_mask_decoder;
  if (dec->conv_s0) {
    out.high_res_feats = {conv1x1(dec->conv_s0, levels.at(0)), conv1x1(dec->conv_s1, levels.at(1))};
  }
  out.image_embed =
      levels.back() + tracker->no_mem_embed.view({1, -1, 1, 1}).to(levels.back().scalar_type());
  if (keep_intermediates) {
    out.input = x;
    out.trunk_out = trunk_out;
    out.neck_levels = levels;
  }
  return out;
}

}  // namespace sam3::modeling
