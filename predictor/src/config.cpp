// ModelConfig: JSON in the official argument names, validation, and the
// derivation of a config from a checkpoint's tensor shapes.
#include "sam3/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "json_number.h"
#include "sam3/errors.h"

namespace sam3 {

using nlohmann::json;

bool ViTConfig::is_global(int64_t block) const {
  return std::find(global_att_blocks.begin(), global_att_blocks.end(), block) !=
         global_att_blocks.end();
}

int64_t HieraConfig::depth() const {
  int64_t d = 0;
  for (auto n : stages) d += n;
  return d;
}

std::vector<int64_t> HieraConfig::stage_ends() const {
  std::vector<int64_t> ends;
  int64_t acc = 0;
  for (auto n : stages) {
    acc += n;
    ends.push_back(acc - 1);
  }
  return ends;
}

std::vector<int64_t> HieraConfig::q_pool_blocks() const {
  std::vector<int64_t> out;
  auto ends = stage_ends();
  for (size_t i = 0; i + 1 < ends.size() && static_cast<int64_t>(out.size()) < q_pool; ++i) {
    out.push_back(ends[i] + 1);
  }
  return out;
}

std::vector<HieraConfig::Block> HieraConfig::blocks() const {
  // Hiera.__init__: the window of a stage's first block is the previous
  // stage's ("lags by a block"); width and heads grow after each stage end.
  std::vector<Block> out;
  const auto ends = stage_ends();
  const auto pools = q_pool_blocks();
  auto contains = [](const std::vector<int64_t>& v, int64_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  int64_t dim = embed_dim, heads = num_heads;
  size_t cur_stage = 1;
  for (int64_t i = 0; i < depth(); ++i) {
    int64_t dim_out = dim;
    int64_t window = cur_stage - 1 < window_spec.size() ? window_spec[cur_stage - 1] : 0;
    if (contains(global_att_blocks, i)) window = 0;
    if (contains(ends, i - 1)) {
      dim_out = static_cast<int64_t>(static_cast<double>(dim) * dim_mul);
      heads = static_cast<int64_t>(static_cast<double>(heads) * head_mul);
      ++cur_stage;
    }
    out.push_back(Block{dim, dim_out, heads, window, contains(pools, i)});
    dim = dim_out;
  }
  return out;
}

std::vector<int64_t> HieraConfig::stage_dims() const {
  std::vector<int64_t> out;
  auto b = blocks();
  for (auto e : stage_ends()) {
    if (e >= 0 && e < static_cast<int64_t>(b.size())) out.push_back(b[e].dim_out);
  }
  return out;
}

std::vector<double> ModelConfig::pixel_mean() const {
  if (is_sam2()) return {0.485, 0.456, 0.406};
  return {0.5, 0.5, 0.5};
}

std::vector<double> ModelConfig::pixel_std() const {
  if (is_sam2()) return {0.229, 0.224, 0.225};
  return {0.5, 0.5, 0.5};
}

ModelConfig ModelConfig::sam2_1(const std::string& size) {
  ModelConfig c;
  c.family = "sam2.1";
  c.image_size = 1024;
  c.hidden_dim = 256;
  c.neck.d_model = 256;
  c.neck.scalp = 1;
  c.backbone_stride = 16;
  // SAM2ImagePredictor.__init__ defaults
  c.predictor = PredictorDefaults{0.0, 0.0, 0.0};
  // The released sizes (sam2.1_hiera_{t,s,b+,l}.yaml; b+ sets only embed_dim
  // and heads, the rest are Hiera's class defaults).
  struct Size {
    const char* abbrev;
    const char* name;  // also accepted as "hiera_<name>"
    int64_t embed_dim, num_heads;
    std::vector<int64_t> stages, global_att_blocks, window_spec, bkg;
  };
  static const Size sizes[] = {
      {"t", "tiny", 96, 1, {1, 2, 7, 2}, {5, 7, 9}, {8, 4, 14, 7}, {7, 7}},
      {"s", "small", 96, 1, {1, 2, 11, 2}, {7, 10, 13}, {8, 4, 14, 7}, {7, 7}},
      {"b+", "base_plus", 112, 2, {2, 3, 16, 3}, {12, 16, 20}, {8, 4, 14, 7}, {14, 14}},
      {"l", "large", 144, 2, {2, 6, 36, 4}, {23, 33, 43}, {8, 4, 16, 8}, {7, 7}},
  };
  for (const auto& z : sizes) {
    if (size != z.abbrev && size != z.name && size != std::string("hiera_") + z.name) continue;
    c.name = std::string("sam2.1_hiera_") + z.name;
    auto& h = c.hiera;
    h = HieraConfig{};
    h.embed_dim = z.embed_dim;
    h.num_heads = z.num_heads;
    h.stages = z.stages;
    h.global_att_blocks = z.global_att_blocks;
    h.window_spec = z.window_spec;
    h.window_pos_embed_bkg_spatial_size = z.bkg;
    c.validate();
    return c;
  }
  throw ConfigError("unknown SAM 2.1 size '" + size + "' (expected t, s, b+ or l)");
}

namespace {

// Reads j[key] into `out` when present and not null; type errors name the key.
template <typename T>
void read(const json& j, const std::string& section, const char* key, T& out) {
  if (!j.contains(key) || j.at(key).is_null()) return;
  if (auto why = json_number_problem<T>(j.at(key))) {
    throw ConfigError("config: '" + section + key + "': " + *why);
  }
  try {
    out = j.at(key).get<T>();
  } catch (const json::exception& e) {
    throw ConfigError("config: '" + section + key + "' has the wrong type (" +
                      j.at(key).type_name() + "): " + e.what());
  }
}

const json* section(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return nullptr;
  if (!j.at(key).is_object()) {
    throw ConfigError(std::string("config: '") + key + "' must be an object");
  }
  return &j.at(key);
}

void require(bool ok, const std::string& what) {
  if (!ok) throw ConfigError("config: " + what);
}

}  // namespace

namespace {

// Upper bounds, each at least 2x the largest released model (SAM 2.1 Hiera-L,
// SAM 3): a config beyond them is refused before anything is derived or
// allocated from it, so a hostile config cannot make the model built for it
// arbitrarily large (docs/checkpoints.md, "Hostile files").
void require_at_most(double v, double max, const std::string& what) {
  if (!(v <= max)) {
    std::ostringstream m;
    m << what << " = " << v << " is above the limit " << max
      << " (2x or more the largest released model)";
    require(false, m.str());
  }
}

void require_hiera_sizes(const HieraConfig& h);

void require_sizes(const ModelConfig& c) {
  require_at_most(c.image_size, 2048, "image_size");
  require_at_most(c.hidden_dim, 1024, "hidden_dim");
  const auto& md = c.mask_decoder;
  require_at_most(md.num_multimask_outputs, 8, "mask_decoder.num_multimask_outputs");
  require_at_most(md.two_way_depth, 8, "mask_decoder.two_way_depth");
  require_at_most(md.num_heads, 64, "mask_decoder.num_heads");
  require_at_most(md.mlp_dim, 8192, "mask_decoder.mlp_dim");
  require_at_most(md.iou_head_depth, 8, "mask_decoder.iou_head_depth");
  require_at_most(md.iou_head_hidden_dim, 4096, "mask_decoder.iou_head_hidden_dim");
  require_at_most(c.prompt_encoder.mask_in_chans, 256, "prompt_encoder.mask_in_chans");
  if (c.family == "sam3") {
    const auto& v = c.vit;
    require_at_most(v.depth, 64, "vit.depth");
    require_at_most(v.embed_dim, 2048, "vit.embed_dim");
    require_at_most(v.num_heads, 64, "vit.num_heads");
    require_at_most(v.mlp_ratio, 8, "vit.mlp_ratio");
    require_at_most(v.window_size, 256, "vit.window_size");
    require_at_most(v.pretrain_img_size, 2048, "vit.pretrain_img_size");
  } else {
    require_hiera_sizes(c.hiera);
  }
}

void require_hiera_sizes(const HieraConfig& h) {
  {
    for (auto n : h.stages) require_at_most(n, 64, "trunk.stages entry");
    require_at_most(h.embed_dim, 512, "trunk.embed_dim");
    require_at_most(h.num_heads, 64, "trunk.num_heads");
    require_at_most(h.dim_mul, 2, "trunk.dim_mul");
    require_at_most(h.head_mul, 2, "trunk.head_mul");
    for (auto q : h.q_stride) require_at_most(q, 4, "trunk.q_stride entry");
    for (auto w : h.window_spec) require_at_most(w, 256, "trunk.window_spec entry");
    for (auto w : h.window_pos_embed_bkg_spatial_size)
      require_at_most(w, 64, "trunk.window_pos_embed_bkg_spatial_size entry");
    require_at_most(h.patch_kernel_size, 32, "trunk.patch_embed kernel_size");
    require_at_most(h.patch_stride, 32, "trunk.patch_embed stride");
    require_at_most(h.patch_padding, 32, "trunk.patch_embed padding");
    require_at_most(h.mlp_ratio, 8, "trunk.mlp_ratio");
  }
}

void validate_decoder_parts(const ModelConfig& c) {
  const auto& md = c.mask_decoder;
  require(c.hidden_dim > 0 && c.hidden_dim % 8 == 0, "hidden_dim must be a multiple of 8");
  require(md.num_multimask_outputs >= 1, "mask_decoder.num_multimask_outputs must be >= 1");
  require(md.two_way_depth >= 1, "mask_decoder.two_way_depth must be >= 1");
  require(md.attention_downsample_rate >= 1 && md.num_heads > 0 &&
              c.hidden_dim % md.num_heads == 0 &&
              (c.hidden_dim / md.attention_downsample_rate) % md.num_heads == 0,
          "mask_decoder.num_heads must divide hidden_dim and hidden_dim/attention_downsample_rate");
  require(md.iou_head_depth >= 1, "mask_decoder.iou_head_depth must be >= 1");
  require(md.use_high_res_features, "mask_decoder.use_high_res_features=false is not supported");
  require(c.prompt_encoder.mask_in_chans >= 4 && c.prompt_encoder.mask_in_chans % 4 == 0,
          "prompt_encoder.mask_in_chans must be a multiple of 4");
  require(c.predictor.max_hole_area >= 0 && c.predictor.max_sprinkle_area >= 0,
          "predictor areas must be >= 0");
}

void validate_sam2(const ModelConfig& c) {
  const auto& h = c.hiera;
  require(c.image_size > 0, "image_size must be > 0");
  require(h.stages.size() == 4, "trunk.stages must have 4 entries");
  for (auto n : h.stages) require(n >= 1, "trunk.stages entries must be >= 1");
  require(h.window_spec.size() == h.stages.size(), "trunk.window_spec needs one entry per stage");
  for (auto w : h.window_spec) require(w >= 1, "trunk.window_spec entries must be >= 1");
  require(h.q_pool == 3, "trunk.q_pool must be 3 (every stage after the first pools)");
  require(h.q_stride.size() == 2 && h.q_stride[0] == h.q_stride[1] && h.q_stride[0] >= 1,
          "trunk.q_stride must be [s, s]");
  require(h.embed_dim > 0 && h.num_heads > 0, "trunk.embed_dim and trunk.num_heads must be > 0");
  require(h.patch_kernel_size > 0 && h.patch_stride > 0 && h.patch_padding >= 0,
          "trunk.patch_embed must have positive kernel/stride");
  require(h.window_pos_embed_bkg_spatial_size.size() == 2 &&
              h.window_pos_embed_bkg_spatial_size[0] > 0 &&
              h.window_pos_embed_bkg_spatial_size[1] > 0,
          "trunk.window_pos_embed_bkg_spatial_size must be [h, w] > 0");
  require(h.mlp_ratio > 0, "trunk.mlp_ratio must be > 0");
  for (auto b : h.global_att_blocks) {
    require(b >= 0 && b < h.depth(), "trunk.global_att_blocks entry " + std::to_string(b) +
                                         " is outside 0.." + std::to_string(h.depth() - 1));
  }
  for (const auto& b : h.blocks()) {
    require(b.num_heads > 0 && b.dim_out % b.num_heads == 0,
            "trunk: block width must be a multiple of its heads");
    require(!b.q_pool || b.window_size == 0 || b.window_size % h.q_stride[0] == 0,
            "trunk: a q-pool block's window must be a multiple of q_stride");
  }
  const int64_t s = h.q_stride[0];
  const int64_t total = h.patch_stride * s * s * s;
  require(c.image_size % total == 0, "image_size must be a multiple of " + std::to_string(total) +
                                         " (patch stride x q_stride^3)");
  require((c.image_size / h.patch_stride) % h.window_spec[0] == 0,
          "image_size / patch stride must be a multiple of window_spec[0] (tiled window "
          "position embedding)");
  require(c.neck.scalp == 1, "scalp must be 1 (the image path uses 3 of the 4 FPN levels)");
  require(c.backbone_stride == h.patch_stride * s * s,
          "backbone_stride must equal patch stride x q_stride^2 (" +
              std::to_string(h.patch_stride * s * s) + ")");
  for (auto l : c.fpn.fpn_top_down_levels) {
    require(l >= 0 && l < 4, "neck.fpn_top_down_levels entries must be in 0..3");
  }
  require(c.neck.d_model == c.hidden_dim, "neck.d_model must equal hidden_dim");
  validate_decoder_parts(c);
}

}  // namespace

void ModelConfig::validate() const {
  if (family == "sam2.1" || family == "sam2") {
    require(family == "sam2.1", "family must be spelled 'sam2.1' (SAM 2 has the same image path)");
    require_sizes(*this);
    validate_sam2(*this);
    return;
  }
  if (family == "sam1") {
    throw ConfigError("config: family 'sam1' is not supported yet");
  }
  require(family == "sam3", "unknown family '" + family + "' (expected sam3 or sam2.1)");
  require_sizes(*this);
  require(image_size > 0, "image_size must be > 0");
  require(vit.img_size == image_size, "vit.img_size (" + std::to_string(vit.img_size) +
                                          ") must equal image_size (" +
                                          std::to_string(image_size) + ")");
  require(vit.patch_size > 0 && image_size % vit.patch_size == 0,
          "image_size must be a multiple of vit.patch_size");
  require(backbone_stride == vit.patch_size, "tracker.backbone_stride must equal vit.patch_size");
  require(vit.in_chans == 3, "vit.in_chans must be 3 (RGB)");
  require(vit.embed_dim > 0 && vit.num_heads > 0 && vit.embed_dim % vit.num_heads == 0,
          "vit.embed_dim must be a positive multiple of vit.num_heads");
  require(!vit.use_rope || vit.head_dim() % 4 == 0,
          "vit head_dim (embed_dim/num_heads) must be a multiple of 4 for 2-D RoPE");
  require(vit.depth > 0, "vit.depth must be > 0");
  require(vit.window_size > 0, "vit.window_size must be > 0");
  require(vit.mlp_ratio > 0, "vit.mlp_ratio must be > 0");
  require(!vit.retain_cls_token, "vit.retain_cls_token=true is not supported (not on this path)");
  require(vit.rel_pos_blocks.empty(), "vit.rel_pos_blocks must be empty (SAM 3 uses RoPE)");
  for (auto b : vit.global_att_blocks) {
    require(b >= 0 && b < vit.depth, "vit.global_att_blocks entry " + std::to_string(b) +
                                         " is outside 0.." + std::to_string(vit.depth - 1));
  }
  require(!vit.use_abs_pos || (vit.pretrain_img_size > 0 && vit.pretrain_grid() > 0),
          "vit.pretrain_img_size must be >= patch_size");
  require(neck.d_model == hidden_dim, "neck.d_model must equal tracker.hidden_dim");
  require(hidden_dim > 0 && hidden_dim % 8 == 0, "tracker.hidden_dim must be a multiple of 8");
  require(num_levels() == 3, "the interactive path needs exactly 3 neck levels "
                             "(len(scale_factors) - scalp == 3)");
  const auto& sf = neck.scale_factors;
  require(sf[0] == 4.0 && sf[1] == 2.0 && sf[2] == 1.0,
          "neck.scale_factors must start with 4, 2, 1 (levels 4G, 2G, G)");
  for (auto s : sf) {
    require(s == 4.0 || s == 2.0 || s == 1.0 || s == 0.5, "neck.scale_factors: unsupported scale");
  }
  require(vit.embed_dim % 4 == 0, "vit.embed_dim must be a multiple of 4 (neck)");
  const auto& md = mask_decoder;
  require(md.num_multimask_outputs >= 1, "mask_decoder.num_multimask_outputs must be >= 1");
  require(md.two_way_depth >= 1, "mask_decoder.two_way_depth must be >= 1");
  require(md.attention_downsample_rate >= 1, "mask_decoder.attention_downsample_rate must be >= 1");
  require(md.num_heads > 0 && hidden_dim % md.num_heads == 0 &&
              (hidden_dim / md.attention_downsample_rate) % md.num_heads == 0,
          "mask_decoder.num_heads must divide hidden_dim and hidden_dim/attention_downsample_rate");
  require(md.iou_head_depth >= 1, "mask_decoder.iou_head_depth must be >= 1");
  require(md.use_high_res_features, "mask_decoder.use_high_res_features=false is not supported");
  require(prompt_encoder.mask_in_chans >= 4 && prompt_encoder.mask_in_chans % 4 == 0,
          "prompt_encoder.mask_in_chans must be a multiple of 4");
  require(predictor.max_hole_area >= 0 && predictor.max_sprinkle_area >= 0,
          "predictor areas must be >= 0");
}

namespace {

// Reads an int given as n or [n, n].
void read_square(const json& j, const std::string& section, const char* key, int64_t& out) {
  if (!j.contains(key) || j.at(key).is_null()) return;
  const auto& v = j.at(key);
  if (v.is_array()) {
    std::vector<int64_t> a;
    read(j, section, key, a);
    if (a.empty() || (a.size() == 2 && a[0] != a[1]) || a.size() > 2) {
      throw ConfigError("config: '" + section + key + "' must be n or [n, n]");
    }
    out = a[0];
  } else {
    read(j, section, key, out);
  }
}

std::string json_family(const json& root, const json& j) {
  std::string fam;
  if (root.is_object() && root.contains("family") && root.at("family").is_string()) {
    fam = root.at("family").get<std::string>();
  } else if (j.is_object() && j.contains("family") && j.at("family").is_string()) {
    fam = j.at("family").get<std::string>();
  } else if (j.is_object() && j.contains("trunk")) {
    fam = "sam2.1";
  } else {
    fam = "sam3";
  }
  if (fam == "sam2") fam = "sam2.1";
  return fam;
}

ModelConfig sam2_from_json(const json& root, const json& j) {
  ModelConfig c = ModelConfig::sam2_1("t");
  c.name = "sam2.1";
  if (root.contains("name") && root.at("name").is_string()) read(root, "", "name", c.name);
  read(j, "", "name", c.name);
  read(j, "", "image_size", c.image_size);
  read(j, "", "backbone_stride", c.backbone_stride);
  read(j, "", "scalp", c.neck.scalp);
  if (const json* v = section(j, "trunk")) {
    auto& h = c.hiera;
    const std::string s = "trunk.";
    read(*v, s, "embed_dim", h.embed_dim);
    read(*v, s, "num_heads", h.num_heads);
    read(*v, s, "stages", h.stages);
    read(*v, s, "q_pool", h.q_pool);
    read(*v, s, "q_stride", h.q_stride);
    read(*v, s, "dim_mul", h.dim_mul);
    read(*v, s, "head_mul", h.head_mul);
    read(*v, s, "window_spec", h.window_spec);
    read(*v, s, "global_att_blocks", h.global_att_blocks);
    read(*v, s, "window_pos_embed_bkg_spatial_size", h.window_pos_embed_bkg_spatial_size);
    read(*v, s, "mlp_ratio", h.mlp_ratio);
    if (const json* pe = section(*v, "patch_embed")) {
      read_square(*pe, s + "patch_embed.", "kernel_size", h.patch_kernel_size);
      read_square(*pe, s + "patch_embed.", "stride", h.patch_stride);
      read_square(*pe, s + "patch_embed.", "padding", h.patch_padding);
    }
  }
  if (const json* v = section(j, "neck")) {
    read(*v, "neck.", "d_model", c.neck.d_model);
    read(*v, "neck.", "fpn_top_down_levels", c.fpn.fpn_top_down_levels);
    std::string interp = "nearest", fuse = "sum";
    read(*v, "neck.", "fpn_interp_model", interp);
    read(*v, "neck.", "fuse_type", fuse);
    require(interp == "nearest", "neck.fpn_interp_model: only 'nearest' is supported");
    require(fuse == "sum", "neck.fuse_type: only 'sum' is supported");
    std::vector<int64_t> channels;
    read(*v, "neck.", "backbone_channel_list", channels);
    if (!channels.empty()) {
      require_hiera_sizes(c.hiera);  // before stage_dims() builds the block list
      auto dims = c.hiera.stage_dims();
      std::reverse(dims.begin(), dims.end());
      require(channels == dims, "neck.backbone_channel_list does not match the trunk's widths");
    }
  }
  c.hidden_dim = c.neck.d_model;
  read(j, "", "hidden_dim", c.hidden_dim);
  if (const json* v = section(j, "prompt_encoder")) {
    read(*v, "prompt_encoder.", "mask_in_chans", c.prompt_encoder.mask_in_chans);
    read(*v, "prompt_encoder.", "layer_norm2d_eps", c.prompt_encoder.layer_norm2d_eps);
    read(*v, "prompt_encoder.", "layernorm2d_eps", c.prompt_encoder.layer_norm2d_eps);
  }
  if (const json* v = section(j, "mask_decoder")) {
    auto& m = c.mask_decoder;
    const std::string s = "mask_decoder.";
    read(*v, s, "num_multimask_outputs", m.num_multimask_outputs);
    read(*v, s, "two_way_depth", m.two_way_depth);
    read(*v, s, "transformer_depth", m.two_way_depth);
    read(*v, s, "num_heads", m.num_heads);
    read(*v, s, "transformer_num_heads", m.num_heads);
    read(*v, s, "mlp_dim", m.mlp_dim);
    read(*v, s, "transformer_mlp_dim", m.mlp_dim);
    read(*v, s, "attention_downsample_rate", m.attention_downsample_rate);
    read(*v, s, "iou_head_depth", m.iou_head_depth);
    read(*v, s, "iou_head_hidden_dim", m.iou_head_hidden_dim);
    read(*v, s, "use_high_res_features", m.use_high_res_features);
    read(*v, s, "iou_prediction_use_sigmoid", m.iou_prediction_use_sigmoid);
    read(*v, s, "pred_obj_scores", m.pred_obj_scores);
    read(*v, s, "dynamic_multimask_via_stability", m.dynamic_multimask_via_stability);
    read(*v, s, "dynamic_multimask_stability_delta", m.dynamic_multimask_stability_delta);
    read(*v, s, "dynamic_multimask_stability_thresh", m.dynamic_multimask_stability_thresh);
  }
  for (const json* src : {&root, &j}) {
    if (const json* v = section(*src, "predictor")) {
      read(*v, "predictor.", "mask_threshold", c.predictor.mask_threshold);
      read(*v, "predictor.", "max_hole_area_default", c.predictor.max_hole_area);
      read(*v, "predictor.", "max_sprinkle_area_default", c.predictor.max_sprinkle_area);
      read(*v, "predictor.", "max_hole_area", c.predictor.max_hole_area);
      read(*v, "predictor.", "max_sprinkle_area", c.predictor.max_sprinkle_area);
    }
  }
  c.validate();
  return c;
}

json sam2_to_json(const ModelConfig& c) {
  const auto& h = c.hiera;
  json j;
  j["family"] = c.family;
  j["name"] = c.name;
  j["image_size"] = c.image_size;
  j["backbone_stride"] = c.backbone_stride;
  j["scalp"] = c.neck.scalp;
  j["hidden_dim"] = c.hidden_dim;
  j["trunk"] = {{"embed_dim", h.embed_dim},
                {"num_heads", h.num_heads},
                {"stages", h.stages},
                {"q_pool", h.q_pool},
                {"q_stride", h.q_stride},
                {"dim_mul", h.dim_mul},
                {"head_mul", h.head_mul},
                {"window_spec", h.window_spec},
                {"global_att_blocks", h.global_att_blocks},
                {"window_pos_embed_bkg_spatial_size", h.window_pos_embed_bkg_spatial_size},
                {"mlp_ratio", h.mlp_ratio},
                {"patch_embed",
                 {{"kernel_size", {h.patch_kernel_size, h.patch_kernel_size}},
                  {"stride", {h.patch_stride, h.patch_stride}},
                  {"padding", {h.patch_padding, h.patch_padding}}}}};
  auto channels = h.stage_dims();
  std::reverse(channels.begin(), channels.end());
  j["neck"] = {{"d_model", c.neck.d_model},
               {"backbone_channel_list", channels},
               {"fpn_top_down_levels", c.fpn.fpn_top_down_levels},
               {"fpn_interp_model", "nearest"},
               {"fuse_type", "sum"}};
  j["prompt_encoder"] = {{"mask_in_chans", c.prompt_encoder.mask_in_chans},
                         {"layernorm2d_eps", c.prompt_encoder.layer_norm2d_eps}};
  const auto& m = c.mask_decoder;
  j["mask_decoder"] = {{"num_multimask_outputs", m.num_multimask_outputs},
                       {"transformer_depth", m.two_way_depth},
                       {"transformer_num_heads", m.num_heads},
                       {"transformer_mlp_dim", m.mlp_dim},
                       {"attention_downsample_rate", m.attention_downsample_rate},
                       {"iou_head_depth", m.iou_head_depth},
                       {"iou_head_hidden_dim", m.iou_head_hidden_dim},
                       {"use_high_res_features", m.use_high_res_features},
                       {"iou_prediction_use_sigmoid", m.iou_prediction_use_sigmoid},
                       {"pred_obj_scores", m.pred_obj_scores},
                       {"dynamic_multimask_via_stability", m.dynamic_multimask_via_stability},
                       {"dynamic_multimask_stability_delta", m.dynamic_multimask_stability_delta},
                       {"dynamic_multimask_stability_thresh", m.dynamic_multimask_stability_thresh}};
  j["predictor"] = {{"mask_threshold", c.predictor.mask_threshold},
                    {"max_hole_area", c.predictor.max_hole_area},
                    {"max_sprinkle_area", c.predictor.max_sprinkle_area}};
  return j;
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& root) {
  const json& j = root.contains("architecture") ? root.at("architecture") : root;
  if (!j.is_object()) throw ConfigError("config: expected a JSON object");
  const std::string fam = json_family(root, j);
  if (fam == "sam2.1") return sam2_from_json(root, j);
  if (fam == "sam1") throw ConfigError("config: family 'sam1' is not supported yet");
  if (fam != "sam3") throw ConfigError("config: unknown family '" + fam + "' (expected sam3 or sam2.1)");
  ModelConfig c;
  read(j, "", "name", c.name);
  read(j, "", "image_size", c.image_size);
  c.vit.img_size = c.image_size;
  if (const json* v = section(j, "vit")) {
    auto& t = c.vit;
    const std::string s = "vit.";
    read(*v, s, "img_size", t.img_size);
    read(*v, s, "patch_size", t.patch_size);
    read(*v, s, "in_chans", t.in_chans);
    read(*v, s, "embed_dim", t.embed_dim);
    read(*v, s, "depth", t.depth);
    read(*v, s, "num_heads", t.num_heads);
    read(*v, s, "mlp_ratio", t.mlp_ratio);
    read(*v, s, "qkv_bias", t.qkv_bias);
    read(*v, s, "bias_patch_embed", t.bias_patch_embed);
    read(*v, s, "pretrain_img_size", t.pretrain_img_size);
    read(*v, s, "pretrain_use_cls_token", t.pretrain_use_cls_token);
    read(*v, s, "retain_cls_token", t.retain_cls_token);
    read(*v, s, "use_abs_pos", t.use_abs_pos);
    read(*v, s, "tile_abs_pos", t.tile_abs_pos);
    read(*v, s, "window_size", t.window_size);
    read(*v, s, "global_att_blocks", t.global_att_blocks);
    read(*v, s, "rel_pos_blocks", t.rel_pos_blocks);
    read(*v, s, "use_rope", t.use_rope);
    read(*v, s, "use_interp_rope", t.use_interp_rope);
    read(*v, s, "rope_pt_size", t.rope_pt_size);
    read(*v, s, "rope_theta", t.rope_theta);
    read(*v, s, "ln_pre", t.ln_pre);
    read(*v, s, "ln_post", t.ln_post);
    read(*v, s, "layer_norm_eps", t.layer_norm_eps);
    if (!j.contains("image_size")) c.image_size = t.img_size;
  }
  if (const json* v = section(j, "neck")) {
    read(*v, "neck.", "d_model", c.neck.d_model);
    read(*v, "neck.", "scale_factors", c.neck.scale_factors);
    read(*v, "neck.", "scalp", c.neck.scalp);
  }
  c.hidden_dim = c.neck.d_model;
  if (const json* v = section(j, "tracker")) {
    read(*v, "tracker.", "hidden_dim", c.hidden_dim);
    read(*v, "tracker.", "backbone_stride", c.backbone_stride);
  } else {
    c.backbone_stride = c.vit.patch_size;
  }
  if (const json* v = section(j, "prompt_encoder")) {
    read(*v, "prompt_encoder.", "mask_in_chans", c.prompt_encoder.mask_in_chans);
    read(*v, "prompt_encoder.", "layer_norm2d_eps", c.prompt_encoder.layer_norm2d_eps);
  }
  if (const json* v = section(j, "mask_decoder")) {
    auto& m = c.mask_decoder;
    const std::string s = "mask_decoder.";
    read(*v, s, "num_multimask_outputs", m.num_multimask_outputs);
    read(*v, s, "two_way_depth", m.two_way_depth);
    read(*v, s, "num_heads", m.num_heads);
    read(*v, s, "mlp_dim", m.mlp_dim);
    read(*v, s, "attention_downsample_rate", m.attention_downsample_rate);
    read(*v, s, "iou_head_depth", m.iou_head_depth);
    read(*v, s, "iou_head_hidden_dim", m.iou_head_hidden_dim);
    read(*v, s, "use_high_res_features", m.use_high_res_features);
    read(*v, s, "iou_prediction_use_sigmoid", m.iou_prediction_use_sigmoid);
    read(*v, s, "pred_obj_scores", m.pred_obj_scores);
    read(*v, s, "dynamic_multimask_via_stability", m.dynamic_multimask_via_stability);
    read(*v, s, "dynamic_multimask_stability_delta", m.dynamic_multimask_stability_delta);
    read(*v, s, "dynamic_multimask_stability_thresh", m.dynamic_multimask_stability_thresh);
  }
  if (const json* v = section(j, "predictor")) {
    read(*v, "predictor.", "mask_threshold", c.predictor.mask_threshold);
    read(*v, "predictor.", "max_hole_area", c.predictor.max_hole_area);
    read(*v, "predictor.", "max_sprinkle_area", c.predictor.max_sprinkle_area);
  }
  c.validate();
  return c;
}

ModelConfig ModelConfig::from_json_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw ConfigError("config: cannot open '" + path + "'");
  json j;
  try {
    f >> j;
  } catch (const json::exception& e) {
    throw ConfigError("config: '" + path + "' is not valid JSON: " + e.what());
  }
  try {
    return from_json(j);
  } catch (const ConfigError& e) {
    throw ConfigError(std::string(e.what()) + " (in '" + path + "')");
  }
}

json ModelConfig::to_json() const {
  if (is_sam2()) return sam2_to_json(*this);
  json j;
  j["name"] = name;
  j["image_size"] = image_size;
  j["vit"] = {{"img_size", vit.img_size},
              {"patch_size", vit.patch_size},
              {"in_chans", vit.in_chans},
              {"embed_dim", vit.embed_dim},
              {"depth", vit.depth},
              {"num_heads", vit.num_heads},
              {"mlp_ratio", vit.mlp_ratio},
              {"qkv_bias", vit.qkv_bias},
              {"bias_patch_embed", vit.bias_patch_embed},
              {"pretrain_img_size", vit.pretrain_img_size},
              {"pretrain_use_cls_token", vit.pretrain_use_cls_token},
              {"retain_cls_token", vit.retain_cls_token},
              {"use_abs_pos", vit.use_abs_pos},
              {"tile_abs_pos", vit.tile_abs_pos},
              {"window_size", vit.window_size},
              {"global_att_blocks", vit.global_att_blocks},
              {"rel_pos_blocks", json::array()},
              {"use_rope", vit.use_rope},
              {"use_interp_rope", vit.use_interp_rope},
              {"rope_pt_size", vit.rope_pt_size > 0 ? json(vit.rope_pt_size) : json(nullptr)},
              {"rope_theta", vit.rope_theta},
              {"ln_pre", vit.ln_pre},
              {"ln_post", vit.ln_post},
              {"layer_norm_eps", vit.layer_norm_eps}};
  j["neck"] = {{"d_model", neck.d_model},
               {"scale_factors", neck.scale_factors},
               {"scalp", neck.scalp}};
  j["tracker"] = {{"hidden_dim", hidden_dim}, {"backbone_stride", backbone_stride}};
  j["prompt_encoder"] = {{"mask_in_chans", prompt_encoder.mask_in_chans},
                         {"layer_norm2d_eps", prompt_encoder.layer_norm2d_eps}};
  const auto& m = mask_decoder;
  j["mask_decoder"] = {{"num_multimask_outputs", m.num_multimask_outputs},
                       {"two_way_depth", m.two_way_depth},
                       {"num_heads", m.num_heads},
                       {"mlp_dim", m.mlp_dim},
                       {"attention_downsample_rate", m.attention_downsample_rate},
                       {"iou_head_depth", m.iou_head_depth},
                       {"iou_head_hidden_dim", m.iou_head_hidden_dim},
                       {"use_high_res_features", m.use_high_res_features},
                       {"iou_prediction_use_sigmoid", m.iou_prediction_use_sigmoid},
                       {"pred_obj_scores", m.pred_obj_scores},
                       {"dynamic_multimask_via_stability", m.dynamic_multimask_via_stability},
                       {"dynamic_multimask_stability_delta", m.dynamic_multimask_stability_delta},
                       {"dynamic_multimask_stability_thresh", m.dynamic_multimask_stability_thresh}};
  j["predictor"] = {{"mask_threshold", predictor.mask_threshold},
                    {"max_hole_area", predictor.max_hole_area},
                    {"max_sprinkle_area", predictor.max_sprinkle_area}};
  return j;
}

// ---------------------------------------------------------------------------
// Derivation from a checkpoint.

namespace {

const char* kTrunk = "detector.backbone.vision_backbone.trunk.";
const char* kNeck = "detector.backbone.vision_backbone.sam2_convs.";
const char* kPE = "tracker.sam_prompt_encoder.";
const char* kDec = "tracker.sam_mask_decoder.";

int64_t count_indexed(const StateDict& sd, const std::string& prefix, const std::string& suffix) {
  int64_t n = 0;
  while (sd.count(prefix + std::to_string(n) + suffix)) ++n;
  return n;
}

int64_t isqrt_exact(int64_t v) {
  auto r = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(v))));
  return r * r == v ? r : -1;
}

}  // namespace

namespace {

ModelConfig sam2_from_state_dict(const StateDict& sd) {
  const std::string T = "image_encoder.trunk.", PE = "sam_prompt_encoder.",
                    D = "sam_mask_decoder.";
  std::vector<std::string> missing;
  for (const std::string& k :
       {T + "patch_embed.proj.weight", T + "pos_embed", T + "pos_embed_window",
        T + "blocks.0.mlp.layers.1.weight", PE + "no_mask_embed.weight",
        PE + "mask_downscaling.3.weight", D + "mask_tokens.weight",
        D + "transformer.layers.0.mlp.layers.0.weight",
        D + "transformer.layers.0.cross_attn_token_to_image.q_proj.weight",
        D + "iou_prediction_head.layers.0.weight"}) {
    if (!sd.count(k)) missing.push_back("missing key '" + k + "'");
  }
  if (!missing.empty()) {
    throw CheckpointError(
        "not a SAM 3 checkpoint, and image_encoder.trunk.* is not a complete SAM 2.1 one "
        "(cannot derive the model configuration from it)",
        missing);
  }
  auto shape = [&](const std::string& k) { return sd.at(k).sizes().vec(); };
  auto pw = shape(T + "patch_embed.proj.weight");
  auto pos = shape(T + "pos_embed");
  auto posw = shape(T + "pos_embed_window");
  if (pw.size() != 4 || pos.size() != 4 || posw.size() != 4) {
    throw CheckpointError("SAM 2.1 trunk: patch_embed / pos_embed tensors must be 4-D");
  }
  const int64_t c0 = pw[0];
  const int64_t depth = count_indexed(sd, T + "blocks.", ".norm1.weight");
  // stage ends: a block followed by one with a projection shortcut, and the last
  std::vector<int64_t> stages;
  int64_t start = 0;
  for (int64_t i = 0; i < depth; ++i) {
    const bool end = i == depth - 1 || sd.count(T + "blocks." + std::to_string(i + 1) + ".proj.weight");
    if (end) {
      stages.push_back(i + 1 - start);
      start = i + 1;
    }
  }
  std::ostringstream desc;
  desc << "embed_dim " << c0 << ", stages [";
  for (size_t i = 0; i < stages.size(); ++i) desc << (i ? ", " : "") << stages[i];
  desc << "]";
  ModelConfig c;
  bool found = false;
  for (const char* size : {"t", "s", "b+", "l"}) {
    auto cand = ModelConfig::sam2_1(size);
    if (cand.hiera.embed_dim == c0 && cand.hiera.stages == stages) {
      c = cand;
      found = true;
      break;
    }
  }
  if (!found) {
    throw CheckpointError("SAM 2.1 checkpoint of a size that is not a released one (" +
                          desc.str() +
                          "): its heads, windows and global-attention blocks cannot be derived "
                          "from the tensor shapes; pass a config JSON (--config / "
                          "ModelOptions::config_path)");
  }
  std::vector<std::string> problems;
  if (pw[2] != c.hiera.patch_kernel_size) problems.push_back("patch_embed kernel size " + std::to_string(pw[2]));
  if (pos[2] != c.hiera.window_pos_embed_bkg_spatial_size[0] ||
      pos[3] != c.hiera.window_pos_embed_bkg_spatial_size[1]) {
    problems.push_back("pos_embed background size " + std::to_string(pos[2]) + "x" + std::to_string(pos[3]));
  }
  if (posw[2] != c.hiera.window_spec[0]) problems.push_back("pos_embed_window size " + std::to_string(posw[2]));
  if (!problems.empty()) {
    throw CheckpointError("SAM 2.1 checkpoint (" + desc.str() + ", " + c.name +
                              ") with unexpected trunk shapes; pass a config JSON",
                          problems);
  }
  c.hidden_dim = shape(PE + "no_mask_embed.weight")[1];
  c.neck.d_model = c.hidden_dim;
  c.prompt_encoder.mask_in_chans = shape(PE + "mask_downscaling.3.weight")[0];
  auto& m = c.mask_decoder;
  m.num_multimask_outputs = shape(D + "mask_tokens.weight")[0] - 1;
  m.two_way_depth = count_indexed(sd, D + "transformer.layers.", ".norm1.weight");
  m.mlp_dim = shape(D + "transformer.layers.0.mlp.layers.0.weight")[0];
  m.attention_downsample_rate =
      c.hidden_dim / shape(D + "transformer.layers.0.cross_attn_token_to_image.q_proj.weight")[0];
  m.iou_head_depth = count_indexed(sd, D + "iou_prediction_head.layers.", ".weight");
  m.iou_head_hidden_dim = shape(D + "iou_prediction_head.layers.0.weight")[0];
  m.use_high_res_features = sd.count(D + "conv_s0.weight") > 0;
  m.pred_obj_scores = sd.count(D + "obj_score_token.weight") > 0;
  try {
    c.validate();
  } catch (const ConfigError& e) {
    throw CheckpointError(std::string("checkpoint shapes do not form a valid SAM 2.1 model: ") +
                          e.what());
  }
  return c;
}

}  // namespace

ModelConfig ModelConfig::from_state_dict(const StateDict& sd) {
  if (sd.count("image_encoder.trunk.patch_embed.proj.weight")) return sam2_from_state_dict(sd);
  if (sd.count("image_encoder.patch_embed.proj.weight") && sd.count("mask_decoder.iou_token.weight")) {
    throw CheckpointError("a SAM 1 checkpoint: the SAM 1 family is not supported yet");
  }
  const std::string trunk = kTrunk, neck = kNeck, pe = kPE, dec = kDec;
  std::vector<std::string> missing;
  for (const std::string& k : {trunk + "patch_embed.proj.weight", trunk + "blocks.0.attn.qkv.weight",
                              trunk + "blocks.0.mlp.fc1.weight", pe + "no_mask_embed.weight",
                              pe + "mask_downscaling.3.weight", dec + "mask_tokens.weight",
                              dec + "transformer.layers.0.mlp.lin1.weight",
                              dec + "transformer.layers.0.cross_attn_token_to_image.q_proj.weight",
                              dec + "iou_prediction_head.layers.0.weight"}) {
    if (!sd.count(k)) missing.push_back("missing key '" + k + "'");
  }
  if (!missing.empty()) {
    throw CheckpointError(
        "not a SAM 3 checkpoint (cannot derive the model configuration from it; SAM 2.1 "
        "checkpoints are recognised by image_encoder.trunk.*)",
        missing);
  }
  auto shape = [&](const std::string& k) { return sd.at(k).sizes().vec(); };
  ModelConfig c;
  c.name = "sam3-derived";
  auto& v = c.vit;
  auto pw = shape(trunk + "patch_embed.proj.weight");
  if (pw.size() != 4) throw CheckpointError("patch_embed.proj.weight must be 4-D");
  v.embed_dim = pw[0];
  v.in_chans = pw[1];
  v.patch_size = pw[2];
  c.backbone_stride = v.patch_size;
  v.bias_patch_embed = sd.count(trunk + "patch_embed.proj.bias") > 0;
  v.depth = count_indexed(sd, trunk + "blocks.", ".norm1.weight");
  v.qkv_bias = sd.count(trunk + "blocks.0.attn.qkv.bias") > 0;
  const int64_t hidden = shape(trunk + "blocks.0.mlp.fc1.weight")[0];
  v.mlp_ratio = static_cast<double>(hidden) / static_cast<double>(v.embed_dim);
  v.ln_pre = sd.count(trunk + "ln_pre.weight") > 0;
  v.use_abs_pos = sd.count(trunk + "pos_embed") > 0;
  if (v.use_abs_pos) {
    const int64_t n = shape(trunk + "pos_embed")[1];
    int64_t g = isqrt_exact(n - 1);
    v.pretrain_use_cls_token = g > 0;
    if (g <= 0) g = isqrt_exact(n);
    if (g <= 0) throw CheckpointError("trunk.pos_embed: " + std::to_string(n) +
                                      " positions is not a square grid (+1 cls)");
    v.pretrain_img_size = g * v.patch_size;
  }
  // RoPE tables tell the heads, the window and the global blocks.
  int64_t window_L = -1, global_L = -1;
  std::vector<int64_t> globals;
  bool have_rope = true;
  for (int64_t i = 0; i < v.depth; ++i) {
    auto key = trunk + "blocks." + std::to_string(i) + ".attn.freqs_cis";
    if (!sd.count(key)) {
      have_rope = false;
      break;
    }
    auto s = shape(key);
    if (s.size() != 2) throw CheckpointError("'" + key + "' must be 2-D");
    v.num_heads = v.embed_dim / (2 * s[1]);
    if (window_L < 0 || s[0] < window_L) window_L = s[0];
    global_L = std::max(global_L, s[0]);
  }
  if (have_rope && v.depth > 0) {
    for (int64_t i = 0; i < v.depth; ++i) {
      auto L = shape(trunk + "blocks." + std::to_string(i) + ".attn.freqs_cis")[0];
      if (L == global_L && global_L != window_L) globals.push_back(i);
    }
    v.window_size = isqrt_exact(window_L);
    if (globals.empty()) {
      // every block attends over the same square: all global, grid = its side
      for (int64_t i = 0; i < v.depth; ++i) globals.push_back(i);
    }
    const int64_t G = isqrt_exact(global_L);
    if (v.window_size <= 0 || G <= 0) throw CheckpointError("trunk RoPE tables are not square");
    v.global_att_blocks = globals;
    c.image_size = G * v.patch_size;
    // rope_pt_size from the angle of position (col=1,row=0), frequency 0 in a
    // global block: s = rope_pt_size / G.
    auto t = sd.at(trunk + "blocks." + std::to_string(globals.back()) + ".attn.freqs_cis");
    if (t.is_complex() && t.size(0) > 1) {
      double angle = torch::angle(t[1][0]).item<double>();
      auto pt = static_cast<int64_t>(std::llround(angle * G));
      if (pt > 0 && pt != v.window_size) v.rope_pt_size = pt;
    }
  } else {
    // No RoPE tables (e.g. a conversion that dropped complex buffers):
    // official head_dim 64, window 24 and global-block spacing, official image size.
    v.num_heads = std::max<int64_t>(1, v.embed_dim / 64);
    c.image_size = ModelConfig{}.image_size;
    if (v.depth != ModelConfig{}.vit.depth) {
      throw CheckpointError(
          "the checkpoint has no trunk.blocks.*.attn.freqs_cis tables and a non-official depth; "
          "pass a config JSON");
    }
  }
  v.img_size = c.image_size;
  c.hidden_dim = shape(pe + "no_mask_embed.weight")[1];
  c.neck.d_model = c.hidden_dim;
  std::vector<double> sf;
  for (int k = 0; k < 3; ++k) {
    auto p = neck + std::to_string(k) + ".";
    sf.push_back(sd.count(p + "dconv_2x2_0.weight") ? 4.0 : sd.count(p + "dconv_2x2.weight") ? 2.0 : 1.0);
  }
  sf.push_back(0.5);
  c.neck.scale_factors = sf;
  c.neck.scalp = 1;
  c.prompt_encoder.mask_in_chans = shape(pe + "mask_downscaling.3.weight")[0];
  auto& m = c.mask_decoder;
  m.num_multimask_outputs = shape(dec + "mask_tokens.weight")[0] - 1;
  m.two_way_depth = count_indexed(sd, dec + "transformer.layers.", ".norm1.weight");
  m.mlp_dim = shape(dec + "transformer.layers.0.mlp.lin1.weight")[0];
  m.attention_downsample_rate =
      c.hidden_dim / shape(dec + "transformer.layers.0.cross_attn_token_to_image.q_proj.weight")[0];
  m.iou_head_depth = count_indexed(sd, dec + "iou_prediction_head.layers.", ".weight");
  m.iou_head_hidden_dim = shape(dec + "iou_prediction_head.layers.0.weight")[0];
  m.use_high_res_features = sd.count(dec + "conv_s0.weight") > 0;
  m.pred_obj_scores = sd.count(dec + "obj_score_token.weight") > 0;
  try {
    c.validate();
  } catch (const ConfigError& e) {
    throw CheckpointError(std::string("checkpoint shapes do not form a valid SAM 3 model: ") +
                          e.what());
  }
  return c;
}

}  // namespace sam3
