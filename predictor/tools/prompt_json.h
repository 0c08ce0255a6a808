// sam3-predict's JSON prompt: parsing a prompt file (the keyword arguments of
// InteractiveImagePredictor::predict / predict_batch) into tensors. Shared by
// sam3-predict and the fuzz harness fuzz/fuzz_prompt_json.cpp; not installed.
//
//   sam3_cli::MaskLoader masks("dir/of/prompt");   // resolves relative mask files
//   sam3_cli::Prompt p = sam3_cli::parse_prompt(nlohmann::json::parse(text), masks);
//   sam3_cli::Prompt q = sam3_cli::load_prompt("p.json");
//
// Every invalid prompt throws UsageError naming the key and what is wrong
// (sam3-predict turns it into exit status 2); a mask file that cannot be read
// throws sam3::CheckpointError.
//
// Thread-safety: the functions share no state; a MaskLoader (it caches the mask
// files it read) must not be used by two threads at once.
#pragma once

#include <nlohmann/json.hpp>
#include <sam3/sam3.h>

#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sam3_cli {

// The invocation or its input is wrong (exit status 2).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "[2, 3]"
std::string shape_str(const std::vector<int64_t>& shape);
// "a list", "null", ... (for messages)
std::string json_type(const nlohmann::json& j);

// Loads {"file": ..., "tensor": ...} mask references, caching the files.
class MaskLoader {
 public:
  explicit MaskLoader(std::filesystem::path base) : base_(std::move(base)) {}

  torch::Tensor load(const nlohmann::json& ref, const std::string& key);

 private:
  const sam3::StateDict& open(const std::string& file, const std::string& key);

  std::filesystem::path base_;
  std::map<std::string, sam3::StateDict> cache_;
};

// One image's prompt tensors (undefined = None).
struct ImagePrompt {
  torch::Tensor point_coords, point_labels, box, mask_input;
};

struct Prompt {
  ImagePrompt common;
  // predict_batch() keys: one entry per image; nullopt = key absent.
  std::optional<std::vector<torch::Tensor>> point_coords_batch, point_labels_batch, box_batch,
      mask_input_batch;
  bool multimask_output = true;
  bool return_logits = false;
  bool normalize_coords = true;
  std::optional<double> mask_threshold, max_hole_area, max_sprinkle_area;
};

// The JSON prompt object -> tensors. Throws UsageError.
Prompt parse_prompt(const nlohmann::json& root, MaskLoader& masks);
// Reads and parses a prompt file; relative mask files are resolved against its folder.
Prompt load_prompt(const std::string& path);

}  // namespace sam3_cli
