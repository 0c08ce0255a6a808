// Port of sam3/sam/common.py and the MLP of sam3/model/model_misc.py.
#include "modeling/common.h"
#include <torch/version.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace sam3::modeling {

torch::Tensor layer_norm_fp32(const torch::Tensor& x, const torch::nn::LayerNorm& ln) {
  const auto& opt = ln->options;
  // fp32 and fp64 (reference runs) as is; bf16 / fp16 in fp32
  if (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble) {
    return torch::layer_norm(x, opt.normalized_shape(), ln->weight, ln->bias, opt.eps());
  }
  return torch::layer_norm(x.to(torch::kFloat), opt.normalized_shape(),
                           ln->weight.to(torch::kFloat), ln->bias.to(torch::kFloat), opt.eps())
      .to(x.scalar_type());
}

torch::Tensor softmax_fp32(const torch::Tensor& x, int64_t dim) {
  if (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble) {
    return torch::softmax(x, dim);
  }
  return torch::softmax(x.to(torch::kFloat), dim).to(x.scalar_type());
}

torch::Tensor conv_transpose(torch::nn::ConvTranspose2d& m, const torch::Tensor& x) {
  if (x.is_cuda() || x.scalar_type() == torch::kFloat) return m->forward(x);
  const auto& o = m->options;
  auto b = m->bias.defined() ? m->bias.to(torch::kFloat) : torch::Tensor();
  // all transposed convolutions of SAM 3 are 2x2, stride 2, no padding
  return torch::conv_transpose2d(x.to(torch::kFloat), m->weight.to(torch::kFloat), b, o.stride())
      .to(x.scalar_type());
}

namespace {

// SAM3_CPU_ATTENTION=sdpa and SAM3_CPU_CONV1X1=native (read once) switch the
// CPU fp32 kernels below to LibTorch's own, for benchmarking them against ours
// (docs/tools.md, "LibTorch 2.6 (Debian 13) against 1.13": ours are as fast or
// faster, so they are the default on every LibTorch).
bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, value) == 0;
}

#if TORCH_VERSION_MAJOR >= 2  // LibTorch 1.13 has no at::scaled_dot_product_attention
bool cpu_sdpa() {
  static const bool v = env_is("SAM3_CPU_ATTENTION", "sdpa");
  return v;
}
#endif

bool cpu_native_conv1x1() {
  static const bool v = env_is("SAM3_CPU_CONV1X1", "native");
  return v;
}

}  // namespace

torch::Tensor conv1x1(torch::nn::Conv2d& m, const torch::Tensor& x) {
  if (cpu_native_conv1x1() && !x.is_cuda()) return m->forward(x);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t o = m->weight.size(0);
  auto y = torch::matmul(m->weight.view({o, c}), x.reshape({n, c, h * w}));
  if (m->bias.defined()) y = y + m->bias.view({1, o, 1});
  return y.view({n, o, h, w});
}

LayerNorm2dImpl::LayerNorm2dImpl(int64_t num_channels, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({num_channels}));
  bias = register_parameter("bias", torch::zeros({num_channels}));
}

torch::Tensor LayerNorm2dImpl::forward(const torch::Tensor& x_in) {
  auto x = x_in.to(torch::kFloat);
  auto u = x.mean(1, /*keepdim=*/true);
  auto s = (x - u).pow(2).mean(1, /*keepdim=*/true);
  x = (x - u) / torch::sqrt(s + eps_);
  x = weight.to(torch::kFloat).view({-1, 1, 1}) * x + bias.to(torch::kFloat).view({-1, 1, 1});
  return x.to(x_in.scalar_type());
}

MLPBlockImpl::MLPBlockImpl(int64_t embedding_dim, int64_t mlp_dim, bool gelu) : gelu_(gelu) {
  lin1 = register_module("lin1", torch::nn::Linear(embedding_dim, mlp_dim));
  lin2 = register_module("lin2", torch::nn::Linear(mlp_dim, embedding_dim));
}

torch::Tensor MLPBlockImpl::forward(const torch::Tensor& x) {
  auto h = lin1(x);
  h = gelu_ ? torch::gelu(h) : torch::relu(h);
  return lin2(h);
}

MLPImpl::MLPImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers,
                 bool sigmoid_output)
    : sigmoid_output_(sigmoid_output) {
  for (int64_t i = 0; i < num_layers; ++i) {
    int64_t in = i == 0 ? input_dim : hidden_dim;
    int64_t out = i == num_layers - 1 ? output_dim : hidden_dim;
    layers->push_back(torch::nn::Linear(in, out));
  }
  register_module("layers", layers);
}

torch::Tensor MLPImpl::forward(torch::Tensor x) {
  const auto n = layers->size();
  for (size_t i = 0; i < n; ++i) {
    x = layers[i]->as<torch::nn::Linear>()->forward(x);
    if (i < n - 1) x = torch::relu(x);
  }
  if (sigmoid_output_) x = torch::sigmoid(x);
  return x;
}

// Scaled dot-product attention, no mask, no dropout; q,k,v: N x h x L x hd.
// Softmax runs in fp32. Long sequences are processed in query chunks so the
// score matrix stays small (global blocks of the full model: 5184 tokens).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
#if TORCH_VERSION_MAJOR >= 2
  if (q.scalar_type() != torch::kFloat || q.is_cuda() || cpu_sdpa()) {
    // Fused kernels (flash / memory-efficient) on GPU and for half types; on
    // the CPU in fp32 where it beats the chunked GEMMs below (cpu_sdpa()).
    return at::scaled_dot_product_attention(q, k, v);
  }
#endif
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  const int64_t L = q.size(-2);
  const int64_t S = k.size(-2);
  const int64_t rows = q.size(0) * q.size(1);
  // at most 8 MiB of fp32 scores per chunk: the chunk stays in the
  // allocator's reused heap and mostly in cache (Hiera-T encoder at 1024:
  // ~5 % faster than 64 MiB chunks, and 56 MiB less peak memory)
  const int64_t max_elems = int64_t{2} << 20;
  int64_t chunk = std::max<int64_t>(1, max_elems / std::max<int64_t>(1, rows * S));
  auto kt = k.transpose(-2, -1);
  if (chunk >= L) {
    auto attn = softmax_fp32(torch::matmul(q * scale, kt), -1);
    return torch::matmul(attn, v);
  }
  std::vector<torch::Tensor> outs;
  for (int64_t s = 0; s < L; s += chunk) {
    auto qs = q.slice(-2, s, std::min(L, s + chunk));
    auto attn = softmax_fp32(torch::matmul(qs * scale, kt), -1);
    outs.push_back(torch::matmul(attn, v));
  }
  return torch::cat(outs, -2);
}

torch::Tensor hypernetwork_masks(const torch::nn::ModuleList& mlps,
                                 const torch::Tensor& mask_tokens_out,
                                 const torch::Tensor& upscaled) {
  std::vector<torch::Tensor> hyper;
  for (size_t i = 0; i < mlps->size(); ++i) {
    hyper.push_back(
        mlps->ptr(i)->as<MLP>()->forward(mask_tokens_out.select(1, static_cast<int64_t>(i))));
  }
  auto hyper_in = torch::stack(hyper, 1);
  const int64_t b = upscaled.size(0), uc = upscaled.size(1);
  const int64_t uh = upscaled.size(2), uw = upscaled.size(3);
  return torch::matmul(hyper_in, upscaled.reshape({b, uc, uh * uw})).reshape({b, -1, uh, uw});
}

}  // namespace sam3::modeling
