// The default (official full-size) config builds exactly the required keys,
// shapes, dtypes and parameter/buffer kinds of sam3.pt as listed in
// ../shared/fixtures/sam3/manifest-full.json, and derivation from the
// manifest's shapes gives back the default config. No weights needed.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "modeling/sam3_interactive.h"
#include "sam3/sam3.h"

namespace sam3 {
namespace {

using nlohmann::json;

json manifest() {
  std::ifstream f(test::fixture_path("sam3/manifest-full.json"));
  EXPECT_TRUE(f.good());
  json j;
  f >> j;
  return j;
}

std::string dtype_name(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat: return "float32";
    case torch::kComplexFloat: return "complex64";
    default: return std::string(c10::toString(t.scalar_type()));
  }
}

TEST(ManifestTest, DefaultConfigBuildsExactlyTheRequiredKeys) {
  auto m = manifest();
  std::map<std::string, json> required;
  for (const auto& [k, v] : m["keys"].items()) {
    if (v["role"] == "required") required[k] = v;
  }
  ASSERT_EQ(required.size(), m["counts"]["num_keys_required"].get<size_t>());

  torch::NoGradGuard no_grad;
  modeling::Sam3InteractiveModel net{ModelConfig{}};
  std::map<std::string, std::pair<torch::Tensor, std::string>> built;
  for (const auto& p : net->named_parameters(true)) built[p.key()] = {p.value(), "parameter"};
  for (const auto& b : net->named_buffers(true)) built[b.key()] = {b.value(), "buffer"};

  std::vector<std::string> problems;
  int64_t param_elems = 0, buffer_elems = 0;
  for (const auto& [k, v] : required) {
    auto it = built.find(k);
    if (it == built.end()) {
      problems.push_back("not built: " + k);
      continue;
    }
    const auto& t = it->second.first;
    if (t.sizes().vec() != v["shape"].get<std::vector<int64_t>>()) problems.push_back("shape: " + k);
    if (dtype_name(t) != v["dtype"].get<std::string>()) problems.push_back("dtype: " + k);
    if (it->second.second != v["kind"].get<std::string>()) problems.push_back("kind: " + k);
    (it->second.second == "parameter" ? param_elems : buffer_elems) += t.numel();
  }
  for (const auto& [k, v] : built) {
    if (!required.count(k)) problems.push_back("built but not required: " + k);
  }
  for (const auto& p : problems) ADD_FAILURE() << p;
  EXPECT_EQ(param_elems, 457277072);
  EXPECT_EQ(buffer_elems, 1179904);
}

TEST(ManifestTest, DerivationFromManifestShapesGivesTheDefaultConfig) {
  auto m = manifest();
  StateDict sd;
  for (const auto& [k, v] : m["keys"].items()) {
    auto shape = v["shape"].get<std::vector<int64_t>>();
    auto dtype = v["dtype"] == "complex64" ? torch::kComplexFloat : torch::kFloat;
    // expanded scalars: the shapes without the memory
    sd[k] = torch::zeros({1}, dtype).expand(shape);
  }
  ModelConfig def;
  auto derived = ModelConfig::from_state_dict(sd);
  auto a = derived.to_json(), b = def.to_json();
  a.erase("name");
  b.erase("name");
  EXPECT_EQ(a.dump(1), b.dump(1));
}

}  // namespace
}  // namespace sam3
