// Port of sam2/modeling/backbones/hieradet.py and image_encoder.py (FpnNeck).
#include "modeling/hiera.h"

#include <algorithm>
#include <cmath>

#include "modeling/common.h"

namespace sam3::modeling {

namespace F = torch::nn::functional;

namespace {

// do_pool: B x H x W x C max-pooled by s x s (floor), channels last.
torch::Tensor pool_nhwc(const torch::Tensor& x, int64_t s) {
  auto y = x.permute({0, 3, 1, 2});
  y = F::max_pool2d(y, F::MaxPool2dFuncOptions(s).stride(s));
  return y.permute({0, 2, 3, 1});
}

// window_partition: zero-pad bottom/right to multiples of ws, cut windows.
torch::Tensor window_partition(const torch::Tensor& x, int64_t ws, int64_t& hp, int64_t& wp) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const int64_t ph = (ws - H % ws) % ws, pw = (ws - W % ws) % ws;
  auto y = x;
  if (ph > 0 || pw > 0) y = F::pad(x, F::PadFuncOptions({0, 0, 0, pw, 0, ph}));
  hp = H + ph;
  wp = W + pw;
  y = y.view({B, hp / ws, ws, wp / ws, ws, C});
  return y.permute({0, 1, 3, 2, 4, 5}).contiguous().view({-1, ws, ws, C});
}

torch::Tensor window_unpartition(const torch::Tensor& windows, int64_t ws, int64_t hp, int64_t wp,
                                 int64_t H, int64_t W) {
  const int64_t B = windows.size(0) / (hp * wp / ws / ws);
  auto x = windows.view({B, hp / ws, wp / ws, ws, ws, -1});
  x = x.permute({0, 1, 3, 2, 4, 5}).contiguous().view({B, hp, wp, -1});
  if (hp > H || wp > W) x = x.slice(1, 0, H).slice(2, 0, W).contiguous();
  return x;
}

}  // namespace

HieraMLPImpl::HieraMLPImpl(int64_t dim, int64_t hidden) {
  layers->push_back(torch::nn::Linear(dim, hidden));
  layers->push_back(torch::nn::Linear(hidden, dim));
  register_module("layers", layers);
}

torch::Tensor HieraMLPImpl::forward(const torch::Tensor& x) {
  auto h = torch::gelu(layers[0]->as<torch::nn::Linear>()->forward(x));
  return layers[1]->as<torch::nn::Linear>()->forward(h);
}

MultiScaleAttentionImpl::MultiScaleAttentionImpl(int64_t dim, int64_t dim_out, int64_t num_heads,
                                                 int64_t q_stride)
    : num_heads_(num_heads), q_stride_(q_stride) {
  qkv = register_module("qkv", torch::nn::Linear(dim, dim_out * 3));
  proj = register_module("proj", torch::nn::Linear(dim_out, dim_out));
}

torch::Tensor MultiScaleAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0);
  int64_t H = x.size(1), W = x.size(2);
  auto qkv_ = qkv->forward(x).reshape({B, H * W, 3, num_heads_, -1});
  auto q = qkv_.select(2, 0), k = qkv_.select(2, 1), v = qkv_.select(2, 2);  // B x L x nh x hd
  if (q_stride_ > 0) {
    q = pool_nhwc(q.reshape({B, H, W, -1}), q_stride_);
    H = q.size(1);
    W = q.size(2);
    q = q.reshape({B, H * W, num_heads_, -1});
  }
  q = q.transpose(1, 2);
  k = k.transpose(1, 2);
  v = v.transpose(1, 2);
  // chunked over queries on CPU fp32 (global blocks: 4096 tokens at R = 1024)
  auto out = attention(q, k, v).transpose(1, 2).reshape({B, H, W, -1});
  return proj->forward(out);
}

MultiScaleBlockImpl::MultiScaleBlockImpl(const HieraConfig::Block& b, int64_t q_stride,
                                         double mlp_ratio, double eps)
    : dim_(b.dim), dim_out_(b.dim_out), window_(b.window_size), q_stride_(b.q_pool ? q_stride : 0) {
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({b.dim}).eps(eps)));
  attn = register_module("attn", MultiScaleAttention(b.dim, b.dim_out, b.num_heads, q_stride_));
  norm2 = register_module("norm2",
                          torch::nn::LayerNorm(torch::nn::LayerNormOptions({b.dim_out}).eps(eps)));
  mlp = register_module(
      "mlp", HieraMLP(b.dim_out, static_cast<int64_t>(static_cast<double>(b.dim_out) * mlp_ratio)));
  if (b.dim != b.dim_out) proj = register_module("proj", torch::nn::Linear(b.dim, b.dim_out));
}

torch::Tensor MultiScaleBlockImpl::forward(const torch::Tensor& x_in) {
  auto shortcut = x_in;
  auto x = layer_norm_fp32(x_in, norm1);
  if (dim_ != dim_out_) {
    shortcut = proj->forward(x);
    if (q_stride_ > 0) shortcut = pool_nhwc(shortcut, q_stride_);
  }
  int64_t H = x.size(1), W = x.size(2), hp = H, wp = W;
  int64_t ws = window_;
  if (ws > 0) x = window_partition(x, ws, hp, wp);
  x = attn->forward(x);
  if (q_stride_ > 0 && window_ > 0) {
    ws = window_ / q_stride_;
    H = shortcut.size(1);
    W = shortcut.size(2);
    hp = H + (ws - H % ws) % ws;
    wp = W + (ws - W % ws) % ws;
  }
  if (window_ > 0) x = window_unpartition(x, ws, hp, wp, H, W);
  x = shortcut + x;
  return x + mlp->forward(layer_norm_fp32(x, norm2));
}

HieraPatchEmbedImpl::HieraPatchEmbedImpl(const HieraConfig& c) {
  proj = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, c.embed_dim, c.patch_kernel_size)
                                    .stride(c.patch_stride)
                                    .padding(c.patch_padding)));
}

torch::Tensor HieraPatchEmbedImpl::forward(const torch::Tensor& x) {
  return proj->forward(x).permute({0, 2, 3, 1});
}

HieraImpl::HieraImpl(const HieraConfig& c) : stage_ends_(c.stage_ends()) {
  patch_embed = register_module("patch_embed", HieraPatchEmbed(c));
  const auto& bkg = c.window_pos_embed_bkg_spatial_size;
  pos_embed = register_parameter("pos_embed", torch::zeros({1, c.embed_dim, bkg.at(0), bkg.at(1)}));
  pos_embed_window = register_parameter(
      "pos_embed_window", torch::zeros({1, c.embed_dim, c.window_spec.at(0), c.window_spec.at(0)}));
  for (const auto& b : c.blocks()) {
    blocks->push_back(MultiScaleBlock(b, c.q_stride.at(0), c.mlp_ratio, c.layer_norm_eps));
  }
  register_module("blocks", blocks);
}

torch::Tensor HieraImpl::get_pos_embed(int64_t h, int64_t w) {
  // bicubic (a = -0.75, align_corners=False) background + tiled window embedding,
  // in fp32 whatever the weights' dtype (fp64 for reference runs)
  const auto dt = pos_embed.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  auto bg = F::interpolate(pos_embed.to(dt),
                           F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{h, w})
                               .mode(torch::kBicubic)
                               .align_corners(false));
  auto win = pos_embed_window.to(dt);
  TORCH_CHECK(h % win.size(2) == 0 && w % win.size(3) == 0,
              "Hiera: token grid must be a multiple of the window position embedding");
  bg = bg + win.repeat({1, 1, h / win.size(2), w / win.size(3)});
  return bg.permute({0, 2, 3, 1});
}

std::vector<torch::Tensor> HieraImpl::forward(const torch::Tensor& input, HieraTrace* trace) {
  auto x = patch_embed->forward(input);
  auto pe = get_pos_embed(x.size(1), x.size(2));
  if (trace) {
    trace->patch_embed = x;
    trace->pos_embed = pe;
  }
  x = x + pe.to(x.scalar_type());
  std::vector<torch::Tensor> outputs;
  for (size_t i = 0; i < blocks->size(); ++i) {
    x = blocks[i]->as<MultiScaleBlock>()->forward(x);
    if (trace) trace->blocks.push_back(x);
    if (std::find(stage_ends_.begin(), stage_ends_.end(), static_cast<int64_t>(i)) !=
        stage_ends_.end()) {
      outputs.push_back(x.permute({0, 3, 1, 2}));
    }
  }
  return outputs;
}

FpnLateralImpl::FpnLateralImpl(int64_t in, int64_t out) {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1)));
}

FpnNeckImpl::FpnNeckImpl(const std::vector<int64_t>& backbone_channel_list, int64_t d_model,
                         std::vector<int64_t> top_down_levels)
    : top_down_(std::move(top_down_levels)) {
  for (auto ch : backbone_channel_list) convs->push_back(FpnLateral(ch, d_model));
  register_module("convs", convs);
}

std::vector<torch::Tensor> FpnNeckImpl::forward(const std::vector<torch::Tensor>& xs) {
  const int64_t n = static_cast<int64_t>(convs->size()) - 1;
  TORCH_CHECK(static_cast<int64_t>(xs.size()) == n + 1, "FpnNeck: level count mismatch");
  std::vector<torch::Tensor> out(xs.size());
  torch::Tensor prev;
  for (int64_t i = n; i >= 0; --i) {
    auto lateral = conv1x1(convs[n - i]->as<FpnLateral>()->conv, xs[i]);
    const bool top_down =
        std::find(top_down_.begin(), top_down_.end(), i) != top_down_.end() && prev.defined();
    if (top_down) {
      // the top-down term in fp32 (fp64 for reference runs)
      const auto dt = prev.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
      auto td = F::interpolate(prev.to(dt),
                               F::InterpolateFuncOptions()
                                   .scale_factor(std::vector<double>{2.0, 2.0})
                                   .mode(torch::kNearest));
      prev = (lateral + td).to(lateral.scalar_type());
    } else {
      prev = lateral;
    }
    out[i] = prev;
  }
  return out;
}

}  // namespace sam3::modeling
