// SAM 1 (facebookresearch/segment-anything) model configuration.
//
//   auto cfg  = sam3::sam1::Sam1Config::vit_h();                  // presets b / l / h
//   auto cfg2 = sam3::sam1::Sam1Config::from_json_file("config.json");
//   auto cfg3 = sam3::sam1::Sam1Config::from_state_dict(sd);       // size detection
//
// Defaults are sam_vit_b. Every size used by the model and the predictor is
// derived from these fields (input size R, embedding grid R/patch, low-res
// mask size 4*grid, rel-pos table lengths 2*window-1 / 2*grid-1, ...).
// Thread-safety: plain data.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "sam3/checkpoint.h"

namespace sam3::sam1 {

struct Sam1Config {
  std::string name = "vit_b";  // vit_b / vit_l / vit_h, or "custom"

  // ImageEncoderViT (segment_anything/modeling/image_encoder.py)
  int64_t img_size = 1024;  // R (square, padded)
  int64_t patch_size = 16;
  int64_t in_chans = 3;
  int64_t embed_dim = 768;
  int64_t depth = 12;
  int64_t num_heads = 12;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  bool use_abs_pos = true;
  bool use_rel_pos = true;
  int64_t window_size = 14;
  std::vector<int64_t> global_attn_indexes = {2, 5, 8, 11};
  int64_t out_chans = 256;  // neck width == prompt_embed_dim
  double layer_norm_eps = 1e-6;

  // PromptEncoder
  int64_t prompt_embed_dim = 256;
  int64_t mask_in_chans = 16;

  // MaskDecoder / TwoWayTransformer
  int64_t decoder_depth = 2;
  int64_t decoder_num_heads = 8;
  int64_t decoder_mlp_dim = 2048;
  int64_t attention_downsample_rate = 2;
  int64_t num_multimask_outputs = 3;
  int64_t iou_head_depth = 3;
  int64_t iou_head_hidden_dim = 256;

  // Sam / SamPredictor (0..255 scale)
  std::array<double, 3> pixel_mean = {123.675, 116.28, 103.53};
  std::array<double, 3> pixel_std = {58.395, 57.12, 57.375};
  double mask_threshold = 0.0;

  // ---- derived sizes (never literals) ----
  int64_t grid() const { return img_size / patch_size; }            // embedding h = w
  int64_t low_res_size() const { return 4 * grid(); }               // mask_input / low-res
  int64_t head_dim() const { return embed_dim / num_heads; }
  int64_t mlp_hidden_dim() const { return static_cast<int64_t>(embed_dim * mlp_ratio + 1e-6); }
  int64_t num_mask_tokens() const { return num_multimask_outputs + 1; }
  bool is_global(int64_t block) const;
  // 0 for global blocks (official Block.window_size semantics)
  int64_t block_window(int64_t block) const { return is_global(block) ? 0 : window_size; }
  // attention input size of a block: window (windowed) or grid (global)
  int64_t block_input_size(int64_t block) const {
    return is_global(block) ? grid() : window_size;
  }
  int64_t rel_pos_len(int64_t block) const { return 2 * block_input_size(block) - 1; }

  // Throws ConfigError when the values cannot form a model.
  void validate() const;

  static Sam1Config vit_b();
  static Sam1Config vit_l();
  static Sam1Config vit_h();
  // "vit_b"/"b", "vit_l"/"l", "vit_h"/"h"; ConfigError otherwise.
  static Sam1Config preset(const std::string& name);

  // Accepts the fixture config.json (whole file or its "architecture" object,
  // nested image_encoder / prompt_encoder / mask_decoder) and the manifests'
  // flat "architecture" object. Unknown keys are ignored; wrong types are a
  // ConfigError naming the key.
  static Sam1Config from_json(const nlohmann::json& j);
  static Sam1Config from_json_file(const std::string& path);
  nlohmann::json to_json() const;

  // Everything the tensor shapes determine (width, depth, heads from the
  // rel-pos tables, patch, grid -> R, window and global blocks from the
  // rel-pos table lengths, neck/prompt/decoder widths, decoder depth, MLP
  // sizes, mask tokens, IoU head); the rest (decoder heads 8, eps, pixel
  // mean/std, threshold) are the official values. `name` is set to the preset
  // whose architecture matches (vit_b / vit_l / vit_h) or "custom". Only shapes
  // are read. Throws CheckpointError if the dict is not a SAM 1 state dict.
  static Sam1Config from_state_dict(const StateDict& sd);

  // Same architecture (everything but name).
  bool same_architecture(const Sam1Config& o) const;
};

}  // namespace sam3::sam1
