// Port of segment_anything/predictor.py (SamPredictor), utils/transforms.py
// (ResizeLongestSide) and Sam.preprocess / Sam.postprocess_masks.
#include "sam1/sam1_predictor.h"

#include <c10/core/InferenceMode.h>

#include <cmath>
#include <sstream>

#include "sam3/errors.h"

namespace sam3::sam1 {

namespace {

bool starts_with(const std::string& s, const std::string& p) {
  return s.compare(0, p.size(), p) == 0;
}

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

void copy_strict(Sam1Model& net, const StateDict& sd, const std::string& source) {
  std::vector<std::string> problems;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
  std::map<std::string, torch::Tensor> dst_map;
  for (const auto& p : net.named_parameters(true)) dst_map[p.key()] = p.value();
  for (const auto& b : net.named_buffers(true)) dst_map[b.key()] = b.value();
  for (const auto& [key, dst] : dst_map) {
    auto it = sd.find(key);
    if (it == sd.end()) {
      problems.push_back("missing key '" + key + "'");
      continue;
    }
    const auto& src = it->second;
    if (src.sizes() != dst.sizes()) {
      problems.push_back("key '" + key + "': expected shape " + shape_str(dst.sizes()) + ", got " +
                         shape_str(src.sizes()));
      continue;
    }
    if (!src.is_floating_point()) {
      problems.push_back("key '" + key + "': expected a floating-point tensor, got " +
                         std::string(c10::toString(src.scalar_type())));
      continue;
    }
    copies.emplace_back(dst, src);
  }
  for (const auto& [key, t] : sd) {
    (void)t;
    const bool ours = starts_with(key, "image_encoder.") || starts_with(key, "prompt_encoder.") ||
                      starts_with(key, "mask_decoder.");
    if (ours && !dst_map.count(key)) problems.push_back("unexpected key '" + key + "'");
  }
  if (!problems.empty()) {
    throw CheckpointError(source + ": the checkpoint does not fit the SAM 1 (" +
                              net.config().name + ") model",
                          problems);
  }
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src.to(dst.scalar_type()));
}

// ---- PIL bilinear resample (libImaging/Resample.c), 8 bpc ----
constexpr int kPrecisionBits = 32 - 8 - 2;

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // xmin, count per output
  std::vector<int32_t> kk;
};

Coeffs precompute_coeffs(int in_size, int out_size) {
  Coeffs c;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 1.0 * filterscale;  // bilinear support 1
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  std::vector<double> pre(static_cast<size_t>(out_size) * c.ksize, 0.0);
  c.bounds.resize(static_cast<size_t>(out_size) * 2);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    double ww = 0.0;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double* k = &pre[static_cast<size_t>(xx) * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      double t = (x + xmin - center + 0.5) * ss;
      if (t < 0) t = -t;
      const double w = t < 1.0 ? 1.0 - t : 0.0;
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x)
      if (ww != 0.0) k[x] /= ww;
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
  }
  c.kk.resize(pre.size());
  for (size_t i = 0; i < pre.size(); ++i) {
    c.kk[i] = pre[i] < 0 ? static_cast<int32_t>(-0.5 + pre[i] * (1 << kPrecisionBits))
                         : static_cast<int32_t>(0.5 + pre[i] * (1 << kPrecisionBits));
  }
  return c;
}

inline uint8_t clip8(int64_t in) {
  if (in >= (static_cast<int64_t>(1) << kPrecisionBits << 8)) return 255;
  if (in <= 0) return 0;
  return static_cast<uint8_t>(in >> kPrecisionBits);
}

// src: h x w x ch (contiguous) -> h x out_w x ch
std::vector<uint8_t> resample_h(const uint8_t* src, int h, int w, int ch, int out_w) {
  auto c = precompute_coeffs(w, out_w);
  std::vector<uint8_t> dst(static_cast<size_t>(h) * out_w * ch);
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = src + static_cast<size_t>(y) * w * ch;
    for (int xx = 0; xx < out_w; ++xx) {
      const int xmin = c.bounds[xx * 2], n = c.bounds[xx * 2 + 1];
      const int32_t* k = &c.kk[static_cast<size_t>(xx) * c.ksize];
      for (int cc = 0; cc < ch; ++cc) {
        int64_t ss = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < n; ++x) ss += static_cast<int64_t>(row[(x + xmin) * ch + cc]) * k[x];
        dst[(static_cast<size_t>(y) * out_w + xx) * ch + cc] = clip8(ss);
      }
    }
  }
  return dst;
}

std::vector<uint8_t> resample_v(const uint8_t* src, int h, int w, int ch, int out_h) {
  auto c = precompute_coeffs(h, out_h);
  std::vector<uint8_t> dst(static_cast<size_t>(out_h) * w * ch);
  for (int yy = 0; yy < out_h; ++yy) {
    const int ymin = c.bounds[yy * 2], n = c.bounds[yy * 2 + 1];
    const int32_t* k = &c.kk[static_cast<size_t>(yy) * c.ksize];
    for (int xc = 0; xc < w * ch; ++xc) {
      int64_t ss = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < n; ++y)
        ss += static_cast<int64_t>(src[static_cast<size_t>(y + ymin) * w * ch + xc]) * k[y];
      dst[static_cast<size_t>(yy) * w * ch + xc] = clip8(ss);
    }
  }
  return dst;
}

torch::Tensor to_float_cpu(const torch::Tensor& t) { return t.detach().to(torch::kCPU, torch::kFloat); }

void check_finite(const torch::Tensor& t, const char* name) {
  if (!torch::isfinite(t).all().item<bool>())
    throw InvalidArgument(std::string("SAM 1 predict: ") + name + " contains NaN or Inf");
}

}  // namespace

std::shared_ptr<Sam1Model> load_sam1(const StateDict& sd, const Sam1Config& cfg,
                                     torch::Device device, const std::string& source) {
  auto net = std::make_shared<Sam1Model>(cfg);
  copy_strict(*net, sd, source);
  net->eval();
  net->to(device);
  return net;
}

std::shared_ptr<Sam1Model> load_sam1(const StateDict& sd, torch::Device device) {
  return load_sam1(sd, Sam1Config::from_state_dict(sd), device);
}

std::shared_ptr<Sam1Model> load_sam1_file(const std::string& path, torch::Device device,
                                          const Sam1Config* cfg) {
  auto sd = load_state_dict(path);
  Sam1Config c = cfg ? *cfg : Sam1Config::from_state_dict(sd);
  return load_sam1(sd, c, device, path);
}

std::pair<int64_t, int64_t> preprocess_shape(int64_t h, int64_t w, int64_t target) {
  const double scale = static_cast<double>(target) / static_cast<double>(std::max(h, w));
  const double nh = static_cast<double>(h) * scale, nw = static_cast<double>(w) * scale;
  return {static_cast<int64_t>(nh + 0.5), static_cast<int64_t>(nw + 0.5)};
}

torch::Tensor pil_resize_bilinear(const torch::Tensor& hwc_in, int64_t out_h, int64_t out_w) {
  if (hwc_in.dim() != 3 || hwc_in.scalar_type() != torch::kByte)
    throw InvalidArgument("pil_resize_bilinear: expected an H x W x C uint8 tensor");
  auto src = hwc_in.to(torch::kCPU).contiguous();
  const int h = static_cast<int>(src.size(0)), w = static_cast<int>(src.size(1)),
            ch = static_cast<int>(src.size(2));
  std::vector<uint8_t> buf(src.data_ptr<uint8_t>(), src.data_ptr<uint8_t>() + src.numel());
  int cw = w, chh = h;
  if (out_w != w) {  // PIL skips a pass whose size does not change
    buf = resample_h(buf.data(), chh, cw, ch, static_cast<int>(out_w));
    cw = static_cast<int>(out_w);
  }
  if (out_h != h) {
    buf = resample_v(buf.data(), chh, cw, ch, static_cast<int>(out_h));
    chh = static_cast<int>(out_h);
  }
  return torch::from_blob(buf.data(), {chh, cw, ch}, torch::kByte).clone();
}

Sam1Features encode(Sam1Model& model, const torch::Tensor& hwc_uint8, bool bgr,
                    Sam1EncodeTrace* trace) {
  if (!hwc_uint8.defined() || hwc_uint8.dim() != 3 || hwc_uint8.size(2) != 3 ||
      hwc_uint8.scalar_type() != torch::kByte || hwc_uint8.size(0) <= 0 || hwc_uint8.size(1) <= 0)
    throw InvalidArgument("SAM 1 set_image: expected a non-empty H x W x 3 uint8 image");
  c10::InferenceMode guard;
  const auto& cfg = model.config();
  auto img = hwc_uint8.to(torch::kCPU);
  if (bgr) img = img.flip({2});
  const int64_t H = img.size(0), W = img.size(1), R = cfg.img_size;
  auto [nh, nw] = preprocess_shape(H, W, R);
  auto resized = pil_resize_bilinear(img, nh, nw);
  auto dev = model.image_encoder->patch_embed->proj->weight.device();
  auto x = resized.to(dev).permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat);
  auto fo = torch::TensorOptions().dtype(torch::kFloat).device(dev);
  auto mean = torch::tensor(std::vector<float>(cfg.pixel_mean.begin(), cfg.pixel_mean.end()), fo)
                  .view({1, 3, 1, 1});
  auto stdv = torch::tensor(std::vector<float>(cfg.pixel_std.begin(), cfg.pixel_std.end()), fo)
                  .view({1, 3, 1, 1});
  x = (x - mean) / stdv;
  x = torch::constant_pad_nd(x, {0, R - nw, 0, R - nh}, 0);
  std::vector<torch::Tensor> inter;
  auto emb = model.image_encoder->forward(x, trace ? &inter : nullptr);
  if (trace) {
    trace->resized_uint8 = resized;
    trace->input = x;
    trace->encoder = inter;
  }
  Sam1Features f;
  f.image_embed = emb;
  f.original_size = {H, W};
  f.input_size = {nh, nw};
  return f;
}

torch::Tensor postprocess_masks(const torch::Tensor& low_res, int64_t img_size,
                                std::pair<int64_t, int64_t> input_size,
                                std::pair<int64_t, int64_t> original_size) {
  namespace F = torch::nn::functional;
  auto m = F::interpolate(low_res.to(torch::kFloat),
                          F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{img_size, img_size})
                              .mode(torch::kBilinear)
                              .align_corners(false));
  m = m.slice(2, 0, input_size.first).slice(3, 0, input_size.second);
  return F::interpolate(m, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{original_size.first, original_size.second})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

Prediction predict(Sam1Model& model, const Sam1Features& features, const PredictArgs& args,
                   Sam1PredictTrace* trace) {
  if (!features.image_embed.defined())
    throw NotReadyError("SAM 1 predict: an image must be set with set_image first");
  if (!args.normalize_coords)
    throw InvalidArgument("SAM 1 predict: normalize_coords=false is not supported (SAM 1 takes pixel coordinates)");
  c10::InferenceMode guard;
  const auto& cfg = model.config();
  const auto [H, W] = features.original_size;
  const auto [nh, nw] = features.input_size;
  const int64_t lr = cfg.low_res_size();
  auto dev = features.image_embed.device();

  bool batched = false;
  int64_t batch = -1;
  auto set_batch = [&](int64_t b, const char* what) {
    if (batch >= 0 && batch != b)
      throw InvalidArgument(std::string("SAM 1 predict: ") + what + " has batch size " +
                            std::to_string(b) + ", other prompts " + std::to_string(batch));
    batch = b;
  };

  torch::Tensor coords, labels, boxes, mask;
  if (args.point_coords.defined()) {
    if (!args.point_labels.defined())
      throw InvalidArgument("SAM 1 predict: point_labels must be supplied with point_coords");
    auto pc = args.point_coords.to(torch::kCPU);
    auto pl = args.point_labels.to(torch::kCPU);
    if (pc.dim() == 2 && pc.size(1) == 2) {
      pc = pc.unsqueeze(0);
      if (pl.dim() != 1) throw InvalidArgument("SAM 1 predict: point_labels must be N for N x 2 point_coords");
      pl = pl.unsqueeze(0);
      // numpy route: float64 transform, then float32
      auto d = pc.to(torch::kDouble).clone();
      d.select(-1, 0).mul_(static_cast<double>(nw) / static_cast<double>(W));
      d.select(-1, 1).mul_(static_cast<double>(nh) / static_cast<double>(H));
      coords = d.to(torch::kFloat);
    } else if (pc.dim() == 3 && pc.size(2) == 2) {
      batched = true;
      if (pl.dim() != 2) throw InvalidArgument("SAM 1 predict: point_labels must be B x N for B x N x 2 point_coords");
      // predict_torch route (apply_coords_torch): float32
      auto f = pc.to(torch::kFloat).clone();
      f.select(-1, 0).mul_(static_cast<double>(nw) / static_cast<double>(W));
      f.select(-1, 1).mul_(static_cast<double>(nh) / static_cast<double>(H));
      coords = f;
    } else {
      throw InvalidArgument("SAM 1 predict: point_coords must be N x 2 or B x N x 2, got " +
                            shape_str(pc.sizes()));
    }
    if (pl.sizes() != coords.sizes().slice(0, 2))
      throw InvalidArgument("SAM 1 predict: point_labels shape " + shape_str(pl.sizes()) +
                            " does not match point_coords " + shape_str(coords.sizes()));
    if (pl.is_floating_point() && !torch::equal(pl, pl.round()))
      throw InvalidArgument("SAM 1 predict: point_labels must be integers");
    check_finite(coords, "point_coords");
    labels = pl.to(torch::kInt);
    set_batch(coords.size(0), "point_coords");
  } else if (args.point_labels.defined()) {
    throw InvalidArgument("SAM 1 predict: point_labels given without point_coords");
  }
  if (args.box.defined()) {
    auto bx = args.box.to(torch::kCPU);
    if (bx.dim() == 1 && bx.size(0) == 4) {
      auto d = bx.to(torch::kDouble).reshape({-1, 2, 2}).clone();
      d.select(-1, 0).mul_(static_cast<double>(nw) / static_cast<double>(W));
      d.select(-1, 1).mul_(static_cast<double>(nh) / static_cast<double>(H));
      boxes = d.reshape({1, 1, 4}).to(torch::kFloat);
    } else if (bx.dim() == 2 && bx.size(1) == 4) {
      batched = true;
      auto f = bx.to(torch::kFloat).reshape({-1, 2, 2}).clone();
      f.select(-1, 0).mul_(static_cast<double>(nw) / static_cast<double>(W));
      f.select(-1, 1).mul_(static_cast<double>(nh) / static_cast<double>(H));
      boxes = f.reshape({-1, 4});
    } else {
      throw InvalidArgument("SAM 1 predict: box must be 4 or B x 4, got " + shape_str(bx.sizes()));
    }
    check_finite(boxes, "box");
    set_batch(boxes.size(0), "box");
  }
  if (args.mask_input.defined()) {
    auto mi = args.mask_input.to(torch::kCPU, torch::kFloat);
    if (mi.dim() == 3 && mi.size(0) == 1) {
      mi = mi.unsqueeze(0);
    } else if (mi.dim() == 4 && mi.size(1) == 1) {
      batched = true;
    } else {
      throw InvalidArgument("SAM 1 predict: mask_input must be 1 x " + std::to_string(lr) + " x " +
                            std::to_string(lr) + " or B x 1 x " + std::to_string(lr) + " x " +
                            std::to_string(lr) + ", got " + shape_str(mi.sizes()));
    }
    if (mi.size(2) != lr || mi.size(3) != lr)
      throw InvalidArgument("SAM 1 predict: mask_input must be " + std::to_string(lr) + " x " +
                            std::to_string(lr) + " (4 x the embedding grid), got " +
                            shape_str(mi.sizes()));
    check_finite(mi, "mask_input");
    mask = mi;
    // one mask broadcasts over a prompt batch (as in predict_torch)
    if (mask.size(0) != 1) set_batch(mask.size(0), "mask_input");
  }

  auto& pe = model.prompt_encoder;
  auto dv = [&](const torch::Tensor& t) { return t.defined() ? t.to(dev) : t; };
  auto [sparse, dense] = pe->forward(dv(coords), dv(labels), dv(boxes), dv(mask));
  auto dense_pe = pe->get_dense_pe();
  auto dec = model.mask_decoder->forward(features.image_embed, dense_pe, sparse, dense,
                                         args.multimask_output);
  auto low_res = dec.masks;
  auto masks = postprocess_masks(low_res, cfg.img_size, features.input_size, features.original_size);
  if (!args.return_logits) masks = (masks > cfg.mask_threshold).to(torch::kFloat);

  if (trace) {
    trace->point_coords = coords;
    trace->point_labels = labels;
    trace->boxes = boxes;
    trace->mask_input = mask;
    trace->sparse = to_float_cpu(sparse);
    trace->dense = to_float_cpu(dense);
    trace->all_low_res_logits = to_float_cpu(dec.all_masks);
    trace->all_iou_predictions = to_float_cpu(dec.all_iou);
    trace->low_res_selected = to_float_cpu(dec.masks);
    trace->iou_selected = to_float_cpu(dec.iou);
  }
  Prediction p;
  p.masks = to_float_cpu(masks);
  p.iou_predictions = to_float_cpu(dec.iou);
  p.low_res_masks = to_float_cpu(low_res);
  if (!batched) {
    p.masks = p.masks[0];
    p.iou_predictions = p.iou_predictions[0];
    p.low_res_masks = p.low_res_masks[0];
  }
  return p;
}

Sam1Predictor::Sam1Predictor(std::shared_ptr<Sam1Model> model) : model_(std::move(model)) {
  if (!model_) throw InvalidArgument("Sam1Predictor: null model");
}

void Sam1Predictor::set_image(const cv::Mat& image, bool bgr) {
  if (image.empty() || image.type() != CV_8UC3)
    throw InvalidArgument("Sam1Predictor::set_image: expected a non-empty CV_8UC3 image");
  cv::Mat c = image.isContinuous() ? image : image.clone();
  auto t = torch::from_blob(c.data, {c.rows, c.cols, 3}, torch::kByte).clone();
  set_image(t, bgr);
}

void Sam1Predictor::set_image(const torch::Tensor& hwc_uint8, bool bgr) {
  features_.reset();
  features_ = std::make_unique<Sam1Features>(encode(*model_, hwc_uint8, bgr));
}

Prediction Sam1Predictor::predict(const PredictArgs& args) const {
  if (!features_) throw NotReadyError("Sam1Predictor: an image must be set with set_image first");
  return sam1::predict(*model_, *features_, args);
}

torch::Tensor Sam1Predictor::get_image_embedding() const {
  if (!features_) throw NotReadyError("Sam1Predictor: an image must be set with set_image first");
  return features_->image_embed;
}

}  // namespace sam3::sam1
