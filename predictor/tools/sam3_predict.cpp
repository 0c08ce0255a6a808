// sam3-predict: batch front end of sam3::InteractiveImagePredictor.
//
// Runs SAM 3's interactive image predictor on one or many images with one
// prompt and writes, per image, binary masks as PNG and the scores as JSON
// (optionally all raw outputs as one safetensors file). See kUsage below (or
// `sam3-predict --help`) for the full contract.
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sam3/sam3.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "prompt_json.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;  // keeps the written key order
// The JSON prompt (prompt_json.h); UsageError = exit status 2.
using sam3_cli::ImagePrompt;
using sam3_cli::load_prompt;
using sam3_cli::Prompt;
using sam3_cli::shape_str;
using sam3_cli::UsageError;

constexpr const char* kProg = "sam3-predict";

constexpr const char* kUsage = R"(Usage: sam3-predict [--checkpoint FILE] INPUT... [PROMPT] [OPTIONS]

Runs SAM 3's interactive image predictor (point / box / mask prompts) on one or
many images and writes binary masks (PNG), scores (JSON) and, on request, the
raw outputs (safetensors).

Model
  --checkpoint FILE       sam3.pt, a SAM 2.1 .pt, a SAM 1 .pth, or a
                          .safetensors with their key names. Default: the
                          bundled small SAM 3 model trained on synthetic
                          scenes (docs/training.md).
  --config FILE.json      model configuration (default: derived from the
                          checkpoint's tensor shapes).
  --device DEV            cpu (default), cuda or cuda:N.
  --precision P           fp32 (default), bf16, fp16 (fp16: GPU only).
  --threads N             CPU threads; 0 (default) = all cores.

Input (may be combined; images are processed in the order given)
  --image FILE            an image; repeatable. With 2 or more --image (and no
                          other input) the images form one batch
                          (set_image_batch + predict_batch), else each image is
                          processed on its own (set_image + predict).
  --images-dir DIR        every .png .jpg .jpeg .bmp .tif .tiff file in DIR
                          (not recursive), sorted by name.
  --image-list FILE       one image path per line; empty lines and lines
                          starting with '#' are skipped; relative paths are
                          relative to the folder of FILE.
  Images are read with OpenCV: colour (BGR) becomes RGB, gray and gray+alpha
  become RGB, the alpha channel is dropped; only 8-bit images are accepted.

Prompt (the same prompt is used for every image)
  --prompt FILE.json      a JSON object with the keyword arguments of the
                          official predict(); every key may be absent or null:
      point_coords        [[x,y],...] (N x 2) or B x N x 2 (B objects)
      point_labels        [l,...] (N) or B x N; 1 foreground, 0 background
      box                 [x0,y0,x1,y1] or B x 4 (B objects)
      mask_input          {"file": "m.safetensors", "tensor": "name"}: low-res
                          logits 1 x 4G x 4G or B x 1 x 4G x 4G (the file may
                          also be a .pt; a relative path is relative to the
                          folder of the prompt file)
      multimask_output    true (default): 3 masks per object; false: 1
      return_logits       false (default); true: raw outputs hold the logits
                          (the PNGs are still thresholded at mask_threshold)
      normalize_coords    true (default): coordinates in pixels of the
                          original image; false: already in [0, 1]
      mask_threshold      predictor setting, default: the model's (0)
      max_hole_area       predictor setting (low-res pixels), default: the
                          model's (256 for sam3.pt, 0 for SAM 2.1 and the
                          bundled model)
      max_sprinkle_area   predictor setting (low-res pixels), default: the
                          model's (0)
    and, for different prompts per image, the keyword arguments of the official
    predict_batch(): point_coords_batch, point_labels_batch, box_batch,
    mask_input_batch: lists with one entry (or null) per image, in input order;
    each excludes its single-image counterpart.
  Quick flags (applied on top of --prompt):
  --point x,y,label       adds one point (label 1 fg, 0 bg); repeatable. The
                          points are appended to point_coords/point_labels of
                          the JSON (which must then be N x 2 / N).
  --box x0,y0,x1,y1       one box; repeatable (several boxes = several
                          objects). Replaces the JSON's box.
  --multimask             multimask_output = true (replaces the JSON value)
  --single-mask           multimask_output = false (replaces the JSON value)
  --return-logits         return_logits = true (replaces the JSON value)
  --mask-threshold T      replaces the JSON's mask_threshold
  --max-hole-area A       replaces the JSON's max_hole_area
  --max-sprinkle-area A   replaces the JSON's max_sprinkle_area

Output
  --output-dir DIR        default sam3-out (created if needed). For image
                          foo.png: foo.mask{k}.png per mask (one object) or
                          foo.obj{b}.mask{k}.png (B > 1 objects), 8-bit 0/255
                          at the original size, and foo.json (image, size, and
                          per object and mask: iou_prediction, area in pixels,
                          bbox_xywh of the mask, file name). A name used by an
                          earlier image gets the suffix _{j} (j = image index).
  --save-raw FILE         also write the predictor's return values as
                          safetensors: masks (float32 0/1, or logits with
                          return_logits), iou_predictions, low_res_masks,
                          shaped as the Python predictor returns them; with
                          several images the names are prefixed batch{j}.
  --quiet                 no progress or summary on stderr.
  --help                  this text.

Progress goes to stderr, one line per image ("[j/n] name: set_image X ms,
predict Y ms"; updated in place on a terminal), then a summary line.

Exit status: 0 success; 2 invalid invocation or input (unknown option, bad
number, missing file, malformed or invalid prompt); 1 failure while running
(unreadable image or checkpoint, device unavailable, cannot write output).
Errors are reported on stderr as "sam3-predict: error: ...".

Example
  echo '{"point_coords": [[500, 375]], "point_labels": [1]}' > p.json
  sam3-predict --checkpoint sam3.pt --image truck.jpg --prompt p.json \
      --output-dir out --save-raw out/raw.safetensors
  sam3-predict --checkpoint sam3.pt --images-dir frames/ \
      --box 425,600,700,875 --single-mask --output-dir masks
)";

// Something failed while running (exit status 1).
class RunError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------
// Command line.

struct Options {
  std::string checkpoint = sam3::default_model_path();
  std::string config;
  std::string device = "cpu";
  std::string precision = "fp32";
  int threads = 0;
  std::vector<std::string> images;
  std::vector<std::string> images_dirs;
  std::vector<std::string> image_lists;
  std::string prompt;
  std::vector<std::array<double, 3>> points;
  std::vector<std::array<double, 4>> boxes;
  std::optional<bool> multimask;
  std::optional<bool> return_logits;
  std::optional<double> mask_threshold;
  std::optional<double> max_hole_area;
  std::optional<double> max_sprinkle_area;
  std::string output_dir = "sam3-out";
  std::string save_raw;
  bool quiet = false;
  bool help = false;
};

std::string quoted(const std::string& s) { return "'" + s + "'"; }

double parse_double(const std::string& text, const std::string& what) {
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(begin, &end);
  if (text.empty() || end == begin || *end != '\0' || errno == ERANGE || !std::isfinite(v)) {
    throw UsageError(what + ": " + quoted(text) + " is not a finite number");
  }
  return v;
}

int parse_int(const std::string& text, const std::string& what) {
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(begin, &end, 10);
  if (text.empty() || end == begin || *end != '\0' || errno == ERANGE || v < -1000000 ||
      v > 1000000) {
    throw UsageError(what + ": " + quoted(text) + " is not an integer");
  }
  return static_cast<int>(v);
}

// "a,b,c" -> n numbers.
std::vector<double> parse_number_list(const std::string& text, size_t n, const std::string& what,
                                      const std::string& format) {
  std::vector<double> values;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) values.push_back(parse_double(item, what));
  if (!text.empty() && text.back() == ',') values.push_back(parse_double("", what));
  if (values.size() != n) {
    throw UsageError(what + " expects " + format + " (" + std::to_string(n) + " numbers), got " +
                     quoted(text));
  }
  return values;
}

std::array<double, 3> parse_point_flag(const std::string& text) {
  auto v = parse_number_list(text, 3, "--point", "x,y,label");
  if (v[2] != std::floor(v[2])) {
    throw UsageError("--point: the label in " + quoted(text) + " must be an integer (1 fg, 0 bg)");
  }
  return {v[0], v[1], v[2]};
}

std::array<double, 4> parse_box_flag(const std::string& text) {
  auto v = parse_number_list(text, 4, "--box", "x0,y0,x1,y1");
  return {v[0], v[1], v[2], v[3]};
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string name = arg;
    std::optional<std::string> inline_value;
    if (arg.rfind("--", 0) == 0) {
      size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        name = arg.substr(0, eq);
        inline_value = arg.substr(eq + 1);
      }
    }
    auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      if (i + 1 >= argc) throw UsageError("option " + name + " needs a value");
      return argv[++i];
    };
    auto flag = [&](bool& target) {
      if (inline_value) throw UsageError("option " + name + " takes no value");
      target = true;
    };
    bool on = false;
    if (name == "--help" || name == "-h") {
      flag(o.help);
    } else if (name == "--checkpoint") {
      o.checkpoint = value();
    } else if (name == "--config") {
      o.config = value();
    } else if (name == "--device") {
      o.device = value();
    } else if (name == "--precision") {
      o.precision = value();
    } else if (name == "--threads") {
      o.threads = parse_int(value(), "--threads");
      if (o.threads < 0) throw UsageError("--threads: must be >= 0 (0 = all cores)");
    } else if (name == "--image") {
      o.images.push_back(value());
    } else if (name == "--images-dir") {
      o.images_dirs.push_back(value());
    } else if (name == "--image-list") {
      o.image_lists.push_back(value());
    } else if (name == "--prompt") {
      o.prompt = value();
    } else if (name == "--point") {
      o.points.push_back(parse_point_flag(value()));
    } else if (name == "--box") {
      o.boxes.push_back(parse_box_flag(value()));
    } else if (name == "--multimask") {
      flag(on);
      o.multimask = true;
    } else if (name == "--single-mask") {
      flag(on);
      o.multimask = false;
    } else if (name == "--return-logits") {
      flag(on);
      o.return_logits = true;
    } else if (name == "--mask-threshold") {
      o.mask_threshold = parse_double(value(), "--mask-threshold");
    } else if (name == "--max-hole-area") {
      o.max_hole_area = parse_double(value(), "--max-hole-area");
    } else if (name == "--max-sprinkle-area") {
      o.max_sprinkle_area = parse_double(value(), "--max-sprinkle-area");
    } else if (name == "--output-dir") {
      o.output_dir = value();
    } else if (name == "--save-raw") {
      o.save_raw = value();
    } else if (name == "--quiet" || name == "-q") {
      flag(o.quiet);
    } else if (arg.rfind("-", 0) == 0 && arg.size() > 1) {
      throw UsageError("unknown option " + quoted(arg) + " (see --help)");
    } else {
      throw UsageError("unexpected argument " + quoted(arg) + " (images are given with --image)");
    }
  }
  return o;
}

// ---------------------------------------------------------------------------
// Input images.

bool has_image_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::set<std::string> kExts = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"};
  return kExts.count(ext) > 0;
}

std::vector<std::string> list_images_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw UsageError("--images-dir: no such folder: " + dir);
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && has_image_extension(entry.path())) {
      files.push_back(entry.path().string());
    }
  }
  if (ec) throw RunError("cannot list folder " + dir + ": " + ec.message());
  if (files.empty()) {
    throw UsageError("--images-dir: no .png/.jpg/.jpeg/.bmp/.tif images in " + dir);
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> read_image_list(const std::string& list) {
  std::ifstream in(list);
  if (!in) throw UsageError("--image-list: cannot open " + list);
  const fs::path base = fs::path(list).parent_path();
  std::vector<std::string> files;
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    fs::path p(line);
    files.push_back(p.is_absolute() || base.empty() ? p.string() : (base / p).string());
  }
  if (files.empty()) throw UsageError("--image-list: no image paths in " + list);
  return files;
}

struct Inputs {
  std::vector<std::string> paths;
  bool batch = false;  // set_image_batch / predict_batch
};

Inputs collect_inputs(const Options& o) {
  Inputs in;
  in.paths = o.images;
  for (const auto& dir : o.images_dirs) {
    for (auto& f : list_images_dir(dir)) in.paths.push_back(f);
  }
  for (const auto& list : o.image_lists) {
    for (auto& f : read_image_list(list)) in.paths.push_back(f);
  }
  if (in.paths.empty()) {
    throw UsageError("no input image (use --image, --images-dir or --image-list)");
  }
  in.batch = o.images.size() >= 2 && o.images_dirs.empty() && o.image_lists.empty();
  for (const auto& p : in.paths) {
    std::error_code ec;
    if (!fs::exists(p, ec)) throw UsageError("image not found: " + p);
    if (!fs::is_regular_file(p, ec)) throw UsageError("not a file: " + p);
  }
  return in;
}

// H x W x 3 uint8 RGB, or RunError naming the file.
cv::Mat read_rgb_image(const std::string& path) {
  cv::Mat raw;
  try {
    raw = cv::imread(path, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw RunError("cannot read image " + path + ": " + e.what());
  }
  if (raw.empty()) {
    throw RunError("cannot read image " + path + " (not an image OpenCV can decode)");
  }
  if (raw.depth() != CV_8U) {
    const char* what = (raw.depth() == CV_16U || raw.depth() == CV_16S) ? "16-bit" : "non-8-bit";
    throw RunError("image " + path + " is " + what + "; only 8-bit images are supported");
  }
  cv::Mat rgb;
  switch (raw.channels()) {
    case 1: cv::cvtColor(raw, rgb, cv::COLOR_GRAY2RGB); break;
    case 2: {  // gray + alpha
      std::vector<cv::Mat> planes;
      cv::split(raw, planes);
      cv::cvtColor(planes[0], rgb, cv::COLOR_GRAY2RGB);
      break;
    }
    case 3: cv::cvtColor(raw, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(raw, rgb, cv::COLOR_BGRA2RGB); break;
    default:
      throw RunError("image " + path + " has " + std::to_string(raw.channels()) +
                     " channels; expected 1, 3 or 4");
  }
  return rgb;
}

// ---------------------------------------------------------------------------
// Prompt (parsed by prompt_json.cpp).

// Applies the quick flags on top of the JSON prompt (see --help).
void apply_flags(const Options& o, Prompt& p) {
  if (!o.points.empty()) {
    if (p.point_coords_batch || p.point_labels_batch) {
      throw UsageError("--point cannot be combined with point_coords_batch/point_labels_batch");
    }
    std::vector<float> xy;
    std::vector<int64_t> labels;
    for (const auto& pt : o.points) {
      xy.push_back(static_cast<float>(pt[0]));
      xy.push_back(static_cast<float>(pt[1]));
      labels.push_back(static_cast<int64_t>(pt[2]));
    }
    auto coords = torch::tensor(xy).reshape({-1, 2});
    auto labs = torch::tensor(labels, torch::kInt64);
    auto& c = p.common;
    if (c.point_coords.defined() || c.point_labels.defined()) {
      if (!c.point_coords.defined() || !c.point_labels.defined() || c.point_coords.dim() != 2 ||
          c.point_labels.dim() != 1) {
        throw UsageError("--point can only extend a prompt whose point_coords is N x 2 and "
                         "point_labels is N");
      }
      coords = torch::cat({c.point_coords, coords}, 0);
      labs = torch::cat({c.point_labels, labs}, 0);
    }
    c.point_coords = coords;
    c.point_labels = labs;
  }
  if (!o.boxes.empty()) {
    if (p.box_batch) throw UsageError("--box cannot be combined with box_batch");
    std::vector<float> v;
    for (const auto& b : o.boxes) v.insert(v.end(), b.begin(), b.end());
    auto box = torch::tensor(v);
    p.common.box = o.boxes.size() == 1 ? box : box.reshape({-1, 4});
  }
  if (o.multimask) p.multimask_output = *o.multimask;
  if (o.return_logits) p.return_logits = *o.return_logits;
  if (o.mask_threshold) p.mask_threshold = o.mask_threshold;
  if (o.max_hole_area) p.max_hole_area = o.max_hole_area;
  if (o.max_sprinkle_area) p.max_sprinkle_area = o.max_sprinkle_area;
}

void check_labels_match(const torch::Tensor& coords, const torch::Tensor& labels,
                        const std::string& where) {
  if (coords.defined() != labels.defined()) {
    throw UsageError(where + (coords.defined() ? "point_coords given without point_labels"
                                               : "point_labels given without point_coords"));
  }
  if (!coords.defined()) return;
  auto expected = coords.sizes().slice(0, coords.dim() - 1).vec();
  if (labels.sizes().vec() != expected) {
    throw UsageError(where + "point_labels has shape " + shape_str(labels.sizes().vec()) +
                     " but point_coords has shape " + shape_str(coords.sizes().vec()) +
                     " (labels count must equal points count: expected " +
                     shape_str(expected) + ")");
  }
}

void check_batch_list(const std::optional<std::vector<torch::Tensor>>& list,
                      const torch::Tensor& single, const std::string& key, size_t num_images) {
  if (!list) return;
  const std::string single_key = key.substr(0, key.size() - 6);  // drop "_batch"
  if (single.defined()) {
    throw UsageError("prompt: '" + key + "' and '" + single_key + "' cannot both be given");
  }
  if (list->size() != num_images) {
    throw UsageError("prompt key '" + key + "': has " + std::to_string(list->size()) +
                     " entries but there are " + std::to_string(num_images) + " images");
  }
}

torch::Tensor pick(const std::optional<std::vector<torch::Tensor>>& list,
                   const torch::Tensor& single, size_t j) {
  return list ? (*list)[j] : single;
}

ImagePrompt prompt_for_image(const Prompt& p, size_t j) {
  ImagePrompt ip;
  ip.point_coords = pick(p.point_coords_batch, p.common.point_coords, j);
  ip.point_labels = pick(p.point_labels_batch, p.common.point_labels, j);
  ip.box = pick(p.box_batch, p.common.box, j);
  ip.mask_input = pick(p.mask_input_batch, p.common.mask_input, j);
  return ip;
}

void check_non_negative(const std::optional<double>& value, const std::string& key) {
  if (value && *value < 0) {
    throw UsageError("prompt: " + key + " must be >= 0, got " + json(*value).dump());
  }
}

void validate_prompt(const Prompt& p, size_t num_images) {
  check_batch_list(p.point_coords_batch, p.common.point_coords, "point_coords_batch", num_images);
  check_batch_list(p.point_labels_batch, p.common.point_labels, "point_labels_batch", num_images);
  check_batch_list(p.box_batch, p.common.box, "box_batch", num_images);
  check_batch_list(p.mask_input_batch, p.common.mask_input, "mask_input_batch", num_images);
  const bool per_image = p.point_coords_batch || p.point_labels_batch;
  for (size_t j = 0; j < (per_image ? num_images : 1); ++j) {
    ImagePrompt ip = prompt_for_image(p, j);
    check_labels_match(ip.point_coords, ip.point_labels,
                       per_image ? "prompt (image " + std::to_string(j) + "): " : "prompt: ");
  }
  check_non_negative(p.max_hole_area, "max_hole_area");
  check_non_negative(p.max_sprinkle_area, "max_sprinkle_area");
}

sam3::PredictArgs predict_args(const Prompt& p, size_t j) {
  ImagePrompt ip = prompt_for_image(p, j);
  sam3::PredictArgs a;
  a.point_coords = ip.point_coords;
  a.point_labels = ip.point_labels;
  a.box = ip.box;
  a.mask_input = ip.mask_input;
  a.multimask_output = p.multimask_output;
  a.return_logits = p.return_logits;
  a.normalize_coords = p.normalize_coords;
  return a;
}

// ---------------------------------------------------------------------------
// Outputs.

// Unique output stems: foo.png -> foo (foo_{j} if an earlier image used it).
std::vector<std::string> output_stems(const std::vector<std::string>& paths) {
  std::vector<std::string> stems;
  std::set<std::string> used;
  for (size_t j = 0; j < paths.size(); ++j) {
    std::string stem = fs::path(paths[j]).stem().string();
    if (stem.empty()) stem = "image";
    if (used.count(stem)) stem += "_" + std::to_string(j);
    used.insert(stem);
    stems.push_back(stem);
  }
  return stems;
}

void write_png(const fs::path& path, const cv::Mat& mask) {
  bool ok = false;
  try {
    ok = cv::imwrite(path.string(), mask);
  } catch (const cv::Exception& e) {
    throw RunError("cannot write " + path.string() + ": " + e.what());
  }
  if (!ok) throw RunError("cannot write " + path.string());
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw RunError("cannot write " + path.string());
}

struct ImageResult {
  std::string path;
  std::string stem;
  int width = 0, height = 0;
  double set_image_ms = 0, predict_ms = 0;
};

// Writes foo.mask{k}.png / foo.obj{b}.mask{k}.png and foo.json; returns the
// number of masks.
int64_t write_image_outputs(const ImageResult& r, const sam3::Prediction& pred,
                            const Prompt& prompt, double mask_threshold, const fs::path& out_dir,
                            bool batch) {
  torch::Tensor masks = pred.masks.detach().to(torch::kCPU, torch::kFloat32);
  torch::Tensor ious = pred.iou_predictions.detach().to(torch::kCPU, torch::kDouble);
  const bool multi_object = masks.dim() == 4;
  if (!multi_object) {
    masks = masks.unsqueeze(0);
    ious = ious.reshape({1, -1});
  }
  if (masks.dim() != 4 || masks.size(2) != r.height || masks.size(3) != r.width) {
    throw RunError("unexpected mask shape " + shape_str(pred.masks.sizes().vec()) + " for image " +
                   r.path);
  }
  const double cut = prompt.return_logits ? mask_threshold : 0.5;
  const torch::Tensor binary = (masks > cut).to(torch::kUInt8).mul_(255).contiguous();

  ojson objects = ojson::array();
  int64_t written = 0;
  for (int64_t b = 0; b < binary.size(0); ++b) {
    ojson mask_list = ojson::array();
    for (int64_t k = 0; k < binary.size(1); ++k) {
      torch::Tensor m = binary[b][k].contiguous();
      cv::Mat mat(r.height, r.width, CV_8UC1, m.data_ptr<uint8_t>());
      std::string name = r.stem + (multi_object ? ".obj" + std::to_string(b) : "") + ".mask" +
                         std::to_string(k) + ".png";
      write_png(out_dir / name, mat);
      const int area = cv::countNonZero(mat);
      ojson bbox = nullptr;
      if (area > 0) {
        cv::Rect rect = cv::boundingRect(mat);
        bbox = {rect.x, rect.y, rect.width, rect.height};
      }
      mask_list.push_back({{"index", k},
                           {"iou_prediction", ious[b][k].item<double>()},
                           {"area", area},
                           {"bbox_xywh", bbox},
                           {"file", name}});
      ++written;
    }
    objects.push_back({{"index", b}, {"masks", mask_list}});
  }
  ojson doc = {{"image", r.path},
              {"width", r.width},
              {"height", r.height},
              {"num_objects", binary.size(0)},
              {"masks_per_object", binary.size(1)},
              {"multimask_output", prompt.multimask_output},
              {"return_logits", prompt.return_logits},
              {"mask_threshold", mask_threshold},
              {"batch", batch},
              {"set_image_ms", r.set_image_ms},
              {"predict_ms", r.predict_ms},
              {"objects", objects}};
  write_text(out_dir / (r.stem + ".json"), doc.dump(2) + "\n");
  return written;
}

void add_raw(sam3::StateDict& raw, const sam3::Prediction& pred, const std::string& prefix) {
  raw[prefix + "masks"] = pred.masks.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  raw[prefix + "iou_predictions"] =
      pred.iou_predictions.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  raw[prefix + "low_res_masks"] =
      pred.low_res_masks.detach().to(torch::kCPU, torch::kFloat32).contiguous();
}

// ---------------------------------------------------------------------------
// Progress on stderr.

class Progress {
 public:
  Progress(bool quiet, size_t total)
      : quiet_(quiet), tty_(::isatty(STDERR_FILENO) == 1), total_(total) {}

  void image(size_t j, const std::string& name, double set_ms, double pred_ms,
             const std::string& note = "") {
    if (quiet_) return;
    char line[512];
    std::snprintf(line, sizeof(line), "[%zu/%zu] %s: set_image %.1f ms, predict %.1f ms%s", j + 1,
                  total_, name.c_str(), set_ms, pred_ms, note.c_str());
    if (tty_) {
      std::fprintf(stderr, "\r%s\033[K", line);
      pending_newline_ = true;
    } else {
      std::fprintf(stderr, "%s\n", line);
    }
    std::fflush(stderr);
  }

  void summary(const std::string& text) {
    if (quiet_) return;
    end_line();
    std::fprintf(stderr, "%s\n", text.c_str());
    std::fflush(stderr);
  }

  // Terminates an in-place line (before an error message).
  void end_line() {
    if (pending_newline_) std::fputc('\n', stderr);
    pending_newline_ = false;
  }

 private:
  bool quiet_;
  bool tty_;
  size_t total_;
  bool pending_newline_ = false;
};

Progress* g_progress = nullptr;

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// ---------------------------------------------------------------------------
// Main flow.

void check_model_files(const Options& o) {
  std::error_code ec;
  if (!fs::is_regular_file(o.checkpoint, ec)) {
    std::string where;
    if (o.checkpoint == sam3::default_model_path()) {
      where = " (the bundled default model; looked in:";
      for (const auto& c : sam3::default_model_candidates()) where += " " + c;
      where += ")";
    }
    throw UsageError("checkpoint not found: " + o.checkpoint + where);
  }
  if (!o.config.empty() && !fs::is_regular_file(o.config, ec)) {
    throw UsageError("config not found: " + o.config);
  }
}

std::shared_ptr<const sam3::Model> load_model(const Options& o) {
  sam3::ModelOptions mo;
  mo.device = o.device;
  mo.precision = sam3::parse_precision(o.precision);
  mo.num_threads = o.threads;
  mo.config_path = o.config;
  return sam3::Model::load(o.checkpoint, mo);
}

void check_precision(const std::string& s) {
  try {
    sam3::parse_precision(s);
  } catch (const sam3::Error&) {
    throw UsageError("--precision: " + quoted(s) + " is not one of fp32, bf16, fp16");
  }
}

int run(const Options& o) {
  const auto t_start = Clock::now();
  check_model_files(o);
  check_precision(o.precision);
  Inputs inputs = collect_inputs(o);
  Prompt prompt = o.prompt.empty() ? Prompt{} : load_prompt(o.prompt);
  apply_flags(o, prompt);
  validate_prompt(prompt, inputs.paths.size());
  for (const auto& p : inputs.paths) {
    if (!cv::haveImageReader(p)) throw RunError("cannot read image " + p + " (not an image)");
  }

  const auto t_load = Clock::now();
  auto model = load_model(o);
  const double load_ms = ms_since(t_load);
  const auto& defaults = model->config().predictor;
  const double thr = prompt.mask_threshold.value_or(defaults.mask_threshold);
  sam3::InteractiveImagePredictor predictor(model, thr,
                                            prompt.max_hole_area.value_or(defaults.max_hole_area),
                                            prompt.max_sprinkle_area.value_or(
                                                defaults.max_sprinkle_area));

  const fs::path out_dir = o.output_dir;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec || !fs::is_directory(out_dir)) {
    throw RunError("cannot create output folder " + o.output_dir +
                   (ec ? ": " + ec.message() : std::string()));
  }

  const size_t n = inputs.paths.size();
  const std::vector<std::string> stems = output_stems(inputs.paths);
  Progress progress(o.quiet, n);
  g_progress = &progress;
  sam3::StateDict raw;
  auto raw_prefix = [&](size_t j) { return n > 1 ? "batch" + std::to_string(j) + "." : ""; };
  int64_t total_masks = 0;
  double sum_set_ms = 0, sum_pred_ms = 0;

  if (inputs.batch) {
    std::vector<cv::Mat> images;
    std::vector<ImageResult> results(n);
    for (size_t j = 0; j < n; ++j) {
      images.push_back(read_rgb_image(inputs.paths[j]));
      results[j] = {inputs.paths[j], stems[j], images[j].cols, images[j].rows, 0, 0};
    }
    auto t0 = Clock::now();
    predictor.set_image_batch(images);
    const double set_ms = ms_since(t0);
    std::vector<sam3::PredictArgs> args;
    for (size_t j = 0; j < n; ++j) args.push_back(predict_args(prompt, j));
    t0 = Clock::now();
    std::vector<sam3::Prediction> preds = predictor.predict_batch(args);
    const double pred_ms = ms_since(t0);
    if (preds.size() != n) throw RunError("predict_batch returned a wrong number of results");
    sum_set_ms = set_ms;
    sum_pred_ms = pred_ms;
    const std::string note = " (whole batch of " + std::to_string(n) + ")";
    for (size_t j = 0; j < n; ++j) {
      results[j].set_image_ms = set_ms;
      results[j].predict_ms = pred_ms;
      total_masks += write_image_outputs(results[j], preds[j], prompt, thr, out_dir, true);
      if (!o.save_raw.empty()) add_raw(raw, preds[j], raw_prefix(j));
      progress.image(j, fs::path(inputs.paths[j]).filename().string(), set_ms, pred_ms, note);
    }
  } else {
    for (size_t j = 0; j < n; ++j) {
      cv::Mat rgb = read_rgb_image(inputs.paths[j]);
      ImageResult r{inputs.paths[j], stems[j], rgb.cols, rgb.rows, 0, 0};
      auto t0 = Clock::now();
      predictor.set_image(rgb);
      r.set_image_ms = ms_since(t0);
      t0 = Clock::now();
      sam3::Prediction pred = predictor.predict(predict_args(prompt, j));
      r.predict_ms = ms_since(t0);
      sum_set_ms += r.set_image_ms;
      sum_pred_ms += r.predict_ms;
      total_masks += write_image_outputs(r, pred, prompt, thr, out_dir, false);
      if (!o.save_raw.empty()) add_raw(raw, pred, raw_prefix(j));
      progress.image(j, fs::path(inputs.paths[j]).filename().string(), r.set_image_ms,
                     r.predict_ms);
    }
  }

  if (!o.save_raw.empty()) {
    fs::path raw_path = o.save_raw;
    if (raw_path.has_parent_path()) fs::create_directories(raw_path.parent_path(), ec);
    try {
      sam3::save_safetensors(o.save_raw, raw, {{"producer", "sam3-predict"}});
    } catch (const sam3::Error& e) {
      throw RunError(std::string("cannot write raw outputs: ") + e.what());
    }
  }

  char text[512];
  const double div = inputs.batch ? 1.0 : static_cast<double>(n);
  std::snprintf(text, sizeof(text),
                "%s: %zu image%s, %lld mask%s written to %s (model load %.0f ms; %s %.1f ms, "
                "%s %.1f ms; total %.2f s)",
                kProg, n, n == 1 ? "" : "s", static_cast<long long>(total_masks),
                total_masks == 1 ? "" : "s", o.output_dir.c_str(), load_ms,
                inputs.batch ? "set_image_batch" : "set_image mean", sum_set_ms / div,
                inputs.batch ? "predict_batch" : "predict mean", sum_pred_ms / div,
                ms_since(t_start) / 1000.0);
  progress.summary(text);
  g_progress = nullptr;
  return 0;
}

int report_error(const std::string& message, int status) {
  if (g_progress) g_progress->end_line();
  std::string msg = message;
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  std::fprintf(stderr, "%s: error: %s\n", kProg, msg.c_str());
  std::fflush(stderr);
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
  } catch (const sam3::Error& e) {
    return report_error(e.what(), 1);
  } catch (const c10::Error& e) {
    return report_error(e.what_without_backtrace(), 1);
  } catch (const cv::Exception& e) {
    return report_error(e.what(), 1);
  } catch (const std::exception& e) {
    return report_error(e.what(), 1);
  } catch (...) {
    return report_error("unknown error", 1);
  }
}
