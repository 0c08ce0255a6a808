// The modules of SAM 2.1's image path (sam2/modeling/sam2_base.py SAM2Base
// restricted to what SAM2ImagePredictor runs), nested so that parameter names
// equal the released sam2.1_hiera_*.pt keys:
//   image_encoder.trunk.*     (Hiera)
//   image_encoder.neck.*      (FpnNeck; convs.0 is the stride-32 level)
//   sam_prompt_encoder.*, sam_mask_decoder.* (incl. conv_s0 / conv_s1)
//   no_mem_embed
// Video-only modules (memory attention / encoder, object pointers) and the
// object-score head (its output is discarded) are not built.
#pragma once

#include <torch/torch.h>

#include "modeling/hiera.h"
#include "modeling/mask_decoder.h"
#include "modeling/prompt_encoder.h"
#include "modeling/sam3_interactive.h"
#include "sam3/config.h"

namespace sam3::modeling {

class Sam2ImageEncoderImpl : public torch::nn::Module {
 public:
  explicit Sam2ImageEncoderImpl(const ModelConfig& cfg);
  Hiera trunk{nullptr};
  FpnNeck neck{nullptr};
};
TORCH_MODULE(Sam2ImageEncoder);

class Sam2ModelImpl : public torch::nn::Module {
 public:
  explicit Sam2ModelImpl(const ModelConfig& cfg);
  // x: N x 3 x R x R preprocessed. keep_intermediates fills the trunk / neck
  // fields of the output (trunk_levels, neck_levels, trunk_blocks, ...).
  EncoderOutput encode_image(const torch::Tensor& x, bool keep_intermediates = false);

  Sam2ImageEncoder image_encoder{nullptr};
  PromptEncoder sam_prompt_encoder{nullptr};
  MaskDecoder sam_mask_decoder{nullptr};
  torch::Tensor no_mem_embed;  // 1 x 1 x d

 private:
  int64_t scalp_;
};
TORCH_MODULE(Sam2Model);

}  // namespace sam3::modeling
