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

// A JSON file (fails the calling test if it cannot be opened).
nlohmann::json read_json(const std::string& path);
// Numbers, possibly nested lists -> tensor of the nested shape (cases.json).
torch::Tensor json_to_tensor(const nlohmann::json& j, torch::ScalarType dtype = torch::kFloat);

// Writes bytes to a file.
void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);

}  // namespace sam3::test
