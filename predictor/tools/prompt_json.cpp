// sam3-predict's JSON prompt (see prompt_json.h).
#include "prompt_json.h"

#include <cmath>
#include <fstream>
#include <set>

namespace sam3_cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string json_type(const json& j) {
  if (j.is_null()) return "null";
  if (j.is_boolean()) return "a boolean";
  if (j.is_string()) return "a string";
  if (j.is_object()) return "an object";
  if (j.is_array()) return "a list";
  return "a number";
}


torch::Tensor MaskLoader::load(const json& ref, const std::string& key) {
  if (!ref.is_object()) {
    throw UsageError("prompt key '" + key + "': expected {\"file\": ..., \"tensor\": ...} or "
                     "null, got " + json_type(ref));
  }
  for (const auto& item : ref.items()) {
    if (item.key() != "file" && item.key() != "tensor") {
      throw UsageError("prompt key '" + key + "': unknown member '" + item.key() +
                       "' (expected \"file\" and \"tensor\")");
    }
  }
  if (!ref.contains("file") || !ref["file"].is_string() || !ref.contains("tensor") ||
      !ref["tensor"].is_string()) {
    throw UsageError("prompt key '" + key + "': needs string members \"file\" and \"tensor\"");
  }
  fs::path file = ref["file"].get<std::string>();
  if (file.is_relative() && !base_.empty()) file = base_ / file;
  const std::string name = ref["tensor"].get<std::string>();
  const sam3::StateDict& sd = open(file.string(), key);
  auto it = sd.find(name);
  if (it == sd.end()) {
    throw UsageError("prompt key '" + key + "': tensor '" + name + "' not found in " +
                     file.string());
  }
  return it->second.to(torch::kFloat32);
}


const sam3::StateDict& MaskLoader::open(const std::string& file, const std::string& key) {
  auto it = cache_.find(file);
  if (it != cache_.end()) return it->second;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    throw UsageError("prompt key '" + key + "': mask file not found: " + file);
  }
  return cache_.emplace(file, sam3::load_state_dict(file)).first->second;
}

namespace {

// A rectangular nested list of numbers.
struct NdArray {
  std::vector<int64_t> shape;
  std::vector<double> values;
};

// Deeper lists than any prompt needs (B x N x 2) are refused before recursing further.
constexpr int kMaxListDepth = 8;

std::vector<int64_t> collect_numbers(const json& j, const std::string& key, const std::string& path,
                                     std::vector<double>& values, int depth = 0) {
  if (depth > kMaxListDepth) {
    throw UsageError("prompt key '" + key + "': lists nested more than " +
                     std::to_string(kMaxListDepth) + " deep");
  }
  if (j.is_number()) {
    values.push_back(j.get<double>());
    return {};
  }
  if (!j.is_array()) {
    throw UsageError("prompt key '" + key + "': " + path + " is " + json_type(j) +
                     ", expected a number or a list of numbers");
  }
  std::vector<int64_t> inner;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string sub = path + "[" + std::to_string(i) + "]";
    auto s = collect_numbers(j[i], key, sub, values, depth + 1);
    if (i == 0) {
      inner = s;
    } else if (s != inner) {
      throw UsageError("prompt key '" + key + "': ragged list: " + sub + " has shape " +
                       shape_str(s) + " but " + path + "[0] has shape " + shape_str(inner));
    }
  }
  inner.insert(inner.begin(), static_cast<int64_t>(j.size()));
  return inner;
}

NdArray to_ndarray(const json& j, const std::string& key) {
  NdArray a;
  a.shape = collect_numbers(j, key, key, a.values);
  return a;
}

torch::Tensor to_tensor(const NdArray& a, torch::Dtype dtype) {
  auto t = torch::tensor(a.values, torch::kDouble).reshape(a.shape);
  return t.to(dtype);
}

torch::Tensor parse_point_coords(const json& j, const std::string& key) {
  NdArray a = to_ndarray(j, key);
  if ((a.shape.size() != 2 && a.shape.size() != 3) || a.shape.back() != 2) {
    throw UsageError("prompt key '" + key + "': expected N x 2 or B x N x 2 numbers, got shape " +
                     shape_str(a.shape));
  }
  return to_tensor(a, torch::kFloat32);
}

torch::Tensor parse_point_labels(const json& j, const std::string& key) {
  NdArray a = to_ndarray(j, key);
  if (a.shape.size() != 1 && a.shape.size() != 2) {
    throw UsageError("prompt key '" + key + "': expected N or B x N labels, got shape " +
                     shape_str(a.shape));
  }
  for (double v : a.values) {
    if (v != std::floor(v)) {
      throw UsageError("prompt key '" + key + "': labels must be integers (1 fg, 0 bg), got " +
                       json(v).dump());
    }
  }
  return to_tensor(a, torch::kInt64);
}

torch::Tensor parse_box(const json& j, const std::string& key) {
  NdArray a = to_ndarray(j, key);
  if ((a.shape.size() != 1 && a.shape.size() != 2) || a.shape.back() != 4) {
    throw UsageError("prompt key '" + key + "': expected 4 or B x 4 numbers (x0, y0, x1, y1), "
                     "got shape " + shape_str(a.shape));
  }
  return to_tensor(a, torch::kFloat32);
}

// Loads {"file": ..., "tensor": ...} mask references, caching the files.


bool parse_bool(const json& j, const std::string& key) {
  if (!j.is_boolean()) {
    throw UsageError("prompt key '" + key + "': expected true, false or null, got " + json_type(j));
  }
  return j.get<bool>();
}

double parse_number(const json& j, const std::string& key) {
  if (!j.is_number()) {
    throw UsageError("prompt key '" + key + "': expected a number or null, got " + json_type(j));
  }
  return j.get<double>();
}

template <typename Fn>
std::vector<torch::Tensor> parse_batch_list(const json& j, const std::string& key, Fn parse_one) {
  if (!j.is_array()) {
    throw UsageError("prompt key '" + key + "': expected a list with one entry (or null) per "
                     "image, got " + json_type(j));
  }
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string sub = key + "[" + std::to_string(i) + "]";
    out.push_back(j[i].is_null() ? torch::Tensor() : parse_one(j[i], sub));
  }
  return out;
}

}  // namespace

Prompt parse_prompt(const json& root, MaskLoader& masks) {
  if (!root.is_object()) {
    throw UsageError("prompt must be a JSON object of predict() arguments, got " + json_type(root));
  }
  Prompt p;
  auto mask_one = [&](const json& j, const std::string& key) { return masks.load(j, key); };
  for (const auto& item : root.items()) {
    const std::string& key = item.key();
    const json& v = item.value();
    static const std::set<std::string> kKnown = {
        "point_coords", "point_labels", "box", "mask_input", "multimask_output",
        "return_logits", "normalize_coords", "mask_threshold", "max_hole_area",
        "max_sprinkle_area", "point_coords_batch", "point_labels_batch", "box_batch",
        "mask_input_batch"};
    if (!kKnown.count(key)) {
      throw UsageError("prompt: unknown key '" + key + "' (allowed: point_coords, point_labels, "
                       "box, mask_input, multimask_output, return_logits, normalize_coords, "
                       "mask_threshold, max_hole_area, max_sprinkle_area, *_batch)");
    }
    if (v.is_null()) continue;
    if (key == "point_coords") {
      p.common.point_coords = parse_point_coords(v, key);
    } else if (key == "point_labels") {
      p.common.point_labels = parse_point_labels(v, key);
    } else if (key == "box") {
      p.common.box = parse_box(v, key);
    } else if (key == "mask_input") {
      p.common.mask_input = masks.load(v, key);
    } else if (key == "multimask_output") {
      p.multimask_output = parse_bool(v, key);
    } else if (key == "return_logits") {
      p.return_logits = parse_bool(v, key);
    } else if (key == "normalize_coords") {
      p.normalize_coords = parse_bool(v, key);
    } else if (key == "mask_threshold") {
      p.mask_threshold = parse_number(v, key);
    } else if (key == "max_hole_area") {
      p.max_hole_area = parse_number(v, key);
    } else if (key == "max_sprinkle_area") {
      p.max_sprinkle_area = parse_number(v, key);
    } else if (key == "point_coords_batch") {
      p.point_coords_batch = parse_batch_list(v, key, parse_point_coords);
    } else if (key == "point_labels_batch") {
      p.point_labels_batch = parse_batch_list(v, key, parse_point_labels);
    } else if (key == "box_batch") {
      p.box_batch = parse_batch_list(v, key, parse_box);
    } else if (key == "mask_input_batch") {
      p.mask_input_batch = parse_batch_list(v, key, mask_one);
    }
  }
  return p;
}

Prompt load_prompt(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw UsageError("prompt file not found: " + path);
  std::ifstream in(path);
  if (!in) throw UsageError("cannot open prompt file " + path);
  json root;
  try {
    root = json::parse(in);
  } catch (const json::exception& e) {
    throw UsageError("malformed JSON in prompt file " + path + ": " + e.what());
  }
  MaskLoader masks(fs::path(path).parent_path());
  return parse_prompt(root, masks);
}

}  // namespace sam3_cli
