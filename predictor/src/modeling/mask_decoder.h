// Port of sam3/sam/mask_decoder.py (MaskDecoder with high-res features,
// object-score token, sigmoid IoU head, dynamic multimask via stability).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "modeling/common.h"
#include "modeling/transformer.h"
#include "sam3/config.h"

namespace sam3::modeling {

struct DecoderOutput {
  torch::Tensor all_masks;  // B x 4 x 4G x 4G, every token (before selection)
  torch::Tensor all_iou;    // B x 4
  torch::Tensor masks;      // selected: B x M x 4G x 4G
  torch::Tensor iou;        // B x M
};

class MaskDecoderImpl : public torch::nn::Module {
 public:
  explicit MaskDecoderImpl(const ModelConfig& cfg);

  // image_embeddings 1 x d x G x G (repeated per object when repeat_image),
  // image_pe 1 x d x G x G, sparse B x N x d, dense B x d x G x G,
  // high_res_features {1 x d/8 x 4G x 4G, 1 x d/4 x 2G x 2G}.
  DecoderOutput forward(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                        const torch::Tensor& sparse, const torch::Tensor& dense,
                        bool multimask_output, bool repeat_image,
                        const std::vector<torch::Tensor>& high_res_features);

  // Official _get_stability_scores over the last two dims.
  torch::Tensor stability_scores(const torch::Tensor& mask_logits);

  TwoWayTransformer transformer{nullptr};
  torch::nn::Embedding iou_token{nullptr}, mask_tokens{nullptr}, obj_score_token{nullptr};
  torch::nn::Sequential output_upscaling{nullptr};
  torch::nn::Conv2d conv_s0{nullptr}, conv_s1{nullptr};
  torch::nn::ModuleList output_hypernetworks_mlps;
  MLP iou_prediction_head{nullptr};

 private:
  ModelConfig cfg_;
  int64_t num_mask_tokens_;
};
TORCH_MODULE(MaskDecoder);

}  // namespace sam3::modeling
