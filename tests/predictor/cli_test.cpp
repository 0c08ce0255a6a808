// End-to-end tests of the sam3-predict CLI (and a smoke run of sam3-bench):
// the tools are run as child processes on the tiny-a parity fixtures. The
// library's own parity test checks the numerics strictly; here the CLI's
// plumbing is checked (prompt JSON -> PredictArgs, outputs, raw tensors,
// error reporting).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sam3/default_model.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "fixtures.h"
#include "sam3/checkpoint.h"
#include "postprocess.h"
#include "sam1/sam1_predictor.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using sam3::test::fixture_path;
using sam3::test::max_abs_diff;
using sam3::test::read_file;
using sam3::test::temp_dir;
using sam3::test::write_file;

// ---------------------------------------------------------------------------
// Running the tools.

struct ToolResult {
  bool exited = false;  // false: killed by a signal
  int code = -1;        // exit status (or 128 + signal as reported by sh)
  std::string out;
  std::string err;
};

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string tool_path(const std::string& name) {
  return sam3::test::build_dir() + "/predictor/tools/" + name;
}

ToolResult run_tool(const std::string& name, const std::vector<std::string>& args) {
  const std::string dir = temp_dir();
  const std::string out = dir + "/stdout.txt";
  const std::string err = dir + "/stderr.txt";
  std::string cmd = shell_quote(tool_path(name));
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " >" + shell_quote(out) + " 2>" + shell_quote(err) + " </dev/null";
  const int status = std::system(cmd.c_str());
  ToolResult r;
  r.exited = status != -1 && WIFEXITED(status);
  r.code = r.exited ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  fs::remove_all(dir);
  return r;
}

ToolResult run_predict(const std::vector<std::string>& args) {
  return run_tool("sam3-predict", args);
}

std::string describe(const ToolResult& r) {
  return "exit " + std::to_string(r.code) + "\n--- stdout:\n" + r.out + "\n--- stderr:\n" + r.err;
}

// ---------------------------------------------------------------------------
// Fixture data.

std::string tiny(const std::string& rel) { return fixture_path("sam3/tiny-a/" + rel); }

const json& cases() {
  static const json doc = json::parse(read_file(tiny("cases.json")));
  return doc;
}

const json& find_case(const std::string& name) {
  for (const auto& c : cases()["cases"]) {
    if (c["name"] == name) return c;
  }
  static const json none;
  ADD_FAILURE() << "no case " << name << " in tiny-a cases.json";
  return none;
}

const sam3::StateDict& expected() {
  static const sam3::StateDict sd = sam3::load_safetensors(tiny("expected.safetensors"));
  return sd;
}

torch::Tensor expected_tensor(const std::string& name) {
  auto it = expected().find(name);
  if (it == expected().end()) {
    ADD_FAILURE() << "expected.safetensors has no tensor " << name;
    return torch::zeros({0});
  }
  return it->second;
}

std::string image_path(int index) {
  return tiny(cases()["images"][index]["file"].get<std::string>());
}

// The case's call (+ predictor_init) as a --prompt object.
json prompt_from_case(const json& c) {
  json p = c["call"];
  if (p.contains("mask_input") && p["mask_input"].is_object()) {
    p["mask_input"] = {{"file", tiny("expected.safetensors")},
                       {"tensor", p["mask_input"]["tensor"]}};
  }
  for (const auto& item : c["predictor_init"].items()) p[item.key()] = item.value();
  return p;
}

std::string write_prompt(const std::string& dir, const json& prompt) {
  const std::string path = dir + "/prompt.json";
  write_file(path, prompt.dump());
  return path;
}

std::vector<int64_t> shape_of(const json& j) { return j.get<std::vector<int64_t>>(); }

// ---------------------------------------------------------------------------
// Checks.

// Raw outputs `prefix`{masks,iou_predictions,low_res_masks} against one
// recorded output (an element of a case's "outputs").
void expect_raw_matches(const sam3::StateDict& raw, const std::string& prefix,
                        const json& outputs, bool return_logits, double mask_threshold) {
  for (const char* key : {"masks", "iou_predictions", "low_res_masks"}) {
    ASSERT_TRUE(raw.count(prefix + key)) << "raw output lacks " << prefix << key;
    const auto& t = raw.at(prefix + key);
    EXPECT_EQ(t.scalar_type(), torch::kFloat32) << prefix << key;
    EXPECT_EQ(t.sizes().vec(), shape_of(outputs["shapes"][key])) << prefix << key;
  }
  const auto& masks = raw.at(prefix + "masks");
  if (masks.sizes().vec() != shape_of(outputs["shapes"]["masks"])) return;

  const auto name = [&](const char* key) { return outputs[key].get<std::string>(); };
  EXPECT_LE(max_abs_diff(raw.at(prefix + "iou_predictions"),
                         expected_tensor(name("iou_predictions"))),
            1e-4);
  EXPECT_LE(max_abs_diff(raw.at(prefix + "low_res_masks"), expected_tensor(name("low_res_masks"))),
            2e-3);

  const torch::Tensor exp_masks = expected_tensor(name("masks"));
  torch::Tensor exp_binary;
  if (return_logits) {
    EXPECT_LE(max_abs_diff(masks, exp_masks), 2e-3) << "returned logits";
    exp_binary = exp_masks > mask_threshold;
  } else {
    ASSERT_TRUE(outputs["masks_packbits"].get<bool>());
    exp_binary = sam3::test::unpack_bits(exp_masks, masks.sizes());
    EXPECT_TRUE(((masks == 0) | (masks == 1)).all().item<bool>()) << "masks are not 0/1";
  }
  const torch::Tensor got_binary = return_logits ? masks > mask_threshold : masks > 0.5;
  const int64_t mismatches = (got_binary != exp_binary).sum().item<int64_t>();
  EXPECT_LE(static_cast<double>(mismatches), 1e-4 * static_cast<double>(masks.numel()))
      << mismatches << " of " << masks.numel() << " mask pixels differ";
}

// PNGs and JSON written for one image against its raw outputs.
void expect_files_match(const std::string& out_dir, const std::string& stem,
                        const sam3::StateDict& raw, const std::string& prefix,
                        bool return_logits, double mask_threshold) {
  torch::Tensor masks = raw.at(prefix + "masks");
  torch::Tensor ious = raw.at(prefix + "iou_predictions");
  const bool multi_object = masks.dim() == 4;
  if (!multi_object) {
    masks = masks.unsqueeze(0);
    ious = ious.reshape({1, -1});
  }
  ASSERT_EQ(masks.dim(), 4);
  const int64_t height = masks.size(2), width = masks.size(3);
  const std::string json_path = out_dir + "/" + stem + ".json";
  ASSERT_TRUE(fs::exists(json_path)) << json_path;
  const json doc = json::parse(read_file(json_path));
  EXPECT_EQ(doc["width"].get<int64_t>(), width);
  EXPECT_EQ(doc["height"].get<int64_t>(), height);
  EXPECT_TRUE(doc["image"].is_string());
  ASSERT_EQ(doc["objects"].size(), static_cast<size_t>(masks.size(0)));

  for (int64_t b = 0; b < masks.size(0); ++b) {
    const json& obj_masks = doc["objects"][b]["masks"];
    ASSERT_EQ(obj_masks.size(), static_cast<size_t>(masks.size(1)));
    for (int64_t k = 0; k < masks.size(1); ++k) {
      const std::string name = stem + (multi_object ? ".obj" + std::to_string(b) : "") +
                               ".mask" + std::to_string(k) + ".png";
      const std::string png_path = out_dir + "/" + name;
      ASSERT_TRUE(fs::exists(png_path)) << png_path;
      cv::Mat png = cv::imread(png_path, cv::IMREAD_UNCHANGED);
      ASSERT_FALSE(png.empty()) << png_path;
      EXPECT_EQ(png.type(), CV_8UC1) << png_path;
      EXPECT_EQ(png.rows, height) << png_path;
      EXPECT_EQ(png.cols, width) << png_path;
      const torch::Tensor m = masks[b][k];
      const int64_t count =
          (return_logits ? m > mask_threshold : m > 0.5).sum().item<int64_t>();
      EXPECT_EQ(cv::countNonZero(png), count) << png_path;
      EXPECT_EQ(cv::countNonZero(png == 255), count) << png_path << " is not 0/255";

      const json& entry = obj_masks[k];
      EXPECT_EQ(entry["file"].get<std::string>(), name);
      EXPECT_EQ(entry["area"].get<int64_t>(), count);
      EXPECT_NEAR(entry["iou_prediction"].get<double>(), ious[b][k].item<double>(), 1e-6);
      if (count > 0) {
        ASSERT_TRUE(entry["bbox_xywh"].is_array());
        EXPECT_EQ(entry["bbox_xywh"].size(), 4u);
      } else {
        EXPECT_TRUE(entry["bbox_xywh"].is_null());
      }
    }
  }
}

// Exact equality of two raw outputs (same process, same prompt).
void expect_raw_equal(const sam3::StateDict& a, const sam3::StateDict& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_EQ(max_abs_diff(t, b.at(name)), 0.0) << name;
  }
}

std::vector<std::string> model_args() {
  return {"--checkpoint", tiny("checkpoint.pt"), "--config", tiny("config.json"), "--quiet"};
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Runs sam3-predict with the model, `args`, an output folder and --save-raw;
// returns the raw tensors (empty on failure, which is reported).
// Runs the CLI with exactly these arguments (plus the output options).
sam3::StateDict run_raw_with(const std::vector<std::string>& args, const std::string& out_dir) {
  const std::string raw_path = out_dir + "/raw.safetensors";
  ToolResult r = run_predict(concat(args, {"--output-dir", out_dir, "--save-raw", raw_path}));
  EXPECT_TRUE(r.exited && r.code == 0) << describe(r);
  if (!fs::exists(raw_path)) {
    ADD_FAILURE() << "no raw output " << raw_path;
    return {};
  }
  return sam3::load_safetensors(raw_path);
}

sam3::StateDict run_raw(const std::vector<std::string>& args, const std::string& out_dir) {
  return run_raw_with(concat(model_args(), args), out_dir);
}

// ---------------------------------------------------------------------------
// Cases of tiny-a's cases.json through --prompt.

class CliCaseTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CliCaseTest, MatchesExpected) {
  const json& c = find_case(GetParam());
  ASSERT_FALSE(c.is_null());
  ASSERT_EQ(c["api"], "predict");
  const std::string dir = temp_dir();
  const std::string prompt = write_prompt(dir, prompt_from_case(c));
  const std::string out_dir = dir + "/out";
  const int image = c["image"].get<int>();
  sam3::StateDict raw = run_raw({"--image", image_path(image), "--prompt", prompt}, out_dir);
  ASSERT_FALSE(raw.empty());
  EXPECT_EQ(raw.size(), 3u) << "single image: no batch prefix";

  const bool logits = c["call"]["return_logits"].get<bool>();
  const double thr = c["predictor_init"]["mask_threshold"].get<double>();
  expect_raw_matches(raw, "", c["outputs"], logits, thr);
  const std::string stem = fs::path(image_path(image)).stem().string();
  expect_files_match(out_dir, stem, raw, "", logits, thr);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(TinyA, CliCaseTest,
                         ::testing::Values("point_multimask", "box_single", "box_two_points",
                                           "multi_box", "multi_object_points", "return_logits",
                                           "refine_with_mask", "mask_only",
                                           "normalize_coords_false", "no_prompt",
                                           "postproc_holes_sprinkles", "mask_threshold_nonzero"),
                         [](const auto& info) { return info.param; });

// predict_batch case: two --image flags and the *_batch keys.
TEST(CliBatch, BatchCaseWithPerImagePrompts) {
  const json& c = find_case("batch");
  ASSERT_EQ(c["api"], "predict_batch");
  const std::string dir = temp_dir();
  const std::string prompt = write_prompt(dir, prompt_from_case(c));
  const std::string out_dir = dir + "/out";
  sam3::StateDict raw = run_raw(
      {"--image", image_path(0), "--image", image_path(1), "--prompt", prompt}, out_dir);
  ASSERT_FALSE(raw.empty());
  EXPECT_EQ(raw.size(), 6u);
  for (int j = 0; j < 2; ++j) {
    SCOPED_TRACE("batch" + std::to_string(j));
    const std::string prefix = "batch" + std::to_string(j) + ".";
    expect_raw_matches(raw, prefix, c["outputs"][j], false, 0.0);
    expect_files_match(out_dir, "img" + std::to_string(j), raw, prefix, false, 0.0);
  }
  fs::remove_all(dir);
}

// Batch mode with the same prompt for both images: image 0 = point_multimask.
TEST(CliBatch, SamePromptForEveryImage) {
  const json& c = find_case("point_multimask");
  const std::string dir = temp_dir();
  const std::string out_dir = dir + "/out";
  sam3::StateDict raw = run_raw(
      {"--image", image_path(0), "--image", image_path(1), "--point", "144,126,1"}, out_dir);
  ASSERT_FALSE(raw.empty());
  expect_raw_matches(raw, "batch0.", c["outputs"], false, 0.0);
  ASSERT_TRUE(raw.count("batch1.masks"));
  EXPECT_EQ(raw.at("batch1.masks").sizes().vec(), (std::vector<int64_t>{3, 299, 401}));
  expect_files_match(out_dir, "img0", raw, "batch0.", false, 0.0);
  expect_files_match(out_dir, "img1", raw, "batch1.", false, 0.0);
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------
// Quick flags = the equivalent JSON.

void expect_flags_equal_json(const json& prompt, const std::vector<std::string>& flags,
                             int image) {
  const std::string dir = temp_dir();
  const std::string prompt_path = write_prompt(dir, prompt);
  sam3::StateDict from_json =
      run_raw({"--image", image_path(image), "--prompt", prompt_path}, dir + "/a");
  sam3::StateDict from_flags = run_raw(concat({"--image", image_path(image)}, flags), dir + "/b");
  ASSERT_FALSE(from_json.empty());
  expect_raw_equal(from_json, from_flags);
  fs::remove_all(dir);
}

TEST(CliFlags, PointEqualsJson) {
  expect_flags_equal_json({{"point_coords", {{144.0, 126.0}}}, {"point_labels", {1}}},
                          {"--point", "144,126,1"}, 0);
}

TEST(CliFlags, BoxesAndSingleMaskEqualJson) {
  json p = prompt_from_case(find_case("multi_box"));
  expect_flags_equal_json(p,
                          {"--box", "264,54,408,162", "--box", "72,54,216,198", "--box",
                           "278,201,394,317", "--single-mask"},
                          0);
}

TEST(CliFlags, BoxWithPointsEqualsJson) {
  json p = prompt_from_case(find_case("box_two_points"));
  expect_flags_equal_json(p,
                          {"--box", "221,45,341,135", "--point", "280,90,1", "--point",
                           "300.5,120.25,0", "--single-mask"},
                          1);
}

TEST(CliFlags, PointsExtendJsonAndFlagsOverride) {
  // JSON has the first point and multimask; the flags add two points and
  // switch to a single mask -> pos_neg_points.
  const json& c = find_case("pos_neg_points");
  const std::string dir = temp_dir();
  json partial = {{"point_coords", {{144.0, 126.0}}},
                  {"point_labels", {1}},
                  {"multimask_output", true}};
  const std::string prompt = write_prompt(dir, partial);
  sam3::StateDict raw = run_raw({"--image", image_path(0), "--prompt", prompt, "--point",
                                 "336,259,0", "--point", "120,290,1", "--single-mask"},
                                dir + "/out");
  ASSERT_FALSE(raw.empty());
  expect_raw_matches(raw, "", c["outputs"], false, 0.0);
  fs::remove_all(dir);
}

TEST(CliFlags, ThresholdFlagsOverrideJson) {
  const json& c = find_case("postproc_holes_sprinkles");
  const std::string dir = temp_dir();
  json p = prompt_from_case(c);
  p["max_hole_area"] = 0.0;  // overridden by the flags below
  p["max_sprinkle_area"] = 0.0;
  const std::string prompt = write_prompt(dir, p);
  sam3::StateDict raw = run_raw({"--image", image_path(0), "--prompt", prompt, "--max-hole-area",
                                 "300", "--max-sprinkle-area", "60", "--mask-threshold", "0"},
                                dir + "/out");
  ASSERT_FALSE(raw.empty());
  expect_raw_matches(raw, "", c["outputs"], false, 0.0);
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------
// Several images one by one.

void expect_two_image_outputs(const sam3::StateDict& raw, const std::string& out_dir) {
  ASSERT_EQ(raw.size(), 6u);
  for (const char* name : {"batch0.masks", "batch0.iou_predictions", "batch0.low_res_masks",
                           "batch1.masks", "batch1.iou_predictions", "batch1.low_res_masks"}) {
    EXPECT_TRUE(raw.count(name)) << name;
  }
  expect_raw_matches(raw, "batch0.", find_case("point_multimask")["outputs"], false, 0.0);
  expect_files_match(out_dir, "img0", raw, "batch0.", false, 0.0);
  expect_files_match(out_dir, "img1", raw, "batch1.", false, 0.0);
}

TEST(CliInputs, ImagesDir) {
  const std::string dir = temp_dir();
  const std::string images = dir + "/images";
  fs::create_directories(images);
  fs::copy_file(image_path(0), images + "/img0.png");
  fs::copy_file(image_path(1), images + "/img1.png");
  write_file(images + "/notes.txt", "not an image");
  const std::string out_dir = dir + "/out";
  sam3::StateDict raw = run_raw({"--images-dir", images, "--point", "144,126,1"}, out_dir);
  ASSERT_FALSE(raw.empty());
  expect_two_image_outputs(raw, out_dir);
  EXPECT_FALSE(fs::exists(out_dir + "/notes.json"));
  fs::remove_all(dir);
}

TEST(CliInputs, ImageListWithCommentsAndRelativePaths) {
  const std::string dir = temp_dir();
  fs::copy_file(image_path(0), dir + "/img0.png");
  const std::string list = dir + "/list.txt";
  write_file(list, "# two images\nimg0.png\n\n  " + image_path(1) + "  \n# end\n");
  const std::string out_dir = dir + "/out";
  sam3::StateDict raw = run_raw({"--image-list", list, "--point", "144,126,1"}, out_dir);
  ASSERT_FALSE(raw.empty());
  expect_two_image_outputs(raw, out_dir);
  fs::remove_all(dir);
}

TEST(CliInputs, GrayAndAlphaImagesAreConverted) {
  const std::string dir = temp_dir();
  cv::Mat bgr = cv::imread(image_path(0), cv::IMREAD_COLOR);
  ASSERT_FALSE(bgr.empty());
  cv::Mat gray, bgra;
  cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
  cv::cvtColor(bgr, bgra, cv::COLOR_BGR2BGRA);
  ASSERT_TRUE(cv::imwrite(dir + "/gray.png", gray));
  ASSERT_TRUE(cv::imwrite(dir + "/rgba.png", bgra));
  const std::string out_dir = dir + "/out";
  sam3::StateDict raw = run_raw(
      {"--image", dir + "/gray.png", "--image", dir + "/rgba.png", "--point", "144,126,1"},
      out_dir);
  ASSERT_FALSE(raw.empty());
  ASSERT_TRUE(raw.count("batch0.masks"));
  EXPECT_EQ(raw.at("batch0.masks").sizes().vec(), (std::vector<int64_t>{3, 360, 480}));
  // The alpha channel is dropped: the RGBA copy gives image 0's result.
  expect_raw_matches(raw, "batch1.", find_case("point_multimask")["outputs"], false, 0.0);
  expect_files_match(out_dir, "gray", raw, "batch0.", false, 0.0);
  expect_files_match(out_dir, "rgba", raw, "batch1.", false, 0.0);
  fs::remove_all(dir);
}

TEST(CliInputs, ProgressAndSummaryOnStderr) {
  const std::string dir = temp_dir();
  ToolResult r = run_predict({"--checkpoint", tiny("checkpoint.pt"), "--image", image_path(0),
                              "--image-list", "/dev/null", "--output-dir", dir});
  // /dev/null is an empty list -> usage error.
  EXPECT_EQ(r.code, 2) << describe(r);
  r = run_predict({"--checkpoint", tiny("checkpoint.pt"), "--image", image_path(0), "--point",
                   "144,126,1", "--output-dir", dir});
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_NE(r.err.find("[1/1] img0.png: set_image "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" ms, predict "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 image, 3 masks"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/img0.mask2.png"));
  fs::remove_all(dir);
}

// Without --checkpoint the CLI runs the bundled default model
// (models/sam3-synth-small.safetensors): same output as naming it.
TEST(CliInputs, DefaultCheckpointIsTheBundledModel) {
  const std::string dir = temp_dir();
  const std::string bundled = sam3::default_model_path();
  ASSERT_TRUE(fs::is_regular_file(bundled)) << bundled;
  sam3::StateDict a = run_raw_with({"--image", image_path(0), "--box", "40,30,200,180"},
                                   dir + "/default");
  sam3::StateDict b = run_raw_with(
      {"--checkpoint", bundled, "--image", image_path(0), "--box", "40,30,200,180"},
      dir + "/named");
  ASSERT_TRUE(a.count("masks") && b.count("masks"));
  EXPECT_TRUE(torch::equal(a.at("masks"), b.at("masks")));
  EXPECT_TRUE(torch::equal(a.at("iou_predictions"), b.at("iou_predictions")));
  // a readable error names where the default was looked for
  ToolResult r = run_predict({"--checkpoint", dir + "/missing.safetensors", "--image",
                              image_path(0), "--box", "40,30,200,180"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("missing.safetensors"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

TEST(CliInputs, Help) {
  ToolResult r = run_predict({"--help"});
  EXPECT_EQ(r.code, 0) << describe(r);
  for (const char* word : {"--checkpoint", "--prompt", "point_coords", "mask_input", "--point",
                           "--box", "--save-raw", "--images-dir", "--image-list", "Example"}) {
    EXPECT_NE(r.out.find(word), std::string::npos) << word;
  }
}

// ---------------------------------------------------------------------------
// Bad input: one clear message, exit 1 or 2, never a crash.

struct BadInput {
  std::string name;
  std::vector<std::string> args;  // {DIR} is replaced by a temp folder
  std::string prompt;             // written to {DIR}/prompt.json if not empty
  std::string word;               // must appear in the message
};

void PrintTo(const BadInput& b, std::ostream* os) { *os << b.name; }

void expect_clean_failure(const ToolResult& r, const std::string& word) {
  ASSERT_TRUE(r.exited) << "killed by a signal\n" << describe(r);
  EXPECT_TRUE(r.code == 1 || r.code == 2) << describe(r);
  EXPECT_EQ(r.err.rfind("sam3-predict: error: ", 0), 0u) << describe(r);
  EXPECT_NE(r.err.find(word), std::string::npos) << "message lacks '" << word << "'\n"
                                                 << describe(r);
  for (const char* crash : {"terminate called", "Segmentation fault", "core dumped", "Aborted"}) {
    EXPECT_EQ(r.err.find(crash), std::string::npos) << describe(r);
  }
  size_t count = 0;
  for (size_t pos = r.err.find("error:"); pos != std::string::npos;
       pos = r.err.find("error:", pos + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1u) << "one message expected\n" << describe(r);
}

class CliBadInputTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(CliBadInputTest, FailsCleanly) {
  const BadInput& b = GetParam();
  const std::string dir = temp_dir();
  write_file(dir + "/notes.png", "this is text, not a PNG\n");
  cv::Mat deep(40, 50, CV_16UC1, cv::Scalar(1000));
  ASSERT_TRUE(cv::imwrite(dir + "/deep16.png", deep));
  auto expand = [&](std::string a) {
    for (size_t pos; (pos = a.find("{DIR}")) != std::string::npos;) a.replace(pos, 5, dir);
    for (size_t pos; (pos = a.find("{TINY}")) != std::string::npos;) a.replace(pos, 6, tiny(""));
    return a;
  };
  if (!b.prompt.empty()) write_file(dir + "/prompt.json", expand(b.prompt));
  std::vector<std::string> args;
  for (const auto& a : b.args) args.push_back(expand(a));
  args.push_back("--output-dir");
  args.push_back(dir + "/out");
  expect_clean_failure(run_predict(args), b.word);
  fs::remove_all(dir);
}

const std::vector<std::string> kModel = {"--checkpoint", "{TINY}checkpoint.pt", "--config",
                                         "{TINY}config.json"};

std::vector<std::string> with_model(const std::vector<std::string>& args) {
  return concat(kModel, args);
}

const std::string kImage0 = "{TINY}img0.png";

INSTANTIATE_TEST_SUITE_P(
    All, CliBadInputTest,
    ::testing::Values(
        BadInput{"missing_checkpoint",
                 {"--checkpoint", "{DIR}/no-such-ckpt.pt", "--image", kImage0},
                 "",
                 "no-such-ckpt.pt"},
        BadInput{"corrupt_checkpoint",
                 {"--checkpoint", "{DIR}/notes.png", "--image", kImage0},
                 "",
                 "notes.png"},
        BadInput{"missing_image", with_model({"--image", "{DIR}/no-such-image.png"}), "",
                 "no-such-image.png"},
        BadInput{"non_image_file", with_model({"--image", "{DIR}/notes.png"}), "", "notes.png"},
        BadInput{"sixteen_bit_image", with_model({"--image", "{DIR}/deep16.png"}), "",
                 "deep16.png"},
        BadInput{"missing_prompt", with_model({"--image", kImage0, "--prompt", "{DIR}/nope.json"}),
                 "", "nope.json"},
        BadInput{"malformed_json",
                 with_model({"--image", kImage0, "--prompt", "{DIR}/prompt.json"}),
                 "{\"point_coords\": [[1, 2]", "JSON"},
        BadInput{"not_an_object",
                 with_model({"--image", kImage0, "--prompt", "{DIR}/prompt.json"}), "[1, 2]",
                 "object"},
        BadInput{"unknown_key", with_model({"--image", kImage0, "--prompt", "{DIR}/prompt.json"}),
                 "{\"points\": [[1, 2]]}", "points"},
        BadInput{"ragged_points",
                 with_model({"--image", kImage0, "--prompt", "{DIR}/prompt.json"}),
                 "{\"point_coords\": [[1, 2], [3]], \"point_labels\": [1, 1]}", "ragged"},
        BadInput{"non_number",
                 with_model({"--image", kImage0, "--prompt", "{DIR}/prompt.json"}),
                 "{\"box\": [1, 2, \"x\", 4]}", "box"},
        BadInput{"points_not_pairs",
                 with_model({"--image", kImage0, "--prompt", "{DIR}/prompt.json"}),
                 "{\"point_coords\": [[1, 2, 3]], \"point_labels\": [1]}", "point_coords"},
        BadInput{"labels_count",
                 with_model({"--image", kImage0, "--prompt", "{DIR}/prompt.json"}),
                 "{\"point_coords\": [[1, 2], [3, 4]], \"point_labels\": [1]}", "point_labels"},
        BadInput{"labels_without_points",
                 with_model({"--image", kImage0, "--prompt", "{DIR}/prompt.json"}),
                 "{\"point_labels\": [1]}", "point_coords"},
        BadInput{"bool_as_number",
                 with_model({"--image", kImage0, "--prompt", "{DIR}/prompt.json"}),
                 "{\"mask_threshold\": true}", "mask_threshold"},
        BadInput{"multimask_not_bool",
                 with_model({"--image", kImage0, "--prompt", "{DIR}/prompt.json"}),
                 "{\"multimask_output\": 1}", "multimask_output"},
        BadInput{"mask_tensor_missing",
                 with_model({"--image", kImage0, "--prompt", "{DIR}/prompt.json"}),
                 "{\"mask_input\": {\"file\": \"{TINY}expected.safetensors\", "
                 "\"tensor\": \"no.such.tensor\"}}",
                 "no.such.tensor"},
        BadInput{"batch_list_length",
                 with_model({"--image", kImage0, "--image", kImage0, "--prompt",
                             "{DIR}/prompt.json"}),
                 "{\"box_batch\": [[1, 2, 3, 4]]}", "box_batch"},
        BadInput{"bad_point_flag", with_model({"--image", kImage0, "--point", "1,2"}), "",
                 "--point"},
        BadInput{"bad_box_flag", with_model({"--image", kImage0, "--box", "1,2,3,abc"}), "",
                 "--box"},
        BadInput{"unknown_flag", with_model({"--image", kImage0, "--frobnicate"}), "",
                 "--frobnicate"},
        BadInput{"bad_number", with_model({"--image", kImage0, "--threads", "many"}), "",
                 "--threads"},
        BadInput{"bad_threshold", with_model({"--image", kImage0, "--mask-threshold", "1.5x"}),
                 "", "--mask-threshold"},
        BadInput{"bad_precision", with_model({"--image", kImage0, "--precision", "fp8"}), "",
                 "fp8"},
        BadInput{"missing_value", with_model({"--image"}), "", "--image"},
        BadInput{"no_image", with_model({}), "", "image"},
        BadInput{"empty_dir", with_model({"--images-dir", "{DIR}/out-nothing"}), "",
                 "out-nothing"}),
    [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------
// sam3-bench smoke run.

TEST(CliBench, TinyConfigJson) {
  ToolResult r = run_tool("sam3-bench", {"--config", tiny("config.json"), "--runs", "2",
                                         "--warmup", "1", "--json"});
  ASSERT_TRUE(r.exited && r.code == 0) << describe(r);
  json doc;
  ASSERT_NO_THROW(doc = json::parse(r.out)) << r.out;
  EXPECT_GT(doc["set_image"]["median_ms"].get<double>(), 0.0) << r.out;
  EXPECT_GT(doc["predict"]["median_ms"].get<double>(), 0.0) << r.out;
  EXPECT_EQ(doc["set_image"]["runs"].get<int>(), 2);
  EXPECT_EQ(doc["predict"]["runs"].get<int>(), 2);
  EXPECT_EQ(doc["image_size_S"].get<int>(), 336);
  EXPECT_EQ(doc["model"].get<std::string>(), "tiny-a");
  EXPECT_GT(doc["parameters"].get<int64_t>(), 0);
  EXPECT_GT(doc["threads"].get<int>(), 0);
  EXPECT_TRUE(doc["libtorch"].is_string());
}

TEST(CliBench, BadArgumentsFailCleanly) {
  ToolResult r = run_tool("sam3-bench", {"--runs", "2"});
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_NE(r.err.find("sam3-bench: error:"), std::string::npos) << describe(r);
  r = run_tool("sam3-bench", {"--config", tiny("config.json"), "--image-size", "12by7"});
  EXPECT_EQ(r.code, 2) << describe(r);
}

// SAM 2.1: the CLI takes a released-layout SAM 2.1 checkpoint unchanged (the
// family is detected from its keys; this non-released size picks up the
// config.json next to it) and reproduces the official masks.
// A SAM 2.1 / SAM 1 checkpoint goes through the same CLI unchanged (family
// detected from the keys) and reproduces the fixture's a_point_multimask case.
// The CLI reproduces the fixture's masks. Computed on another LibTorch (2.6:
// oneDNN, other kernels) the logits differ in their last bits, so a pixel whose
// reference logit lies within 1e-3 of the threshold may round the other way:
// only such pixels may differ. The reference logit of a pixel is the official
// decoder's unclamped low-res logits through the family's up-sampling
// (|ref_logits|), the same computation the CLI does.
void expect_cli_reproduces_fixture(
    const std::string& dir, const std::string& checkpoint,
    const std::function<torch::Tensor(const torch::Tensor& low, int64_t h, int64_t w)>&
        ref_logits) {
  const std::string d = fixture_path(dir);
  const std::string out = temp_dir();
  auto r = run_predict({"--checkpoint", d + "/" + checkpoint, "--image", d + "/image_a.png",
                        "--point", "417.8,67.4,1", "--output-dir", out, "--save-raw",
                        out + "/raw.safetensors", "--threads", "2"});
  ASSERT_EQ(r.code, 0) << describe(r);
  auto raw = sam3::load_safetensors(out + "/raw.safetensors");
  auto want = sam3::load_safetensors(d + "/expected.safetensors");
  const auto& wm = want.at("case.a_point_multimask.masks");
  ASSERT_EQ(raw.at("masks").sizes(), wm.sizes());
  const auto low = want.at("case.a_point_multimask.decoder.low_res_logits_selected");
  const auto ref = ref_logits(low, wm.size(-2), wm.size(-1)).reshape(wm.sizes());
  const auto cfg = sam3::test::read_json(d + "/config.json");
  const double thr = cfg.contains("predictor") && cfg["predictor"].contains("mask_threshold")
                         ? cfg["predictor"]["mask_threshold"].get<double>()
                         : 0.0;
  sam3::test::expect_differences_only_at_threshold_ties(dir + " masks", raw.at("masks").gt(0.5),
                                                        wm.to(torch::kBool), ref, thr);
  EXPECT_LE(max_abs_diff(raw.at("iou_predictions"),
                         want.at("case.a_point_multimask.iou_predictions")), 1e-5);
  EXPECT_TRUE(fs::exists(out + "/image_a.mask2.png"));
}

TEST(CliSam2, Sam21CheckpointUnchanged) {
  // SAM2Transforms.postprocess_masks: bilinear to the image size (no hole
  // filling: max_hole_area 0 in this fixture)
  expect_cli_reproduces_fixture(
      "sam2.1/sam2.1_tiny_r256_e32_d128", "sam2.1_tiny_r256_e32_d128.pt",
      [](const torch::Tensor& low, int64_t h, int64_t w) {
        return sam3::detail::upsample_masks(low, {h, w});
      });
}

TEST(CliSam1, Sam1CheckpointUnchanged) {
  // Sam.postprocess_masks: to R x R, crop the resized image, to the image size
  expect_cli_reproduces_fixture(
      "sam1/sam1_tiny_r256_e64_d4", "sam1_tiny_r256_e64_d4.pth",
      [](const torch::Tensor& low, int64_t h, int64_t w) {
        const int64_t R = 256;  // the fixture's image_size
        const double scale = static_cast<double>(R) / static_cast<double>(std::max(h, w));
        const std::pair<int64_t, int64_t> input{static_cast<int64_t>(h * scale + 0.5),
                                                static_cast<int64_t>(w * scale + 0.5)};
        return sam3::sam1::postprocess_masks(low, R, input, {h, w});
      });
}

}  // namespace
