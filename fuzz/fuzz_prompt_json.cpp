// Fuzzes sam3-predict's JSON prompt parser (sam3_cli::parse_prompt,
// predictor/tools/prompt_json.cpp) on the JSON text of the input. Mask
// references ({"file": ..., "tensor": ...}) resolve against a scratch folder
// holding one mask file, masks.safetensors (tensor "m", 1x4x4); inputs naming
// any other file path (absolute, with a folder or "..") are skipped so the
// fuzzer cannot make the harness read arbitrary files of the machine.
// Acceptable failures: sam3_cli::UsageError and sam3::CheckpointError (a mask
// file that is not a checkpoint); anything else is a finding.
#include <nlohmann/json.hpp>
#include <sam3/checkpoint.h>
#include <sam3/errors.h>

#include <filesystem>
#include <string>

#include "fuzz_common.h"
#include "prompt_json.h"

namespace {

bool plain_name(const nlohmann::json& ref) {
  if (!ref.is_object() || !ref.contains("file") || !ref["file"].is_string()) return true;
  const std::string f = ref["file"].get<std::string>();
  return !f.empty() && f.find('/') == std::string::npos && f != "." && f != "..";
}

// True when every mask file the prompt names (the only files parse_prompt opens:
// mask_input and mask_input_batch[i]) is a plain file name.
bool only_plain_file_names(const nlohmann::json& j) {
  if (!j.is_object()) return true;
  if (j.contains("mask_input") && !plain_name(j["mask_input"])) return false;
  if (j.contains("mask_input_batch") && j["mask_input_batch"].is_array()) {
    for (const auto& ref : j["mask_input_batch"]) {
      if (!plain_name(ref)) return false;
    }
  }
  return true;
}

// The scratch folder with masks.safetensors, removed at exit.
struct MaskDir {
  MaskDir() : path(sam3_fuzz::TempFile(".d").path()) {
    std::filesystem::create_directories(path);
    sam3::save_safetensors(path + "/masks.safetensors", {{"m", torch::zeros({1, 4, 4})}});
  }
  ~MaskDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const MaskDir dir;
  const nlohmann::json j =
      nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !only_plain_file_names(j)) return 0;
  try {
    sam3_cli::MaskLoader masks(dir.path);
    const sam3_cli::Prompt p = sam3_cli::parse_prompt(j, masks);
    for (const torch::Tensor& t : {p.common.point_coords, p.common.point_labels, p.common.box,
                                   p.common.mask_input}) {
      if (t.defined()) sam3_fuzz::touch(t.contiguous());
    }
  } catch (const sam3_cli::UsageError&) {
  } catch (const sam3::CheckpointError&) {
  }
  return 0;
}
