// sam3-bench: timing of sam3::InteractiveImagePredictor (set_image, predict).
//
// Prints median / p95 / min / mean of set_image and of predict (one positive
// point at the image centre, multimask_output=true) on a synthetic,
// deterministic RGB image. A benchmark that prints figures, not a test.
#include <torch/torch.h>
#include <torch/version.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <sam3/sam3.h>

#if defined(SAM3_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#include <torch/cuda.h>
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

constexpr const char* kProg = "sam3-bench";

constexpr const char* kUsage = R"(Usage: sam3-bench MODEL [OPTIONS]

Times SAM 3's interactive image predictor: set_image on a synthetic RGB image
(gradients and shapes, deterministic) and predict with one positive point at
the image centre (multimask_output=true). Prints median, p95, min and mean.

Model (one of)
  --checkpoint FILE       weights (.pt/.safetensors); optional --config FILE
  --config FILE.json      a configuration alone: random weights
  --full                  the official full-size configuration, random weights
  --sam2.1 SIZE           the released SAM 2.1 configuration of SIZE (t, s, b+,
                          l; R = 1024), random weights
  --sam1 SIZE             the released SAM 1 configuration of SIZE (b, l, h;
                          R = 1024), random weights
  --preset NAME           NAME/config.json of the fixtures (e.g. tiny-a; "full"
                          = --full), random weights, looked
                          up in --presets-dir, $SAM3_FIXTURES_DIR/sam3,
                          ../shared/fixtures/sam3, and beside the build tree
  --presets-dir DIR       folder holding the presets' folders

Options
  --device DEV            cpu (default), cuda, cuda:N
  --precision P           fp32 (default), bf16, fp16
  --threads N             CPU threads, 0 (default) = all cores
  --image-size WxH        input size, default 1920x1080
  --runs N                timed runs of both (default 5 set_image, 20 predict)
  --warmup W              untimed runs of both first (default 1 set_image, 3 predict)
  --set-image-runs N, --predict-runs N, --set-image-warmup W, --predict-warmup W
                          the same for one of the two
  --seed N                seed of the random weights (default 0)
  --json                  print one JSON object (all figures) instead of text
  --help                  this text

Example
  sam3-bench --full --threads 8
  sam3-bench --checkpoint sam3.pt --device cuda --precision bf16 --json
)";

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string checkpoint, config, preset, presets_dir, sam2_size, sam1_size;
  bool full = false;
  std::string device = "cpu";
  std::string precision = "fp32";
  int threads = 0;
  int width = 1920, height = 1080;
  int set_runs = 5, pred_runs = 20;
  int set_warmup = 1, pred_warmup = 3;
  uint64_t seed = 0;
  bool json = false;
  bool help = false;
};

long parse_long(const std::string& text, const std::string& what, long lo, long hi) {
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(begin, &end, 10);
  if (text.empty() || end == begin || *end != '\0' || errno == ERANGE || v < lo || v > hi) {
    throw UsageError(what + ": '" + text + "' is not an integer in [" + std::to_string(lo) +
                     ", " + std::to_string(hi) + "]");
  }
  return v;
}

void parse_size(const std::string& text, Options& o) {
  size_t x = text.find_first_of("xX");
  if (x == std::string::npos) throw UsageError("--image-size: expected WxH, got '" + text + "'");
  o.width = static_cast<int>(parse_long(text.substr(0, x), "--image-size width", 1, 16384));
  o.height = static_cast<int>(parse_long(text.substr(x + 1), "--image-size height", 1, 16384));
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string name = arg;
    std::optional<std::string> inline_value;
    size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      if (i + 1 >= argc) throw UsageError("option " + name + " needs a value");
      return argv[++i];
    };
    auto count = [&](long lo) { return static_cast<int>(parse_long(value(), name, lo, 1000000)); };
    auto flag = [&](bool& target) {
      if (inline_value) throw UsageError("option " + name + " takes no value");
      target = true;
    };
    if (name == "--help" || name == "-h") {
      flag(o.help);
    } else if (name == "--checkpoint") {
      o.checkpoint = value();
    } else if (name == "--config") {
      o.config = value();
    } else if (name == "--full") {
      flag(o.full);
    } else if (name == "--sam2.1") {
      o.sam2_size = value();
    } else if (name == "--sam1") {
      o.sam1_size = value();
    } else if (name == "--preset") {
      o.preset = value();
    } else if (name == "--presets-dir") {
      o.presets_dir = value();
    } else if (name == "--device") {
      o.device = value();
    } else if (name == "--precision") {
      o.precision = value();
    } else if (name == "--threads") {
      o.threads = count(0);
    } else if (name == "--image-size") {
      parse_size(value(), o);
    } else if (name == "--runs") {
      o.set_runs = o.pred_runs = count(1);
    } else if (name == "--warmup") {
      o.set_warmup = o.pred_warmup = count(0);
    } else if (name == "--set-image-runs") {
      o.set_runs = count(1);
    } else if (name == "--predict-runs") {
      o.pred_runs = count(1);
    } else if (name == "--set-image-warmup") {
      o.set_warmup = count(0);
    } else if (name == "--predict-warmup") {
      o.pred_warmup = count(0);
    } else if (name == "--seed") {
      o.seed = static_cast<uint64_t>(parse_long(value(), name, 0, 1L << 62));
    } else if (name == "--json") {
      flag(o.json);
    } else {
      throw UsageError("unknown argument '" + arg + "' (see --help)");
    }
  }
  const int sources =
      !o.checkpoint.empty() + o.full + !o.preset.empty() + !o.sam2_size.empty() +
      !o.sam1_size.empty();
  if (!o.help && sources == 0 && o.config.empty()) {
    throw UsageError(
        "choose a model: --checkpoint, --config, --full, --sam2.1, --sam1 or --preset (see --help)");
  }
  if (sources > 1)
    throw UsageError("--checkpoint, --full, --sam2.1, --sam1 and --preset are exclusive");
  if ((o.full || !o.preset.empty() || !o.sam2_size.empty() || !o.sam1_size.empty()) &&
      !o.config.empty()) {
    throw UsageError("--config cannot be combined with --full, --sam2.1, --sam1 or --preset");
  }
  return o;
}

// ---------------------------------------------------------------------------
// Model.

std::string find_preset(const Options& o) {
  std::vector<fs::path> roots;
  if (!o.presets_dir.empty()) roots.push_back(o.presets_dir);
  if (const char* env = std::getenv("SAM3_FIXTURES_DIR"); env && *env) {
    roots.push_back(fs::path(env) / "sam3");
    roots.push_back(env);
  }
  roots.push_back("../shared/fixtures/sam3");
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    // <source>/build/predictor/tools/sam3-bench -> <source>/../shared/fixtures/sam3
    fs::path p = exe.parent_path();
    for (int up = 0; up < 5 && p.has_parent_path() && p != p.root_path(); ++up) {
      p = p.parent_path();
      roots.push_back(p / "shared" / "fixtures" / "sam3");
      roots.push_back(p / ".." / "shared" / "fixtures" / "sam3");
    }
  }
  for (const auto& r : roots) {
    fs::path cfg = r / o.preset / "config.json";
    if (fs::is_regular_file(cfg, ec)) {
      fs::path canonical = fs::weakly_canonical(cfg, ec);
      return (ec ? cfg : canonical).string();
    }
  }
  throw UsageError("preset '" + o.preset + "' not found (no " + o.preset +
                   "/config.json under --presets-dir, $SAM3_FIXTURES_DIR/sam3 or "
                   "../shared/fixtures/sam3)");
}

std::shared_ptr<const sam3::Model> make_model(const Options& o, std::string* source) {
  sam3::ModelOptions mo;
  mo.device = o.device;
  mo.precision = sam3::parse_precision(o.precision);
  mo.num_threads = o.threads;
  if (!o.checkpoint.empty()) {
    mo.config_path = o.config;
    *source = "checkpoint " + o.checkpoint;
    return sam3::Model::load(o.checkpoint, mo);
  }
  if (!o.sam1_size.empty()) {
    *source = "released SAM 1 config, random weights";
    try {
      return sam3::Model::random_sam1(o.sam1_size, mo, o.seed);
    } catch (const sam3::ConfigError& e) {
      throw UsageError(std::string("--sam1: ") + e.what());
    }
  }
  sam3::ModelConfig cfg;
  if (!o.sam2_size.empty()) {
    try {
      cfg = sam3::ModelConfig::sam2_1(o.sam2_size);
    } catch (const sam3::ConfigError& e) {
      throw UsageError(std::string("--sam2.1: ") + e.what());
    }
    *source = "released SAM 2.1 config, random weights";
  } else if (o.full || o.preset == "full") {
    *source = "official full-size config, random weights";
  } else {
    std::string path = o.preset.empty() ? o.config : find_preset(o);
    cfg = sam3::ModelConfig::from_json_file(path);
    *source = path + ", random weights";
  }
  return sam3::Model::random(cfg, mo, o.seed);
}

// ---------------------------------------------------------------------------
// Input and timing.

// Deterministic test picture: colour gradients, shapes, a little texture.
cv::Mat synthetic_image(int width, int height) {
  cv::Mat img(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    auto* row = img.ptr<cv::Vec3b>(y);
    for (int x = 0; x < width; ++x) {
      row[x] = cv::Vec3b(static_cast<uchar>(255 * x / std::max(1, width - 1)),
                         static_cast<uchar>(255 * y / std::max(1, height - 1)),
                         static_cast<uchar>((x + y) % 256));
    }
  }
  const int s = std::min(width, height);
  cv::circle(img, {width / 2, height / 2}, s / 5, {230, 40, 40}, cv::FILLED, cv::LINE_AA);
  cv::rectangle(img, cv::Rect(width / 10, height / 8, width / 4, height / 3), {30, 200, 60},
                cv::FILLED);
  cv::ellipse(img, {3 * width / 4, 2 * height / 3}, {s / 6, s / 10}, 30, 0, 360, {40, 60, 220},
              cv::FILLED, cv::LINE_AA);
  std::vector<cv::Point> tri = {{width / 2, height / 20}, {3 * width / 5, height / 4},
                                {2 * width / 5, height / 4}};
  cv::fillConvexPoly(img, tri, {240, 220, 30}, cv::LINE_AA);
  for (int k = 0; k < 12; ++k) {
    cv::line(img, {k * width / 12, height - 1}, {width - 1 - k * width / 24, height / 2},
             {static_cast<double>(20 * k), 255.0 - 20 * k, 128}, std::max(1, s / 200),
             cv::LINE_AA);
  }
  cv::Mat noise(height, width, CV_8UC3);
  cv::RNG rng(12345);
  rng.fill(noise, cv::RNG::UNIFORM, 0, 16);
  img += noise;
  return img;
}

void synchronize(const torch::Device& device) {
#if defined(SAM3_WITH_CUDA)
  if (device.is_cuda()) torch::cuda::synchronize(device.index() >= 0 ? device.index() : -1);
#else
  (void)device;
#endif
}

using Clock = std::chrono::steady_clock;

std::vector<double> time_runs(int warmup, int runs, const torch::Device& device,
                              const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  synchronize(device);
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    synchronize(device);
    auto t0 = Clock::now();
    fn();
    synchronize(device);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return ms;
}

struct Stats {
  double median = 0, p95 = 0, min = 0, mean = 0, max = 0;
  int runs = 0;
};

Stats summarize(std::vector<double> ms) {
  Stats s;
  s.runs = static_cast<int>(ms.size());
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  s.median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  // Nearest-rank percentile.
  size_t rank = static_cast<size_t>(std::ceil(0.95 * static_cast<double>(n)));
  s.p95 = ms[std::min(n, std::max<size_t>(rank, 1)) - 1];
  s.min = ms.front();
  s.max = ms.back();
  s.mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(n);
  return s;
}

json stats_json(const Stats& s) {
  return {{"median_ms", s.median}, {"p95_ms", s.p95}, {"min_ms", s.min},
          {"mean_ms", s.mean},     {"max_ms", s.max}, {"runs", s.runs}};
}

// kB value of a /proc/self/status field (VmHWM, VmRSS), -1 if unknown.
long proc_status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return -1;
}

// Peak CUDA memory allocated by LibTorch on the device, -1 if not CUDA.
int64_t cuda_peak_bytes(const torch::Device& device) {
#if defined(SAM3_WITH_CUDA)
  if (device.is_cuda()) {
    int index = device.index() >= 0 ? device.index() : 0;
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    // index 0 = StatType::AGGREGATE; the enum moved from
    // c10::cuda::CUDACachingAllocator (LibTorch 1.13) to
    // c10::CachingDeviceAllocator (2.5+), its values did not
    return stats.allocated_bytes[0].peak;
  }
#else
  (void)device;
#endif
  return -1;
}

int run(const Options& o) {
  sam3::set_num_threads(o.threads);
  std::string source;
  auto t0 = Clock::now();
  auto model = make_model(o, &source);
  const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  const torch::Device device = model->device();
  const sam3::ModelConfig& cfg = model->config();

  sam3::InteractiveImagePredictor predictor(model);
  const cv::Mat image = synthetic_image(o.width, o.height);
  Stats set_stats = summarize(
      time_runs(o.set_warmup, o.set_runs, device, [&] { predictor.set_image(image); }));

  sam3::PredictArgs args;
  args.point_coords = torch::tensor({{o.width / 2.0f, o.height / 2.0f}});
  args.point_labels = torch::tensor({int64_t{1}});
  args.multimask_output = true;
  Stats pred_stats = summarize(
      time_runs(o.pred_warmup, o.pred_runs, device, [&] { (void)predictor.predict(args); }));

  const sam3::BlasKernels kernels = sam3::blas_kernels();
  if (kernels.below_cpu) std::fprintf(stderr, "sam3-bench: warning: %s\n", kernels.summary().c_str());
  json doc = {{"libtorch", TORCH_VERSION},
              {"sam3_predictor", SAM3_PREDICTOR_VERSION},
              {"blas", sam3::blas_info()},
              {"blas_kernels", {{"in_use", kernels.in_use}, {"cpu_best", kernels.cpu_best},
                                {"below_cpu", kernels.below_cpu}}},
              {"omp_wait_policy", sam3::omp_wait_policy()},
              {"threads", at::get_num_threads()},
              {"device", device.str()},
              {"precision", sam3::precision_name(model->precision())},
              {"family", cfg.family},
              {"model", cfg.name},
              {"model_source", source},
              {"image_size_S", cfg.image_size},
              {"parameters", model->num_parameters()},
              {"input", {{"width", o.width}, {"height", o.height}}},
              {"model_load_ms", load_ms},
              {"set_image", stats_json(set_stats)},
              {"predict", stats_json(pred_stats)},
              {"peak_rss_kb", proc_status_kb("VmHWM")},
              {"cuda_peak_allocated_bytes", cuda_peak_bytes(device)}};
  if (o.json) {
    std::printf("%s\n", doc.dump().c_str());
    return 0;
  }
  std::printf("LibTorch      %s\n", TORCH_VERSION);
  std::printf("BLAS          %s\n", sam3::blas_info().c_str());
  std::printf("kernels       %s\n", kernels.summary().c_str());
  std::printf("OMP wait      %s\n", sam3::omp_wait_policy().c_str());
  std::printf("threads       %d\n", at::get_num_threads());
  std::printf("device        %s\n", device.str().c_str());
  std::printf("precision     %s\n", sam3::precision_name(model->precision()));
  std::printf("family        %s\n", cfg.family.c_str());
  std::printf("model         %s (%s)\n", cfg.name.c_str(), source.c_str());
  std::printf("S             %lld\n", static_cast<long long>(cfg.image_size));
  std::printf("parameters    %lld\n", static_cast<long long>(model->num_parameters()));
  std::printf("input         %dx%d RGB (synthetic)\n", o.width, o.height);
  std::printf("model load    %.1f ms\n", load_ms);
  auto row = [](const char* name, const Stats& s, int warmup) {
    std::printf("%-10s median %10.2f ms  p95 %10.2f ms  min %10.2f ms  mean %10.2f ms  "
                "(%d runs, %d warm-up)\n",
                name, s.median, s.p95, s.min, s.mean, s.runs, warmup);
  };
  row("set_image", set_stats, o.set_warmup);
  row("predict", pred_stats, o.pred_warmup);
  std::printf("peak RSS      %.1f MiB\n", proc_status_kb("VmHWM") / 1024.0);
  const int64_t cuda_peak = cuda_peak_bytes(device);
  if (cuda_peak >= 0) std::printf("CUDA peak     %.1f MiB\n", cuda_peak / (1024.0 * 1024.0));
  return 0;
}

int report_error(const std::string& message, int status) {
  std::string msg = message;
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  std::fprintf(stderr, "%s: error: %s\n", kProg, msg.c_str());
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  sam3::reexec_with_cpu_environment(argv);  // cpu_kernels.h
  try {
    Options o = parse_args(argc, argv);
    if (o.help) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    return run(o);
  } catch (const UsageError& e) {
    return report_error(e.what(), 2);
  } catch (const sam3::InvalidArgument& e) {
    return report_error(e.what(), 2);
  } catch (const c10::Error& e) {
    return report_error(e.what_without_backtrace(), 1);
  } catch (const std::exception& e) {
    return report_error(e.what(), 1);
  } catch (...) {
    return report_error("unknown error", 1);
  }
}
