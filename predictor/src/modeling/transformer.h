// Port of sam3/sam/transformer.py (TwoWayTransformer, TwoWayAttentionBlock,
// Attention with downsampling).
#pragma once

#include <torch/torch.h>

#include <utility>

#include "modeling/common.h"

namespace sam3::modeling {

class DecoderAttentionImpl : public torch::nn::Module {
 public:
  DecoderAttentionImpl(int64_t embedding_dim, int64_t num_heads, int64_t downsample_rate);
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k,
                        const torch::Tensor& v);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t num_heads_;
};
TORCH_MODULE(DecoderAttention);

class TwoWayAttentionBlockImpl : public torch::nn::Module {
 public:
  // mlp_layers_names: the MLP's keys are `mlp.layers.{0,1}` (SAM 2.1 MLP
  // class) instead of `mlp.lin1/lin2` (MLPBlock, SAM 3 / SAM 1). Same maths.
  TwoWayAttentionBlockImpl(int64_t embedding_dim, int64_t num_heads, int64_t mlp_dim,
                           int64_t downsample_rate, bool skip_first_layer_pe,
                           bool mlp_layers_names = false);
  // returns {queries, keys}
  std::pair<torch::Tensor, torch::Tensor> forward(torch::Tensor queries, torch::Tensor keys,
                                                  const torch::Tensor& query_pe,
                                                  const torch::Tensor& key_pe);

  DecoderAttention self_attn{nullptr}, cross_attn_token_to_image{nullptr},
      cross_attn_image_to_token{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr}, norm4{nullptr};
  MLPBlock mlp{nullptr};
  MLP mlp_layers{nullptr};  // registered as "mlp" when mlp_layers_names

 private:
  bool skip_first_layer_pe_;
};
TORCH_MODULE(TwoWayAttentionBlock);

class TwoWayTransformerImpl : public torch::nn::Module {
 public:
  TwoWayTransformerImpl(int64_t depth, int64_t embedding_dim, int64_t num_heads, int64_t mlp_dim,
                        int64_t downsample_rate, bool mlp_layers_names = false);
  // image_embedding, image_pe: B x d x h x w; point_embedding B x N x d.
  // Returns {hs (B x N x d), keys (B x hw x d)}.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& image_embedding,
                                                  const torch::Tensor& image_pe,
                                                  const torch::Tensor& point_embedding);

  torch::nn::ModuleList layers;
  DecoderAttention final_attn_token_to_image{nullptr};
  torch::nn::LayerNorm norm_final_attn{nullptr};
};
TORCH_MODULE(TwoWayTransformer);

}  // namespace sam3::modeling
