// sam3-train: trains a small SAM 3 interactive model (our predictor's modules,
// official key layout) on synthetic scenes. No Python.
//
//   sam3-train --config training/sam3-synth.json --out models/sam3-synth-small.safetensors
//       --steps 4000 --seed 1 --threads 2   (one line; the defaults are the shipped recipe)
//
// Per step: `--images` generated scenes (seeds from 1,000,000 up; the
// evaluation uses seeds below that) are encoded once; up to `--objects` visible
// objects per scene get SAM-style prompts:
//   * half a single positive point (uniform in the object; the 3 multimask
//     tokens, loss on the best of 3), half a box (tight box, jittered in half of
//     the cases; the single-mask token);
//   * then `--refine` corrective iterations: one point drawn uniformly from the
//     error region of the previous prediction (positive on a miss, negative on a
//     false positive), added to the earlier points, with the previous low-res
//     logits as mask_input; single-mask token.
// Loss per prompt (on the mask logits upsampled to --loss-res, default 2x the
// low-res mask size; targets: the ground-truth mask area-resized to it, soft at
// the edges): --bce-weight x BCE + --dice-weight x dice (+ --focal-weight x
// sigmoid focal, SAM's choice at scale: 20, off by default: on 2 CPU cores it
// kept the masks empty for hundreds of steps), + MSE between the IoU head and
// the true IoU of every mask token. AdamW, linear warm-up then cosine decay,
// gradient clipping. Training scenes leave out objects under --min-size of the
// short side (default 6 %; smaller ones are not evaluated either).
//
// Three measures make a from-scratch model follow its prompts within an hour
// of CPU (without them it settles on "every salient object" whatever the
// prompt; docs/training.md tells the experiments):
//   * --locate-steps N (300): the first N steps' targets are the prompt's own
//     region (the filled box, a disc around the point), so the decoder learns
//     to route prompt positions to image positions before appearance;
//   * --pos-init S (2): the decoder's cross-attentions start with
//     k_proj = q_proj = S x default, a positive kernel between the Fourier
//     encodings of a prompt and of an image position;
//   * --hr-warmup N (-1 = the whole run): the high-resolution skip features
//     (conv_s0 / conv_s1, zero-initialised, --hr-init) are left out for the
//     first N steps; they are a prompt-independent "objectness" shortcut.
// --workers W (default 2) splits a step's images between W threads, each with
// its own forward and backward; their gradients are summed in worker order, so
// a run is deterministic for a given W (scenes do not depend on W, prompt and
// corrective-point draws do). On 2 cores this halves the step time: the ops of
// this small model gain nothing from intra-op threads.
// --device cuda trains on a GPU (same program, one worker; no silent CPU fallback).
// --ema D (default off) keeps an exponential moving average of the weights,
// checkpointed with them, and writes it beside --out as <out>.ema.safetensors.
// Progress every `--log-every` steps; a resumable checkpoint (weights +
// optimizer + step) every `--checkpoint-every` steps; the final weights are
// written as safetensors under the official sam3.pt key names, with the
// config (which the loader uses: the decoder's head count is not in the
// shapes) and the training command in the file's metadata.
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <sam3/sam3.h>

#include <dlfcn.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "model_impl.h"
#include "synth/scene_generator.h"
#include "transforms.h"

namespace {

struct Args {
  std::string config, out = "sam3-synth.safetensors", resume, init, device = "cpu";
  int steps = 4000, images = 4, objects = 8, refine = 1, threads = 2, workers = 2;
  int loss_res = 0, data_cycle = 0, log_every = 20, checkpoint_every = 250, warmup = 100;
  int locate_steps = 300, hr_warmup = -1;  // -1: no high-res skip features in the whole run
  double min_size = 0.06, box_fraction = 0.5, pos_init = 2.0, hr_init = 0.0, focal_w = 0.0, bce_w = 1.0, dice_w = 1.0;
  double lr = 6e-4, min_lr = 2e-5, weight_decay = 0.05, clip = 1.0;  // lr: docs/training.md, "Learning rate"
  double ema = 0.0;  // --ema D: also write an exponential moving average of the weights (0: off)
  uint64_t seed = 1;
  std::string command;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "sam3-train: %s\n"
               "usage: sam3-train --config FILE.json [--out FILE.safetensors] [--steps N]\n"
               "  [--images N] [--objects N] [--refine N] [--loss-res N] [--data-cycle N] [--min-size F] [--box-fraction F] [--pos-init S] [--hr-init S] [--hr-warmup N] [--locate-steps N] [--lr X] [--min-lr X] [--warmup N]\n"
               "  [--weight-decay X] [--clip X] [--ema D] [--focal-weight X] [--bce-weight X] [--dice-weight X] [--seed N] [--threads N] [--workers N] [--log-every N]\n"
               "  [--checkpoint-every N] [--resume CKPT_DIR] [--init WEIGHTS.safetensors]\n  [--device cpu|cuda|cuda:N]\n",
               msg);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 0; i < argc; ++i) a.command += (i ? " " : "") + std::string(argv[i]);
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + k).c_str());
      return argv[++i];
    };
    auto num = [&](auto& dst) {
      const std::string v = val();
      try {
        size_t pos = 0;
        if constexpr (std::is_floating_point_v<std::decay_t<decltype(dst)>>) dst = std::stod(v, &pos);
        else dst = static_cast<std::decay_t<decltype(dst)>>(std::stoll(v, &pos));
        if (pos != v.size()) throw std::invalid_argument(v);
      } catch (const std::exception&) {
        usage((k + ": not a number: '" + v + "'").c_str());
      }
    };
    if (k == "--config") a.config = val();
    else if (k == "--out") a.out = val();
    else if (k == "--resume") a.resume = val();
    else if (k == "--init") a.init = val();
    else if (k == "--device") a.device = val();
    else if (k == "--steps") num(a.steps);
    else if (k == "--images") num(a.images);
    else if (k == "--objects") num(a.objects);
    else if (k == "--refine") num(a.refine);
    else if (k == "--threads") num(a.threads);
    else if (k == "--workers") num(a.workers);
    else if (k == "--loss-res") num(a.loss_res);
    else if (k == "--data-cycle") num(a.data_cycle);
    else if (k == "--log-every") num(a.log_every);
    else if (k == "--checkpoint-every") num(a.checkpoint_every);
    else if (k == "--warmup") num(a.warmup);
    else if (k == "--lr") num(a.lr);
    else if (k == "--min-lr") num(a.min_lr);
    else if (k == "--weight-decay") num(a.weight_decay);
    else if (k == "--clip") num(a.clip);
    else if (k == "--ema") num(a.ema);
    else if (k == "--focal-weight") num(a.focal_w);
    else if (k == "--min-size") num(a.min_size);
    else if (k == "--box-fraction") num(a.box_fraction);
    else if (k == "--pos-init") num(a.pos_init);
    else if (k == "--hr-init") num(a.hr_init);
    else if (k == "--hr-warmup") num(a.hr_warmup);
    else if (k == "--locate-steps") num(a.locate_steps);
    else if (k == "--bce-weight") num(a.bce_w);
    else if (k == "--dice-weight") num(a.dice_w);
    else if (k == "--seed") num(a.seed);
    else if (k == "-h" || k == "--help") usage("help");
    else usage(("unknown option " + k).c_str());
  }
  if (a.config.empty()) usage("--config is required");
  if (a.steps < 1 || a.images < 1 || a.objects < 1 || a.refine < 0 || a.threads < 1 || a.workers < 1 ||
      a.log_every < 1 || a.checkpoint_every < 1 || a.warmup < 0 || !(a.lr > 0) ||
      !(a.min_lr >= 0) || !(a.weight_decay >= 0) || !(a.clip > 0) || a.locate_steps < 0 ||
      a.hr_warmup < -1 || !(a.pos_init >= 0) || !(a.hr_init >= 0) || !(a.ema >= 0 && a.ema < 1))
    usage("out-of-range value (counts must be >= 1, rates > 0, --ema in [0, 1))");
  return a;
}

// One prompted object of the batch.
struct Item {
  int64_t image = 0;                 // index in the batch
  torch::Tensor target;              // L x L float in [0,1] (loss resolution)
  std::vector<float> xy;             // prompt points (model input pixels), flattened
  std::vector<int64_t> labels;
  bool box = false;
};

// First prompt of an object, in model-input pixels (R x R).
void first_prompt(Item& it, const sam3::synth::Object& o, cv::Size frame, int64_t R,
                  double box_fraction, std::mt19937_64& g) {
  const double sx = static_cast<double>(R) / frame.width, sy = static_cast<double>(R) / frame.height;
  std::uniform_real_distribution<double> u(0, 1);
  if (u(g) >= box_fraction) {
    std::vector<cv::Point> pts;
    cv::findNonZero(o.mask, pts);
    const auto& p = pts[static_cast<size_t>(u(g) * pts.size()) % pts.size()];
    it.xy = {static_cast<float>(p.x * sx), static_cast<float>(p.y * sy)};
    it.labels = {1};
    it.box = false;
  } else {
    double x0 = o.box.x, y0 = o.box.y, x1 = o.box.x + o.box.width, y1 = o.box.y + o.box.height;
    if (u(g) < 0.5) {
      std::normal_distribution<double> n(0, 1);
      const double w = o.box.width, h = o.box.height;
      auto jit = [&](double side) { return std::clamp(0.05 * side * n(g), -0.1 * side, 0.1 * side); };
      x0 += jit(w), x1 += jit(w), y0 += jit(h), y1 += jit(h);
      if (x1 < x0 + 1) x1 = x0 + 1;
      if (y1 < y0 + 1) y1 = y0 + 1;
    }
    it.xy = {static_cast<float>(x0 * sx), static_cast<float>(y0 * sy), static_cast<float>(x1 * sx),
             static_cast<float>(y1 * sy)};
    it.labels = {2, 3};
    it.box = true;
  }
}

torch::Tensor focal_loss(const torch::Tensor& logits, const torch::Tensor& t) {
  // sigmoid focal loss (alpha 0.25, gamma 2), mean over pixels, per mask
  auto p = torch::sigmoid(logits);
  auto ce = torch::binary_cross_entropy_with_logits(logits, t, {}, {}, at::Reduction::None);
  auto p_t = p * t + (1 - p) * (1 - t);
  auto a_t = 0.25 * t + 0.75 * (1 - t);
  return (a_t * ce * (1 - p_t).pow(2)).flatten(-2).mean(-1);
}

torch::Tensor dice_loss(const torch::Tensor& logits, const torch::Tensor& t) {
  auto p = torch::sigmoid(logits).flatten(-2);
  auto tf = t.flatten(-2);
  return 1 - (2 * (p * tf).sum(-1) + 1) / (p.sum(-1) + tf.sum(-1) + 1);
}

torch::Tensor true_iou(const torch::Tensor& logits, const torch::Tensor& t) {
  auto p = (logits > 0).flatten(-2);
  auto g = (t > 0.5).flatten(-2);
  auto inter = (p & g).sum(-1).to(torch::kFloat);
  auto uni = (p | g).sum(-1).to(torch::kFloat);
  return torch::where(uni > 0, inter / uni.clamp_min(1), torch::ones_like(inter));
}

struct Stats {
  double t_data = 0, t_fwd_bwd = 0, t_update = 0;  // per phase, summed over steps
  double loss = 0, point_iou = 0, box_iou = 0, refine_iou = 0, iou_mse = 0;
  int n = 0, n_point = 0, n_box = 0, n_refine = 0;
  void add(const Stats& o) {
    point_iou += o.point_iou, box_iou += o.box_iou, refine_iou += o.refine_iou, iou_mse += o.iou_mse;
    n_point += o.n_point, n_box += o.n_box, n_refine += o.n_refine;
  }
};

double cosine_lr(const Args& a, int step) {
  if (step < a.warmup) return a.lr * (step + 1) / a.warmup;
  const double t = static_cast<double>(step - a.warmup) / std::max(1, a.steps - a.warmup);
  return a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + std::cos(3.14159265358979 * std::min(1.0, t)));
}

void copy_weights(torch::nn::Module& net, const sam3::StateDict& sd) {
  torch::NoGradGuard ng;
  std::vector<std::string> missing;
  for (auto& p : net.named_parameters()) {
    auto it = sd.find(p.key());
    if (it == sd.end()) missing.push_back(p.key());
    else p.value().copy_(it->second);
  }
  if (!missing.empty()) throw std::runtime_error("weights miss " + std::to_string(missing.size()) +
                                                 " parameters, e.g. " + missing.front());
}

// What every worker of a step needs (read-only).
struct StepContext {
  const Args& a;
  const sam3::ModelConfig& cfg;
  mutable sam3::modeling::Sam3InteractiveModel net;  // forward only (thread-safe)
  torch::Device dev;
  int64_t R, L;  // model input size; loss / target resolution
};

// One worker's share of a step: its images, prompted objects, and results.
struct Shard {
  std::vector<torch::Tensor> inputs;
  std::vector<Item> items;
  int n_terms = 0;                   // prompts x (1 + refinements)
  uint64_t draw_seed = 0;            // of the corrective-point draws
  std::vector<torch::Tensor> grads;  // per parameter (undefined: unused)
  double loss = 0;                   // this shard's share of the step's loss
  Stats st;
};

// Runs fn(0..W-1), worker 0 on the calling thread, the others on new threads
// with tpw intra-op threads each. An exception in a worker is rethrown here.
template <typename Fn>
void run_workers(int W, int tpw, Fn fn) {
  std::vector<std::string> errors(static_cast<size_t>(W));
  auto guarded = [&](int w) {
    try {
      if (w > 0) sam3::set_num_threads(tpw);
      fn(w);
    } catch (const std::exception& e) {
      errors[static_cast<size_t>(w)] = e.what();
    }
  };
  std::vector<std::thread> threads;
  for (int w = 1; w < W; ++w) threads.emplace_back(guarded, w);
  guarded(0);
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (!e.empty()) throw std::runtime_error(e);
}

// Scenes and prompts of worker w: the step's images b = w, w + W, ...; the
// scene seeds do not depend on W, the prompt and corrective-point draws are
// seeded by (seed, step, w).
void make_shard(const StepContext& c, int step, int w, int W, Shard& sh) {
  const Args& a = c.a;
  const int64_t R = c.R, L = c.L;
  std::seed_seq sq{static_cast<uint64_t>(a.seed), static_cast<uint64_t>(step), static_cast<uint64_t>(w)};
  std::mt19937_64 g(sq);
  sh.draw_seed = g();
  // --data-cycle N: the same N steps of scenes over and over (overfitting check)
  const int data_step = a.data_cycle > 0 ? step % a.data_cycle : step;
  for (int b = w; b < a.images; b += W) {
    const uint64_t seed = 1000000ull + static_cast<uint64_t>(data_step) * a.images + b +
                          a.seed * 100000000ull;
    sam3::synth::SceneOptions so;
    so.min_size = a.min_size;  // objects below ~6 % of the short side are not evaluated
    auto scene = sam3::synth::generate_scene(seed, so);
    const cv::Size frame = scene.image.size();
    auto hwc = torch::from_blob(scene.image.data, {frame.height, frame.width, 3}, torch::kUInt8);
    const int64_t image = static_cast<int64_t>(sh.inputs.size());
    sh.inputs.push_back(sam3::detail::preprocess_image(hwc, R, c.cfg.pixel_mean(), c.cfg.pixel_std()));
    std::vector<size_t> order(scene.objects.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), g);
    int taken = 0;
    for (size_t oi : order) {
      const auto& o = scene.objects[oi];
      if (taken >= a.objects) break;
      cv::Mat t;
      cv::Mat m32;
      o.mask.convertTo(m32, CV_32F, 1.0 / 255);
      cv::resize(m32, t, cv::Size(static_cast<int>(L), static_cast<int>(L)), 0, 0, cv::INTER_AREA);
      // too small to see at the model's input resolution
      if (cv::sum(t)[0] * static_cast<double>(R * R) / static_cast<double>(L * L) < 12.0 || o.area < 16)
        continue;
      Item it;
      it.image = image;
      it.target = torch::from_blob(t.data, {L, L}, torch::kFloat).clone();
      first_prompt(it, o, frame, R, a.box_fraction, g);
      if (step < a.locate_steps) {
        // geometric warm-up: the target is the prompt's own region (the
        // filled box; a disc around the point), so the decoder first
        // learns to route prompt positions to image positions
        auto yy = torch::arange(L).view({L, 1}).to(torch::kFloat) + 0.5;
        auto xx = torch::arange(L).view({1, L}).to(torch::kFloat) + 0.5;
        const double k = static_cast<double>(L) / static_cast<double>(R);
        if (it.box) {
          it.target = ((xx >= it.xy[0] * k) & (xx <= it.xy[2] * k) & (yy >= it.xy[1] * k) &
                       (yy <= it.xy[3] * k)).to(torch::kFloat);
        } else {
          const double cx = it.xy[0] * k, cy = it.xy[1] * k, r = 0.08 * L;
          it.target = (((xx - cx).pow(2) + (yy - cy).pow(2)) < r * r).to(torch::kFloat);
        }
      }
      sh.items.push_back(std::move(it));
      ++taken;
    }
  }
  sh.n_terms = static_cast<int>(sh.items.size()) * (1 + a.refine);
}

// Forward and backward of one shard; loss terms are divided by the step's
// total term count, so the shards' gradients sum to the whole step's.
void forward_backward(const StepContext& c, const std::vector<torch::Tensor>& params, int step,
                      int total_terms, Shard& sh) {
  if (sh.items.empty()) return;
  const Args& a = c.a;
  const int64_t R = c.R, L = c.L;
  const torch::Device dev = c.dev;
  auto& pe = c.net->tracker->sam_prompt_encoder;
  auto& dec = c.net->tracker->sam_mask_decoder;
  // corrective-point draws: a generator per worker on CPU (deterministic
  // whatever the threads' timing); the default one on CUDA (one worker)
  c10::optional<at::Generator> gen;
  if (dev.is_cpu())
    gen = at::detail::createCPUGenerator(sh.draw_seed);
  // ---- encoder (once per image)
  auto x = torch::cat(sh.inputs, 0).to(dev);
  auto enc = c.net->encode_image(x);
  if (a.hr_warmup < 0 || step < a.hr_warmup) {
    // the first --hr-warmup steps: no high-res skip features, so that the
    // prompt path is learnt before the prompt-independent shortcut
    for (auto& h : enc.high_res_feats) h = torch::zeros_like(h);
  }
  auto dense_pe = pe->get_dense_pe();
  auto& items = sh.items;
  Stats& acc = sh.st;
  torch::Tensor loss = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat).device(dev));
  // two groups: single point (multimask) and box; refinement keeps groups
  for (int grp = 0; grp < 2; ++grp) {
    std::vector<size_t> idx;
    for (size_t i = 0; i < items.size(); ++i)
      if (items[i].box == (grp == 1)) idx.push_back(i);
    if (idx.empty()) continue;
    const int64_t B = static_cast<int64_t>(idx.size());
    std::vector<int64_t> img_idx;
    std::vector<torch::Tensor> tg;
    for (size_t i : idx) {
      img_idx.push_back(items[i].image);
      tg.push_back(items[i].target);
    }
    auto sel = torch::tensor(img_idx).to(dev);
    auto src = enc.image_embed.index_select(0, sel);
    std::vector<torch::Tensor> hr;
    for (auto& h : enc.high_res_feats) hr.push_back(h.index_select(0, sel));
    auto target = torch::stack(tg).unsqueeze(1).to(dev);  // B x 1 x L x L
    const int64_t P0 = static_cast<int64_t>(items[idx[0]].labels.size());
    std::vector<float> xy;
    std::vector<int64_t> lab;
    for (size_t i : idx) {
      xy.insert(xy.end(), items[i].xy.begin(), items[i].xy.end());
      lab.insert(lab.end(), items[i].labels.begin(), items[i].labels.end());
    }
    auto coords = torch::tensor(xy).view({B, P0, 2}).to(dev);
    auto labels = torch::tensor(lab).view({B, P0}).to(dev);
    torch::Tensor mask_input;  // undefined at first
    for (int iter = 0; iter <= a.refine; ++iter) {
      auto [sparse, dense] = pe->forward(coords, labels, mask_input);
      auto out = dec->forward(src, dense_pe, sparse, dense, true, false, hr);
      auto up = torch::nn::functional::interpolate(
          out.all_masks, torch::nn::functional::InterpolateFuncOptions()
                             .size(std::vector<int64_t>{L, L})
                             .mode(torch::kBilinear)
                             .align_corners(false));
      auto tgt = target.expand_as(up);
      auto bce = torch::binary_cross_entropy_with_logits(up, tgt, {}, {}, at::Reduction::None)
                     .flatten(-2)
                     .mean(-1);
      auto mask_l = a.bce_w * bce + a.dice_w * dice_loss(up, tgt);  // B x 4
      if (a.focal_w > 0) mask_l = mask_l + a.focal_w * focal_loss(up, tgt);
      auto iou_t = true_iou(up.detach(), tgt);    // B x 4
      auto iou_l = (out.all_iou - iou_t).pow(2);  // B x 4
      torch::Tensor chosen;                       // B: token whose low-res logits go on
      torch::Tensor term;
      if (iter == 0 && grp == 0) {
        // ambiguity: best of the 3 multimask tokens
        auto [best, arg] = mask_l.slice(1, 1).min(1);
        term = best + iou_l.slice(1, 1).mean(1);
        chosen = std::get<1>(out.all_iou.slice(1, 1).detach().max(1)) + 1;
        acc.point_iou += std::get<0>(iou_t.slice(1, 1).max(1)).sum().item<double>();
        acc.n_point += B;
      } else {
        term = mask_l.select(1, 0) + iou_l.mean(1) + 0.25 * std::get<0>(mask_l.slice(1, 1).min(1));
        chosen = torch::zeros({B}, torch::TensorOptions().dtype(torch::kLong).device(dev));
        if (iter == 0) {
          acc.box_iou += iou_t.select(1, 0).sum().item<double>();
          acc.n_box += B;
        } else if (iter == a.refine) {
          acc.refine_iou += iou_t.select(1, 0).sum().item<double>();
          acc.n_refine += B;
        }
      }
      acc.iou_mse += iou_l.mean().item<double>() * B;
      loss = loss + term.sum();
      if (iter == a.refine) break;
      // ---- next corrective point from the error region of the chosen mask
      auto rows = torch::arange(B, torch::TensorOptions().dtype(torch::kLong).device(dev));
      auto low = out.all_masks.index({rows, chosen}).unsqueeze(1).detach();  // B x 1 x r x r
      auto pred = up.index({rows, chosen}).detach() > 0;                     // B x L x L
      auto gt = target.squeeze(1) > 0.5;
      auto fn = gt & ~pred, fp = pred & ~gt;
      auto err = (fn | fp).flatten(1).to(torch::kFloat);
      // no error left: a positive point inside the object
      auto none = err.sum(1) == 0;
      err = torch::where(none.unsqueeze(1), gt.flatten(1).to(torch::kFloat) + 1e-6, err);
      auto pick = torch::multinomial(err, 1, false, gen).squeeze(1);  // B
      auto py = torch::div(pick, L, "floor"), px = pick - py * L;
      auto is_fn = fn.flatten(1).gather(1, pick.unsqueeze(1)).squeeze(1) | none;
      // centre of the loss pixel, in model-input pixels
      auto new_pt = ((torch::stack({px, py}, 1).to(torch::kFloat) + 0.5) *
                         (static_cast<double>(R) / static_cast<double>(L)) - 0.5)
                        .unsqueeze(1);
      coords = torch::cat({coords, new_pt}, 1);
      labels = torch::cat({labels, is_fn.to(torch::kLong).unsqueeze(1)}, 1);
      mask_input = low;
    }
  }
  loss = loss / total_terms;
  sh.loss = loss.item<double>();
  sh.grads = torch::autograd::grad({loss}, params, {}, /*retain_graph=*/false,
                                   /*create_graph=*/false, /*allow_unused=*/true);
}

// OpenBLAS's own threads: with several workers each GEMM runs on its caller's
// thread (OpenBLAS threads would only spin against the other worker).
void set_openblas_threads(int n) {
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
}

}  // namespace

int main(int argc, char** argv) {
  sam3::reexec_with_cpu_environment(argv);  // cpu_kernels.h
  const Args a = parse(argc, argv);
  try {
    const auto cfg = sam3::ModelConfig::from_json_file(a.config);
    sam3::ModelOptions opt;
    opt.num_threads = a.threads;
    opt.device = a.device;  // DeviceError if CUDA is asked for and absent
    auto model = sam3::Model::random(cfg, opt, a.seed);
    auto& impl = const_cast<sam3::detail::ModelImpl&>(model->impl());
    if (!impl.net) throw std::runtime_error("sam3-train trains the SAM 3 family only");
    auto net = impl.net;
    const torch::Device dev = impl.device;
    net->train();
    torch::manual_seed(a.seed);
    if (!a.init.empty()) {
      copy_weights(*net, sam3::load_state_dict(a.init));
    } else {
      // The high-resolution skip features (conv_s0 / conv_s1 of the neck's 4x
      // and 2x levels, added inside the decoder's upscaling) start at --hr-init
      // times their default initialisation (default 0: zero). Left at full
      // scale they carry prompt-independent "objectness" into every mask from
      // the first step, and the decoder settles on the union of all objects,
      // never learning to follow the prompt (docs/training.md).
      torch::NoGradGuard ng;
      auto& d = net->tracker->sam_mask_decoder;
      for (auto* conv : {d->conv_s0.get(), d->conv_s1.get()}) {
        if (!conv) continue;
        conv->weight.mul_(a.hr_init);
        if (conv->bias.defined()) conv->bias.mul_(a.hr_init);
      }
    }
    if (a.init.empty() && a.pos_init > 0) {
      // Cross-attentions of the mask decoder start with k_proj = q_proj (x S):
      // q.k then contains (W pe_q).(W pe_k), a positive kernel of the distance
      // between a prompt's and an image position's Fourier encodings, so
      // prompts attend to their own neighbourhood from the first step.
      torch::NoGradGuard ng;
      for (auto& m : net->tracker->sam_mask_decoder->transformer->named_modules()) {
        if (m.key().find("cross_attn") == std::string::npos &&
            m.key().find("final_attn") == std::string::npos)
          continue;
        if (auto* att = m.value()->as<sam3::modeling::DecoderAttentionImpl>()) {
          att->q_proj->weight.mul_(a.pos_init);
          att->k_proj->weight.copy_(att->q_proj->weight);
        }
      }
    }

    auto params = net->parameters();
    int64_t n_params = 0;
    for (auto& p : params) n_params += p.numel();
    torch::optim::AdamW optim(params, torch::optim::AdamWOptions(a.lr).weight_decay(a.weight_decay));

    int start = 0;
    if (!a.resume.empty() && std::filesystem::exists(a.resume + "/state.json")) {
      copy_weights(*net, sam3::load_state_dict(a.resume + "/weights.safetensors"));
      torch::load(optim, a.resume + "/optimizer.pt", dev);
      std::ifstream f(a.resume + "/state.json");
      nlohmann::json st;
      f >> st;
      start = st.at("step").get<int>();
      std::printf("resumed from %s at step %d\n", a.resume.c_str(), start);
    }
    // --ema D: a moving average of the parameters, updated after every
    // optimizer step with min(D, (1 + t) / (10 + t)) (the usual warm-up of the
    // decay), written beside --out as <out>.ema.safetensors.
    std::vector<torch::Tensor> ema;
    if (a.ema > 0) {
      torch::NoGradGuard ng;
      for (auto& p : params) ema.push_back(p.detach().clone());
      if (start > 0) {
        if (!std::filesystem::exists(a.resume + "/ema.pt"))
          throw std::runtime_error("--ema: checkpoint " + a.resume + " has no ema.pt (written without --ema)");
        std::vector<torch::Tensor> saved;
        torch::load(saved, a.resume + "/ema.pt", dev);
        if (saved.size() != ema.size()) throw std::runtime_error("--ema: " + a.resume + "/ema.pt does not match the model");
        for (size_t i = 0; i < ema.size(); ++i) ema[i].copy_(saved[i]);
      }
    }

    const int64_t R = cfg.image_size;
    // resolution of the loss / targets / corrective-point sampling (default 2x low-res)
    const int64_t L = a.loss_res > 0 ? a.loss_res : 2 * cfg.low_res_size();
    // --workers W (CPU): the step's images are split between W threads, each
    // running its own forward and backward with --threads / W intra-op
    // threads; on 2 cores the ops of this small model do not parallelise
    // (1 intra-op thread: 0.67 s/step, 2: 0.72 s/step), two workers do.
    const int W = dev.is_cpu() ? std::min(a.workers, a.images) : 1;
    const int tpw = std::max(1, a.threads / W);
    if (W > 1) {
      sam3::set_num_threads(tpw);
      set_openblas_threads(1);
    }
    std::printf("sam3-train: %s, %lld parameters, input %lld, %d steps x %d images x <= %d objects, "
                "%d refinement iterations, %d worker(s) x %d thread(s) (%s, OMP_WAIT_POLICY=%s)\n",
                cfg.name.c_str(), static_cast<long long>(n_params), static_cast<long long>(R),
                a.steps, a.images, a.objects, a.refine, W, tpw, sam3::blas_info().c_str(),
                sam3::omp_wait_policy().c_str());
    std::fflush(stdout);

    const auto t0 = std::chrono::steady_clock::now();
    Stats acc;
    const StepContext ctx{a, cfg, net, dev, R, L};
    for (int step = start; step < a.steps; ++step) {
      for (auto& group : optim.param_groups())
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(cosine_lr(a, step));
      auto tick = std::chrono::steady_clock::now();
      auto lap = [&tick]() {
        auto now = std::chrono::steady_clock::now();
        double d = std::chrono::duration<double>(now - tick).count();
        tick = now;
        return d;
      };
      // ---- data, then forward + backward: each worker its share of the images
      std::vector<Shard> shards(static_cast<size_t>(W));
      run_workers(W, tpw, [&](int w) { make_shard(ctx, step, w, W, shards[static_cast<size_t>(w)]); });
      int n_terms = 0;
      for (auto& sh : shards) n_terms += sh.n_terms;
      if (n_terms == 0) continue;
      acc.t_data += lap();
      run_workers(W, tpw, [&](int w) {
        forward_backward(ctx, params, step, n_terms, shards[static_cast<size_t>(w)]);
      });
      acc.t_fwd_bwd += lap();
      // ---- gradients summed in worker order (deterministic for a given W), step
      double loss = 0;
      for (size_t i = 0; i < params.size(); ++i) {
        torch::Tensor g;
        for (auto& sh : shards)
          if (sh.grads.size() > i && sh.grads[i].defined()) g = g.defined() ? g + sh.grads[i] : sh.grads[i];
        params[i].mutable_grad() = g;  // undefined: unused this step, AdamW leaves it alone
      }
      for (auto& sh : shards) {
        loss += sh.loss;
        acc.add(sh.st);
      }
      torch::nn::utils::clip_grad_norm_(params, a.clip);
      optim.step();
      if (!ema.empty()) {
        torch::NoGradGuard ng;
        const double d = std::min(a.ema, (1.0 + step) / (10.0 + step));
        for (size_t i = 0; i < ema.size(); ++i) ema[i].mul_(d).add_(params[i].detach(), 1.0 - d);
      }
      acc.t_update += lap();
      acc.loss += loss;
      acc.n += 1;

      const int done = step + 1;
      if (done % a.log_every == 0 || done == a.steps) {
        const double el =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double per = el / (done - start);
        std::printf("step %5d/%d  lr %.2e  loss %.4f  train IoU: point(best of 3) %.3f  box %.3f  "
                    "after %d refinements %.3f  iou-mse %.4f  %.2f s/step (data %.2f fwd+bwd %.2f update %.2f)  elapsed %.1f min  ETA %.1f min\n",
                    done, a.steps, cosine_lr(a, step), acc.loss / std::max(1, acc.n),
                    acc.point_iou / std::max(1, acc.n_point), acc.box_iou / std::max(1, acc.n_box),
                    a.refine, acc.refine_iou / std::max(1, acc.n_refine),
                    acc.iou_mse / std::max(1, acc.n_point + acc.n_box), per, acc.t_data / std::max(1, acc.n),
                    acc.t_fwd_bwd / std::max(1, acc.n), acc.t_update / std::max(1, acc.n), el / 60,
                    per * (a.steps - done) / 60);
        std::fflush(stdout);
        acc = Stats{};
      }
      if (!a.resume.empty() && (done % a.checkpoint_every == 0) && done != a.steps) {
        std::filesystem::create_directories(a.resume);
        sam3::save_safetensors(a.resume + "/weights.safetensors", model->state_dict());
        torch::save(optim, a.resume + "/optimizer.pt");
        if (!ema.empty()) torch::save(ema, a.resume + "/ema.pt");
        std::ofstream(a.resume + "/state.json") << nlohmann::json{{"step", done}}.dump() << "\n";
      }
    }
    const double total =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    net->eval();
    std::map<std::string, std::string> meta{{"config", cfg.to_json().dump()},
                                            {"training_command", a.command},
                                            {"seed", std::to_string(a.seed)},
                                            {"steps", std::to_string(a.steps)}};
    sam3::save_safetensors(a.out, model->state_dict(), meta);
    std::printf("sam3-train: wrote %s after %.1f min of training (this run)\n", a.out.c_str(),
                total / 60);
    if (!ema.empty()) {
      torch::NoGradGuard ng;
      for (size_t i = 0; i < ema.size(); ++i) params[i].copy_(ema[i]);
      const std::string path = std::filesystem::path(a.out).replace_extension(".ema.safetensors").string();
      meta["ema"] = std::to_string(a.ema);
      sam3::save_safetensors(path, model->state_dict(), meta);
      std::printf("sam3-train: wrote %s (moving average, decay %g)\n", path.c_str(), a.ema);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sam3-train: %s\n", e.what());
    return 1;
  }
  return 0;
}
