// Port of sam3/model/vitdet.py (ViT, Block, Attention, PatchEmbed,
// window_partition/unpartition, get_abs_pos with tiling).
#include "modeling/vitdet.h"

#include <torch/version.h>

#include <algorithm>
#include <cmath>

#include "modeling/common.h"
#include "modeling/rope.h"

namespace sam3::modeling {

namespace {

torch::Tensor sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  return attention(q, k, v);
}

}  // namespace

PatchEmbedImpl::PatchEmbedImpl(int64_t patch, int64_t in_chans, int64_t embed_dim, bool bias) {
  proj = register_module(
      "proj", torch::nn::Conv2d(
                  torch::nn::Conv2dOptions(in_chans, embed_dim, patch).stride(patch).bias(bias)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& x) {
  return proj(x).permute({0, 2, 3, 1});
}

AttentionImpl::AttentionImpl(const ViTConfig& cfg, int64_t input_size)
    : num_heads_(cfg.num_heads), head_dim_(cfg.head_dim()), use_rope_(cfg.use_rope) {
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(cfg.embed_dim,
                                                                          3 * cfg.embed_dim)
                                                     .bias(cfg.qkv_bias)));
  proj = register_module("proj", torch::nn::Linear(cfg.embed_dim, cfg.embed_dim));
  if (use_rope_) {
    double scale = cfg.use_interp_rope
                       ? static_cast<double>(cfg.effective_rope_pt_size()) / input_size
                       : 1.0;
    freqs_cis = register_buffer(
        "freqs_cis", compute_axial_cis(head_dim_, input_size, input_size, cfg.rope_theta, scale));
    refresh_rope_tables();
  }
}

void AttentionImpl::refresh_rope_tables() {
  if (!use_rope_) return;
  rope_cos_ = torch::real(freqs_cis).to(torch::kFloat).contiguous();
  rope_sin_ = torch::imag(freqs_cis).to(torch::kFloat).contiguous();
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2);
  auto qkv_out = qkv->forward(x).reshape({B, H * W, 3, num_heads_, head_dim_});
  auto parts = qkv_out.permute({2, 0, 3, 1, 4}).unbind(0);
  auto q = parts[0], k = parts[1], v = parts[2];
  if (use_rope_) {
    q = apply_rotary_enc(q, rope_cos_, rope_sin_);
    k = apply_rotary_enc(k, rope_cos_, rope_sin_);
  }
  auto o = sdpa(q, k, v);  // B x h x L x hd
  o = o.view({B, num_heads_, H, W, head_dim_}).permute({0, 2, 3, 1, 4}).reshape({B, H, W, -1});
  return proj->forward(o);
}

MlpImpl::MlpImpl(int64_t in, int64_t hidden) {
  fc1 = register_module("fc1", torch::nn::Linear(in, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, in));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return fc2->forward(torch::gelu(fc1->forward(x)));
}

torch::Tensor window_partition(const torch::Tensor& x, int64_t window, int64_t* hp,
                               int64_t* wp) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const int64_t pad_h = (window - H % window) % window;
  const int64_t pad_w = (window - W % window) % window;
  auto xp = x;
  if (pad_h > 0 || pad_w > 0) xp = torch::constant_pad_nd(x, {0, 0, 0, pad_w, 0, pad_h}, 0);
  *hp = H + pad_h;
  *wp = W + pad_w;
  xp = xp.view({B, *hp / window, window, *wp / window, window, C});
  return xp.permute({0, 1, 3, 2, 4, 5}).reshape({-1, window, window, C});
}

torch::Tensor window_unpartition(const torch::Tensor& windows, int64_t window, int64_t hp,
                                 int64_t wp, int64_t h, int64_t w) {
  const int64_t B = windows.size(0) / (hp * wp / window / window);
  auto x = windows.reshape({B, hp / window, wp / window, window, window, -1});
  x = x.permute({0, 1, 3, 2, 4, 5}).reshape({B, hp, wp, -1});
  if (hp > h || wp > w) x = x.slice(1, 0, h).slice(2, 0, w).contiguous();
  return x;
}

BlockImpl::BlockImpl(const ViTConfig& cfg, int64_t window_size) : window_size_(window_size) {
  auto ln = [&] {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.embed_dim}).eps(cfg.layer_norm_eps));
  };
  norm1 = register_module("norm1", ln());
  attn = register_module("attn", Attention(cfg, window_size > 0 ? window_size : cfg.grid()));
  norm2 = register_module("norm2", ln());
  mlp = register_module("mlp", Mlp(cfg.embed_dim, cfg.mlp_hidden_dim()));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  auto h = layer_norm_fp32(x, norm1);
  if (window_size_ > 0) {
    const int64_t H = h.size(1), W = h.size(2);
    int64_t hp = 0, wp = 0;
    h = window_partition(h, window_size_, &hp, &wp);
    h = attn->forward(h);
    h = window_unpartition(h, window_size_, hp, wp, H, W);
  } else {
    h = attn->forward(h);
  }
  auto y = x + h;
  return y + mlp->forward(layer_norm_fp32(y, norm2));
}

ViTImpl::ViTImpl(const ViTConfig& cfg) : cfg_(cfg) {
  patch_embed = register_module(
      "patch_embed", PatchEmbed(cfg.patch_size, cfg.in_chans, cfg.embed_dim, cfg.bias_patch_embed));
  if (cfg.use_abs_pos) {
    const int64_t g = cfg.pretrain_grid();
    const int64_t n = g * g + (cfg.pretrain_use_cls_token ? 1 : 0);
    pos_embed = register_parameter("pos_embed", torch::zeros({1, n, cfg.embed_dim}));
  }
  if (cfg.ln_pre) {
    ln_pre = register_module(
        "ln_pre",
        torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.embed_dim}).eps(cfg.layer_norm_eps)));
  }
  for (int64_t i = 0; i < cfg.depth; ++i) {
    blocks->push_back(Block(cfg, cfg.is_global(i) ? 0 : cfg.window_size));
    if (cfg.is_global(i)) last_global_ = i;
  }
  register_module("blocks", blocks);
  if (last_global_ < 0) last_global_ = cfg.depth - 1;
}

void ViTImpl::refresh_rope_tables() {
  for (auto& b : *blocks) b->as<Block>()->attn->refresh_rope_tables();
}

torch::Tensor ViTImpl::tiled_pos_embed() {
  // get_abs_pos(tiling=True): drop the cls entry, view as g x g, tile to G x G.
  const int64_t g = cfg_.pretrain_grid();
  const int64_t G = cfg_.grid();
  auto pe = pos_embed;
  if (cfg_.pretrain_use_cls_token) pe = pe.slice(1, 1);
  pe = pe.reshape({1, g, g, -1});
  if (g == G) return pe;
  if (!cfg_.tile_abs_pos) {
    auto p = pe.permute({0, 3, 1, 2});
    p = torch::nn::functional::interpolate(
        p, torch::nn::functional::InterpolateFuncOptions()
               .size(std::vector<int64_t>{G, G})
               .mode(torch::kBicubic)
               .align_corners(false));
    return p.permute({0, 2, 3, 1});
  }
  const int64_t reps = G / g + 1;
  return pe.repeat({1, reps, reps, 1}).slice(1, 0, G).slice(2, 0, G);
}

torch::Tensor ViTImpl::forward(const torch::Tensor& x_in) {
  auto x = patch_embed->forward(x_in);  // N x G x G x C
  if (cfg_.use_abs_pos) x = x + tiled_pos_embed().to(x.scalar_type());
  if (cfg_.ln_pre) x = layer_norm_fp32(x, ln_pre);
  for (int64_t i = 0; i <= last_global_; ++i) {
    x = blocks[i]->as<Block>()->forward(x);
  }
  return x.permute({0, 3, 1, 2});
}

}  // namespace sam3::modeling
