// SAM 1 configuration: presets, JSON, derivation from checkpoint shapes.
#include "sam1/sam1_config.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "json_number.h"
#include "sam3/errors.h"

namespace sam3::sam1 {

using nlohmann::json;

bool Sam1Config::is_global(int64_t block) const {
  return window_size <= 0 || std::find(global_attn_indexes.begin(), global_attn_indexes.end(),
                                       block) != global_attn_indexes.end();
}

void Sam1Config::validate() const {
  auto fail = [](const std::string& m) { throw ConfigError("SAM 1 config: " + m); };
  // upper bounds, each at least 2x the largest released model (ViT-H): checked
  // first, so a hostile config cannot make the model built for it arbitrarily
  // large (docs/checkpoints.md, "Hostile files")
  const std::pair<const char*, double> caps[] = {
      {"img_size", 2048}, {"patch_size", 64}, {"embed_dim", 2560}, {"depth", 64},
      {"num_heads", 64}, {"mlp_ratio", 8}, {"window_size", 256}, {"out_chans", 1024},
      {"prompt_embed_dim", 1024}, {"mask_in_chans", 256}, {"decoder_depth", 8},
      {"decoder_num_heads", 64}, {"decoder_mlp_dim", 8192}, {"num_multimask_outputs", 8},
      {"iou_head_depth", 8}, {"iou_head_hidden_dim", 4096}};
  const double values[] = {double(img_size), double(patch_size), double(embed_dim), double(depth),
      double(num_heads), mlp_ratio, double(window_size), double(out_chans),
      double(prompt_embed_dim), double(mask_in_chans), double(decoder_depth),
      double(decoder_num_heads), double(decoder_mlp_dim), double(num_multimask_outputs),
      double(iou_head_depth), double(iou_head_hidden_dim)};
  static_assert(sizeof caps / sizeof caps[0] == sizeof values / sizeof values[0]);
  for (size_t i = 0; i < sizeof values / sizeof values[0]; ++i) {
    if (!(values[i] <= caps[i].second)) {
      std::ostringstream m;
      m << caps[i].first << " = " << values[i] << " is above the limit " << caps[i].second
        << " (2x or more the largest released model)";
      fail(m.str());
    }
  }
  if (img_size <= 0 || patch_size <= 0 || img_size % patch_size != 0)
    fail("img_size must be a positive multiple of patch_size");
  if (in_chans != 3) fail("in_chans must be 3");
  if (embed_dim <= 0 || depth <= 0 || num_heads <= 0 || embed_dim % num_heads != 0)
    fail("embed_dim must be a positive multiple of num_heads, depth > 0");
  if (mlp_hidden_dim() <= 0) fail("mlp_ratio must be positive");
  if (window_size < 0) fail("window_size must be >= 0");
  for (auto g : global_attn_indexes)
    if (g < 0 || g >= depth) fail("global_attn_indexes entry " + std::to_string(g) + " out of range");
  if (out_chans <= 0 || out_chans != prompt_embed_dim)
    fail("out_chans must equal prompt_embed_dim (the image embedding feeds the decoder)");
  if (prompt_embed_dim % 8 != 0)
    fail("prompt_embed_dim must be a multiple of 8");
  if (mask_in_chans <= 0 || mask_in_chans % 4 != 0) fail("mask_in_chans must be a multiple of 4");
  if (decoder_depth <= 0 || decoder_num_heads <= 0 || decoder_mlp_dim <= 0 ||
      attention_downsample_rate <= 0 ||
      (prompt_embed_dim / attention_downsample_rate) % decoder_num_heads != 0 ||
      prompt_embed_dim % decoder_num_heads != 0)
    fail("decoder widths must divide into decoder_num_heads");
  if (num_multimask_outputs < 0 || iou_head_depth <= 0 || iou_head_hidden_dim <= 0)
    fail("bad mask decoder head sizes");
  for (int i = 0; i < 3; ++i)
    if (!(pixel_std[i] > 0)) fail("pixel_std must be positive");
}

Sam1Config Sam1Config::vit_b() { return Sam1Config{}; }

Sam1Config Sam1Config::vit_l() {
  Sam1Config c;
  c.name = "vit_l";
  c.embed_dim = 1024;
  c.depth = 24;
  c.num_heads = 16;
  c.global_attn_indexes = {5, 11, 17, 23};
  return c;
}

Sam1Config Sam1Config::vit_h() {
  Sam1Config c;
  c.name = "vit_h";
  c.embed_dim = 1280;
  c.depth = 32;
  c.num_heads = 16;
  c.global_attn_indexes = {7, 15, 23, 31};
  return c;
}

Sam1Config Sam1Config::preset(const std::string& name) {
  if (name == "vit_b" || name == "b" || name == "default") return vit_b();
  if (name == "vit_l" || name == "l") return vit_l();
  if (name == "vit_h" || name == "h") return vit_h();
  throw ConfigError("SAM 1 config: unknown size '" + name + "' (vit_b, vit_l, vit_h)");
}

bool Sam1Config::same_architecture(const Sam1Config& o) const {
  auto a = to_json();
  auto b = o.to_json();
  a.erase("name");
  b.erase("name");
  return a == b;
}

namespace {

template <typename T>
void get(const json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (auto why = json_number_problem<T>(*it)) {
    throw ConfigError(std::string("SAM 1 config: key '") + key + "': " + *why);
  }
  try {
    out = it->get<T>();
  } catch (const json::exception& e) {
    throw ConfigError(std::string("SAM 1 config: key '") + key + "': " + e.what());
  }
}

void get_bool(const json& j, const char* key, bool& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_boolean()) throw ConfigError(std::string("SAM 1 config: key '") + key + "' must be a boolean");
  out = it->get<bool>();
}

void get_pair_first(const json& j, const char* key, int64_t& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (it->is_array() && it->size() == 2 && (*it)[0].is_number_integer() && (*it)[0] == (*it)[1]) {
    out = (*it)[0].get<int64_t>();
    return;
  }
  if (it->is_number_integer()) {
    out = it->get<int64_t>();
    return;
  }
  throw ConfigError(std::string("SAM 1 config: key '") + key + "' must be [n, n]");
}

}  // namespace

Sam1Config Sam1Config::from_json(const json& j_in) {
  if (!j_in.is_object()) throw ConfigError("SAM 1 config: expected a JSON object");
  const json& j = j_in.contains("architecture") ? j_in.at("architecture") : j_in;
  if (!j.is_object()) throw ConfigError("SAM 1 config: 'architecture' must be an object");
  Sam1Config c;
  if (j_in.contains("name") && j_in["name"].is_string()) c.name = j_in["name"].get<std::string>();
  if (j_in.contains("registry_key") && j_in["registry_key"].is_string())
    c.name = j_in["registry_key"].get<std::string>();
  const json& ie = j.contains("image_encoder") ? j.at("image_encoder") : j;
  get(ie, "img_size", c.img_size);
  get(ie, "patch_size", c.patch_size);
  get(ie, "in_chans", c.in_chans);
  get(ie, "embed_dim", c.embed_dim);
  get(ie, "depth", c.depth);
  get(ie, "num_heads", c.num_heads);
  get(ie, "mlp_ratio", c.mlp_ratio);
  get_bool(ie, "qkv_bias", c.qkv_bias);
  get_bool(ie, "use_abs_pos", c.use_abs_pos);
  get_bool(ie, "use_rel_pos", c.use_rel_pos);
  get(ie, "window_size", c.window_size);
  get(ie, "global_attn_indexes", c.global_attn_indexes);
  get(ie, "out_chans", c.out_chans);
  c.prompt_embed_dim = c.out_chans;  // _build_sam: one prompt_embed_dim for both
  get(j, "prompt_embed_dim", c.prompt_embed_dim);
  if (j.contains("prompt_encoder")) {
    const json& pe = j.at("prompt_encoder");
    get(pe, "embed_dim", c.prompt_embed_dim);
    get(pe, "mask_in_chans", c.mask_in_chans);
    int64_t g = c.grid();
    get_pair_first(pe, "image_embedding_size", g);
    if (g != c.grid()) throw ConfigError("SAM 1 config: image_embedding_size != img_size / patch_size");
  }
  if (j.contains("mask_decoder")) {
    const json& md = j.at("mask_decoder");
    get(md, "transformer_depth", c.decoder_depth);
    get(md, "transformer_num_heads", c.decoder_num_heads);
    get(md, "num_heads", c.decoder_num_heads);
    get(md, "transformer_mlp_dim", c.decoder_mlp_dim);
    get(md, "mlp_dim", c.decoder_mlp_dim);
    get(md, "attention_downsample_rate", c.attention_downsample_rate);
    get(md, "num_multimask_outputs", c.num_multimask_outputs);
    get(md, "iou_head_depth", c.iou_head_depth);
    get(md, "iou_head_hidden_dim", c.iou_head_hidden_dim);
    int64_t td = c.prompt_embed_dim;
    get(md, "transformer_dim", td);
    if (td != c.prompt_embed_dim) throw ConfigError("SAM 1 config: transformer_dim != prompt embed_dim");
  }
  std::vector<double> v;
  if (j.contains("pixel_mean")) {
    get(j, "pixel_mean", v);
    if (v.size() != 3) throw ConfigError("SAM 1 config: pixel_mean must have 3 values");
    std::copy(v.begin(), v.end(), c.pixel_mean.begin());
  }
  if (j.contains("pixel_std")) {
    get(j, "pixel_std", v);
    if (v.size() != 3) throw ConfigError("SAM 1 config: pixel_std must have 3 values");
    std::copy(v.begin(), v.end(), c.pixel_std.begin());
  }
  get(j, "mask_threshold", c.mask_threshold);
  c.validate();
  return c;
}

Sam1Config Sam1Config::from_json_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw ConfigError("cannot open SAM 1 config " + path);
  json j;
  try {
    f >> j;
  } catch (const json::exception& e) {
    throw ConfigError(path + ": " + e.what());
  }
  return from_json(j);
}

json Sam1Config::to_json() const {
  json ie = {{"img_size", img_size},       {"patch_size", patch_size},
             {"in_chans", in_chans},       {"embed_dim", embed_dim},
             {"depth", depth},             {"num_heads", num_heads},
             {"mlp_ratio", mlp_ratio},     {"qkv_bias", qkv_bias},
             {"use_abs_pos", use_abs_pos}, {"use_rel_pos", use_rel_pos},
             {"window_size", window_size}, {"global_attn_indexes", global_attn_indexes},
             {"out_chans", out_chans}};
  json pe = {{"embed_dim", prompt_embed_dim}, {"mask_in_chans", mask_in_chans}};
  json md = {{"transformer_dim", prompt_embed_dim},
             {"transformer_depth", decoder_depth},
             {"transformer_num_heads", decoder_num_heads},
             {"transformer_mlp_dim", decoder_mlp_dim},
             {"attention_downsample_rate", attention_downsample_rate},
             {"num_multimask_outputs", num_multimask_outputs},
             {"iou_head_depth", iou_head_depth},
             {"iou_head_hidden_dim", iou_head_hidden_dim}};
  return {{"name", name},
          {"architecture",
           {{"image_encoder", ie},
            {"prompt_encoder", pe},
            {"mask_decoder", md},
            {"pixel_mean", std::vector<double>(pixel_mean.begin(), pixel_mean.end())},
            {"pixel_std", std::vector<double>(pixel_std.begin(), pixel_std.end())},
            {"mask_threshold", mask_threshold}}}};
}

Sam1Config Sam1Config::from_state_dict(const StateDict& sd) {
  auto shape = [&](const std::string& k) -> std::vector<int64_t> {
    auto it = sd.find(k);
    if (it == sd.end()) {
      throw CheckpointError("not a SAM 1 state dict: missing key '" + k + "'", {"missing key '" + k + "'"});
    }
    return it->second.sizes().vec();
  };
  auto count = [&](const std::string& prefix, const std::string& suffix) {
    int64_t n = 0;
    while (sd.count(prefix + std::to_string(n) + suffix)) ++n;
    return n;
  };
  auto bad = [](const std::string& m) {
    throw CheckpointError("not a SAM 1 state dict: " + m, {m});
  };
  Sam1Config c;
  const auto pw = shape("image_encoder.patch_embed.proj.weight");  // C x 3 x p x p
  if (pw.size() != 4 || pw[2] != pw[3]) bad("image_encoder.patch_embed.proj.weight is not C x 3 x p x p");
  c.embed_dim = pw[0];
  c.in_chans = pw[1];
  c.patch_size = pw[2];
  c.use_abs_pos = sd.count("image_encoder.pos_embed") > 0;
  int64_t grid = 0;
  if (c.use_abs_pos) {
    const auto pe = shape("image_encoder.pos_embed");  // 1 x g x g x C
    if (pe.size() != 4 || pe[1] != pe[2] || pe[3] != c.embed_dim)
      bad("image_encoder.pos_embed is not 1 x g x g x C");
    grid = pe[1];
  }
  c.depth = count("image_encoder.blocks.", ".norm1.weight");
  if (c.depth == 0) bad("no image_encoder.blocks.<i>");
  c.qkv_bias = sd.count("image_encoder.blocks.0.attn.qkv.bias") > 0;
  c.use_rel_pos = sd.count("image_encoder.blocks.0.attn.rel_pos_h") > 0;
  c.mlp_ratio = static_cast<double>(shape("image_encoder.blocks.0.mlp.lin1.weight")[0]) /
                static_cast<double>(c.embed_dim);
  if (c.use_rel_pos) {
    const auto r0 = shape("image_encoder.blocks.0.attn.rel_pos_h");
    if (r0.size() != 2 || r0[1] <= 0 || c.embed_dim % r0[1] != 0)
      bad("image_encoder.blocks.0.attn.rel_pos_h is not L x head_dim");
    c.num_heads = c.embed_dim / r0[1];
    std::vector<int64_t> lens;
    for (int64_t i = 0; i < c.depth; ++i)
      lens.push_back(shape("image_encoder.blocks." + std::to_string(i) + ".attn.rel_pos_h")[0]);
    // global blocks have the longest tables (2*grid-1); windowed 2*window-1
    const int64_t longest = *std::max_element(lens.begin(), lens.end());
    const int64_t shortest = *std::min_element(lens.begin(), lens.end());
    if (grid == 0) grid = (longest + 1) / 2;
    c.global_attn_indexes.clear();
    for (int64_t i = 0; i < c.depth; ++i)
      if (lens[i] == 2 * grid - 1) c.global_attn_indexes.push_back(i);
    if (static_cast<int64_t>(c.global_attn_indexes.size()) == c.depth) {
      c.window_size = 0;  // every block global
      c.global_attn_indexes.clear();
    } else {
      c.window_size = (shortest + 1) / 2;
      for (int64_t i = 0; i < c.depth; ++i)
        if (lens[i] != 2 * grid - 1 && lens[i] != shortest)
          bad("inconsistent rel-pos table lengths");
    }
  } else if (grid == 0) {
    bad("neither pos_embed nor rel-pos tables: cannot derive the input size");
  }
  // (without rel-pos tables, heads / windows cannot be seen: vit_b values kept)
  c.img_size = grid * c.patch_size;
  c.out_chans = shape("image_encoder.neck.0.weight")[0];
  c.prompt_embed_dim = shape("prompt_encoder.no_mask_embed.weight").at(1);
  c.mask_in_chans = shape("prompt_encoder.mask_downscaling.3.weight")[0];
  c.decoder_depth = count("mask_decoder.transformer.layers.", ".norm1.weight");
  c.decoder_mlp_dim = shape("mask_decoder.transformer.layers.0.mlp.lin1.weight")[0];
  const int64_t internal =
      shape("mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight")[0];
  if (internal <= 0 || c.prompt_embed_dim % internal != 0) bad("bad cross-attention width");
  c.attention_downsample_rate = c.prompt_embed_dim / internal;
  c.num_multimask_outputs = shape("mask_decoder.mask_tokens.weight")[0] - 1;
  c.iou_head_depth = count("mask_decoder.iou_prediction_head.layers.", ".weight");
  c.iou_head_hidden_dim = shape("mask_decoder.iou_prediction_head.layers.0.weight")[0];
  c.name = "custom";
  for (auto* p : {"vit_b", "vit_l", "vit_h"}) {
    auto ref = preset(p);
    if (c.same_architecture(ref)) c.name = p;
  }
  try {
    c.validate();
  } catch (const ConfigError& e) {
    bad(e.what());
  }
  return c;
}

}  // namespace sam3::sam1
