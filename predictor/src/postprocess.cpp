// Port of SAM2Transforms.postprocess_masks (sam3/model/utils/sam1_utils.py).
#include "postprocess.h"

#include <opencv2/imgproc.hpp>

namespace sam3::detail {

namespace {

// Marks pixels of `binary` (h x w uint8 0/1) whose 8-connected component has
// area <= max_area.
void small_components(const cv::Mat& binary, double max_area, uint8_t* out) {
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(binary, labels, stats, centroids, 8, CV_32S);
  std::vector<uint8_t> small(static_cast<size_t>(n), 0);
  for (int l = 1; l < n; ++l) {
    small[l] = stats.at<int>(l, cv::CC_STAT_AREA) <= max_area ? 1 : 0;
  }
  const int total = binary.rows * binary.cols;
  const int* lab = labels.ptr<int>();
  for (int i = 0; i < total; ++i) out[i] = small[lab[i]];
}

}  // namespace

torch::Tensor fill_holes_and_sprinkles(const torch::Tensor& masks_in, double thr,
                                       double max_hole_area, double max_sprinkle_area,
                                       torch::Tensor* fill_map) {
  auto masks = masks_in.to(torch::kFloat);
  if (fill_map) *fill_map = torch::zeros(masks.sizes(), torch::kInt8);
  if (max_hole_area <= 0 && max_sprinkle_area <= 0) return masks;
  const int64_t h = masks.size(-2), w = masks.size(-1);
  const int64_t planes = masks.numel() / (h * w);
  auto cpu = masks.to(torch::kCPU).contiguous();
  auto below = (cpu <= thr).to(torch::kUInt8).contiguous();
  auto above = (cpu > thr).to(torch::kUInt8).contiguous();
  auto hole = torch::zeros(masks.sizes(), torch::kUInt8);
  auto sprinkle = torch::zeros(masks.sizes(), torch::kUInt8);
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t off = p * h * w;
    if (max_hole_area > 0) {
      cv::Mat bin(static_cast<int>(h), static_cast<int>(w), CV_8U, below.data_ptr<uint8_t>() + off);
      small_components(bin, max_hole_area, hole.data_ptr<uint8_t>() + off);
    }
    if (max_sprinkle_area > 0) {
      cv::Mat bin(static_cast<int>(h), static_cast<int>(w), CV_8U, above.data_ptr<uint8_t>() + off);
      small_components(bin, max_sprinkle_area, sprinkle.data_ptr<uint8_t>() + off);
    }
  }
  auto is_hole = hole.to(torch::kBool);
  auto is_sprinkle = sprinkle.to(torch::kBool);
  if (fill_map) {
    *fill_map = is_hole.to(torch::kInt8) - is_sprinkle.to(torch::kInt8);
  }
  auto dev = masks.device();
  auto out = masks.masked_fill(is_hole.to(dev), thr + 10.0);
  out = out.masked_fill(is_sprinkle.to(dev), thr - 10.0);
  return out;
}

torch::Tensor upsample_masks(const torch::Tensor& masks, std::pair<int64_t, int64_t> orig_hw) {
  return torch::nn::functional::interpolate(
      masks, torch::nn::functional::InterpolateFuncOptions()
                 .size(std::vector<int64_t>{orig_hw.first, orig_hw.second})
                 .mode(torch::kBilinear)
                 .align_corners(false));
}

}  // namespace sam3::detail
