// Port of sam3/model/necks.py (Sam3DualViTDetNeck, sam2_convs branch).
#include "modeling/necks.h"

#include "modeling/common.h"
#include "sam3/errors.h"

namespace sam3::modeling {

namespace {
torch::nn::ConvTranspose2d deconv(int64_t in, int64_t out) {
  return torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(in, out, 2).stride(2));
}
}  // namespace

NeckLevelImpl::NeckLevelImpl(int64_t dim, int64_t d_model, double scale) : scale_(scale) {
  int64_t out_dim = dim;
  if (scale == 4.0) {
    dconv_2x2_0 = register_module("dconv_2x2_0", deconv(dim, dim / 2));
    dconv_2x2_1 = register_module("dconv_2x2_1", deconv(dim / 2, dim / 4));
    out_dim = dim / 4;
  } else if (scale == 2.0) {
    dconv_2x2 = register_module("dconv_2x2", deconv(dim, dim / 2));
    out_dim = dim / 2;
  } else if (scale != 1.0 && scale != 0.5) {
    throw ConfigError("neck.scale_factors: unsupported scale " + std::to_string(scale) +
                      " (supported: 4, 2, 1, 0.5)");
  }
  conv_1x1 = register_module("conv_1x1", torch::nn::Conv2d(torch::nn::Conv2dOptions(out_dim, d_model, 1)));
  conv_3x3 = register_module(
      "conv_3x3", torch::nn::Conv2d(torch::nn::Conv2dOptions(d_model, d_model, 3).padding(1)));
}

torch::Tensor NeckLevelImpl::forward(const torch::Tensor& x_in) {
  auto x = x_in;
  if (scale_ == 4.0) {
    x = conv_transpose(dconv_2x2_1, torch::gelu(conv_transpose(dconv_2x2_0, x)));
  } else if (scale_ == 2.0) {
    x = conv_transpose(dconv_2x2, x);
  } else if (scale_ == 0.5) {
    x = torch::max_pool2d(x, 2, 2);
  }
  return conv_3x3->forward(conv1x1(conv_1x1, x));
}

Sam3DualViTDetNeckImpl::Sam3DualViTDetNeckImpl(const ModelConfig& cfg) {
  trunk = register_module("trunk", ViT(cfg.vit));
  const int64_t n = cfg.num_levels();
  for (int64_t i = 0; i < n; ++i) {
    sam2_convs->push_back(NeckLevel(cfg.vit.embed_dim, cfg.neck.d_model, cfg.neck.scale_factors[i]));
  }
  register_module("sam2_convs", sam2_convs);
}

std::vector<torch::Tensor> Sam3DualViTDetNeckImpl::forward(const torch::Tensor& x,
                                                           torch::Tensor* trunk_out) {
  auto t = trunk->forward(x);
  if (trunk_out) *trunk_out = t;
  std::vector<torch::Tensor> out;
  for (const auto& level : *sam2_convs) out.push_back(level->as<NeckLevel>()->forward(t));
  return out;
}

}  // namespace sam3::modeling
