// Port of sam3/sam/prompt_encoder.py.
#include "modeling/prompt_encoder.h"

#include <cmath>

namespace sam3::modeling {

PositionEmbeddingRandomImpl::PositionEmbeddingRandomImpl(int64_t num_pos_feats) {
  positional_encoding_gaussian_matrix =
      register_buffer("positional_encoding_gaussian_matrix", torch::randn({2, num_pos_feats}));
}

torch::Tensor PositionEmbeddingRandomImpl::pe_encoding(torch::Tensor coords) {
  coords = 2 * coords - 1;
  coords = torch::matmul(coords, positional_encoding_gaussian_matrix.to(coords.scalar_type()));
  coords = 2 * M_PI * coords;
  return torch::cat({torch::sin(coords), torch::cos(coords)}, -1);
}

torch::Tensor PositionEmbeddingRandomImpl::forward(int64_t h, int64_t w) {
  auto opts = torch::TensorOptions()
                  .dtype(torch::kFloat)
                  .device(positional_encoding_gaussian_matrix.device());
  auto grid = torch::ones({h, w}, opts);
  auto y_embed = (grid.cumsum(0) - 0.5) / static_cast<double>(h);
  auto x_embed = (grid.cumsum(1) - 0.5) / static_cast<double>(w);
  auto pe = pe_encoding(torch::stack({x_embed, y_embed}, -1));
  return pe.permute({2, 0, 1});
}

torch::Tensor PositionEmbeddingRandomImpl::forward_with_coords(const torch::Tensor& coords_in,
                                                               int64_t image_h,
                                                               int64_t image_w) {
  auto coords = coords_in.clone();
  coords.select(-1, 0).div_(static_cast<double>(image_w));
  coords.select(-1, 1).div_(static_cast<double>(image_h));
  return pe_encoding(coords.to(torch::kFloat));
}

PromptEncoderImpl::PromptEncoderImpl(const ModelConfig& cfg)
    : embed_dim_(cfg.hidden_dim), image_size_(cfg.image_size), grid_(cfg.token_grid()) {
  const int64_t d = cfg.hidden_dim;
  pe_layer = register_module("pe_layer", PositionEmbeddingRandom(d / 2));
  for (int i = 0; i < 4; ++i) point_embeddings->push_back(torch::nn::Embedding(1, d));
  register_module("point_embeddings", point_embeddings);
  not_a_point_embed = register_module("not_a_point_embed", torch::nn::Embedding(1, d));
  const int64_t mic = cfg.prompt_encoder.mask_in_chans;
  const double eps = cfg.prompt_encoder.layer_norm2d_eps;
  using torch::nn::Conv2d;
  using torch::nn::Conv2dOptions;
  mask_downscaling = register_module(
      "mask_downscaling",
      torch::nn::Sequential(Conv2d(Conv2dOptions(1, mic / 4, 2).stride(2)),
                            LayerNorm2d(mic / 4, eps), torch::nn::GELU(),
                            Conv2d(Conv2dOptions(mic / 4, mic, 2).stride(2)), LayerNorm2d(mic, eps),
                            torch::nn::GELU(), Conv2d(Conv2dOptions(mic, d, 1))));
  no_mask_embed = register_module("no_mask_embed", torch::nn::Embedding(1, d));
}

torch::Tensor PromptEncoderImpl::get_dense_pe() {
  return pe_layer->forward(grid_, grid_).unsqueeze(0);
}

torch::Tensor PromptEncoderImpl::embed_points(torch::Tensor points, torch::Tensor labels,
                                              bool pad) {
  points = points + 0.5;  // shift to the centre of the pixel
  if (pad) {
    auto padding_point = torch::zeros({points.size(0), 1, 2}, points.options());
    auto padding_label = -torch::ones({labels.size(0), 1}, labels.options());
    points = torch::cat({points, padding_point}, 1);
    labels = torch::cat({labels, padding_label}, 1);
  }
  auto pe = pe_layer->forward_with_coords(points, image_size_, image_size_);
  auto lab = labels.unsqueeze(-1);
  auto w = [&](const torch::nn::Embedding& e) { return e->weight.to(pe.scalar_type()); };
  pe = torch::where(lab == -1, torch::zeros_like(pe) + w(not_a_point_embed), pe);
  for (int64_t i = 0; i < 4; ++i) {
    auto emb = point_embeddings[i]->as<torch::nn::Embedding>()->weight.to(pe.scalar_type());
    pe = torch::where(lab == i, pe + emb, pe);
  }
  return pe;
}

std::pair<torch::Tensor, torch::Tensor> PromptEncoderImpl::forward(
    const torch::Tensor& points, const torch::Tensor& labels, const torch::Tensor& masks) {
  int64_t bs = 1;
  if (points.defined()) {
    bs = points.size(0);
  } else if (masks.defined()) {
    bs = masks.size(0);
  }
  auto dev = no_mask_embed->weight.device();
  auto dtype = no_mask_embed->weight.scalar_type();
  torch::Tensor sparse = torch::empty({bs, 0, embed_dim_}, torch::TensorOptions().dtype(dtype).device(dev));
  if (points.defined()) {
    // Boxes always travel as points (labels 2, 3), so a padding point is added.
    sparse = torch::cat({sparse, embed_points(points, labels, /*pad=*/true).to(dtype)}, 1);
  }
  torch::Tensor dense;
  if (masks.defined()) {
    dense = mask_downscaling->forward(masks.to(dtype));
  } else {
    dense = no_mask_embed->weight.reshape({1, -1, 1, 1}).expand({bs, -1, grid_, grid_});
  }
  return {sparse, dense};
}

}  // namespace sam3::modeling
