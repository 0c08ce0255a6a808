// Internal: what a sam3::Model holds. Used by the predictor and the tests.
#pragma once

#include <torch/torch.h>

#include "modeling/sam3_interactive.h"
#include "sam3/config.h"
#include "sam3/model.h"

namespace sam3::detail {

struct ModelImpl {
  ModelConfig config;
  // forward() of LibTorch modules is non-const; the weights are never modified
  // after loading, so sharing one ModelImpl across threads is safe.
  mutable modeling::Sam3InteractiveModel net{nullptr};
  torch::Device device{torch::kCPU};
  Precision precision = Precision::kFloat32;
  torch::ScalarType dtype = torch::kFloat;  // of the weights / activations
  torch::Tensor dense_pe;                   // 1 x d x G x G, fp32, on device
  int64_t num_parameters = 0;
};

// Parses "cpu" / "cuda" / "cuda:N" and checks availability (DeviceError).
torch::Device parse_device(const std::string& s);

}  // namespace sam3::detail
