// Fuzzes the safetensors reader (sam3::load_safetensors with metadata,
// predictor/src/checkpoint.cpp) and, like Model::load, the model config carried
// in its "config" metadata entry (sam3::ModelConfig::from_json + validate).
// The input is the whole file. Acceptable failures: sam3::CheckpointError and,
// for the config entry, sam3::ConfigError; anything else is a finding.
#include <nlohmann/json.hpp>
#include <sam3/checkpoint.h>
#include <sam3/config.h>
#include <sam3/errors.h>

#include <map>
#include <string>

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const sam3_fuzz::TempFile file(".safetensors");
  file.write(data, size);
  std::map<std::string, std::string> metadata;
  try {
    const sam3::StateDict sd = sam3::load_safetensors(file.path(), &metadata);
    for (const auto& [name, t] : sd) sam3_fuzz::touch(t);
  } catch (const sam3::CheckpointError&) {
    return 0;
  }
  const auto it = metadata.find("config");
  if (it == metadata.end()) return 0;
  // Model::load: the metadata must be JSON, then a valid config.
  const nlohmann::json j = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    const sam3::ModelConfig cfg = sam3::ModelConfig::from_json(j);
    cfg.validate();
    (void)cfg.to_json().dump();
  } catch (const sam3::ConfigError&) {
  }
  return 0;
}
