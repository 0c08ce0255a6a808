// Bad input to the predictor and the loader: typed exceptions with clear
// messages, no crash, and the predictor stays usable afterwards.
#include <gtest/gtest.h>

#include <filesystem>

#include "fixtures.h"
#include "sam3/sam3.h"

namespace sam3 {
namespace {

std::shared_ptr<const Model> tiny_model() {
  static auto m = [] {
    ModelOptions o;
    o.num_threads = 2;
    return Model::load(test::fixture_path("sam3/tiny-a/checkpoint.pt"), o);
  }();
  return m;
}

cv::Mat test_image(int h = 120, int w = 160) {
  cv::Mat img(h, w, CV_8UC3);
  cv::randu(img, 0, 255);
  return img;
}

template <typename E, typename F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an exception mentioning '" << needle << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message '" << e.what() << "' does not mention '" << needle << "'";
  }
}

class PredictorErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override { pred.set_image(test_image()); }
  void expect_still_works() {
    PredictArgs a;
    a.point_coords = torch::tensor({{50.f, 60.f}});
    a.point_labels = torch::tensor({1});
    auto p = pred.predict(a);
    EXPECT_EQ(p.masks.sizes(), (std::vector<int64_t>{3, 120, 160}));
  }
  InteractiveImagePredictor pred{tiny_model()};
};

TEST(PredictorStateTest, PredictBeforeSetImage) {
  InteractiveImagePredictor p(tiny_model());
  expect_error<NotReadyError>([&] { p.predict(); }, "set_image");
  expect_error<NotReadyError>([&] { p.get_image_embedding(); }, "set_image");
  expect_error<NotReadyError>([&] { p.predict_batch({PredictArgs{}}); }, "batched mode");
}

TEST(PredictorStateTest, BatchModeRules) {
  InteractiveImagePredictor p(tiny_model());
  p.set_image_batch({test_image(), test_image(90, 70)});
  EXPECT_TRUE(p.is_batch());
  EXPECT_EQ(p.get_image_embedding().size(0), 2);
  expect_error<NotReadyError>([&] { p.predict(); }, "predict_batch");
  expect_error<InvalidArgument>([&] { p.predict_batch({PredictArgs{}}); }, "the batch has 2");
  auto r = p.predict_batch({PredictArgs{}, PredictArgs{}});
  EXPECT_EQ(r[1].masks.sizes(), (std::vector<int64_t>{3, 90, 70}));
  p.set_image(test_image());
  expect_error<NotReadyError>([&] { p.predict_batch({PredictArgs{}}); }, "batched mode");
  p.reset_predictor();
  EXPECT_FALSE(p.is_image_set());
  expect_error<NotReadyError>([&] { p.predict(); }, "set_image");
}

TEST(PredictorStateTest, PredictImageEqualsPredictAndPredictBatch) {
  InteractiveImagePredictor p(tiny_model());
  expect_error<NotReadyError>([&] { p.predict_image(0, PredictArgs{}); }, "no image set");
  PredictArgs a;
  a.point_coords = torch::tensor({{30.f, 20.f}});
  a.point_labels = torch::tensor({1});
  PredictArgs b;
  b.box = torch::tensor({5.f, 6.f, 60.f, 50.f});
  p.set_image_batch({test_image(), test_image(90, 70)});
  auto batch = p.predict_batch({a, b});
  auto one = p.predict_image(1, b);
  EXPECT_TRUE(torch::equal(one.masks, batch[1].masks));
  EXPECT_TRUE(torch::equal(one.iou_predictions, batch[1].iou_predictions));
  expect_error<InvalidArgument>([&] { p.predict_image(2, a); }, "only 2 image(s)");
  p.set_image(test_image(90, 70));
  auto single = p.predict(b);
  auto same = p.predict_image(0, b);
  EXPECT_TRUE(torch::equal(single.low_res_masks, same.low_res_masks));
}

// Every PixelFormat gives the same embedding as the RGB cv::Mat, with padded
// rows; bad views are refused.
TEST(PredictorStateTest, ImageViewFormatsEqualRgb) {
  InteractiveImagePredictor p(tiny_model());
  cv::Mat rgb = test_image(37, 53);
  p.set_image(rgb);
  const auto ref = p.get_image_embedding().clone();
  struct Case { PixelFormat f; int ch; std::array<int, 3> rgb_pos; };
  const Case cases[] = {{PixelFormat::kRGB, 3, {0, 1, 2}},  {PixelFormat::kBGR, 3, {2, 1, 0}},
                        {PixelFormat::kRGBA, 4, {0, 1, 2}}, {PixelFormat::kBGRA, 4, {2, 1, 0}},
                        {PixelFormat::kRGBX, 4, {0, 1, 2}}, {PixelFormat::kBGRX, 4, {2, 1, 0}}};
  for (const auto& c : cases) {
    const size_t stride = rgb.cols * c.ch + 7;  // padded rows
    std::vector<uint8_t> buf(stride * rgb.rows, 99);
    for (int y = 0; y < rgb.rows; ++y)
      for (int x = 0; x < rgb.cols; ++x)
        for (int k = 0; k < 3; ++k)
          buf[y * stride + x * c.ch + c.rgb_pos[k]] = rgb.at<cv::Vec3b>(y, x)[k];
    ImageView v{buf.data(), rgb.cols, rgb.rows, stride, c.f};
    p.set_image(v);
    EXPECT_FALSE(p.is_batch());
    EXPECT_TRUE(torch::equal(p.get_image_embedding(), ref)) << "format " << static_cast<int>(c.f);
    EXPECT_NO_THROW(p.predict());
    p.set_image_batch(std::vector<ImageView>{v, v});
    EXPECT_TRUE(p.is_batch());
    EXPECT_EQ(p.get_image_embedding().size(0), 2);
    EXPECT_EQ(p.predict_batch({PredictArgs{}, PredictArgs{}}).size(), 2u);
  }
  std::vector<uint8_t> small(10);
  expect_error<InvalidArgument>(
      [&] { p.set_image(ImageView{small.data(), 4, 2, 3, PixelFormat::kRGB}); }, "stride 3");
  expect_error<InvalidArgument>(
      [&] { p.set_image(ImageView{nullptr, 4, 2, 12, PixelFormat::kRGB}); }, "null data");
  expect_error<InvalidArgument>(
      [&] { p.set_image_batch(std::vector<ImageView>{ImageView{small.data(), 0, 2, 3}}); },
      "image 0");
}

TEST(PredictorStateTest, NullModelAndBadThresholds) {
  EXPECT_THROW(InteractiveImagePredictor(nullptr), InvalidArgument);
  EXPECT_THROW(InteractiveImagePredictor(nullptr, 0.0, 0.0, 0.0), InvalidArgument);
  EXPECT_THROW(InteractiveImagePredictor(tiny_model(), 0.0, -1.0, 0.0), InvalidArgument);
  EXPECT_THROW(InteractiveImagePredictor(tiny_model(), 0.0, 0.0, -1.0), InvalidArgument);
  EXPECT_THROW(InteractiveImagePredictor(tiny_model(), std::nan(""), 0.0, 0.0), InvalidArgument);
}

// The one-argument constructor takes the post-processing settings from the
// model's config: the official predictor's defaults for its family, or what
// a file's config sets (the bundled model turns hole filling off).
TEST(PredictorStateTest, DefaultsComeFromTheModelConfig) {
  EXPECT_EQ(ModelConfig{}.predictor.max_hole_area, 256.0);  // SAM3InteractiveImagePredictor
  EXPECT_EQ(ModelConfig::sam2_1("t").predictor.max_hole_area, 0.0);  // SAM2ImagePredictor
  InteractiveImagePredictor official(tiny_model());
  EXPECT_EQ(official.mask_threshold, tiny_model()->config().predictor.mask_threshold);
  EXPECT_EQ(official.max_hole_area, tiny_model()->config().predictor.max_hole_area);
  EXPECT_EQ(official.max_sprinkle_area, tiny_model()->config().predictor.max_sprinkle_area);
  ModelConfig cfg = tiny_model()->config();
  cfg.predictor = PredictorDefaults{0.5, 7.0, 3.0};
  InteractiveImagePredictor own(Model::random(cfg));
  EXPECT_EQ(own.mask_threshold, 0.5);
  EXPECT_EQ(own.max_hole_area, 7.0);
  EXPECT_EQ(own.max_sprinkle_area, 3.0);
  InteractiveImagePredictor explicit_settings(tiny_model(), 1.0, 2.0, 4.0);
  EXPECT_EQ(explicit_settings.max_hole_area, 2.0);
  EXPECT_EQ(explicit_settings.max_sprinkle_area, 4.0);
}

TEST_F(PredictorErrorsTest, BadImages) {
  expect_error<InvalidArgument>([&] { pred.set_image(cv::Mat()); }, "empty");
  expect_error<InvalidArgument>([&] { pred.set_image(cv::Mat(10, 10, CV_8UC1)); }, "3 channels");
  expect_error<InvalidArgument>([&] { pred.set_image(cv::Mat(10, 10, CV_8UC4)); }, "3 channels");
  expect_error<InvalidArgument>([&] { pred.set_image(cv::Mat(10, 10, CV_16UC3)); }, "8-bit");
  expect_error<InvalidArgument>([&] { pred.set_image(nullptr, 10, 10, 30); }, "null");
  std::vector<uint8_t> buf(300);
  expect_error<InvalidArgument>([&] { pred.set_image(buf.data(), 10, 10, 20); }, "stride");
  expect_error<InvalidArgument>([&] { pred.set_image_batch(std::vector<cv::Mat>{}); }, "empty");
  expect_error<InvalidArgument>([&] { pred.set_image_batch({test_image(), cv::Mat()}); }, "image 1");
  // a failed set_image_batch leaves the previous image in place
  expect_still_works();
}

TEST_F(PredictorErrorsTest, StridedPointerInputEqualsMat) {
  cv::Mat img = test_image(50, 40);
  std::vector<uint8_t> padded(50 * 128, 7);
  for (int y = 0; y < 50; ++y) std::memcpy(&padded[y * 128], img.ptr(y), 40 * 3);
  InteractiveImagePredictor a(tiny_model()), b(tiny_model());
  a.set_image(img);
  b.set_image(padded.data(), 40, 50, 128);
  EXPECT_TRUE(torch::equal(a.get_image_embedding(), b.get_image_embedding()));
}

TEST_F(PredictorErrorsTest, MalformedPrompts) {
  auto pts = torch::tensor({{10.f, 20.f}, {30.f, 40.f}});
  auto with = [&](auto edit) {
    PredictArgs a;
    a.point_coords = pts;
    a.point_labels = torch::tensor({1, 0});
    edit(a);
    return a;
  };
  expect_error<InvalidArgument>(
      [&] { pred.predict(with([](PredictArgs& a) { a.point_labels = torch::Tensor(); })); },
      "point_labels must be supplied");
  expect_error<InvalidArgument>(
      [&] { pred.predict(with([](PredictArgs& a) { a.point_labels = torch::tensor({1}); })); },
      "one label per point");
  expect_error<InvalidArgument>(
      [&] {
        pred.predict(with([](PredictArgs& a) { a.point_coords = torch::tensor({{NAN, 1.f}, {2.f, 3.f}}); }));
      },
      "NaN");
  expect_error<InvalidArgument>(
      [&] { pred.predict(with([](PredictArgs& a) { a.point_coords = torch::zeros({2, 3}); })); },
      "N x 2");
  expect_error<InvalidArgument>(
      [&] { pred.predict(with([](PredictArgs& a) { a.point_labels = torch::tensor({1, 7}); })); },
      "point_labels must be 1");
  expect_error<InvalidArgument>(
      [&] { pred.predict(with([](PredictArgs& a) { a.point_labels = torch::tensor({1.5, 0.0}); })); },
      "integers");
  expect_error<InvalidArgument>(
      [&] { pred.predict(with([](PredictArgs& a) { a.box = torch::tensor({1.f, 2.f, 3.f}); })); },
      "box must be 4");
  expect_error<InvalidArgument>(
      [&] {
        pred.predict(with([](PredictArgs& a) { a.box = torch::tensor({{1.f, 2.f, 3.f, 4.f}, {1.f, 2.f, 3.f, 4.f}}); }));
      },
      "box has 2 object(s)");
  expect_error<InvalidArgument>(
      [&] { pred.predict(with([](PredictArgs& a) { a.mask_input = torch::zeros({1, 64, 64}); })); },
      "mask_input must be 1 x 96 x 96");
  expect_error<InvalidArgument>(
      [&] {
        PredictArgs a;
        a.mask_input = torch::zeros({2, 1, 96, 96});
        pred.predict(a);
      },
      "single object");
  expect_error<InvalidArgument>(
      [&] {
        PredictArgs a;
        a.point_labels = torch::tensor({1});
        pred.predict(a);
      },
      "without point_coords");
  expect_error<InvalidArgument>(
      [&] {
        pred.max_hole_area = -5;
        pred.predict(with([](PredictArgs&) {}));
      },
      "max_hole_area");
  pred.max_hole_area = 256;
  expect_still_works();
}

TEST(LoaderErrorsTest, EveryBadKeyIsListedAndForeignKeysIgnored) {
  auto sd = load_state_dict(test::fixture_path("sam3/tiny-a/checkpoint.pt"));
  const std::string t = "detector.backbone.vision_backbone.trunk.";
  sd.erase(t + "ln_pre.weight");
  sd.erase("tracker.sam_mask_decoder.iou_token.weight");
  sd[t + "blocks.0.mlp.fc1.bias"] = torch::zeros({7});
  sd["tracker.no_mem_embed"] = torch::zeros({1, 1, 64}, torch::kLong);
  sd["totally.foreign.key"] = torch::zeros({3});  // ignored
  auto cfg = ModelConfig::from_json_file(test::fixture_path("sam3/tiny-a/config.json"));
  try {
    Model::from_state_dict(sd, {}, &cfg);
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.problems().size(), 4u) << msg;
    EXPECT_NE(msg.find("missing key '" + t + "ln_pre.weight'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing key 'tracker.sam_mask_decoder.iou_token.weight'"), std::string::npos);
    EXPECT_NE(msg.find("blocks.0.mlp.fc1.bias': expected shape [444], got [7]"), std::string::npos);
    EXPECT_NE(msg.find("no_mem_embed': expected a floating-point tensor, got Long"), std::string::npos);
    EXPECT_EQ(msg.find("foreign"), std::string::npos);
  }
}

TEST(LoaderErrorsTest, MissingAndCorruptFiles) {
  expect_error<CheckpointError>([] { Model::load("/nonexistent/sam3.pt"); }, "/nonexistent/sam3.pt");
  auto dir = test::temp_dir();
  auto bytes = test::read_file(test::fixture_path("sam3/tiny-a/checkpoint.pt"));
  test::write_file(dir + "/trunc.pt", bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(Model::load(dir + "/trunc.pt"), CheckpointError);
  test::write_file(dir + "/text.pt", "hello, I am not a checkpoint");
  EXPECT_THROW(Model::load(dir + "/text.pt"), CheckpointError);
  // a SAM 2.1 checkpoint of a non-released size without its config.json:
  // clear error, not a crash (with it, it loads: tests/predictor/sam2_test.cpp)
  const std::string sam21 =
      test::fixture_path("sam2.1/sam2.1_tiny_r256_e32_d128/sam2.1_tiny_r256_e32_d128.pt");
  ASSERT_TRUE(std::filesystem::exists(sam21));
  std::filesystem::copy_file(sam21, dir + "/sam21.pt");
  expect_error<CheckpointError>([&] { Model::load(dir + "/sam21.pt"); }, "pass a config JSON");
}

TEST(DeviceTest, NoSilentCpuFallback) {
  ModelOptions o;
  o.device = "cuda";
#if defined(SAM3_WITH_CUDA)
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA present: covered by the GPU tests";
#endif
  expect_error<DeviceError>([&] { Model::load(test::fixture_path("sam3/tiny-a/checkpoint.pt"), o); },
                            "cuda");
  o.device = "tpu";
  expect_error<DeviceError>([&] { Model::load(test::fixture_path("sam3/tiny-a/checkpoint.pt"), o); },
                            "unknown device");
  o.device = "cpu";
  o.precision = Precision::kFloat16;
  expect_error<DeviceError>([&] { Model::load(test::fixture_path("sam3/tiny-a/checkpoint.pt"), o); },
                            "fp16");
  EXPECT_THROW(parse_precision("fp8"), InvalidArgument);
}

TEST(DeviceTest, ThreadCount) {
  EXPECT_EQ(set_num_threads(1), 1);
  EXPECT_EQ(set_num_threads(2), 2);
  EXPECT_GE(set_num_threads(0), 1);
  EXPECT_FALSE(blas_info().empty());
}

}  // namespace
}  // namespace sam3
