// gst-sam3 predictor: the hyper-parameters of SAM 3's interactive path, and
// of SAM 2.1's image path (family "sam2.1": HieraConfig + FpnNeckConfig, the
// fixtures' sam2.1 config.json format; ModelConfig::sam2_1(size) for the
// released t / s / b+ / l).
//
//   sam3::ModelConfig cfg;                                  // official full size
//   auto cfg2 = sam3::ModelConfig::from_json_file("config.json");
//   auto cfg3 = sam3::ModelConfig::from_state_dict(sd);     // derive from shapes
//
// Defaults are the official full-size model (sam3.pt). The JSON keys are the
// official constructor argument names; the `architecture` object of the parity
// fixtures' config.json is this format, and a whole fixture config.json (with
// an "architecture" member) is accepted as is. Unknown keys are ignored; wrong
// types and inconsistent values are a ConfigError naming the key.
//
// Thread-safety: plain data.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "sam3/checkpoint.h"

namespace sam3 {

// ViT trunk (sam3/model/vitdet.py ViT.__init__ arguments).
struct ViTConfig {
  int64_t img_size = 1008;
  int64_t patch_size = 14;
  int64_t in_chans = 3;
  int64_t embed_dim = 1024;
  int64_t depth = 32;
  int64_t num_heads = 16;
  double mlp_ratio = 4.625;
  bool qkv_bias = true;
  bool bias_patch_embed = false;
  int64_t pretrain_img_size = 336;
  bool pretrain_use_cls_token = true;
  bool retain_cls_token = false;  // only false is supported on this path
  bool use_abs_pos = true;
  bool tile_abs_pos = true;
  int64_t window_size = 24;
  std::vector<int64_t> global_att_blocks = {7, 15, 23, 31};
  std::vector<int64_t> rel_pos_blocks;  // must be empty (SAM 3 uses RoPE)
  bool use_rope = true;
  bool use_interp_rope = true;
  int64_t rope_pt_size = 0;  // 0 = None in Python (-> window_size)
  double rope_theta = 10000.0;
  bool ln_pre = true;
  bool ln_post = false;
  double layer_norm_eps = 1e-5;

  int64_t head_dim() const { return embed_dim / num_heads; }
  // int(embed_dim * mlp_ratio) as in Python (epsilon guards ratios derived as hidden/dim)
  int64_t mlp_hidden_dim() const { return static_cast<int64_t>(embed_dim * mlp_ratio + 1e-6); }
  int64_t grid() const { return img_size / patch_size; }
  int64_t pretrain_grid() const { return pretrain_img_size / patch_size; }
  int64_t effective_rope_pt_size() const { return rope_pt_size > 0 ? rope_pt_size : window_size; }
  bool is_global(int64_t block) const;
};

// Sam3DualViTDetNeck, SAM 2 branch.
struct NeckConfig {
  int64_t d_model = 256;
  std::vector<double> scale_factors = {4.0, 2.0, 1.0, 0.5};
  int64_t scalp = 1;
};

struct PromptEncoderConfig {
  int64_t mask_in_chans = 16;
  double layer_norm2d_eps = 1e-6;
};

struct MaskDecoderConfig {
  int64_t num_multimask_outputs = 3;
  int64_t two_way_depth = 2;
  int64_t num_heads = 8;
  int64_t mlp_dim = 2048;
  int64_t attention_downsample_rate = 2;
  int64_t iou_head_depth = 3;
  int64_t iou_head_hidden_dim = 256;
  bool use_high_res_features = true;
  bool iou_prediction_use_sigmoid = true;
  bool pred_obj_scores = true;
  bool dynamic_multimask_via_stability = true;
  double dynamic_multimask_stability_delta = 0.05;
  double dynamic_multimask_stability_thresh = 0.98;
};

// SAM 2.1 Hiera trunk (sam2/modeling/backbones/hieradet.py Hiera.__init__
// arguments plus the class constants a yaml never sets).
struct HieraConfig {
  int64_t embed_dim = 96;
  int64_t num_heads = 1;
  std::vector<int64_t> stages = {1, 2, 7, 2};
  int64_t q_pool = 3;
  std::vector<int64_t> q_stride = {2, 2};
  double dim_mul = 2.0;
  double head_mul = 2.0;
  std::vector<int64_t> window_spec = {8, 4, 14, 7};
  std::vector<int64_t> global_att_blocks = {5, 7, 9};
  std::vector<int64_t> window_pos_embed_bkg_spatial_size = {7, 7};
  int64_t patch_kernel_size = 7;
  int64_t patch_stride = 4;
  int64_t patch_padding = 3;
  double mlp_ratio = 4.0;
  double layer_norm_eps = 1e-6;

  int64_t depth() const;
  std::vector<int64_t> stage_ends() const;     // last block of each stage
  std::vector<int64_t> q_pool_blocks() const;  // first block of stages 2..(q_pool+1)
  // Per-block schedule (the official constructor loop).
  struct Block {
    int64_t dim, dim_out, num_heads, window_size;
    bool q_pool;
  };
  std::vector<Block> blocks() const;
  // Output width of each stage (low to high stride): C0, 2C0, 4C0, 8C0.
  std::vector<int64_t> stage_dims() const;
};

// SAM 2.1 FPN neck (sam2/modeling/backbones/image_encoder.py FpnNeck).
struct FpnNeckConfig {
  std::vector<int64_t> fpn_top_down_levels = {2, 3};
};

// Predictor defaults (SAM3InteractiveImagePredictor.__init__).
struct PredictorDefaults {
  double mask_threshold = 0.0;
  double max_hole_area = 256.0;
  double max_sprinkle_area = 0.0;
};

// Model family: "sam3" (default), "sam2.1" (Hiera image path; SAM 2 has the
// same image path), "sam1" (reserved, not implemented yet).
struct ModelConfig {
  std::string family = "sam3";
  std::string name = "sam3";
  int64_t image_size = 1008;  // S
  ViTConfig vit;
  NeckConfig neck;
  int64_t hidden_dim = 256;  // tracker / SAM head width d (== neck.d_model)
  int64_t backbone_stride = 14;
  PromptEncoderConfig prompt_encoder;
  MaskDecoderConfig mask_decoder;
  PredictorDefaults predictor;
  // SAM 2.1 only (family "sam2.1"): the Hiera trunk and the FPN neck; the
  // neck width is neck.d_model and scalp neck.scalp.
  HieraConfig hiera;
  FpnNeckConfig fpn;

  bool is_sam3() const { return family == "sam3"; }
  bool is_sam2() const { return family == "sam2.1"; }

  // Derived sizes (never literals): G, 4G, ...
  int64_t token_grid() const { return image_size / backbone_stride; }
  int64_t low_res_size() const { return 4 * token_grid(); }
  int64_t num_levels() const {
    if (is_sam2()) return static_cast<int64_t>(hiera.stages.size()) - neck.scalp;
    return static_cast<int64_t>(neck.scale_factors.size()) - neck.scalp;
  }
  // Per-channel normalisation of the [0,1] input (SAM 3: 0.5/0.5; SAM 2.1:
  // ImageNet mean/std).
  std::vector<double> pixel_mean() const;
  std::vector<double> pixel_std() const;

  // The released SAM 2.1 sizes: "t"/"tiny", "s"/"small", "b+"/"base_plus",
  // "l"/"large" (R = 1024, d = 256). Throws ConfigError otherwise.
  static ModelConfig sam2_1(const std::string& size);

  // Throws ConfigError when the values cannot form a model.
  void validate() const;

  // JSON in the official argument names (see file comment).
  static ModelConfig from_json(const nlohmann::json& j);
  static ModelConfig from_json_file(const std::string& path);
  nlohmann::json to_json() const;

  // Derives everything the checkpoint's tensor shapes determine (ViT width,
  // depth, heads from the RoPE tables, grid/window/global blocks, patch size,
  // abs-pos grid, SAM head width, ...) and takes official values for the rest.
  // SAM 2.1 checkpoints (image_encoder.trunk.*) are recognised too: the
  // size (t, s, b+, l) is identified from the trunk's shapes; other sizes
  // need a config JSON (CheckpointError says so).
  // Throws CheckpointError if the state dict is not a SAM 3 / SAM 2.1 checkpoint.
  static ModelConfig from_state_dict(const StateDict& sd);
};

}  // namespace sam3
