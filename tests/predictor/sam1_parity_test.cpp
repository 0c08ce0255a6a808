// SAM 1 (segment-anything) image path: parity with the official SamPredictor
// on ../shared/fixtures/sam1/sam1_tiny_r256_e64_d4 (every case, every stored
// intermediate, tolerances of fixtures/sam1/README.md), the full-size
// manifests (vit_b / vit_l / vit_h: default config builds exactly their keys
// and shapes, size detection from their shapes), the strict loader and the
// safetensors route. The largest error per tensor kind is printed at the end.
#include <gtest/gtest.h>

#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "sam1/sam1_predictor.h"
#include "sam3/sam3.h"
#include "sam3/errors.h"

namespace sam3::sam1 {
namespace {

using nlohmann::json;

const std::string kDir = "sam1/sam1_tiny_r256_e64_d4";

// kind -> {largest error, its tolerance at that point, largest err/tol}
struct Margin {
  double err = 0, tol = 0, ratio = 0;
};
std::map<std::string, Margin>& margins() {
  static std::map<std::string, Margin> m;
  return m;
}
void record(const std::string& kind, double err, double tol) {
  auto& m = margins()[kind];
  const double r = tol > 0 ? err / tol : (err > 0 ? 1e9 : 0);
  if (r >= m.ratio) m = {err, tol, r};
}

class PrintMargins : public ::testing::Environment {
 public:
  void TearDown() override {
    if (margins().empty()) return;
    std::cout << "\nSAM 1 parity: largest error per tensor kind (tolerance at that tensor)\n";
    for (const auto& [k, m] : margins()) {
      std::cout << "  " << std::left << std::setw(36) << k << std::scientific << std::setprecision(2)
                << " err " << m.err << "  tol " << m.tol << "  err/tol " << m.ratio << "\n";
    }
    std::cout << std::defaultfloat;
  }
};
[[maybe_unused]] auto* const kEnv = ::testing::AddGlobalTestEnvironment(new PrintMargins);

torch::Tensor to_tensor(const cv::Mat& m) {
  return torch::from_blob(m.data, {m.rows, m.cols, 3}, torch::kByte).clone();
}

// float32 rule of the README: max|c - e| <= 1e-4 * max|e| + 1e-6
void expect_close(const std::string& kind, const std::string& name, const torch::Tensor& got_in,
                  const torch::Tensor& exp_in, double atol = -1) {
  ASSERT_TRUE(got_in.defined()) << name << ": not produced";
  auto got = got_in.to(torch::kCPU, torch::kDouble);
  auto exp = exp_in.to(torch::kCPU, torch::kDouble);
  ASSERT_EQ(got.sizes(), exp.sizes()) << name;
  if (exp.numel() == 0) return;  // e.g. no sparse prompt (mask only)
  const double err = (got - exp).abs().max().item<double>();
  const double tol = atol >= 0 ? atol : 1e-4 * exp.abs().max().item<double>() + 1e-6;
  record(kind, err, tol);
  EXPECT_LE(err, tol) << name;
}

struct Fixture {
  json cases;
  StateDict sd;
  StateDict expected;
  Sam1Config cfg;
  std::shared_ptr<Sam1Model> model;
  std::map<std::string, cv::Mat> images;
  std::map<std::string, Sam1Features> feats;
  std::map<std::string, Sam1EncodeTrace> traces;
};

Fixture& fx() {
  static std::unique_ptr<Fixture> f;
  if (f) return *f;
  f = std::make_unique<Fixture>();
  const std::string dir = test::fixture_path(kDir);
  f->cases = test::read_json(dir + "/cases.json");
  f->sd = load_state_dict(dir + "/sam1_tiny_r256_e64_d4.pth");
  f->expected = load_state_dict(dir + "/expected.safetensors");
  f->cfg = Sam1Config::from_json_file(dir + "/config.json");
  f->model = load_sam1(f->sd, f->cfg, torch::kCPU, "sam1_tiny_r256_e64_d4.pth");
  for (const auto& img : {"image_a", "image_b"}) {
    f->images[img] = test::read_rgb(dir + "/" + img + ".png");
    Sam1EncodeTrace tr;
    f->feats[img] = encode(*f->model, to_tensor(f->images[img]), false, &tr);
    f->traces[img] = tr;
  }
  return *f;
}

const torch::Tensor& expected(const std::string& name) {
  auto& e = fx().expected;
  auto it = e.find(name);
  if (it == e.end()) throw std::runtime_error("expected tensor missing: " + name);
  return it->second;
}

TEST(Sam1Config, FixtureJsonAndShapeDetectionAgree) {
  auto& f = fx();
  auto det = Sam1Config::from_state_dict(f.sd);
  EXPECT_TRUE(det.same_architecture(f.cfg)) << det.to_json().dump() << "\n" << f.cfg.to_json().dump();
  EXPECT_EQ(det.name, "custom");
  EXPECT_EQ(f.cfg.img_size, 256);
  EXPECT_EQ(f.cfg.grid(), 16);
  EXPECT_EQ(f.cfg.low_res_size(), 64);
  EXPECT_EQ(f.cfg.rel_pos_len(0), 27);
  EXPECT_EQ(f.cfg.rel_pos_len(1), 31);
  EXPECT_EQ(f.cfg.global_attn_indexes, (std::vector<int64_t>{1, 3}));
  // round trip through to_json
  EXPECT_TRUE(Sam1Config::from_json(f.cfg.to_json()).same_architecture(f.cfg));
  EXPECT_EQ(f.sd.size(), 202u);
  EXPECT_THROW(Sam1Config::preset("vit_x"), ConfigError);
}

TEST(Sam1Parity, ImagePath) {
  auto& f = fx();
  for (const auto& img : {"image_a", "image_b"}) {
    const std::string p = std::string(img) + ".";
    const auto& tr = f.traces[img];
    // PIL's integer resampler reproduced: exact
    auto ru = expected(p + "resized_uint8");
    ASSERT_EQ(tr.resized_uint8.sizes(), ru.sizes()) << img;
    const int64_t diff = (tr.resized_uint8.to(torch::kInt) - ru.to(torch::kInt)).abs().max().item<int64_t>();
    record("image.resized_uint8", static_cast<double>(diff), 0);
    EXPECT_EQ(diff, 0) << img;
    auto is = expected(p + "input_size");
    EXPECT_EQ(f.feats[img].input_size.first, is[0].item<int64_t>());
    EXPECT_EQ(f.feats[img].input_size.second, is[1].item<int64_t>());
    expect_close("image.input", p + "input", tr.input, expected(p + "input"));
    expect_close("image.image_embed", p + "image_embed", f.feats[img].image_embed,
                 expected(p + "image_embed"));
    if (f.expected.count(p + "patch_embed")) {
      expect_close("image.patch_embed", p + "patch_embed", tr.encoder.at(0),
                   expected(p + "patch_embed"));
      for (int64_t i = 0; i < f.cfg.depth; ++i) {
        const std::string n = p + "block" + std::to_string(i);
        expect_close("image.blockN", n, tr.encoder.at(i + 1), expected(n));
      }
    }
  }
  expect_close("model.pos_embed", "model.pos_embed", f.model->image_encoder->pos_embed,
               expected("model.pos_embed"), 0.0);
  c10::InferenceMode guard;
  expect_close("model.dense_pe", "model.dense_pe", f.model->prompt_encoder->get_dense_pe(),
               expected("model.dense_pe"));
}

// Kind name of a case tensor (README groups).
std::string kind_of(const std::string& suffix) {
  if (suffix == "prompt.point_coords" || suffix == "prompt.boxes") return "case.prompt.coords";
  if (suffix.find("iou_predictions") != std::string::npos) return "case.iou_predictions";
  if (suffix == "low_res_masks" || suffix == "decoder.low_res_logits_selected")
    return "case.low_res_masks";
  return "case." + suffix;
}

void run_case(const json& c) {
  auto& f = fx();
  const std::string name = c["name"];
  const bool bgr = name == "a_bgr_input";
  // a_bgr_input stores no tensors: identical outputs to a_point_multimask
  const std::string ref_case = bgr ? "a_point_multimask" : name;
  const std::string img = c["image"].get<std::string>().substr(0, 7);  // image_a / image_b
  SCOPED_TRACE(name);

  Sam1Features feats = f.feats[img];
  if (bgr) {
    auto rgb = to_tensor(f.images[img]);
    feats = encode(*f.model, rgb.flip({2}).contiguous(), /*bgr=*/true);
  }

  PredictArgs a;
  const json& pa = c.contains("predict_args") ? c["predict_args"] : c["predict_torch_args"];
  if (c["api"] == "predict_torch") {
    a.box = test::json_to_tensor(pa["boxes_original_pixels"], torch::kFloat);  // B x 4 (torch route)
  } else {
    if (!pa["point_coords"].is_null()) {
      // the oracle's prompt arrays were float32 (then float64 inside apply_coords)
      a.point_coords = test::json_to_tensor(pa["point_coords"], torch::kFloat);
      a.point_labels = test::json_to_tensor(pa["point_labels"], torch::kLong);
    }
    if (!pa["box"].is_null()) a.box = test::json_to_tensor(pa["box"], torch::kFloat);
    if (!pa["mask_input"].is_null()) {
      a.mask_input = expected(pa["mask_input"]["tensor"].get<std::string>())[0];  // 1 x h x w
    }
  }
  a.multimask_output = pa["multimask_output"].get<bool>();
  a.return_logits = pa["return_logits"].get<bool>();

  Sam1PredictTrace tr;
  auto p = predict(*f.model, feats, a, &tr);

  const std::string pre = "case." + ref_case + ".";
  const auto& ref_json = [&]() -> const json& {
    for (const auto& cc : f.cases["cases"])
      if (cc["name"] == ref_case) return cc;
    return c;
  }();
  int checked = 0;
  for (const auto& tn : ref_json["tensors"]) {
    const std::string full = tn;
    const std::string s = full.substr(pre.size());
    const auto& e = expected(full);
    const std::string kind = kind_of(s);
    ++checked;
    if (s == "prompt.point_coords") {
      expect_close(kind, full, tr.point_coords, e);
    } else if (s == "prompt.point_labels") {
      EXPECT_TRUE(torch::equal(tr.point_labels.to(torch::kLong), e.to(torch::kLong))) << full;
    } else if (s == "prompt.boxes") {
      expect_close(kind, full, tr.boxes, e);
    } else if (s == "mask_input") {
      expect_close(kind, full, tr.mask_input, e, 0.0);
    } else if (s == "sparse_embeddings") {
      expect_close(kind, full, tr.sparse, e);
    } else if (s == "dense_embeddings") {
      expect_close(kind, full, tr.dense, e);
    } else if (s == "decoder.all_low_res_logits") {
      expect_close(kind, full, tr.all_low_res_logits, e);
    } else if (s == "decoder.all_iou_predictions") {
      expect_close(kind, full, tr.all_iou_predictions, e, 1e-5);
    } else if (s == "decoder.low_res_logits_selected") {
      expect_close(kind, full, tr.low_res_selected, e);
    } else if (s == "decoder.iou_predictions_selected") {
      expect_close(kind, full, tr.iou_selected, e, 1e-5);
    } else if (s == "low_res_masks") {
      expect_close(kind, full, p.low_res_masks, e);
    } else if (s == "iou_predictions") {
      expect_close(kind, full, p.iou_predictions, e, 1e-5);
      // mask choice: best-IoU index exact
      if (e.size(-1) > 1) {
        EXPECT_TRUE(torch::equal(p.iou_predictions.argmax(-1), e.argmax(-1))) << full;
      }
    } else if (s == "masks_logits") {
      expect_close(kind, full, p.masks, e);
    } else if (s == "masks") {
      ASSERT_EQ(p.masks.sizes(), e.sizes()) << full;
      auto mine = p.masks > 0.5;
      auto ref = e.to(torch::kBool);
      auto differ = mine.ne(ref);
      const int64_t ndiff = differ.sum().item<int64_t>();
      const double frac = static_cast<double>(ndiff) / static_cast<double>(e.numel());
      record("case.masks (differing pixel fraction)", frac, 5e-4);
      EXPECT_LE(frac, 5e-4) << full;
      if (ndiff > 0) {
        // the reference logit at those pixels (reference low-res logits through
        // the same post-processing) must be within 1e-3 of the threshold
        auto lr = expected(pre + "low_res_masks").to(torch::kFloat);
        const bool batched = lr.dim() == 4;
        if (!batched) lr = lr.unsqueeze(0);
        auto full_ref = postprocess_masks(lr, f.cfg.img_size, feats.input_size, feats.original_size);
        if (!batched) full_ref = full_ref[0];
        auto near = (full_ref - f.cfg.mask_threshold).abs().masked_select(differ);
        const double worst = near.max().item<double>();
        record("case.masks (|ref logit| at flips)", worst, 1e-3);
        EXPECT_LE(worst, 1e-3) << full << ": " << ndiff << " pixels differ";
      }
    } else {
      ADD_FAILURE() << "unchecked tensor " << full;
      --checked;
    }
  }
  EXPECT_GT(checked, 5);
  // outputs' shapes as the official predict / predict_torch
  if (c.contains("output_shapes")) {
    for (const auto& [k, v] : c["output_shapes"].items()) {
      auto want = v.get<std::vector<int64_t>>();
      const torch::Tensor& t = k == "masks" ? p.masks : k == "iou_predictions" ? p.iou_predictions : p.low_res_masks;
      EXPECT_EQ(t.sizes().vec(), want) << k;
    }
  }
}

TEST(Sam1Parity, EveryCase) {
  auto& f = fx();
  ASSERT_GE(f.cases["cases"].size(), 10u);
  for (const auto& c : f.cases["cases"]) run_case(c);
}

TEST(Sam1Parity, SafetensorsRouteAndDetection) {
  auto& f = fx();
  const std::string path = test::temp_dir() + "/sam1_tiny.safetensors";
  save_safetensors(path, f.sd);
  auto m2 = load_sam1_file(path);  // size detected from the shapes
  EXPECT_TRUE(m2->config().same_architecture(f.cfg));
  auto feats = encode(*m2, to_tensor(f.images["image_b"]));
  EXPECT_TRUE(torch::equal(feats.image_embed, f.feats["image_b"].image_embed));
}

TEST(Sam1Loader, StrictListsEveryProblem) {
  auto& f = fx();
  StateDict sd = f.sd;
  sd.erase("image_encoder.blocks.0.attn.rel_pos_h");
  sd.erase("mask_decoder.iou_token.weight");
  sd["image_encoder.blocks.1.attn.rel_pos_w"] = torch::zeros({27, 16});
  sd["prompt_encoder.no_mask_embed.weight"] = torch::zeros({1, 256}, torch::kInt);
  sd["image_encoder.blocks.9.norm1.weight"] = torch::zeros({64});
  sd["some_wrapper.extra"] = torch::zeros({1});  // outside the model's namespaces: ignored
  try {
    load_sam1(sd, f.cfg);
    FAIL() << "no CheckpointError";
  } catch (const CheckpointError& e) {
    const auto& pr = e.problems();
    ASSERT_EQ(pr.size(), 5u) << e.what();
    std::string all;
    for (const auto& s : pr) all += s + "\n";
    for (const auto& k : {"missing key 'image_encoder.blocks.0.attn.rel_pos_h'",
                          "missing key 'mask_decoder.iou_token.weight'",
                          "key 'image_encoder.blocks.1.attn.rel_pos_w': expected shape [31, 16], got [27, 16]",
                          "prompt_encoder.no_mask_embed.weight': expected a floating-point",
                          "unexpected key 'image_encoder.blocks.9.norm1.weight'"}) {
      const std::string needle = k;
      EXPECT_NE(all.find(needle), std::string::npos) << needle << "\nin:\n" << all;
    }
  }
}

// A SAM 1 .pth behind sam3::Model / InteractiveImagePredictor (what the CLI
// and the GStreamer element use) gives exactly Sam1Predictor's (parity-tested)
// output, in single and batch mode; mask_threshold applies; fp32 only.
TEST(Sam1Integration, ModelLoadAndInteractivePredictorEqualSam1Predictor) {
  const std::string ckpt = test::fixture_path(kDir + "/sam1_tiny_r256_e64_d4.pth");
  auto model = sam3::Model::load(ckpt);
  EXPECT_EQ(model->config().family, "sam1");
  EXPECT_EQ(model->config().image_size, 256);
  cv::Mat a = test::read_rgb(test::fixture_path(kDir + "/image_a.png"));
  cv::Mat b = test::read_rgb(test::fixture_path(kDir + "/image_b.png"));
  Sam1Predictor ref(load_sam1_file(ckpt));
  sam3::PredictArgs args;
  args.point_coords = torch::tensor({{200.f, 150.f}});
  args.point_labels = torch::tensor({1});
  sam3::InteractiveImagePredictor pred(model);
  pred.set_image(a);
  ref.set_image(a);
  EXPECT_TRUE(torch::equal(pred.get_image_embedding(), ref.get_image_embedding()));
  auto got = pred.predict(args);
  auto want = ref.predict(args);
  EXPECT_TRUE(torch::equal(got.masks, want.masks));
  EXPECT_TRUE(torch::equal(got.iou_predictions, want.iou_predictions));
  EXPECT_TRUE(torch::equal(got.low_res_masks, want.low_res_masks));
  // mask_threshold is honoured (SAM 1 thresholds the up-sampled logits)
  pred.mask_threshold = 2.0;
  sam3::PredictArgs logits_args = args;
  logits_args.return_logits = true;
  auto logits = ref.predict(logits_args).masks;
  EXPECT_TRUE(torch::equal(pred.predict(args).masks, (logits > 2.0).to(torch::kFloat)));
  pred.mask_threshold = 0.0;
  // batch mode: image b with a box equals the single-image run
  sam3::PredictArgs box;
  box.box = torch::tensor({30.f, 40.f, 250.f, 200.f});
  pred.set_image_batch({a, b});
  ref.set_image(b);
  auto batch = pred.predict_batch({args, box});
  auto single_b = ref.predict(box);
  EXPECT_TRUE(torch::equal(batch[1].masks, single_b.masks));
  EXPECT_TRUE(torch::equal(batch[1].iou_predictions, single_b.iou_predictions));
  EXPECT_TRUE(torch::equal(batch[0].masks, want.masks));
  sam3::ModelOptions bf16;
  bf16.precision = sam3::Precision::kBFloat16;
  try {
    sam3::Model::load(ckpt, bf16);
    ADD_FAILURE() << "bf16 SAM 1 should be refused";
  } catch (const sam3::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("fp32 only"), std::string::npos) << e.what();
  }
}

TEST(Sam1Predict, ArgumentErrors) {
  auto& f = fx();
  const auto& feats = f.feats["image_a"];
  PredictArgs a;
  a.point_coords = torch::tensor({{10.f, 10.f}});
  EXPECT_THROW(predict(*f.model, feats, a), InvalidArgument);  // no labels
  a.point_labels = torch::tensor({1, 0});
  EXPECT_THROW(predict(*f.model, feats, a), InvalidArgument);  // label count
  a = {};
  a.mask_input = torch::zeros({1, 256, 256});
  EXPECT_THROW(predict(*f.model, feats, a), InvalidArgument);  // wrong low-res size
  a = {};
  a.box = torch::tensor({1.f, 2.f, 3.f});
  EXPECT_THROW(predict(*f.model, feats, a), InvalidArgument);
  a = {};
  a.point_coords = torch::tensor({{10.f, 10.f}});
  a.point_labels = torch::tensor({1});
  a.normalize_coords = false;
  EXPECT_THROW(predict(*f.model, feats, a), InvalidArgument);
  EXPECT_THROW(predict(*f.model, Sam1Features{}, PredictArgs{}), NotReadyError);
  Sam1Predictor pred(f.model);
  EXPECT_THROW(pred.predict(), NotReadyError);
  pred.set_image(f.images["image_a"]);
  EXPECT_TRUE(torch::equal(pred.get_image_embedding(), feats.image_embed));
}

TEST(Sam1Predict, BatchedPromptShapes) {
  auto& f = fx();
  const auto& feats = f.feats["image_a"];
  PredictArgs a;
  a.box = torch::tensor({{201.6f, 168.4f, 235.3f, 264.2f}, {127.1f, 34.2f, 299.6f, 95.4f}});
  a.mask_input = torch::zeros({1, f.cfg.low_res_size(), f.cfg.low_res_size()});  // broadcast
  a.multimask_output = false;
  auto p = predict(*f.model, feats, a);
  EXPECT_EQ(p.masks.sizes().vec(), (std::vector<int64_t>{2, 1, 360, 480}));
  EXPECT_EQ(p.iou_predictions.sizes().vec(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(p.low_res_masks.sizes().vec(), (std::vector<int64_t>{2, 1, 64, 64}));
  a = {};
  a.point_coords = torch::tensor({{{417.8f, 67.4f}}, {{133.4f, 163.7f}}});  // 2 x 1 x 2
  a.point_labels = torch::tensor({{1}, {1}});
  auto q = predict(*f.model, feats, a);
  EXPECT_EQ(q.masks.sizes().vec(), (std::vector<int64_t>{2, 3, 360, 480}));
  // each row equals the single-prompt prediction (float32 route: same coords)
  PredictArgs one;
  one.point_coords = torch::tensor({{417.8f, 67.4f}});
  one.point_labels = torch::tensor({1});
  auto r = predict(*f.model, feats, one);
  EXPECT_LE(test::max_abs_diff(q.low_res_masks[0], r.low_res_masks), 1e-3);
  a.box = torch::tensor({{1.f, 2.f, 30.f, 40.f}, {1.f, 2.f, 30.f, 40.f}, {1.f, 2.f, 3.f, 4.f}});
  EXPECT_THROW(predict(*f.model, feats, a), InvalidArgument);  // batch 2 vs 3
}

// ---- full-size manifests ----

class Sam1Manifest : public ::testing::TestWithParam<std::string> {};

TEST_P(Sam1Manifest, DefaultConfigBuildsExactlyTheKeysAndDetectionPicksTheSize) {
  const std::string size = GetParam();  // vit_b / vit_l / vit_h
  auto m = test::read_json(test::fixture_path("sam1/manifest-sam_" + size + ".json"));
  ASSERT_TRUE(m.contains("keys"));
  std::map<std::string, std::vector<int64_t>> want;
  for (const auto& [k, v] : m["keys"].items()) {
    if (v["role"] == "image_predictor") want[k] = v["shape"].get<std::vector<int64_t>>();
  }
  ASSERT_EQ(want.size(), m["num_keys"].get<size_t>());

  const auto cfg = Sam1Config::preset(size);
  EXPECT_EQ(cfg.name, size);
  {
    torch::NoGradGuard no_grad;
    Sam1Model net(cfg);
    std::map<std::string, std::vector<int64_t>> built;
    for (const auto& p : net.named_parameters(true)) built[p.key()] = p.value().sizes().vec();
    for (const auto& b : net.named_buffers(true)) built[b.key()] = b.value().sizes().vec();
    std::vector<std::string> problems;
    int64_t elems = 0;
    for (const auto& [k, s] : want) {
      auto it = built.find(k);
      if (it == built.end()) {
        problems.push_back("not built: " + k);
      } else if (it->second != s) {
        problems.push_back("shape: " + k);
      }
    }
    for (const auto& [k, s] : built) {
      if (!want.count(k)) problems.push_back("extra: " + k);
      int64_t n = 1;
      for (auto d : s) n *= d;
      elems += n;
    }
    EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front();
    EXPECT_EQ(elems, m["parameter_count"]["state_dict_elements"].get<int64_t>());
  }
  // size detection from the manifest's shapes alone (no memory: expanded scalars)
  StateDict shapes_only;
  for (const auto& [k, s] : want) shapes_only[k] = torch::zeros({}).expand(s);
  auto det = Sam1Config::from_state_dict(shapes_only);
  EXPECT_EQ(det.name, size);
  EXPECT_TRUE(det.same_architecture(cfg)) << det.to_json().dump();
  // the manifest's architecture block reads back as the preset
  auto from_manifest = Sam1Config::from_json(m);
  EXPECT_TRUE(from_manifest.same_architecture(cfg)) << from_manifest.to_json().dump();
  EXPECT_EQ(cfg.low_res_size(), m["architecture"]["mask_input_size"][0].get<int64_t>());
  EXPECT_EQ(cfg.grid(), m["architecture"]["image_embedding_size"][0].get<int64_t>());
}

INSTANTIATE_TEST_SUITE_P(Sizes, Sam1Manifest, ::testing::Values("vit_b", "vit_l", "vit_h"));

}  // namespace
}  // namespace sam3::sam1
