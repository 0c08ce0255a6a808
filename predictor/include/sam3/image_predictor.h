// gst-sam3 predictor: SAM 3's interactive image predictor in C++ / LibTorch.
//
// A native port of SAM3InteractiveImagePredictor (facebookresearch/sam3,
// sam3/model/sam1_task_predictor.py): point / box / mask prompts on one image,
// image embedding computed once by set_image(), any number of cheap predict()
// calls after it. Numerically equal to the official predictor (see docs/).
//
// Basic usage
//
//   #include <sam3/sam3.h>
//
//   auto model = sam3::Model::load("sam3.pt");              // shared, immutable
//   sam3::InteractiveImagePredictor predictor(model);       // the model's defaults:
//                                                           // mask_threshold 0, max_hole_area
//                                                           // 256 for sam3.pt
//   cv::Mat rgb = ...;                                      // H x W, CV_8UC3, RGB
//   predictor.set_image(rgb);                               // runs the encoder
//
//   sam3::PredictArgs args;
//   args.point_coords = torch::tensor({{500.f, 375.f}});    // N x 2, (x, y) pixels
//   args.point_labels = torch::tensor({1});                 // 1 fg, 0 bg
//   args.multimask_output = true;
//   sam3::Prediction p = predictor.predict(args);
//   // p.masks           3 x H x W float32 0/1   (C x H x W; B x C x H x W for B objects)
//   // p.iou_predictions 3                       (C;   B x C)
//   // p.low_res_masks   3 x 4G x 4G logits      (C x 4G x 4G; clamped to +-32)
//
//   args = {};                                              // a box, one mask
//   args.box = torch::tensor({425.f, 600.f, 700.f, 875.f});
//   args.multimask_output = false;
//   p = predictor.predict(args);
//
// Batch mode: set_image_batch({img0, img1}) then predict_batch({args0, args1}).
//
// Errors: InvalidArgument (bad image or prompt, with what is wrong),
// NotReadyError (predict before set_image, predict_batch outside batch mode),
// DeviceError; all derive from sam3::Error.
//
// Thread-safety: a predictor holds one image's state and is NOT safe for
// concurrent use; use one predictor per thread. Predictors may share one
// Model (immutable). Each call enters c10::InferenceMode itself.
#pragma once

#include <torch/torch.h>

#include <opencv2/core.hpp>

#include <memory>
#include <utility>
#include <vector>

#include "sam3/errors.h"
#include "sam3/model.h"

namespace sam3 {

// The keyword arguments of the official predict(). Undefined tensors mean None.
// Tensors may be of any floating/integer dtype on any device; they are read as
// float32 (coords, box, mask) / int64 (labels).
struct PredictArgs {
  torch::Tensor point_coords;  // N x 2 or B x N x 2, (x, y)
  torch::Tensor point_labels;  // N or B x N: 1 fg, 0 bg (2, 3 box corners, -1 pad)
  torch::Tensor box;           // 4 or B x 4, x0 y0 x1 y1
  torch::Tensor mask_input;    // 1 x 4G x 4G or B x 1 x 4G x 4G low-res logits
  bool multimask_output = true;
  bool return_logits = false;
  // true: coordinates in original-image pixels; false: already in [0, 1].
  bool normalize_coords = true;
};

// predict()'s three return values, on the CPU, shaped as the Python ones:
// single object (C, H, W), (C), (C, 4G, 4G); B > 1: (B, C, H, W), (B, C),
// (B, C, 4G, 4G). C = 3 with multimask_output, else 1.
struct Prediction {
  torch::Tensor masks;            // float32 0/1, or float32 logits (return_logits)
  torch::Tensor iou_predictions;  // float32
  torch::Tensor low_res_masks;    // float32 logits, clamped to [-32, 32]
};

// Per-image encoder output (the official `_features`), on the model's device.
// Byte order of a packed 8-bit image given to set_image(ImageView).
enum class PixelFormat { kRGB, kBGR, kRGBA, kBGRA, kRGBX, kBGRX };

// A borrowed packed 8-bit image: `height` rows of width * channels bytes,
// `stride` bytes apart (channels = 3 for kRGB/kBGR, else 4; the 4th byte is
// ignored). Lets video frames in their own layout be encoded without a
// separate RGB conversion (the channel reorder happens in the one copy the
// predictor makes anyway).
struct ImageView {
  const uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  size_t stride = 0;
  PixelFormat format = PixelFormat::kRGB;
};

struct ImageFeatures {
  torch::Tensor image_embed;                 // N x d x G x G (level 2 + no_mem_embed)
  std::vector<torch::Tensor> high_res_feats; // N x d/8 x 4G x 4G, N x d/4 x 2G x 2G (not SAM 1)
  // SAM 1 only: (h', w') of each image after ResizeLongestSide (before padding)
  std::vector<std::pair<int64_t, int64_t>> input_sizes;
};

class InteractiveImagePredictor {
 public:
  // Post-processing settings from the model's config (ModelConfig::predictor),
  // i.e. the official predictor's defaults for its family: SAM 3
  // mask_threshold 0, max_hole_area 256, max_sprinkle_area 0; SAM 2.1 0 / 0 / 0
  // (SAM2ImagePredictor); SAM 1 none; a file's "config" metadata may set its
  // own (the bundled model: 0 / 0 / 0). Areas are in low-res mask pixels
  // (4G x 4G). Throws InvalidArgument for a null model.
  explicit InteractiveImagePredictor(std::shared_ptr<const Model> model);
  // Explicit settings; InvalidArgument also for a non-finite threshold and
  // NaN / negative areas.
  InteractiveImagePredictor(std::shared_ptr<const Model> model, double mask_threshold,
                            double max_hole_area, double max_sprinkle_area);

  // One RGB image, H x W x 3 uint8 (CV_8UC3, any row stride). Computes and
  // stores the image embedding. InvalidArgument for empty / wrong type.
  void set_image(const cv::Mat& rgb);
  // Same from a pointer: rows of width*3 bytes RGB, `stride` bytes apart.
  void set_image(const uint8_t* rgb, int width, int height, size_t stride);
  // Several images, one encoder call; switches to batch mode.
  void set_image_batch(const std::vector<cv::Mat>& rgb_images);
  // Same from borrowed frames in any PixelFormat (InvalidArgument for null
  // data, non-positive sizes or a stride shorter than a row).
  void set_image(const ImageView& image);
  void set_image_batch(const std::vector<ImageView>& images);

  // Prompts on the single image. NotReadyError before set_image; in batch mode
  // use predict_batch.
  Prediction predict(const PredictArgs& args = {}) const;
  // One PredictArgs per image of the batch (NotReadyError outside batch mode).
  std::vector<Prediction> predict_batch(const std::vector<PredictArgs>& args) const;
  // Extension (not in the official API): prompts on image `image_index` of
  // the current image(s), in single or batch mode; predict_image(0, a) after
  // set_image equals predict(a), and predict_image(i, a) after set_image_batch
  // equals predict_batch(...)[i]. NotReadyError without image, InvalidArgument
  // for an index out of range. Lets callers (the GStreamer element) prompt
  // some images of a batch without prompting all of them.
  Prediction predict_image(size_t image_index, const PredictArgs& args) const;

  // 1 x d x G x G (N x d x G x G in batch mode). NotReadyError without image.
  torch::Tensor get_image_embedding() const;
  // Forgets the image(s).
  void reset_predictor();

  bool is_image_set() const { return is_image_set_; }
  bool is_batch() const { return is_batch_; }
  // (H, W) of image i as given to set_image*.
  std::pair<int64_t, int64_t> original_size(size_t i = 0) const;
  const ImageFeatures& features() const;
  const Model& model() const { return *model_; }

  // Set by the constructor; may be changed between calls (checked at each use).
  double mask_threshold = 0.0;
  double max_hole_area = 256.0;
  double max_sprinkle_area = 0.0;

 private:
  Prediction predict_one(const PredictArgs& args, size_t image_index) const;
  void set_images_tensor(const std::vector<torch::Tensor>& hwc_uint8);

  std::shared_ptr<const Model> model_;
  ImageFeatures features_;
  std::vector<std::pair<int64_t, int64_t>> orig_hw_;
  bool is_image_set_ = false;
  bool is_batch_ = false;
};

}  // namespace sam3
