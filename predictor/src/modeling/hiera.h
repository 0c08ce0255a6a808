// Port of sam2/modeling/backbones/hieradet.py (Hiera, MultiScaleBlock,
// MultiScaleAttention, PatchEmbed) and image_encoder.py (FpnNeck), restricted
// to what SAM2ImagePredictor runs. Parameter names equal the SAM 2.1 keys
// under image_encoder.trunk.* and image_encoder.neck.*.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "sam3/config.h"

namespace sam3::modeling {

// MLP with GELU (sam2 MLP(..., activation=nn.GELU)): keys layers.{0,1}.
class HieraMLPImpl : public torch::nn::Module {
 public:
  HieraMLPImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::ModuleList layers;
};
TORCH_MODULE(HieraMLP);

class MultiScaleAttentionImpl : public torch::nn::Module {
 public:
  MultiScaleAttentionImpl(int64_t dim, int64_t dim_out, int64_t num_heads, int64_t q_stride);
  // x: B x H x W x dim -> B x H' x W' x dim_out
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  int64_t num_heads_, q_stride_;
};
TORCH_MODULE(MultiScaleAttention);

class MultiScaleBlockImpl : public torch::nn::Module {
 public:
  MultiScaleBlockImpl(const HieraConfig::Block& b, int64_t q_stride, double mlp_ratio, double eps);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  MultiScaleAttention attn{nullptr};
  HieraMLP mlp{nullptr};
  torch::nn::Linear proj{nullptr};  // projection shortcut when dim != dim_out

 private:
  int64_t dim_, dim_out_, window_, q_stride_;
};
TORCH_MODULE(MultiScaleBlock);

class HieraPatchEmbedImpl : public torch::nn::Module {
 public:
  explicit HieraPatchEmbedImpl(const HieraConfig& c);
  torch::Tensor forward(const torch::Tensor& x);  // N x 3 x R x R -> N x R/4 x R/4 x C
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(HieraPatchEmbed);

struct HieraTrace {
  torch::Tensor patch_embed;               // N x h x w x C (before the position embedding)
  torch::Tensor pos_embed;                 // 1 x h x w x C
  std::vector<torch::Tensor> blocks;       // every block's NHWC output
};

class HieraImpl : public torch::nn::Module {
 public:
  explicit HieraImpl(const HieraConfig& c);
  // N x 3 x R x R -> the stage-end maps, channels first (strides 4, 8, 16, 32).
  std::vector<torch::Tensor> forward(const torch::Tensor& x, HieraTrace* trace = nullptr);
  // _get_pos_embed for an h x w token grid: 1 x h x w x C.
  torch::Tensor get_pos_embed(int64_t h, int64_t w);

  HieraPatchEmbed patch_embed{nullptr};
  torch::Tensor pos_embed, pos_embed_window;
  torch::nn::ModuleList blocks;

 private:
  std::vector<int64_t> stage_ends_;
};
TORCH_MODULE(Hiera);

// FpnNeck lateral: `convs.{j}.conv`.
class FpnLateralImpl : public torch::nn::Module {
 public:
  FpnLateralImpl(int64_t in, int64_t out);
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(FpnLateral);

class FpnNeckImpl : public torch::nn::Module {
 public:
  FpnNeckImpl(const std::vector<int64_t>& backbone_channel_list, int64_t d_model,
              std::vector<int64_t> top_down_levels);
  // trunk levels (high to low resolution) -> FPN levels (same order)
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& xs);
  torch::nn::ModuleList convs;

 private:
  std::vector<int64_t> top_down_;
};
TORCH_MODULE(FpnNeck);

}  // namespace sam3::modeling
