// sam3-eval: quality of a model on held-out synthetic scenes, through the
// public predictor API (preprocessing, prompts, decoder, post-processing and
// upsampling to the frame: the path every user takes).
//
//   sam3-eval --model models/sam3-synth-small.safetensors --scenes 200 [--json out.json]
//
// Scenes: seeds first-seed .. first-seed+scenes-1 (default 1..; training uses
// seeds >= 1,000,000), random frame sizes 240p..1080p. Objects evaluated: at
// least --min-area-frac of the frame visible (default 0.25 %) and at least
// --min-visible of the object unoccluded (default 0.5); smaller ones are
// reported apart ("tiny"). Per object:
//   point   one positive click at the object's interior-most pixel (maximum of
//           the distance transform, the usual first click of interactive
//           segmentation benchmarks), multimask: IoU of the best of the 3 masks
//           (oracle) and of the mask with the highest predicted IoU;
//   box     the tight ground-truth box, single mask;
//   refine  the click + the low-res logits of the predicted-best mask of the
//           click + one corrective click at the interior-most pixel of the
//           largest error region (positive on a miss, negative on a false
//           positive), single mask;
//   spearman  rank correlation of predicted and true IoU over every mask above;
//   ceiling the ground truth itself squeezed through the model's low-res mask
//           grid (resized like the image to the model input, area-averaged to
//           the low-res size, upsampled to the frame by the predictor's own
//           post-processing): the best IoU any mask of this model can reach
//           (also for the grid of input 448, for comparison; SAM 2 / SAM 3
//           models only: SAM 1 pads instead of stretching).
// The predictor runs with the model's own post-processing settings (its
// config; the bundled model: no hole filling, no sprinkle removal), which
// --mask-threshold / --max-hole-area / --max-sprinkle-area override. --json
// also lists every counted object's IoUs (per_object), for distributions.
// --min-box-miou / --min-point-miou / --min-spearman make the exit status 1
// when a figure is below (the test suite's end-to-end quality check).
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sam3/sam3.h>

#include <filesystem>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "postprocess.h"
#include "synth/scene_generator.h"

namespace {

struct Args {
  std::string model, json, device = "cpu", examples_dir;
  int examples = 0;
  int scenes = 100, threads = 0;
  uint64_t first_seed = 1;
  double min_area_frac = 0.0025, min_visible = 0.5;
  double min_box = -1, min_point = -1, min_spearman = -2;
  // predictor settings; unset: the model's defaults (its config)
  std::optional<double> mask_threshold, max_hole_area, max_sprinkle_area;
};

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr,
               "sam3-eval: %s\n"
               "usage: sam3-eval --model FILE [--scenes N] [--first-seed N] [--min-area-frac F]\n"
               "  [--min-visible F] [--device cpu|cuda] [--threads N] [--json FILE]\n"
               "  [--min-box-miou X] [--min-point-miou X] [--min-spearman X]\n"
               "  [--mask-threshold X] [--max-hole-area A] [--max-sprinkle-area A]   (predictor\n"
               "   settings; default: the model's own, from its config)\n"
               "  [--save-examples DIR N]   (first N objects: PNG with the ground truth outline\n"
               "   in green, the box-prompt mask in red and the click's best mask in blue)\n",
               msg.c_str());
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value after " + k);
      return argv[++i];
    };
    auto num = [&]() {
      const std::string v = val();
      try {
        size_t pos = 0;
        double d = std::stod(v, &pos);
        if (pos != v.size() || !std::isfinite(d)) throw std::invalid_argument(v);
        return d;
      } catch (const std::exception&) {
        usage(k + ": not a number: '" + v + "'");
      }
    };
    if (k == "--model") a.model = val();
    else if (k == "--json") a.json = val();
    else if (k == "--save-examples") {
      a.examples_dir = val();
      a.examples = static_cast<int>(num());
    }
    else if (k == "--device") a.device = val();
    else if (k == "--scenes") a.scenes = static_cast<int>(num());
    else if (k == "--threads") a.threads = static_cast<int>(num());
    else if (k == "--first-seed") a.first_seed = static_cast<uint64_t>(num());
    else if (k == "--min-area-frac") a.min_area_frac = num();
    else if (k == "--min-visible") a.min_visible = num();
    else if (k == "--min-box-miou") a.min_box = num();
    else if (k == "--min-point-miou") a.min_point = num();
    else if (k == "--min-spearman") a.min_spearman = num();
    else if (k == "--max-hole-area") a.max_hole_area = num();
    else if (k == "--mask-threshold") a.mask_threshold = num();
    else if (k == "--max-sprinkle-area") a.max_sprinkle_area = num();
    else if (k == "-h" || k == "--help") usage("help");
    else usage("unknown option " + k);
  }
  if (a.model.empty()) usage("--model is required");
  if (a.scenes < 1) usage("--scenes must be >= 1");
  if (a.min_area_frac < 0 || a.min_visible < 0 || a.min_visible > 1) usage("out-of-range filter");
  return a;
}

// Interior-most pixel of a binary mask (maximum of the distance to the outside).
cv::Point interior_point(const cv::Mat& mask) {
  cv::Mat padded, dist;
  cv::copyMakeBorder(mask, padded, 1, 1, 1, 1, cv::BORDER_CONSTANT, 0);
  cv::distanceTransform(padded, dist, cv::DIST_L2, cv::DIST_MASK_PRECISE);
  double mx;
  cv::Point p;
  cv::minMaxLoc(dist, nullptr, &mx, nullptr, &p);
  return {p.x - 1, p.y - 1};
}

double iou(const cv::Mat& pred, const cv::Mat& gt) {
  const double inter = cv::countNonZero(pred & gt);
  const double uni = cv::countNonZero(pred | gt);
  return uni > 0 ? inter / uni : 1.0;
}

cv::Mat to_mask(const torch::Tensor& m) {  // H x W float {0,1} -> CV_8U 0/255
  auto u8 = (m > 0.5).to(torch::kUInt8).mul(255).contiguous();
  return cv::Mat(static_cast<int>(u8.size(0)), static_cast<int>(u8.size(1)), CV_8U, u8.data_ptr())
      .clone();
}

// IoU of the ground truth after a round trip through a low-res mask of r x r
// for a model input of R x R: the frame's mask resized to R x R and
// area-averaged to r x r (a perfect prediction's probabilities, centred on 0
// like logits), upsampled to the frame by the predictor's own post-processing
// (sam3::detail::upsample_masks) and thresholded at 0.
double grid_ceiling(const cv::Mat& gt, int R, int r) {
  cv::Mat f, in, low;
  gt.convertTo(f, CV_32F, 1.0 / 255);
  cv::resize(f, in, cv::Size(R, R), 0, 0, cv::INTER_AREA);
  cv::resize(in, low, cv::Size(r, r), 0, 0, cv::INTER_AREA);
  auto logits = torch::from_blob(low.data, {1, 1, r, r}, torch::kFloat) - 0.5;
  auto up = sam3::detail::upsample_masks(logits, {gt.rows, gt.cols})[0][0];
  return iou(to_mask((up > 0).to(torch::kFloat)), gt);
}

std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
    for (size_t k = i; k <= j; ++k) r[idx[k]] = (i + j) / 2.0;
    i = j + 1;
  }
  return r;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0.0;
}

struct Mean {
  double sum = 0;
  int n = 0;
  void add(double v) { sum += v, ++n; }
  double get() const { return n ? sum / n : 0.0; }
};

}  // namespace

int main(int argc, char** argv) {
  sam3::reexec_with_cpu_environment(argv);  // cpu_kernels.h
  const Args a = parse(argc, argv);
  try {
    sam3::ModelOptions opt;
    opt.device = a.device;
    opt.num_threads = a.threads;
    auto model = sam3::Model::load(a.model, opt);
    // as sam3-predict: the model's defaults unless given; checked here, once
    const sam3::PredictorDefaults& defaults = model->config().predictor;
    sam3::InteractiveImagePredictor predictor(
        model, a.mask_threshold.value_or(defaults.mask_threshold),
        a.max_hole_area.value_or(defaults.max_hole_area),
        a.max_sprinkle_area.value_or(defaults.max_sprinkle_area));
    const int R = static_cast<int>(model->config().image_size);
    const int r = static_cast<int>(model->config().low_res_size());
    // the ceiling models SAM 2 / SAM 3 preprocessing (the frame stretched to
    // the square input); SAM 1 keeps the aspect ratio and pads
    const bool stretched = model->config().is_sam3() || model->config().is_sam2();
    std::map<std::string, Mean> m;  // metric -> mean
    std::map<std::string, std::map<std::string, Mean>> by_kind, by_size;
    std::vector<double> pred_iou, true_iou;
    nlohmann::json per_object = nlohmann::json::array();  // counted objects, for distributions
    int objects = 0, tiny = 0, saved = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int s = 0; s < a.scenes; ++s) {
      const uint64_t seed = a.first_seed + static_cast<uint64_t>(s);
      auto scene = sam3::synth::generate_scene(seed);
      predictor.set_image(scene.image);
      const double frame_area = static_cast<double>(scene.image.total());
      for (const auto& o : scene.objects) {
        if (o.visible_fraction() < a.min_visible || o.area == 0) continue;
        const bool small = o.area < a.min_area_frac * frame_area;
        const std::string group = small ? "tiny." : "";
        const cv::Point c = interior_point(o.mask);
        sam3::PredictArgs pa;
        pa.point_coords = torch::tensor({{static_cast<float>(c.x), static_cast<float>(c.y)}});
        pa.point_labels = torch::tensor({1});
        pa.multimask_output = true;
        auto p = predictor.predict(pa);
        double best = 0;
        std::vector<double> ious;
        for (int k = 0; k < p.masks.size(0); ++k) {
          ious.push_back(iou(to_mask(p.masks[k]), o.mask));
          best = std::max(best, ious.back());
          if (!small) {
            pred_iou.push_back(p.iou_predictions[k].item<double>());
            true_iou.push_back(ious.back());
          }
        }
        const int64_t sel = p.iou_predictions.argmax().item<int64_t>();
        const double selected = ious[static_cast<size_t>(sel)];

        sam3::PredictArgs ba;
        ba.box = torch::tensor({static_cast<float>(o.box.x), static_cast<float>(o.box.y),
                                static_cast<float>(o.box.x + o.box.width),
                                static_cast<float>(o.box.y + o.box.height)});
        ba.multimask_output = false;
        auto pb = predictor.predict(ba);
        const double box_iou = iou(to_mask(pb.masks[0]), o.mask);
        if (!small) {
          pred_iou.push_back(pb.iou_predictions[0].item<double>());
          true_iou.push_back(box_iou);
        }

        // corrective click at the centre of the largest error region
        const cv::Mat sel_mask = to_mask(p.masks[sel]);
        cv::Mat fn = o.mask & ~sel_mask, fp = sel_mask & ~o.mask;
        double refine_iou = selected;
        cv::Mat err = fn | fp;
        if (cv::countNonZero(err) > 0) {
          cv::Mat labels, stats, cent;
          const int n = cv::connectedComponentsWithStats(err, labels, stats, cent, 8);
          int biggest = 1;
          for (int i = 2; i < n; ++i)
            if (stats.at<int>(i, cv::CC_STAT_AREA) > stats.at<int>(biggest, cv::CC_STAT_AREA))
              biggest = i;
          const cv::Mat region = (labels == biggest);
          const cv::Point q = interior_point(region);
          const bool positive = fn.at<uint8_t>(q) != 0;
          sam3::PredictArgs ra;
          ra.point_coords = torch::tensor({{static_cast<float>(c.x), static_cast<float>(c.y)},
                                           {static_cast<float>(q.x), static_cast<float>(q.y)}});
          ra.point_labels = torch::tensor({1, positive ? 1 : 0});
          ra.mask_input = p.low_res_masks[sel].unsqueeze(0);
          ra.multimask_output = false;
          auto pr = predictor.predict(ra);
          refine_iou = iou(to_mask(pr.masks[0]), o.mask);
          if (!small) {
            pred_iou.push_back(pr.iou_predictions[0].item<double>());
            true_iou.push_back(refine_iou);
          }
        }
        if (saved < a.examples) {
          cv::Mat vis;
          cv::cvtColor(scene.image, vis, cv::COLOR_RGB2BGR);
          cv::Mat tint = vis.clone();
          tint.setTo(cv::Scalar(0, 0, 255), to_mask(pb.masks[0]));
          cv::addWeighted(vis, 0.55, tint, 0.45, 0, vis);
          std::vector<std::vector<cv::Point>> cs;
          cv::findContours(to_mask(p.masks[static_cast<int64_t>(
                               std::max_element(ious.begin(), ious.end()) - ious.begin())]),
                           cs, cv::RETR_LIST, cv::CHAIN_APPROX_SIMPLE);
          cv::drawContours(vis, cs, -1, cv::Scalar(255, 0, 0), 2);
          cs.clear();
          cv::findContours(o.mask.clone(), cs, cv::RETR_LIST, cv::CHAIN_APPROX_SIMPLE);
          cv::drawContours(vis, cs, -1, cv::Scalar(0, 255, 0), 1);
          cv::circle(vis, c, 4, cv::Scalar(255, 255, 0), -1);
          std::filesystem::create_directories(a.examples_dir);
          char name[128];
          std::snprintf(name, sizeof name, "/seed%llu-obj%d-%s-box%.2f-point%.2f.png",
                        static_cast<unsigned long long>(seed), o.id, o.kind.c_str(), box_iou, best);
          cv::imwrite(a.examples_dir + name, vis);
          // and a zoomed crop around the object (its box and as much again around it)
          const int mx = std::max(16, o.box.width / 2), my = std::max(16, o.box.height / 2);
          const cv::Rect crop = cv::Rect(o.box.x - mx, o.box.y - my, o.box.width + 2 * mx,
                                         o.box.height + 2 * my) &
                                cv::Rect(0, 0, vis.cols, vis.rows);
          const double zoom = std::max(1.0, 320.0 / std::max(crop.width, crop.height));
          cv::Mat zoomed;
          cv::resize(vis(crop), zoomed, cv::Size(), zoom, zoom, cv::INTER_NEAREST);
          std::string crop_name = name;
          crop_name.replace(crop_name.size() - 4, 4, "-crop.png");
          cv::imwrite(a.examples_dir + crop_name, zoomed);
          ++saved;
        }
        const std::string sz = o.area < 32 * 32 ? "small" : o.area < 96 * 96 ? "medium" : "large";
        if (!small)
          per_object.push_back({{"seed", seed}, {"id", o.id}, {"kind", o.kind}, {"area", o.area},
                                {"point_best_of_3", best}, {"box", box_iou}, {"refine", refine_iou}});
        std::vector<std::pair<std::string, double>> figures{
            {"point_best_of_3", best}, {"point_selected", selected},
            {"box", box_iou}, {"refine", refine_iou}};
        if (stretched) {
          figures.emplace_back("ceiling", grid_ceiling(o.mask, R, r));
          figures.emplace_back("ceiling_448", grid_ceiling(o.mask, 448, 128));
        }
        for (const auto& [name, v] : figures) {
          m[group + name].add(v);
          if (!small) {
            by_kind[o.kind][name].add(v);
            by_size[sz][name].add(v);
          }
        }
        (small ? tiny : objects) += 1;
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double rho = pred_iou.size() > 2 ? pearson(ranks(pred_iou), ranks(true_iou)) : 0.0;
    nlohmann::json out;
    out["model"] = a.model;
    out["scenes"] = a.scenes;
    out["first_seed"] = a.first_seed;
    out["filter"] = {{"min_area_frac", a.min_area_frac}, {"min_visible", a.min_visible}};
    out["objects"] = objects;
    out["tiny_objects"] = tiny;
    for (const auto& [k, v] : m) out["miou"][k] = v.get();
    out["spearman_pred_vs_true_iou"] = rho;
    out["spearman_samples"] = pred_iou.size();
    for (const auto& [k, mm] : by_kind)
      for (const auto& [n, v] : mm) out["by_kind"][k][n] = v.get(), out["by_kind"][k]["n"] = v.n;
    for (const auto& [k, mm] : by_size)
      for (const auto& [n, v] : mm) out["by_size"][k][n] = v.get(), out["by_size"][k]["n"] = v.n;
    out["seconds"] = secs;
    out["per_object"] = per_object;
    std::printf("sam3-eval: %s on %d held-out scenes (seeds %llu..%llu), %d objects (+%d tiny)\n",
                a.model.c_str(), a.scenes, static_cast<unsigned long long>(a.first_seed),
                static_cast<unsigned long long>(a.first_seed + a.scenes - 1), objects, tiny);
    std::printf("  point, best of 3 masks      mIoU %.4f\n", m["point_best_of_3"].get());
    std::printf("  point, highest-scored mask  mIoU %.4f\n", m["point_selected"].get());
    std::printf("  box, single mask            mIoU %.4f\n", m["box"].get());
    std::printf("  point + mask + 1 correction mIoU %.4f\n", m["refine"].get());
    std::printf("  Spearman(predicted IoU, true IoU) %.3f over %zu masks\n", rho, pred_iou.size());
    if (stretched)
      std::printf("  ceiling: ground truth through the %dx%d low-res grid mIoU %.4f (input 448, 128x128: %.4f)\n",
                  r, r, m["ceiling"].get(), m["ceiling_448"].get());
    std::printf("  tiny objects (< %.2f%% of the frame): point best-of-3 %.4f, box %.4f\n",
                100 * a.min_area_frac, m["tiny.point_best_of_3"].get(), m["tiny.box"].get());
    std::printf("  %.1f s\n", secs);
    if (!a.json.empty()) std::ofstream(a.json) << out.dump(1) << "\n";
    bool ok = true;
    auto check = [&](const char* what, double v, double min) {
      if (min > -1.5 && v < min) {
        std::fprintf(stderr, "sam3-eval: FAIL: %s %.4f < %.4f\n", what, v, min);
        ok = false;
      }
    };
    check("box mIoU", m["box"].get(), a.min_box);
    check("point best-of-3 mIoU", m["point_best_of_3"].get(), a.min_point);
    check("Spearman", rho, a.min_spearman);
    if (objects == 0) {
      std::fprintf(stderr, "sam3-eval: FAIL: no evaluable object\n");
      ok = false;
    }
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sam3-eval: %s\n", e.what());
    return 1;
  }
}
