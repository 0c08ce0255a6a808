// Test helpers: fixture paths, images, packed masks.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>

#include "sam3/checkpoint.h"

namespace sam3::test {

// $SAM3_FIXTURES_DIR (set by meson test) or ../shared/fixtures. Fails the
// calling test (ADD_FAILURE) if it does not exist.
std::string fixtures_dir();
std::string fixture_path(const std::string& rel);  // fixtures_dir()/rel
std::string build_dir();                            // $SAM3_BUILD_DIR
std::string temp_dir();                             // a fresh folder per call

// PNG -> H x W x 3 uint8 RGB (CV_8UC3).
cv::Mat read_rgb(const std::string& path);

// numpy.packbits(bitorder="big") bytes -> bool tensor of `shape`.
torch::Tensor unpack_bits(const torch::Tensor& packed_u8, at::IntArrayRef shape);

// max |a - b| as double (shapes must match; fails the test otherwise).
double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b);

// Binary masks computed on another LibTorch / BLAS may differ from the
// reference only where the reference logit lies within |tol| of the threshold:
// such a tie rounds the other way when the last bits of the logit differ. Every
// differing pixel of got_bits vs want_bits (same shape, bool) must have
// |ref_logits - thr| <= tol (EXPECT, naming the worst one and the count);
// returns the number of differing pixels.
int64_t expect_differences_only_at_threshold_ties(const std::string& what,
                                                   const torch::Tensor& got_bits,
                                                   const torch::Tensor& want_bits,
                                                   const torch::Tensor& ref_logits, double thr,
                                                   double tol = 1e-3);

// A JSON file (fails the calling test if it cannot be opened).
nlohmann::json read_json(const std::string& path);
// Numbers, possibly nested lists -> tensor of the nested shape (cases.json).
torch::Tensor json_to_tensor(const nlohmann::json& j, torch::ScalarType dtype = torch::kFloat);

// Writes bytes to a file.
void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);

}  // namespace sam3::test
