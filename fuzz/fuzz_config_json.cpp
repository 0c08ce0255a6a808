// Fuzzes the model config JSON parsers and their validation:
// sam3::ModelConfig::from_json (families sam3 and sam2.1, predictor/src/config.cpp)
// and sam3::sam1::Sam1Config::from_json (predictor/src/sam1/sam1_config.cpp),
// on the JSON text of the input. A config they accept must survive its derived
// sizes (Hiera block schedule, levels, ...) and round-trip through to_json().
// Acceptable failure: sam3::ConfigError; anything else is a finding.
#include <nlohmann/json.hpp>
#include <sam3/config.h>
#include <sam3/errors.h>

#include <string>

#include "sam1/sam1_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json j =
      nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    const sam3::ModelConfig cfg = sam3::ModelConfig::from_json(j);
    cfg.validate();
    (void)cfg.token_grid();
    (void)cfg.num_levels();
    (void)cfg.pixel_mean();
    if (cfg.is_sam2()) {
      (void)cfg.hiera.blocks();
      (void)cfg.hiera.stage_dims();
    }
    const nlohmann::json out = cfg.to_json();
    const sam3::ModelConfig again = sam3::ModelConfig::from_json(out);  // must not throw
    if (again.to_json() != out) __builtin_trap();                        // lossless
  } catch (const sam3::ConfigError&) {
  }
  try {
    const sam3::sam1::Sam1Config c1 = sam3::sam1::Sam1Config::from_json(j);
    (void)c1.mlp_hidden_dim();
    if (!sam3::sam1::Sam1Config::from_json(c1.to_json()).same_architecture(c1)) __builtin_trap();
  } catch (const sam3::ConfigError&) {
  }
  return 0;
}
