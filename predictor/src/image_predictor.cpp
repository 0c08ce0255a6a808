// Port of SAM3InteractiveImagePredictor (sam3/model/sam1_task_predictor.py).
#include "sam3/image_predictor.h"

#include <cmath>

#include "postprocess.h"
#include "predictor_internal.h"

namespace sam3 {

namespace detail {

ImageFeatures encode_images(const ModelImpl& m, const std::vector<torch::Tensor>& images,
                            modeling::EncoderOutput* trace) {
  if (m.sam1) {
    // SamPredictor.set_image per image (ResizeLongestSide, pad, ViT), stacked
    ImageFeatures f;
    std::vector<torch::Tensor> embeds;
    for (const auto& img : images) {
      auto s1 = sam1::encode(*m.sam1, img);
      embeds.push_back(s1.image_embed);
      f.input_sizes.push_back(s1.input_size);
    }
    f.image_embed = torch::cat(embeds, 0);
    return f;
  }
  std::vector<torch::Tensor> inputs;
  inputs.reserve(images.size());
  for (const auto& img : images) {
    inputs.push_back(preprocess_image(img.to(m.device), m.config.image_size,
                                      m.config.pixel_mean(), m.config.pixel_std()));
  }
  auto x = torch::cat(inputs, 0).to(m.dtype);
  auto enc = m.encode(x, trace != nullptr);
  ImageFeatures f;
  f.image_embed = enc.image_embed;
  f.high_res_feats = enc.high_res_feats;
  if (trace) {
    enc.input = torch::cat(inputs, 0);
    *trace = std::move(enc);
  }
  return f;
}

Prediction predict_image(const ModelImpl& m, const ImageFeatures& features, size_t index,
                         std::pair<int64_t, int64_t> orig_hw, const PredictArgs& args,
                         const Thresholds& th, PredictTrace* trace) {
  if (m.sam1) {
    // SamPredictor.predict: no hole filling / sprinkle removal in SAM 1 (the
    // area settings do not apply); mask_threshold is honoured
    const auto i = static_cast<int64_t>(index);
    sam1::Sam1Features f{features.image_embed.slice(0, i, i + 1), orig_hw,
                         features.input_sizes.at(index)};
    PredictArgs a = args;
    a.return_logits = true;
    Prediction p = sam1::predict(*m.sam1, f, a);
    if (!args.return_logits) p.masks = (p.masks > th.mask_threshold).to(torch::kFloat);
    return p;
  }
  const auto& cfg = m.config;
  auto prompt = prepare_prompt(args, orig_hw, cfg.image_size, cfg.low_res_size(), m.device);
  auto pe = m.prompt_encoder;
  auto dec = m.mask_decoder;

  auto [sparse, dense] = pe->forward(prompt.coords, prompt.labels, prompt.mask_input);
  const auto i = static_cast<int64_t>(index);
  std::vector<torch::Tensor> high_res;
  for (const auto& level : features.high_res_feats) high_res.push_back(level.slice(0, i, i + 1));
  auto out = dec->forward(features.image_embed.slice(0, i, i + 1), m.dense_pe, sparse, dense,
                          args.multimask_output, prompt.batched_mode, high_res);

  auto low_res = out.masks.to(torch::kFloat);
  torch::Tensor fill_map;
  auto filled = detail::fill_holes_and_sprinkles(low_res, th.mask_threshold, th.max_hole_area,
                                                 th.max_sprinkle_area, trace ? &fill_map : nullptr);
  auto masks = detail::upsample_masks(filled, orig_hw);
  if (!args.return_logits) masks = (masks > th.mask_threshold).to(torch::kFloat);

  if (trace) {
    trace->sparse = sparse;
    trace->dense = dense;
    trace->all_masks = out.all_masks;
    trace->all_iou = out.all_iou;
    trace->selected_logits = low_res;
    trace->fill_map = fill_map;
  }
  Prediction p;
  // squeeze(0): a single object drops the object axis
  auto finish = [](torch::Tensor t) {
    t = t.to(torch::kCPU, torch::kFloat);
    return t.size(0) == 1 ? t.squeeze(0) : t;
  };
  p.masks = finish(masks);
  p.iou_predictions = finish(out.iou);
  p.low_res_masks = finish(torch::clamp(low_res, -32.0, 32.0));
  return p;
}

}  // namespace detail

namespace {

torch::Tensor mat_to_tensor(const cv::Mat& rgb) {
  if (rgb.empty()) throw InvalidArgument("set_image: the image is empty");
  if (rgb.depth() != CV_8U) {
    throw InvalidArgument("set_image: expected an 8-bit image (CV_8UC3 RGB), got depth " +
                          std::to_string(rgb.depth()));
  }
  if (rgb.channels() != 3) {
    throw InvalidArgument("set_image: expected 3 channels (RGB), got " +
                          std::to_string(rgb.channels()));
  }
  if (rgb.dims != 2) throw InvalidArgument("set_image: expected a 2-D image");
  // Strided view over the Mat's rows, copied into a contiguous tensor.
  return torch::from_blob(const_cast<uint8_t*>(rgb.ptr<uint8_t>()), {rgb.rows, rgb.cols, 3},
                          {static_cast<int64_t>(rgb.step[0]), 3, 1}, torch::kUInt8)
      .contiguous();
}

torch::Tensor view_to_tensor(const ImageView& v) {
  const bool four = v.format != PixelFormat::kRGB && v.format != PixelFormat::kBGR;
  const int64_t channels = four ? 4 : 3;
  if (!v.data || v.width <= 0 || v.height <= 0) {
    throw InvalidArgument("set_image: null data or non-positive size " + std::to_string(v.width) +
                          "x" + std::to_string(v.height));
  }
  if (v.stride < static_cast<size_t>(v.width) * channels) {
    throw InvalidArgument("set_image: stride " + std::to_string(v.stride) +
                          " is shorter than a row of " + std::to_string(v.width) + " pixels x " +
                          std::to_string(channels) + " bytes");
  }
  auto t = torch::from_blob(const_cast<uint8_t*>(v.data), {v.height, v.width, channels},
                            {static_cast<int64_t>(v.stride), channels, 1}, torch::kUInt8);
  // tight RGB rows: the tensor is a view; preprocessing's permute().contiguous()
  // is the one copy (the view only lives for the set_image call)
  if (v.format == PixelFormat::kRGB && v.stride == static_cast<size_t>(v.width) * 3) return t;
  const bool bgr = v.format == PixelFormat::kBGR || v.format == PixelFormat::kBGRA ||
                   v.format == PixelFormat::kBGRX;
  // one copy: index_select writes a new contiguous H x W x 3 tensor
  return t.index_select(2, bgr ? torch::tensor({2, 1, 0}) : torch::tensor({0, 1, 2}));
}

// The public threshold fields may be changed between calls: checked at each use.
void check_thresholds(double mask_threshold, double max_hole_area, double max_sprinkle_area) {
  if (!std::isfinite(mask_threshold)) throw InvalidArgument("mask_threshold must be finite");
  if (!(max_hole_area >= 0) || !(max_sprinkle_area >= 0)) {
    throw InvalidArgument("max_hole_area and max_sprinkle_area must be >= 0");
  }
}

// The post-processing defaults of a model (its config), for the one-argument
// constructor; InvalidArgument for a null model.
const PredictorDefaults& defaults_of(const std::shared_ptr<const Model>& model) {
  if (!model) throw InvalidArgument("InteractiveImagePredictor: model is null");
  return model->config().predictor;
}

}  // namespace

InteractiveImagePredictor::InteractiveImagePredictor(std::shared_ptr<const Model> model)
    : InteractiveImagePredictor(model, defaults_of(model).mask_threshold,
                                defaults_of(model).max_hole_area,
                                defaults_of(model).max_sprinkle_area) {}

InteractiveImagePredictor::InteractiveImagePredictor(std::shared_ptr<const Model> model,
                                                     double mask_threshold_, double max_hole_area_,
                                                     double max_sprinkle_area_)
    : mask_threshold(mask_threshold_),
      max_hole_area(max_hole_area_),
      max_sprinkle_area(max_sprinkle_area_),
      model_(std::move(model)) {
  if (!model_) throw InvalidArgument("InteractiveImagePredictor: model is null");
  check_thresholds(mask_threshold, max_hole_area, max_sprinkle_area);
}

void InteractiveImagePredictor::set_images_tensor(const std::vector<torch::Tensor>& images) {
  c10::InferenceMode guard;
  reset_predictor();
  features_ = detail::encode_images(model_->impl(), images);
  for (const auto& img : images) orig_hw_.emplace_back(img.size(0), img.size(1));
  is_image_set_ = true;
}

void InteractiveImagePredictor::set_image(const cv::Mat& rgb) {
  set_images_tensor({mat_to_tensor(rgb)});
  is_batch_ = false;
}

void InteractiveImagePredictor::set_image(const uint8_t* rgb, int width, int height,
                                          size_t stride) {
  if (!rgb || width <= 0 || height <= 0) {
    throw InvalidArgument("set_image: null data or non-positive size " + std::to_string(width) +
                          "x" + std::to_string(height));
  }
  if (stride < static_cast<size_t>(width) * 3) {
    throw InvalidArgument("set_image: stride " + std::to_string(stride) +
                          " is smaller than width*3 = " + std::to_string(width * 3));
  }
  cv::Mat view(height, width, CV_8UC3, const_cast<uint8_t*>(rgb), stride);
  set_image(view);
}

void InteractiveImagePredictor::set_image(const ImageView& image) {
  set_images_tensor({view_to_tensor(image)});
  is_batch_ = false;
}

void InteractiveImagePredictor::set_image_batch(const std::vector<ImageView>& images) {
  if (images.empty()) throw InvalidArgument("set_image_batch: the image list is empty");
  std::vector<torch::Tensor> tensors;
  for (size_t i = 0; i < images.size(); ++i) {
    try {
      tensors.push_back(view_to_tensor(images[i]));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument("set_image_batch: image " + std::to_string(i) + ": " + e.what());
    }
  }
  set_images_tensor(tensors);
  is_batch_ = true;
}

void InteractiveImagePredictor::set_image_batch(const std::vector<cv::Mat>& rgb_images) {
  if (rgb_images.empty()) throw InvalidArgument("set_image_batch: the image list is empty");
  std::vector<torch::Tensor> images;
  for (size_t i = 0; i < rgb_images.size(); ++i) {
    try {
      images.push_back(mat_to_tensor(rgb_images[i]));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument("set_image_batch: image " + std::to_string(i) + ": " + e.what());
    }
  }
  set_images_tensor(images);
  is_batch_ = true;
}

Prediction InteractiveImagePredictor::predict(const PredictArgs& args) const {
  if (!is_image_set_) {
    throw NotReadyError("An image must be set with .set_image(...) before mask prediction.");
  }
  if (is_batch_) {
    throw NotReadyError("predict() after set_image_batch(): use predict_batch()");
  }
  return predict_one(args, 0);
}

std::vector<Prediction> InteractiveImagePredictor::predict_batch(
    const std::vector<PredictArgs>& args) const {
  if (!is_batch_) {
    throw NotReadyError("This function should only be used when in batched mode");
  }
  if (!is_image_set_) {
    throw NotReadyError("An image must be set with .set_image_batch(...) before mask prediction.");
  }
  if (args.size() != orig_hw_.size()) {
    throw InvalidArgument("predict_batch: got prompts for " + std::to_string(args.size()) +
                          " image(s), the batch has " + std::to_string(orig_hw_.size()));
  }
  std::vector<Prediction> out;
  for (size_t i = 0; i < args.size(); ++i) out.push_back(predict_one(args[i], i));
  return out;
}

Prediction InteractiveImagePredictor::predict_image(size_t image_index,
                                                   const PredictArgs& args) const {
  if (!is_image_set_)
    throw NotReadyError("predict_image(): no image set (call set_image or set_image_batch)");
  if (image_index >= orig_hw_.size())
    throw InvalidArgument("predict_image(): image index " + std::to_string(image_index) +
                          " but only " + std::to_string(orig_hw_.size()) + " image(s) are set");
  return predict_one(args, image_index);
}

Prediction InteractiveImagePredictor::predict_one(const PredictArgs& args, size_t index) const {
  check_thresholds(mask_threshold, max_hole_area, max_sprinkle_area);
  c10::InferenceMode guard;
  detail::Thresholds th{mask_threshold, max_hole_area, max_sprinkle_area};
  return detail::predict_image(model_->impl(), features_, index, orig_hw_.at(index), args, th);
}

torch::Tensor InteractiveImagePredictor::get_image_embedding() const {
  if (!is_image_set_) {
    throw NotReadyError("An image must be set with .set_image(...) to generate an embedding.");
  }
  return features_.image_embed;
}

void InteractiveImagePredictor::reset_predictor() {
  features_ = ImageFeatures{};
  orig_hw_.clear();
  is_image_set_ = false;
  is_batch_ = false;
}

std::pair<int64_t, int64_t> InteractiveImagePredictor::original_size(size_t i) const {
  if (i >= orig_hw_.size()) throw NotReadyError("original_size: no image " + std::to_string(i));
  return orig_hw_[i];
}

const ImageFeatures& InteractiveImagePredictor::features() const {
  if (!is_image_set_) throw NotReadyError("features(): no image set");
  return features_;
}

}  // namespace sam3
