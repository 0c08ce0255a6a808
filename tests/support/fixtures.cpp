#include "fixtures.h"

#include <cstdio>

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace sam3::test {

std::string fixtures_dir() {
  const char* env = std::getenv("SAM3_FIXTURES_DIR");
  std::string dir = env && *env ? env : "../shared/fixtures";
  if (!fs::is_directory(dir)) {
    ADD_FAILURE() << "fixtures folder not found: " << dir
                  << " (set SAM3_FIXTURES_DIR or put ../shared beside the checkout)";
  }
  return dir;
}

std::string fixture_path(const std::string& rel) { return fixtures_dir() + "/" + rel; }

std::string build_dir() {
  const char* env = std::getenv("SAM3_BUILD_DIR");
  return env && *env ? env : ".";
}

std::string temp_dir() {
  static std::atomic<int> counter{0};
  fs::path p = fs::temp_directory_path() /
               ("sam3-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

cv::Mat read_rgb(const std::string& path) {
  cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  if (bgr.empty()) {
    ADD_FAILURE() << "cannot read image " << path;
    return bgr;
  }
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

torch::Tensor unpack_bits(const torch::Tensor& packed_u8, at::IntArrayRef shape) {
  auto packed = packed_u8.contiguous().to(torch::kUInt8).reshape({-1});
  int64_t n = 1;
  for (auto s : shape) n *= s;
  auto bits = torch::empty({n}, torch::kBool);
  const uint8_t* src = packed.data_ptr<uint8_t>();
  bool* dst = bits.data_ptr<bool>();
  for (int64_t k = 0; k < n; ++k) dst[k] = (src[k / 8] >> (7 - k % 8)) & 1;
  return bits.reshape(shape);
}

int64_t expect_differences_only_at_threshold_ties(const std::string& what,
                                                   const torch::Tensor& got_bits,
                                                   const torch::Tensor& want_bits,
                                                   const torch::Tensor& ref_logits, double thr,
                                                   double tol) {
  if (got_bits.sizes() != want_bits.sizes() || ref_logits.sizes() != want_bits.sizes()) {
    ADD_FAILURE() << what << ": shapes " << got_bits.sizes() << ", " << want_bits.sizes()
                  << ", reference logits " << ref_logits.sizes();
    return -1;
  }
  const auto differ = got_bits.to(torch::kBool).ne(want_bits.to(torch::kBool));
  const int64_t n = differ.sum().item<int64_t>();
  if (n == 0) return 0;
  const double worst =
      (ref_logits.to(torch::kDouble) - thr).abs().masked_select(differ).max().item<double>();
  std::printf("%s: %lld pixels differ from the reference, all with |reference logit - %g| <= "
              "%.3g\n",
              what.c_str(), static_cast<long long>(n), thr, worst);
  EXPECT_LE(worst, tol) << what << ": " << n
                        << " pixels differ; one has its reference logit " << worst
                        << " from the threshold (a real difference, not a rounding tie)";
  return n;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) {
    ADD_FAILURE() << "shape mismatch " << a.sizes() << " vs " << b.sizes();
    return 1e30;
  }
  if (a.numel() == 0) return 0.0;
  return (a.to(torch::kDouble).cpu() - b.to(torch::kDouble).cpu()).abs().max().item<double>();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "cannot open " << path;
  nlohmann::json j;
  if (f) f >> j;
  return j;
}

torch::Tensor json_to_tensor(const nlohmann::json& j, torch::ScalarType dtype) {
  std::vector<int64_t> shape;
  const nlohmann::json* cur = &j;
  while (cur->is_array()) {
    shape.push_back(static_cast<int64_t>(cur->size()));
    if (cur->empty()) break;
    cur = &(*cur)[0];
  }
  std::vector<double> flat;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& x) {
    if (x.is_array()) {
      for (const auto& e : x) walk(e);
    } else {
      flat.push_back(x.get<double>());
    }
  };
  walk(j);
  return torch::tensor(flat, torch::kDouble).reshape(shape).to(dtype);
}

}  // namespace sam3::test
