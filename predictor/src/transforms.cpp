// Port of SAM2Transforms and SAM3InteractiveImagePredictor._prep_prompts/_predict
// (prompt side).
#include "transforms.h"

#include <string>

#include "sam3/errors.h"

namespace sam3::detail {

namespace {

std::string dims(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

void check_finite(const torch::Tensor& t, const char* name) {
  if (t.numel() > 0 && !torch::isfinite(t).all().item<bool>()) {
    throw InvalidArgument(std::string(name) + " contains NaN or infinite values");
  }
}

torch::Tensor as_float(const torch::Tensor& t, const char* name, torch::Device device) {
  if (t.is_complex() || t.scalar_type() == torch::kBool) {
    throw InvalidArgument(std::string(name) + " must be a real numeric tensor");
  }
  auto f = t.to(device, torch::kFloat);
  check_finite(f, name);
  return f;
}

}  // namespace

torch::Tensor preprocess_image(const torch::Tensor& hwc_uint8, int64_t image_size) {
  return preprocess_image(hwc_uint8, image_size, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5});
}

torch::Tensor preprocess_image(const torch::Tensor& hwc_uint8, int64_t image_size,
                               const std::vector<double>& mean, const std::vector<double>& std) {
  // ToTensor: HWC uint8 -> CHW float / 255
  auto x = hwc_uint8.permute({2, 0, 1}).contiguous().to(torch::kFloat).div(255);
  // Resize((S, S)) with antialias=True (bilinear, align_corners=False)
  x = torch::nn::functional::interpolate(
      x.unsqueeze(0), torch::nn::functional::InterpolateFuncOptions()
                          .size(std::vector<int64_t>{image_size, image_size})
                          .mode(torch::kBilinear)
                          .align_corners(false)
                          .antialias(true));
  // Normalize(mean, std): SAM 3 0.5 / 0.5, SAM 2.1 ImageNet
  if (mean.size() == 3 && mean[0] == mean[1] && mean[1] == mean[2] && std.size() == 3 &&
      std[0] == std[1] && std[1] == std[2]) {
    return x.sub_(mean[0]).div_(std[0]);
  }
  auto opt = torch::TensorOptions().dtype(torch::kFloat).device(x.device());
  auto m = torch::tensor(std::vector<float>(mean.begin(), mean.end()), opt).view({1, -1, 1, 1});
  auto s = torch::tensor(std::vector<float>(std.begin(), std.end()), opt).view({1, -1, 1, 1});
  return x.sub_(m).div_(s);
}

torch::Tensor transform_coords(const torch::Tensor& coords, bool normalize,
                               std::pair<int64_t, int64_t> orig_hw, int64_t image_size) {
  auto c = coords;
  if (normalize) {
    c = coords.clone();
    c.select(-1, 0).div_(static_cast<double>(orig_hw.second));
    c.select(-1, 1).div_(static_cast<double>(orig_hw.first));
  }
  return c * static_cast<double>(image_size);
}

PreparedPrompt prepare_prompt(const PredictArgs& a, std::pair<int64_t, int64_t> orig_hw,
                              int64_t image_size, int64_t low_res_size, torch::Device device) {
  PreparedPrompt p;
  torch::Tensor coords, labels, box;
  if (a.point_coords.defined()) {
    if (!a.point_labels.defined()) {
      throw InvalidArgument("point_labels must be supplied if point_coords is supplied.");
    }
    coords = as_float(a.point_coords, "point_coords", device);
    if (!(coords.dim() == 2 || coords.dim() == 3) || coords.size(-1) != 2) {
      throw InvalidArgument("point_coords must be N x 2 or B x N x 2, got " + dims(coords));
    }
    if (a.point_labels.is_floating_point() || a.point_labels.is_complex()) {
      auto l = a.point_labels.to(torch::kDouble);
      if (!torch::equal(l, l.round())) {
        throw InvalidArgument("point_labels must be integers (1 foreground, 0 background)");
      }
    }
    labels = a.point_labels.to(device, torch::kInt);
    if (labels.dim() != coords.dim() - 1 || labels.sizes() != coords.sizes().slice(0, coords.dim() - 1)) {
      throw InvalidArgument("point_labels shape " + dims(labels) +
                            " does not match point_coords " + dims(coords) +
                            " (expected one label per point)");
    }
    if (labels.numel() > 0 && ((labels < -1).any().item<bool>() || (labels > 3).any().item<bool>())) {
      throw InvalidArgument(
          "point_labels must be 1 (foreground), 0 (background), 2/3 (box corners) or -1 (padding)");
    }
    coords = transform_coords(coords, a.normalize_coords, orig_hw, image_size);
    if (coords.dim() == 2) {
      coords = coords.unsqueeze(0);
      labels = labels.unsqueeze(0);
    }
  } else if (a.point_labels.defined()) {
    throw InvalidArgument("point_labels given without point_coords");
  }
  if (a.box.defined()) {
    box = as_float(a.box, "box", device);
    if (!((box.dim() == 1 && box.size(0) == 4) || (box.dim() == 2 && box.size(1) == 4))) {
      throw InvalidArgument("box must be 4 or B x 4 (x0, y0, x1, y1), got " + dims(box));
    }
    box = transform_coords(box.reshape({-1, 2, 2}), a.normalize_coords, orig_hw, image_size);
    auto box_labels = torch::tensor({2, 3}, torch::TensorOptions().dtype(torch::kInt).device(device))
                          .unsqueeze(0)
                          .repeat({box.size(0), 1});
    if (coords.defined()) {
      if (coords.size(0) != box.size(0)) {
        throw InvalidArgument("box has " + std::to_string(box.size(0)) + " object(s) but points have " +
                              std::to_string(coords.size(0)) +
                              " (with B boxes pass points as B x N x 2)");
      }
      coords = torch::cat({box, coords}, 1);
      labels = torch::cat({box_labels, labels}, 1);
    } else {
      coords = box;
      labels = box_labels;
    }
  }
  if (a.mask_input.defined()) {
    auto m = as_float(a.mask_input, "mask_input", device);
    if (m.dim() == 3) m = m.unsqueeze(0);
    if (m.dim() != 4 || m.size(1) != 1 || m.size(2) != low_res_size || m.size(3) != low_res_size) {
      throw InvalidArgument("mask_input must be 1 x " + std::to_string(low_res_size) + " x " +
                            std::to_string(low_res_size) + " or B x 1 x " +
                            std::to_string(low_res_size) + " x " + std::to_string(low_res_size) +
                            " low-res logits (the low_res_masks of a previous call), got " +
                            dims(a.mask_input));
    }
    p.mask_input = m;
  }
  p.coords = coords;
  p.labels = labels;
  if (coords.defined()) {
    p.num_objects = coords.size(0);
    if (p.num_objects == 0) throw InvalidArgument("prompt has zero objects");
  } else if (p.mask_input.defined()) {
    p.num_objects = p.mask_input.size(0);
    if (p.num_objects != 1) {
      throw InvalidArgument("a mask_input without points or boxes must be a single object (1 x 1 x H x W)");
    }
  }
  if (p.mask_input.defined() && p.mask_input.size(0) != p.num_objects) {
    throw InvalidArgument("mask_input has " + std::to_string(p.mask_input.size(0)) +
                          " object(s) but the points/boxes have " + std::to_string(p.num_objects));
  }
  p.batched_mode = coords.defined() && coords.size(0) > 1;
  return p;
}

}  // namespace sam3::detail
