// Port of SAM2Transforms.postprocess_masks: hole filling / sprinkle removal on
// the low-resolution logits (8-connected components, OpenCV), then bilinear
// up-sampling to the original size.
#pragma once

#include <torch/torch.h>

#include <utility>

namespace sam3::detail {

// masks: B x M x h x w float32 logits (any device). Components of
// (m <= thr) with area <= max_hole_area are set to thr + 10; components of
// (m > thr) with area <= max_sprinkle_area to thr - 10; both analyses use the
// input values. fill_map (optional out): int8, +1 filled, -1 removed, 0 kept.
torch::Tensor fill_holes_and_sprinkles(const torch::Tensor& masks, double mask_threshold,
                                       double max_hole_area, double max_sprinkle_area,
                                       torch::Tensor* fill_map = nullptr);

// Bilinear (align_corners=False, no antialias) to orig_hw.
torch::Tensor upsample_masks(const torch::Tensor& masks, std::pair<int64_t, int64_t> orig_hw);

}  // namespace sam3::detail
