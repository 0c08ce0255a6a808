// Port of sam3/sam/transformer.py.
#include "modeling/transformer.h"

#include <cmath>

namespace sam3::modeling {

namespace {
torch::nn::LayerNorm layer_norm(int64_t d) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-5));
}
}  // namespace

DecoderAttentionImpl::DecoderAttentionImpl(int64_t embedding_dim, int64_t num_heads,
                                           int64_t downsample_rate)
    : num_heads_(num_heads) {
  const int64_t internal = embedding_dim / downsample_rate;
  q_proj = register_module("q_proj", torch::nn::Linear(embedding_dim, internal));
  k_proj = register_module("k_proj", torch::nn::Linear(embedding_dim, internal));
  v_proj = register_module("v_proj", torch::nn::Linear(embedding_dim, internal));
  out_proj = register_module("out_proj", torch::nn::Linear(internal, embedding_dim));
}

torch::Tensor DecoderAttentionImpl::forward(const torch::Tensor& q_in, const torch::Tensor& k_in,
                                            const torch::Tensor& v_in) {
  auto separate = [&](const torch::Tensor& x) {
    const int64_t b = x.size(0), n = x.size(1), c = x.size(2);
    return x.reshape({b, n, num_heads_, c / num_heads_}).transpose(1, 2);
  };
  auto q = separate(q_proj->forward(q_in));
  auto k = separate(k_proj->forward(k_in));
  auto v = separate(v_proj->forward(v_in));
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto attn = softmax_fp32(torch::matmul(q * scale, k.transpose(-2, -1)), -1);
  auto out = torch::matmul(attn, v);  // b x h x n x c
  out = out.transpose(1, 2);
  out = out.reshape({out.size(0), out.size(1), -1});
  return out_proj->forward(out);
}

TwoWayAttentionBlockImpl::TwoWayAttentionBlockImpl(int64_t embedding_dim, int64_t num_heads,
                                                   int64_t mlp_dim, int64_t downsample_rate,
                                                   bool skip_first_layer_pe,
                                                   bool mlp_layers_names)
    : skip_first_layer_pe_(skip_first_layer_pe) {
  self_attn = register_module("self_attn", DecoderAttention(embedding_dim, num_heads, 1));
  norm1 = register_module("norm1", layer_norm(embedding_dim));
  cross_attn_token_to_image = register_module(
      "cross_attn_token_to_image", DecoderAttention(embedding_dim, num_heads, downsample_rate));
  norm2 = register_module("norm2", layer_norm(embedding_dim));
  if (mlp_layers_names) {
    mlp_layers = register_module("mlp", MLP(embedding_dim, mlp_dim, embedding_dim, 2));
  } else {
    mlp = register_module("mlp", MLPBlock(embedding_dim, mlp_dim, /*gelu=*/false));
  }
  norm3 = register_module("norm3", layer_norm(embedding_dim));
  norm4 = register_module("norm4", layer_norm(embedding_dim));
  cross_attn_image_to_token = register_module(
      "cross_attn_image_to_token", DecoderAttention(embedding_dim, num_heads, downsample_rate));
}

std::pair<torch::Tensor, torch::Tensor> TwoWayAttentionBlockImpl::forward(
    torch::Tensor queries, torch::Tensor keys, const torch::Tensor& query_pe,
    const torch::Tensor& key_pe) {
  if (skip_first_layer_pe_) {
    queries = self_attn->forward(queries, queries, queries);
  } else {
    auto q = queries + query_pe;
    queries = queries + self_attn->forward(q, q, queries);
  }
  queries = layer_norm_fp32(queries, norm1);

  auto q = queries + query_pe;
  auto k = keys + key_pe;
  queries = layer_norm_fp32(queries + cross_attn_token_to_image->forward(q, k, keys), norm2);
  queries = layer_norm_fp32(
      queries + (mlp ? mlp->forward(queries) : mlp_layers->forward(queries)), norm3);

  q = queries + query_pe;
  k = keys + key_pe;
  keys = layer_norm_fp32(keys + cross_attn_image_to_token->forward(k, q, queries), norm4);
  return {queries, keys};
}

TwoWayTransformerImpl::TwoWayTransformerImpl(int64_t depth, int64_t embedding_dim,
                                             int64_t num_heads, int64_t mlp_dim,
                                             int64_t downsample_rate, bool mlp_layers_names) {
  for (int64_t i = 0; i < depth; ++i) {
    layers->push_back(TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, downsample_rate,
                                           i == 0, mlp_layers_names));
  }
  register_module("layers", layers);
  final_attn_token_to_image = register_module(
      "final_attn_token_to_image", DecoderAttention(embedding_dim, num_heads, downsample_rate));
  norm_final_attn = register_module("norm_final_attn", layer_norm(embedding_dim));
}

std::pair<torch::Tensor, torch::Tensor> TwoWayTransformerImpl::forward(
    const torch::Tensor& image_embedding, const torch::Tensor& image_pe,
    const torch::Tensor& point_embedding) {
  auto keys = image_embedding.flatten(2).permute({0, 2, 1});
  auto key_pe = image_pe.flatten(2).permute({0, 2, 1});
  auto queries = point_embedding;
  for (const auto& layer : *layers) {
    std::tie(queries, keys) =
        layer->as<TwoWayAttentionBlock>()->forward(queries, keys, point_embedding, key_pe);
  }
  auto q = queries + point_embedding;
  auto k = keys + key_pe;
  queries = layer_norm_fp32(queries + final_attn_token_to_image->forward(q, k, keys),
                            norm_final_attn);
  return {queries, keys};
}

}  // namespace sam3::modeling
