// Port of sam3/sam/mask_decoder.py.
#include "modeling/mask_decoder.h"

namespace sam3::modeling {

MaskDecoderImpl::MaskDecoderImpl(const ModelConfig& cfg)
    : cfg_(cfg), num_mask_tokens_(cfg.mask_decoder.num_multimask_outputs + 1) {
  const auto& md = cfg.mask_decoder;
  const int64_t d = cfg.hidden_dim;
  transformer = register_module(
      "transformer", TwoWayTransformer(md.two_way_depth, d, md.num_heads, md.mlp_dim,
                                       md.attention_downsample_rate, cfg.is_sam2()));
  iou_token = register_module("iou_token", torch::nn::Embedding(1, d));
  mask_tokens = register_module("mask_tokens", torch::nn::Embedding(num_mask_tokens_, d));
  if (md.pred_obj_scores) {
    obj_score_token = register_module("obj_score_token", torch::nn::Embedding(1, d));
  }
  using torch::nn::ConvTranspose2d;
  using torch::nn::ConvTranspose2dOptions;
  output_upscaling = register_module(
      "output_upscaling",
      torch::nn::Sequential(ConvTranspose2d(ConvTranspose2dOptions(d, d / 4, 2).stride(2)),
                            LayerNorm2d(d / 4, 1e-6), torch::nn::GELU(),
                            ConvTranspose2d(ConvTranspose2dOptions(d / 4, d / 8, 2).stride(2)),
                            torch::nn::GELU()));
  if (md.use_high_res_features) {
    conv_s0 = register_module("conv_s0", torch::nn::Conv2d(torch::nn::Conv2dOptions(d, d / 8, 1)));
    conv_s1 = register_module("conv_s1", torch::nn::Conv2d(torch::nn::Conv2dOptions(d, d / 4, 1)));
  }
  for (int64_t i = 0; i < num_mask_tokens_; ++i) {
    output_hypernetworks_mlps->push_back(MLP(d, d, d / 8, 3));
  }
  register_module("output_hypernetworks_mlps", output_hypernetworks_mlps);
  iou_prediction_head = register_module(
      "iou_prediction_head", MLP(d, md.iou_head_hidden_dim, num_mask_tokens_, md.iou_head_depth,
                                 md.iou_prediction_use_sigmoid));
}

torch::Tensor MaskDecoderImpl::stability_scores(const torch::Tensor& mask_logits) {
  const double delta = cfg_.mask_decoder.dynamic_multimask_stability_delta;
  auto flat = mask_logits.flatten(-2);
  auto area_i = (flat > delta).sum(-1).to(torch::kFloat);
  auto area_u = (flat > -delta).sum(-1).to(torch::kFloat);
  return torch::where(area_u > 0, area_i / area_u, torch::ones_like(area_i));
}

DecoderOutput MaskDecoderImpl::forward(const torch::Tensor& image_embeddings,
                                       const torch::Tensor& image_pe, const torch::Tensor& sparse,
                                       const torch::Tensor& dense, bool multimask_output,
                                       bool repeat_image,
                                       const std::vector<torch::Tensor>& high_res_features) {
  // predict_masks
  std::vector<torch::Tensor> tok;
  if (obj_score_token) tok.push_back(obj_score_token->weight);
  tok.push_back(iou_token->weight);
  tok.push_back(mask_tokens->weight);
  const int64_t s = obj_score_token ? 1 : 0;
  auto output_tokens = torch::cat(tok, 0).unsqueeze(0).expand({sparse.size(0), -1, -1});
  auto tokens = torch::cat({output_tokens.to(sparse.scalar_type()), sparse}, 1);

  torch::Tensor src;
  if (repeat_image) {
    src = torch::repeat_interleave(image_embeddings, tokens.size(0), 0);
  } else {
    TORCH_CHECK(image_embeddings.size(0) == tokens.size(0), "image/prompt batch mismatch");
    src = image_embeddings;
  }
  src = src + dense.to(src.scalar_type());
  auto pos_src = torch::repeat_interleave(image_pe.to(src.scalar_type()), tokens.size(0), 0);
  const int64_t b = src.size(0), c = src.size(1), h = src.size(2), w = src.size(3);

  auto [hs, keys] = transformer->forward(src, pos_src, tokens);
  auto iou_token_out = hs.select(1, s);
  auto mask_tokens_out = hs.slice(1, s + 1, s + 1 + num_mask_tokens_);

  src = keys.transpose(1, 2).reshape({b, c, h, w});
  torch::Tensor upscaled;
  if (!cfg_.mask_decoder.use_high_res_features) {
    upscaled = output_upscaling->forward(src);
  } else {
    torch::nn::ConvTranspose2d dc1(output_upscaling->ptr<torch::nn::ConvTranspose2dImpl>(0));
    auto ln1 = output_upscaling[1]->as<LayerNorm2d>();
    torch::nn::ConvTranspose2d dc2(output_upscaling->ptr<torch::nn::ConvTranspose2dImpl>(3));
    const auto& feat_s0 = high_res_features.at(0);
    const auto& feat_s1 = high_res_features.at(1);
    upscaled = torch::gelu(ln1->forward(conv_transpose(dc1, src) + feat_s1));
    upscaled = torch::gelu(conv_transpose(dc2, upscaled) + feat_s0);
  }

  auto masks = hypernetwork_masks(output_hypernetworks_mlps, mask_tokens_out, upscaled);
  auto iou_pred = iou_prediction_head->forward(iou_token_out);

  DecoderOutput out;
  out.all_masks = masks;
  out.all_iou = iou_pred;
  if (multimask_output) {
    out.masks = masks.slice(1, 1);
    out.iou = iou_pred.slice(1, 1);
  } else if (cfg_.mask_decoder.dynamic_multimask_via_stability) {
    // _dynamic_multimask_via_stability
    auto multimask_logits = masks.slice(1, 1);
    auto multimask_iou = iou_pred.slice(1, 1);
    auto best = torch::argmax(multimask_iou, -1);
    auto batch_inds = torch::arange(b, best.options());
    auto best_logits = multimask_logits.index({batch_inds, best}).unsqueeze(1);
    auto best_iou = multimask_iou.index({batch_inds, best}).unsqueeze(1);
    auto single_logits = masks.slice(1, 0, 1);
    auto single_iou = iou_pred.slice(1, 0, 1);
    auto is_stable = stability_scores(single_logits.to(torch::kFloat)) >=
                     cfg_.mask_decoder.dynamic_multimask_stability_thresh;
    out.masks = torch::where(is_stable.unsqueeze(-1).unsqueeze(-1).expand_as(single_logits),
                             single_logits, best_logits);
    out.iou = torch::where(is_stable.expand_as(single_iou), single_iou, best_iou);
  } else {
    out.masks = masks.slice(1, 0, 1);
    out.iou = iou_pred.slice(1, 0, 1);
  }
  return out;
}

}  // namespace sam3::modeling
