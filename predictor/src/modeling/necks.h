// Port of the SAM 2 branch of sam3/model/necks.py (Sam3DualViTDetNeck):
// `sam2_convs.{k}` turn the trunk output into the levels 4x, 2x, 1x (the 0.5x
// level is dropped by scalp=1 and not built).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "modeling/vitdet.h"
#include "sam3/config.h"

namespace sam3::modeling {

// One level: optional up/down-sampling, conv_1x1, conv_3x3.
class NeckLevelImpl : public torch::nn::Module {
 public:
  NeckLevelImpl(int64_t dim, int64_t d_model, double scale);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::ConvTranspose2d dconv_2x2_0{nullptr}, dconv_2x2_1{nullptr}, dconv_2x2{nullptr};
  torch::nn::Conv2d conv_1x1{nullptr}, conv_3x3{nullptr};

 private:
  double scale_;
};
TORCH_MODULE(NeckLevel);

// Sam3DualViTDetNeck restricted to what the interactive path runs: the ViT
// `trunk` and the SAM 2 branch `sam2_convs` (the SAM 3 branch `convs` and the
// position encodings do not influence the outputs and are not built).
class Sam3DualViTDetNeckImpl : public torch::nn::Module {
 public:
  explicit Sam3DualViTDetNeckImpl(const ModelConfig& cfg);
  // N x 3 x S x S -> levels (4G, 2G, G for the official scales); `trunk_out`
  // receives the ViT output when not null.
  std::vector<torch::Tensor> forward(const torch::Tensor& x,
                                     torch::Tensor* trunk_out = nullptr);
  ViT trunk{nullptr};
  torch::nn::ModuleList sam2_convs;
};
TORCH_MODULE(Sam3DualViTDetNeck);

}  // namespace sam3::modeling
