// Port of sam3/model/vitdet.py: the ViT trunk of SAM 3's image encoder
// (patch embed without bias, tiled absolute position embedding, ln_pre,
// windowed and global blocks with 2-D axial RoPE).
#pragma once

#include <torch/torch.h>

#include "sam3/config.h"

namespace sam3::modeling {

class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int64_t patch, int64_t in_chans, int64_t embed_dim, bool bias);
  // N x 3 x S x S -> N x G x G x C
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

class AttentionImpl : public torch::nn::Module {
 public:
  // `input_size`: side of the token square the block attends over (window or
  // grid); rope scale = rope_pt_size / input_size when use_interp_rope.
  AttentionImpl(const ViTConfig& cfg, int64_t input_size);
  // x: N x n x n x C
  torch::Tensor forward(const torch::Tensor& x);
  // Derives the cos/sin tables from the (possibly loaded) freqs_cis buffer.
  void refresh_rope_tables();

  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  torch::Tensor freqs_cis;  // complex64 (n*n, head_dim/2), persistent buffer

 private:
  int64_t num_heads_;
  int64_t head_dim_;
  bool use_rope_;
  torch::Tensor rope_cos_, rope_sin_;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t in, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const ViTConfig& cfg, int64_t window_size /* 0 = global */);
  torch::Tensor forward(const torch::Tensor& x);  // N x G x G x C

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  Mlp mlp{nullptr};

 private:
  int64_t window_size_;
};
TORCH_MODULE(Block);

class ViTImpl : public torch::nn::Module {
 public:
  explicit ViTImpl(const ViTConfig& cfg);
  // N x 3 x S x S (normalised) -> N x C x G x G (output of the last global block)
  torch::Tensor forward(const torch::Tensor& x);
  void refresh_rope_tables();

  PatchEmbed patch_embed{nullptr};
  torch::Tensor pos_embed;  // 1 x (1 + g*g) x C (cls entry first) or 1 x g*g x C
  torch::nn::LayerNorm ln_pre{nullptr};
  torch::nn::ModuleList blocks;

 private:
  torch::Tensor tiled_pos_embed();
  ViTConfig cfg_;
  int64_t last_global_ = -1;
};
TORCH_MODULE(ViT);

// Window partition / unpartition (zero padding at bottom/right, no mask).
torch::Tensor window_partition(const torch::Tensor& x, int64_t window, int64_t* hp, int64_t* wp);
torch::Tensor window_unpartition(const torch::Tensor& windows, int64_t window, int64_t hp,
                                 int64_t wp, int64_t h, int64_t w);

}  // namespace sam3::modeling
