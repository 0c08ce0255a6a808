// Port of sam3/sam/common.py (LayerNorm2d, MLPBlock) and sam3/model/model_misc.py
// (MLP), plus precision helpers shared by all modules.
#pragma once

#include <torch/torch.h>

namespace sam3::modeling {

// LayerNorm over the last dimension computed in float32 whatever the input
// dtype (bf16/fp16 runs keep normalisation in fp32), result in x's dtype.
torch::Tensor layer_norm_fp32(const torch::Tensor& x, const torch::nn::LayerNorm& ln);

// Softmax over `dim` in float32, result in x's dtype.
torch::Tensor softmax_fp32(const torch::Tensor& x, int64_t dim);
// The mask decoders' last step: one hypernetwork MLP per mask token maps the
// token to weights over the up-scaled embedding's channels.
// mask_tokens_out: B x T x C; upscaled: B x C' x h x w -> B x T x h x w.
torch::Tensor hypernetwork_masks(const torch::nn::ModuleList& mlps,
                                 const torch::Tensor& mask_tokens_out,
                                 const torch::Tensor& upscaled);

// Scaled dot-product attention, no mask / dropout; q, k, v: N x h x L x hd.
// CPU fp32: softmax in fp32 over query chunks of at most ~64 MiB of scores
// (long sequences never materialise the whole score matrix); GPU / half
// types on LibTorch >= 2: at::scaled_dot_product_attention (on the CPU in
// fp32 too with SAM3_CPU_ATTENTION=sdpa: 27 % slower for SAM 3 full).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// ConvTranspose2d forward that works for bf16 on the CPU: LibTorch 1.13's CPU
// bf16 transposed convolution mis-reads the weight layout, so it runs in fp32
// there (GPU and fp32 use the module as is).
torch::Tensor conv_transpose(torch::nn::ConvTranspose2d& m, const torch::Tensor& x);

// 1x1 Conv2d as one GEMM over the channels: Debian's LibTorch (no oneDNN)
// runs convolutions through im2col, ~10x slower for 1x1 kernels.
torch::Tensor conv1x1(torch::nn::Conv2d& m, const torch::Tensor& x);

// Channel-wise LayerNorm of an N x C x H x W tensor (common.py LayerNorm2d):
// (x - mean_c) / sqrt(var_c + eps) * weight + bias, biased variance, in fp32.
class LayerNorm2dImpl : public torch::nn::Module {
 public:
  LayerNorm2dImpl(int64_t num_channels, double eps);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;
  torch::Tensor bias;

 private:
  double eps_;
};
TORCH_MODULE(LayerNorm2d);

// common.py MLPBlock: lin2(act(lin1(x))), act = ReLU or GELU.
class MLPBlockImpl : public torch::nn::Module {
 public:
  MLPBlockImpl(int64_t embedding_dim, int64_t mlp_dim, bool gelu);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear lin1{nullptr}, lin2{nullptr};

 private:
  bool gelu_;
};
TORCH_MODULE(MLPBlock);

// MLP with `num_layers` Linear layers (`layers.{i}`), ReLU between them,
// optional sigmoid on the output.
class MLPImpl : public torch::nn::Module {
 public:
  MLPImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers,
          bool sigmoid_output = false);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::ModuleList layers;

 private:
  bool sigmoid_output_;
};
TORCH_MODULE(MLP);


}  // namespace sam3::modeling
