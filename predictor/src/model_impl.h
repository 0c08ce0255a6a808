// Internal: what a sam3::Model holds. Used by the predictor and the tests.
#pragma once

#include <torch/torch.h>

#include "modeling/sam2_base.h"
#include "sam1/sam1_predictor.h"
#include "modeling/sam3_interactive.h"
#include "sam3/config.h"
#include "sam3/model.h"

namespace sam3::detail {

struct ModelImpl {
  ModelConfig config;
  // forward() of LibTorch modules is non-const; the weights are never modified
  // after loading, so sharing one ModelImpl across threads is safe.
  // Exactly one of the family networks is set (config.family).
  mutable modeling::Sam3InteractiveModel net{nullptr};  // "sam3"
  mutable modeling::Sam2Model sam2{nullptr};            // "sam2.1"
  std::shared_ptr<sam1::Sam1Model> sam1;                // "sam1" (own pre/post-processing)
  // The family network's prompt encoder / mask decoder (shared handles).
  mutable modeling::PromptEncoder prompt_encoder{nullptr};
  mutable modeling::MaskDecoder mask_decoder{nullptr};
  torch::Device device{torch::kCPU};
  Precision precision = Precision::kFloat32;
  torch::ScalarType dtype = torch::kFloat;  // of the weights / activations
  torch::Tensor dense_pe;                   // 1 x d x G x G, fp32, on device
  int64_t num_parameters = 0;

  // The family network (parameter names = checkpoint keys).
  torch::nn::Module& root() const {
    if (sam1) return *sam1;
    if (sam2) return *sam2;
    return *net;
  }
  // N x 3 x R x R preprocessed -> features.
  modeling::EncoderOutput encode(const torch::Tensor& x, bool keep_intermediates) const {
    return sam2 ? sam2->encode_image(x, keep_intermediates) : net->encode_image(x, keep_intermediates);
  }
};

// Parses "cpu" / "cuda" / "cuda:N" and checks availability (DeviceError).
torch::Device parse_device(const std::string& s);

}  // namespace sam3::detail
