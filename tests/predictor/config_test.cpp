// ModelConfig: the fixtures' config.json loads as is, derivation from
// checkpoint shapes agrees with it, bad JSON gives a ConfigError naming the key.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "sam3/sam3.h"

namespace sam3 {
namespace {

using nlohmann::json;

// Architecture fields only (the name and predictor defaults are not in the weights).
json arch(const ModelConfig& c) {
  auto j = c.to_json();
  j.erase("name");
  j.erase("predictor");
  return j;
}

class FixtureConfigTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureConfigTest, FixtureConfigJsonLoadsAsIs) {
  auto dir = test::fixture_path("sam3/" + GetParam());
  auto cfg = ModelConfig::from_json_file(dir + "/config.json");
  std::ifstream f(dir + "/config.json");
  json j;
  f >> j;
  const auto& d = j["derived"];
  EXPECT_EQ(cfg.token_grid(), d["token_grid"].get<int64_t>());
  EXPECT_EQ(cfg.low_res_size(), d["low_res_mask_size"][0].get<int64_t>());
  EXPECT_EQ(cfg.vit.head_dim(), d["vit_head_dim"].get<int64_t>());
  EXPECT_EQ(cfg.vit.mlp_hidden_dim(), d["vit_mlp_hidden_dim"].get<int64_t>());
  EXPECT_EQ(cfg.vit.pretrain_grid(), d["abs_pos_pretrain_grid"].get<int64_t>());
  EXPECT_EQ(cfg.vit.effective_rope_pt_size(), d["rope_pt_size"].get<int64_t>());
  EXPECT_EQ(cfg.name, GetParam());
}

TEST_P(FixtureConfigTest, DerivedFromCheckpointEqualsConfigJson) {
  auto dir = test::fixture_path("sam3/" + GetParam());
  auto from_json = ModelConfig::from_json_file(dir + "/config.json");
  auto from_ckpt = ModelConfig::from_state_dict(load_state_dict(dir + "/checkpoint.pt"));
  EXPECT_EQ(arch(from_ckpt).dump(1), arch(from_json).dump(1));
}

TEST_P(FixtureConfigTest, JsonRoundTrip) {
  auto cfg = ModelConfig::from_json_file(test::fixture_path("sam3/" + GetParam() + "/config.json"));
  auto again = ModelConfig::from_json(cfg.to_json());
  EXPECT_EQ(again.to_json().dump(), cfg.to_json().dump());
}

INSTANTIATE_TEST_SUITE_P(Sam3Fixtures, FixtureConfigTest, ::testing::Values("tiny-a", "tiny-b"),
                         [](const auto& info) { return info.param == "tiny-a" ? "tiny_a" : "tiny_b"; });

// A safetensors file's "config" metadata entry (written by sam3-train) is the
// architecture the loader builds: the decoder's head count is not in the
// shapes. An explicit config path still wins; bad metadata is a CheckpointError.
TEST(ConfigTest, SafetensorsConfigMetadataIsUsed) {
  auto cfg = ModelConfig::from_json_file(test::fixture_path("sam3/tiny-a/config.json"));
  ASSERT_NE(cfg.mask_decoder.num_heads, 2);
  cfg.mask_decoder.num_heads = 2;
  auto model = Model::random(cfg, ModelOptions{}, 3);
  const std::string dir = ::testing::TempDir();
  const std::string with = dir + "/with_config.safetensors", without = dir + "/plain.safetensors",
                    bad = dir + "/bad_config.safetensors";
  save_safetensors(with, model->state_dict(), {{"config", cfg.to_json().dump()}});
  save_safetensors(without, model->state_dict());
  save_safetensors(bad, model->state_dict(), {{"config", "{\"image_size\": "}});

  EXPECT_EQ(Model::load(with)->config().mask_decoder.num_heads, 2);
  EXPECT_EQ(arch(Model::load(with)->config()).dump(), arch(cfg).dump());
  // from the shapes alone: the official head count
  EXPECT_EQ(Model::load(without)->config().mask_decoder.num_heads, 8);
  ModelOptions explicit_cfg;
  explicit_cfg.config_path = test::fixture_path("sam3/tiny-a/config.json");
  EXPECT_EQ(Model::load(with, explicit_cfg)->config().mask_decoder.num_heads, 8);
  try {
    Model::load(bad);
    ADD_FAILURE() << "bad config metadata accepted";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("bad_config.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("\"config\" metadata"), std::string::npos) << e.what();
  }
}

TEST(ConfigTest, DefaultsAreTheOfficialFullSizeModel) {
  ModelConfig c;
  c.validate();
  EXPECT_EQ(c.image_size, 1008);
  EXPECT_EQ(c.token_grid(), 72);
  EXPECT_EQ(c.low_res_size(), 288);
  EXPECT_EQ(c.vit.mlp_hidden_dim(), 4736);
  EXPECT_EQ(c.vit.head_dim(), 64);
  EXPECT_EQ(c.vit.pretrain_grid(), 24);
  EXPECT_EQ(c.vit.effective_rope_pt_size(), 24);
  EXPECT_EQ(c.num_levels(), 3);
  EXPECT_EQ(c.predictor.max_hole_area, 256.0);
}

TEST(ConfigTest, WrongTypeNamesTheKey) {
  json j = ModelConfig{}.to_json();
  j["vit"]["depth"] = "thirty-two";
  try {
    ModelConfig::from_json(j);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("vit.depth"), std::string::npos) << e.what();
  }
}

TEST(ConfigTest, InconsistentValuesAreRejected) {
  json j = ModelConfig{}.to_json();
  j["vit"]["num_heads"] = 7;  // 1024 % 7 != 0
  EXPECT_THROW(ModelConfig::from_json(j), ConfigError);
  j = ModelConfig{}.to_json();
  j["vit"]["global_att_blocks"] = {40};
  EXPECT_THROW(ModelConfig::from_json(j), ConfigError);
  j = ModelConfig{}.to_json();
  j["image_size"] = 1000;  // not a multiple of 14, and != vit.img_size
  EXPECT_THROW(ModelConfig::from_json(j), ConfigError);
  EXPECT_THROW(ModelConfig::from_json(json::array()), ConfigError);
}

TEST(ConfigTest, MissingOrMalformedFile) {
  EXPECT_THROW(ModelConfig::from_json_file("/nonexistent/config.json"), ConfigError);
  auto dir = test::temp_dir();
  test::write_file(dir + "/bad.json", "{\"vit\": {");
  try {
    ModelConfig::from_json_file(dir + "/bad.json");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
}

TEST(ConfigTest, NotASam3CheckpointIsReported) {
  StateDict sd{{"image_encoder.trunk.patch_embed.proj.weight", torch::zeros({4, 3, 7, 7})}};
  try {
    ModelConfig::from_state_dict(sd);
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("not a SAM 3 checkpoint"), std::string::npos);
    EXPECT_GE(e.problems().size(), 5u);
  }
}

// Sizes beyond 2x the largest released model are refused before anything is
// derived or allocated from them (a 2e9-block Hiera stage made validate()
// allocate 1.3 GB: fuzz/regressions/config_json/hiera-stages-huge.json).
TEST(ConfigTest, SizesBeyondTheCapsAreRefusedNamingTheKey) {
  auto expect_refused = [](const json& j, const std::string& what) {
    try {
      ModelConfig::from_json(j);
      ADD_FAILURE() << "expected ConfigError for " << what;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  json j = ModelConfig{}.to_json();
  j["vit"]["depth"] = 1000;
  expect_refused(j, "vit.depth = 1000 is above the limit 64");
  j = ModelConfig{}.to_json();
  j["mask_decoder"]["mlp_dim"] = 1 << 30;
  expect_refused(j, "mask_decoder.mlp_dim");
  json s = test::read_json(test::fixture_path("sam2.1/sam2.1_tiny_r256_e32_d128/config.json"));
  ModelConfig::from_json(s);  // as released: accepted
  json big = s;
  big["architecture"]["trunk"]["stages"] = {1, 2, 3, 2000000000};
  expect_refused(big, "trunk.stages entry = 2e+09 is above the limit 64");
  big = s;
  big["architecture"]["trunk"]["dim_mul"] = 1e300;
  expect_refused(big, "trunk.dim_mul");
}

}  // namespace
}  // namespace sam3
