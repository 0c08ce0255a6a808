// Port of segment_anything/modeling (SAM 1): ImageEncoderViT (windowed /
// global blocks with decomposed relative positions, neck), PromptEncoder
// (boxes after points, no padding point with a box), MaskDecoder (IoU token +
// mask tokens, no object-score token, no high-res features, raw IoU) and the
// Sam container whose named_parameters() equal the released .pth keys
// (image_encoder.*, prompt_encoder.*, mask_decoder.*).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "modeling/common.h"
#include "modeling/prompt_encoder.h"
#include "modeling/transformer.h"
#include "sam1/sam1_config.h"

namespace sam3::modeling::sam1 {

using sam3::sam1::Sam1Config;

// image_encoder.py Attention: qkv, proj, rel_pos_h / rel_pos_w ((2S-1) x hd).
class Sam1AttentionImpl : public torch::nn::Module {
 public:
  Sam1AttentionImpl(int64_t dim, int64_t num_heads, bool qkv_bias, bool use_rel_pos,
                    int64_t input_size);
  torch::Tensor forward(const torch::Tensor& x);  // B x H x W x C

  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  torch::Tensor rel_pos_h, rel_pos_w;

 private:
  int64_t num_heads_;
  bool use_rel_pos_;
};
TORCH_MODULE(Sam1Attention);

class Sam1BlockImpl : public torch::nn::Module {
 public:
  Sam1BlockImpl(const Sam1Config& cfg, int64_t index);
  torch::Tensor forward(const torch::Tensor& x);  // B x H x W x C

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Sam1Attention attn{nullptr};
  MLPBlock mlp{nullptr};

 private:
  int64_t window_size_;
};
TORCH_MODULE(Sam1Block);

class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int64_t in_chans, int64_t embed_dim, int64_t patch);
  torch::Tensor forward(const torch::Tensor& x);  // B x 3 x R x R -> B x g x g x C
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

class ImageEncoderViTImpl : public torch::nn::Module {
 public:
  explicit ImageEncoderViTImpl(const Sam1Config& cfg);
  // x: B x 3 x R x R (normalised, padded). Returns B x out x g x g.
  // intermediates (optional): the patch-embedding output (before pos_embed),
  // then every block's output, all B x g x g x C.
  torch::Tensor forward(const torch::Tensor& x, std::vector<torch::Tensor>* intermediates = nullptr);

  PatchEmbed patch_embed{nullptr};
  torch::Tensor pos_embed;  // 1 x g x g x C (channels last), if use_abs_pos
  torch::nn::ModuleList blocks;
  torch::nn::Sequential neck{nullptr};
};
TORCH_MODULE(ImageEncoderViT);

// Zero-pads B x H x W x C to multiples of ws and splits into windows.
torch::Tensor window_partition(const torch::Tensor& x, int64_t ws, int64_t* hp, int64_t* wp);
torch::Tensor window_unpartition(const torch::Tensor& windows, int64_t ws, int64_t hp, int64_t wp,
                                 int64_t h, int64_t w);

class Sam1PromptEncoderImpl : public torch::nn::Module {
 public:
  explicit Sam1PromptEncoderImpl(const Sam1Config& cfg);
  // points B x N x 2 (model-input pixels) + labels B x N (-1, 0, 1), boxes
  // B x 4 (or B x 1 x 4), masks B x 1 x 4g x 4g; any may be undefined.
  // Returns {sparse B x T x d, dense B x d x g x g}.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& points,
                                                  const torch::Tensor& labels,
                                                  const torch::Tensor& boxes,
                                                  const torch::Tensor& masks);
  torch::Tensor get_dense_pe();  // 1 x d x g x g

  PositionEmbeddingRandom pe_layer{nullptr};
  torch::nn::ModuleList point_embeddings;
  torch::nn::Embedding not_a_point_embed{nullptr}, no_mask_embed{nullptr};
  torch::nn::Sequential mask_downscaling{nullptr};

 private:
  int64_t embed_dim_, image_size_, grid_;
};
TORCH_MODULE(Sam1PromptEncoder);

struct Sam1DecoderOutput {
  torch::Tensor all_masks;  // B x (M+1) x 4g x 4g
  torch::Tensor all_iou;    // B x (M+1)
  torch::Tensor masks;      // selected: B x C x 4g x 4g
  torch::Tensor iou;        // B x C
};

class Sam1MaskDecoderImpl : public torch::nn::Module {
 public:
  explicit Sam1MaskDecoderImpl(const Sam1Config& cfg);
  // image_embeddings 1 x d x g x g (repeated per prompt), image_pe 1 x d x g x g,
  // sparse B x T x d, dense B x d x g x g.
  Sam1DecoderOutput forward(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                            const torch::Tensor& sparse, const torch::Tensor& dense,
                            bool multimask_output);

  TwoWayTransformer transformer{nullptr};
  torch::nn::Embedding iou_token{nullptr}, mask_tokens{nullptr};
  torch::nn::Sequential output_upscaling{nullptr};
  torch::nn::ModuleList output_hypernetworks_mlps;
  MLP iou_prediction_head{nullptr};

 private:
  int64_t num_mask_tokens_;
};
TORCH_MODULE(Sam1MaskDecoder);

// segment_anything/modeling/sam.py Sam (pixel_mean / pixel_std are kept in the
// config, not as buffers: they are non-persistent and absent from the .pth).
class Sam1Model : public torch::nn::Module {
 public:
  explicit Sam1Model(const Sam1Config& cfg);
  const Sam1Config& config() const { return cfg_; }

  ImageEncoderViT image_encoder{nullptr};
  Sam1PromptEncoder prompt_encoder{nullptr};
  Sam1MaskDecoder mask_decoder{nullptr};

 private:
  Sam1Config cfg_;
};

}  // namespace sam3::modeling::sam1
