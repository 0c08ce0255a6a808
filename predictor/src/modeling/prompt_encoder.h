// Port of sam3/sam/prompt_encoder.py (PromptEncoder, PositionEmbeddingRandom).
#pragma once

#include <torch/torch.h>

#include "modeling/common.h"
#include "sam3/config.h"

namespace sam3::modeling {

class PositionEmbeddingRandomImpl : public torch::nn::Module {
 public:
  explicit PositionEmbeddingRandomImpl(int64_t num_pos_feats);
  // Fourier features of points already normalised to [0,1]^2: (..., 2) -> (..., 2F)
  torch::Tensor pe_encoding(torch::Tensor coords);
  // Dense PE of an h x w grid of cell centres: (2F, h, w)
  torch::Tensor forward(int64_t h, int64_t w);
  // Points in pixels of an image_h x image_w frame -> (..., 2F)
  torch::Tensor forward_with_coords(const torch::Tensor& coords, int64_t image_h,
                                    int64_t image_w);

  torch::Tensor positional_encoding_gaussian_matrix;  // 2 x F buffer
};
TORCH_MODULE(PositionEmbeddingRandom);

class PromptEncoderImpl : public torch::nn::Module {
 public:
  PromptEncoderImpl(const ModelConfig& cfg);

  // Returns {sparse (B, N(+1), d), dense (B, d, G, G)}. points/labels may be
  // undefined (no points); masks (B, 1, 4G, 4G) may be undefined.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& points,
                                                  const torch::Tensor& labels,
                                                  const torch::Tensor& masks);
  // (1, d, G, G)
  torch::Tensor get_dense_pe();

  PositionEmbeddingRandom pe_layer{nullptr};
  torch::nn::ModuleList point_embeddings;
  torch::nn::Embedding not_a_point_embed{nullptr}, no_mask_embed{nullptr};
  torch::nn::Sequential mask_downscaling{nullptr};

 private:
  torch::Tensor embed_points(torch::Tensor points, torch::Tensor labels, bool pad);
  int64_t embed_dim_;
  int64_t image_size_;
  int64_t grid_;
};
TORCH_MODULE(PromptEncoder);

}  // namespace sam3::modeling
