// SAM2Base.forward_image + SAM2ImagePredictor.set_image feature preparation.
#include "modeling/sam2_base.h"

#include <algorithm>

#include "modeling/common.h"

namespace sam3::modeling {

Sam2ImageEncoderImpl::Sam2ImageEncoderImpl(const ModelConfig& cfg) {
  trunk = register_module("trunk", Hiera(cfg.hiera));
  auto channels = cfg.hiera.stage_dims();
  std::reverse(channels.begin(), channels.end());  // backbone_channel_list: low res first
  neck = register_module("neck", FpnNeck(channels, cfg.neck.d_model, cfg.fpn.fpn_top_down_levels));
}

Sam2ModelImpl::Sam2ModelImpl(const ModelConfig& cfg) : scalp_(cfg.neck.scalp) {
  image_encoder = register_module("image_encoder", Sam2ImageEncoder(cfg));
  sam_prompt_encoder = register_module("sam_prompt_encoder", PromptEncoder(cfg));
  sam_mask_decoder = register_module("sam_mask_decoder", MaskDecoder(cfg));
  no_mem_embed = register_parameter("no_mem_embed", torch::zeros({1, 1, cfg.hidden_dim}));
}

EncoderOutput Sam2ModelImpl::encode_image(const torch::Tensor& x, bool keep_intermediates) {
  EncoderOutput out;
  HieraTrace trace;
  auto trunk_levels = image_encoder->trunk->forward(x, keep_intermediates ? &trace : nullptr);
  auto levels = image_encoder->neck->forward(trunk_levels);
  // scalp: the lowest-resolution levels are dropped (they still fed the top-down path)
  std::vector<torch::Tensor> kept(levels.begin(), levels.end() - scalp_);
  auto& dec = sam_mask_decoder;
  out.high_res_feats = {conv1x1(dec->conv_s0, kept.at(0)), conv1x1(dec->conv_s1, kept.at(1))};
  // directly_add_no_mem_embed
  out.image_embed = kept.back() + no_mem_embed.view({1, -1, 1, 1}).to(kept.back().scalar_type());
  if (keep_intermediates) {
    out.input = x;
    out.trunk_levels = trunk_levels;
    out.neck_levels = levels;
    out.trunk_blocks = trace.blocks;
    out.patch_embed = trace.patch_embed;
    out.trunk_pos_embed = trace.pos_embed;
  }
  return out;
}

}  // namespace sam3::modeling
