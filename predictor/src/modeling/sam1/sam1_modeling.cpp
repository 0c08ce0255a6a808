// Port of segment_anything/modeling/{image_encoder,prompt_encoder,mask_decoder,sam}.py.
#include "modeling/sam1/sam1_modeling.h"

#include <cmath>

namespace sam3::modeling::sam1 {

namespace {

// get_rel_pos for equal query / key sizes (table length 2S-1, no resize): S x S x hd.
torch::Tensor get_rel_pos(int64_t size, const torch::Tensor& table) {
  TORCH_CHECK(table.size(0) == 2 * size - 1, "rel-pos table length ", table.size(0),
              " does not fit attention size ", size);
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(table.device());
  auto q = torch::arange(size, opts).unsqueeze(1);
  auto k = torch::arange(size, opts).unsqueeze(0);
  return table.index({(q - k) + (size - 1)});
}

}  // namespace

Sam1AttentionImpl::Sam1AttentionImpl(int64_t dim, int64_t num_heads, bool qkv_bias,
                                     bool use_rel_pos, int64_t input_size)
    : num_heads_(num_heads), use_rel_pos_(use_rel_pos) {
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, dim * 3).bias(qkv_bias)));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
  if (use_rel_pos) {
    const int64_t hd = dim / num_heads;
    rel_pos_h = register_parameter("rel_pos_h", torch::zeros({2 * input_size - 1, hd}));
    rel_pos_w = register_parameter("rel_pos_w", torch::zeros({2 * input_size - 1, hd}));
  }
}

torch::Tensor Sam1AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), h = x.size(1), w = x.size(2);
  // qkv: 3 x (B*heads) x HW x hd
  auto qkv_t = qkv->forward(x).reshape({b, h * w, 3, num_heads_, -1}).permute({2, 0, 3, 1, 4});
  const int64_t hd = qkv_t.size(-1);
  auto qkv_r = qkv_t.reshape({3, b * num_heads_, h * w, hd});
  auto q = qkv_r[0], k = qkv_r[1], v = qkv_r[2];
  const double scale = std::pow(static_cast<double>(hd), -0.5);
  auto attn = torch::matmul(q * scale, k.transpose(-2, -1));
  if (use_rel_pos_) {
    auto rh = get_rel_pos(h, rel_pos_h).to(q.scalar_type());
    auto rw = get_rel_pos(w, rel_pos_w).to(q.scalar_type());
    auto r_q = q.reshape({b * num_heads_, h, w, hd});
    auto rel_h = torch::einsum("bhwc,hkc->bhwk", {r_q, rh});
    auto rel_w = torch::einsum("bhwc,wkc->bhwk", {r_q, rw});
    attn = (attn.view({b * num_heads_, h, w, h, w}) + rel_h.unsqueeze(4) + rel_w.unsqueeze(3))
               .view({b * num_heads_, h * w, h * w});
  }
  attn = softmax_fp32(attn, -1);
  auto out = torch::matmul(attn, v)
                 .view({b, num_heads_, h, w, hd})
                 .permute({0, 2, 3, 1, 4})
                 .reshape({b, h, w, -1});
  return proj->forward(out);
}

torch::Tensor window_partition(const torch::Tensor& x_in, int64_t ws, int64_t* hp, int64_t* wp) {
  const int64_t b = x_in.size(0), h = x_in.size(1), w = x_in.size(2), c = x_in.size(3);
  const int64_t pad_h = (ws - h % ws) % ws, pad_w = (ws - w % ws) % ws;
  auto x = x_in;
  if (pad_h > 0 || pad_w > 0) x = torch::constant_pad_nd(x, {0, 0, 0, pad_w, 0, pad_h}, 0);
  *hp = h + pad_h;
  *wp = w + pad_w;
  x = x.view({b, *hp / ws, ws, *wp / ws, ws, c});
  return x.permute({0, 1, 3, 2, 4, 5}).contiguous().view({-1, ws, ws, c});
}

torch::Tensor window_unpartition(const torch::Tensor& windows, int64_t ws, int64_t hp, int64_t wp,
                                 int64_t h, int64_t w) {
  const int64_t b = windows.size(0) / (hp * wp / ws / ws);
  auto x = windows.view({b, hp / ws, wp / ws, ws, ws, -1});
  x = x.permute({0, 1, 3, 2, 4, 5}).contiguous().view({b, hp, wp, -1});
  if (hp > h || wp > w) x = x.slice(1, 0, h).slice(2, 0, w).contiguous();
  return x;
}

Sam1BlockImpl::Sam1BlockImpl(const Sam1Config& cfg, int64_t index)
    : window_size_(cfg.block_window(index)) {
  auto ln = [&] {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.embed_dim}).eps(cfg.layer_norm_eps));
  };
  norm1 = register_module("norm1", ln());
  attn = register_module("attn", Sam1Attention(cfg.embed_dim, cfg.num_heads, cfg.qkv_bias,
                                               cfg.use_rel_pos, cfg.block_input_size(index)));
  norm2 = register_module("norm2", ln());
  mlp = register_module("mlp", MLPBlock(cfg.embed_dim, cfg.mlp_hidden_dim(), /*gelu=*/true));
}

torch::Tensor Sam1BlockImpl::forward(const torch::Tensor& x_in) {
  auto shortcut = x_in;
  auto x = layer_norm_fp32(x_in, norm1);
  const int64_t h = x.size(1), w = x.size(2);
  int64_t hp = h, wp = w;
  if (window_size_ > 0) x = window_partition(x, window_size_, &hp, &wp);
  x = attn->forward(x);
  if (window_size_ > 0) x = window_unpartition(x, window_size_, hp, wp, h, w);
  x = shortcut + x;
  return x + mlp->forward(layer_norm_fp32(x, norm2));
}

PatchEmbedImpl::PatchEmbedImpl(int64_t in_chans, int64_t embed_dim, int64_t patch) {
  proj = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_chans, embed_dim, patch).stride(patch)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& x) {
  return proj->forward(x).permute({0, 2, 3, 1});
}

ImageEncoderViTImpl::ImageEncoderViTImpl(const Sam1Config& cfg) {
  cfg.validate();
  patch_embed = register_module("patch_embed",
                                PatchEmbed(cfg.in_chans, cfg.embed_dim, cfg.patch_size));
  if (cfg.use_abs_pos) {
    pos_embed = register_parameter("pos_embed",
                                   torch::zeros({1, cfg.grid(), cfg.grid(), cfg.embed_dim}));
  }
  for (int64_t i = 0; i < cfg.depth; ++i) blocks->push_back(Sam1Block(cfg, i));
  register_module("blocks", blocks);
  using torch::nn::Conv2d;
  using torch::nn::Conv2dOptions;
  const int64_t oc = cfg.out_chans;
  neck = register_module(
      "neck", torch::nn::Sequential(Conv2d(Conv2dOptions(cfg.embed_dim, oc, 1).bias(false)),
                                    LayerNorm2d(oc, cfg.layer_norm_eps),
                                    Conv2d(Conv2dOptions(oc, oc, 3).padding(1).bias(false)),
                                    LayerNorm2d(oc, cfg.layer_norm_eps)));
}

torch::Tensor ImageEncoderViTImpl::forward(const torch::Tensor& x_in,
                                           std::vector<torch::Tensor>* intermediates) {
  auto x = patch_embed->forward(x_in);
  if (intermediates) intermediates->push_back(x);
  if (pos_embed.defined()) x = x + pos_embed.to(x.scalar_type());
  for (size_t i = 0; i < blocks->size(); ++i) {
    x = blocks[i]->as<Sam1Block>()->forward(x);
    if (intermediates) intermediates->push_back(x);
  }
  x = x.permute({0, 3, 1, 2});
  torch::nn::Conv2d c0(neck->ptr<torch::nn::Conv2dImpl>(0));
  x = conv1x1(c0, x.contiguous());
  x = neck[1]->as<LayerNorm2d>()->forward(x);
  x = neck->ptr<torch::nn::Conv2dImpl>(2)->forward(x);
  return neck[3]->as<LayerNorm2d>()->forward(x);
}

Sam1PromptEncoderImpl::Sam1PromptEncoderImpl(const Sam1Config& cfg)
    : embed_dim_(cfg.prompt_embed_dim), image_size_(cfg.img_size), grid_(cfg.grid()) {
  const int64_t d = cfg.prompt_embed_dim;
  pe_layer = register_module("pe_layer", PositionEmbeddingRandom(d / 2));
  for (int i = 0; i < 4; ++i) point_embeddings->push_back(torch::nn::Embedding(1, d));
  register_module("point_embeddings", point_embeddings);
  not_a_point_embed = register_module("not_a_point_embed", torch::nn::Embedding(1, d));
  const int64_t mic = cfg.mask_in_chans;
  using torch::nn::Conv2d;
  using torch::nn::Conv2dOptions;
  mask_downscaling = register_module(
      "mask_downscaling",
      torch::nn::Sequential(Conv2d(Conv2dOptions(1, mic / 4, 2).stride(2)),
                            LayerNorm2d(mic / 4, 1e-6), torch::nn::GELU(),
                            Conv2d(Conv2dOptions(mic / 4, mic, 2).stride(2)),
                            LayerNorm2d(mic, 1e-6), torch::nn::GELU(),
                            Conv2d(Conv2dOptions(mic, d, 1))));
  no_mask_embed = register_module("no_mask_embed", torch::nn::Embedding(1, d));
}

torch::Tensor Sam1PromptEncoderImpl::get_dense_pe() {
  return pe_layer->forward(grid_, grid_).unsqueeze(0);
}

std::pair<torch::Tensor, torch::Tensor> Sam1PromptEncoderImpl::forward(
    const torch::Tensor& points_in, const torch::Tensor& labels_in, const torch::Tensor& boxes_in,
    const torch::Tensor& masks) {
  int64_t bs = 1;
  if (points_in.defined()) {
    bs = points_in.size(0);
  } else if (boxes_in.defined()) {
    bs = boxes_in.size(0);
  } else if (masks.defined()) {
    bs = masks.size(0);
  }
  auto w = [](const torch::nn::Embedding& e) { return e->weight; };
  auto pt = [&](int64_t i) { return point_embeddings[i]->as<torch::nn::Embedding>()->weight; };
  auto dev = no_mask_embed->weight.device();
  auto dtype = no_mask_embed->weight.scalar_type();
  std::vector<torch::Tensor> parts;
  parts.push_back(torch::empty({bs, 0, embed_dim_}, torch::TensorOptions().dtype(dtype).device(dev)));
  if (points_in.defined()) {
    auto points = points_in.to(torch::kFloat) + 0.5;  // shift to the centre of the pixel
    auto labels = labels_in;
    if (!boxes_in.defined()) {
      points = torch::cat({points, torch::zeros({points.size(0), 1, 2}, points.options())}, 1);
      labels = torch::cat({labels, -torch::ones({labels.size(0), 1}, labels.options())}, 1);
    }
    auto pe = pe_layer->forward_with_coords(points, image_size_, image_size_);
    auto lab = labels.unsqueeze(-1);
    // official: [-1] = not_a_point_embed, [0] += pe0, [1] += pe1 (2/3 get no row)
    pe = torch::where(lab == -1, torch::zeros_like(pe) + w(not_a_point_embed), pe);
    pe = torch::where(lab == 0, pe + pt(0), pe);
    pe = torch::where(lab == 1, pe + pt(1), pe);
    parts.push_back(pe.to(dtype));
  }
  if (boxes_in.defined()) {
    auto coords = (boxes_in.to(torch::kFloat) + 0.5).reshape({-1, 2, 2});
    auto ce = pe_layer->forward_with_coords(coords, image_size_, image_size_);
    ce = torch::cat({ce.slice(1, 0, 1) + pt(2), ce.slice(1, 1, 2) + pt(3)}, 1);
    parts.push_back(ce.to(dtype));
  }
  auto sparse = torch::cat(parts, 1);
  torch::Tensor dense;
  if (masks.defined()) {
    dense = mask_downscaling->forward(masks.to(dtype));
  } else {
    dense = no_mask_embed->weight.reshape({1, -1, 1, 1}).expand({bs, -1, grid_, grid_});
  }
  return {sparse, dense};
}

Sam1MaskDecoderImpl::Sam1MaskDecoderImpl(const Sam1Config& cfg)
    : num_mask_tokens_(cfg.num_mask_tokens()) {
  const int64_t d = cfg.prompt_embed_dim;
  transformer = register_module(
      "transformer", TwoWayTransformer(cfg.decoder_depth, d, cfg.decoder_num_heads,
                                       cfg.decoder_mlp_dim, cfg.attention_downsample_rate));
  iou_token = register_module("iou_token", torch::nn::Embedding(1, d));
  mask_tokens = register_module("mask_tokens", torch::nn::Embedding(num_mask_tokens_, d));
  using torch::nn::ConvTranspose2d;
  using torch::nn::ConvTranspose2dOptions;
  output_upscaling = register_module(
      "output_upscaling",
      torch::nn::Sequential(ConvTranspose2d(ConvTranspose2dOptions(d, d / 4, 2).stride(2)),
                            LayerNorm2d(d / 4, 1e-6), torch::nn::GELU(),
                            ConvTranspose2d(ConvTranspose2dOptions(d / 4, d / 8, 2).stride(2)),
                            torch::nn::GELU()));
  for (int64_t i = 0; i < num_mask_tokens_; ++i) {
    output_hypernetworks_mlps->push_back(MLP(d, d, d / 8, 3));
  }
  register_module("output_hypernetworks_mlps", output_hypernetworks_mlps);
  iou_prediction_head = register_module(
      "iou_prediction_head",
      MLP(d, cfg.iou_head_hidden_dim, num_mask_tokens_, cfg.iou_head_depth, false));
}

Sam1DecoderOutput Sam1MaskDecoderImpl::forward(const torch::Tensor& image_embeddings,
                                               const torch::Tensor& image_pe,
                                               const torch::Tensor& sparse,
                                               const torch::Tensor& dense, bool multimask_output) {
  auto output_tokens = torch::cat({iou_token->weight, mask_tokens->weight}, 0)
                           .unsqueeze(0)
                           .expand({sparse.size(0), -1, -1});
  auto tokens = torch::cat({output_tokens.to(sparse.scalar_type()), sparse}, 1);
  const int64_t nb = tokens.size(0);
  auto src = torch::repeat_interleave(image_embeddings, nb, 0) + dense.to(image_embeddings.scalar_type());
  auto pos_src = torch::repeat_interleave(image_pe.to(src.scalar_type()), nb, 0);
  const int64_t b = src.size(0), c = src.size(1), h = src.size(2), w = src.size(3);

  auto [hs, keys] = transformer->forward(src, pos_src, tokens);
  auto iou_token_out = hs.select(1, 0);
  auto mask_tokens_out = hs.slice(1, 1, 1 + num_mask_tokens_);

  src = keys.transpose(1, 2).reshape({b, c, h, w});
  torch::nn::ConvTranspose2d dc1(output_upscaling->ptr<torch::nn::ConvTranspose2dImpl>(0));
  torch::nn::ConvTranspose2d dc2(output_upscaling->ptr<torch::nn::ConvTranspose2dImpl>(3));
  auto up = torch::gelu(output_upscaling[1]->as<LayerNorm2d>()->forward(conv_transpose(dc1, src)));
  up = torch::gelu(conv_transpose(dc2, up));

  auto masks = hypernetwork_masks(output_hypernetworks_mlps, mask_tokens_out, up);
  auto iou_pred = iou_prediction_head->forward(iou_token_out);

  Sam1DecoderOutput out;
  out.all_masks = masks;
  out.all_iou = iou_pred;
  if (multimask_output) {
    out.masks = masks.slice(1, 1);
    out.iou = iou_pred.slice(1, 1);
  } else {
    out.masks = masks.slice(1, 0, 1);
    out.iou = iou_pred.slice(1, 0, 1);
  }
  return out;
}

Sam1Model::Sam1Model(const Sam1Config& cfg) : cfg_(cfg) {
  cfg.validate();
  image_encoder = register_module("image_encoder", ImageEncoderViT(cfg));
  prompt_encoder = register_module("prompt_encoder", Sam1PromptEncoder(cfg));
  mask_decoder = register_module("mask_decoder", Sam1MaskDecoder(cfg));
}

}  // namespace sam3::modeling::sam1
