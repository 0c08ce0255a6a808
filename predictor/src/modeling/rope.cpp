// Port of sam3/sam/rope.py (compute_axial_cis, apply_rotary_enc).
#include "modeling/rope.h"

namespace sam3::modeling {

torch::Tensor compute_axial_cis(int64_t dim, int64_t end_x, int64_t end_y, double theta,
                                double scale_pos) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat);
  // freqs = 1 / theta ** (arange(0, dim, 4)[: dim // 4] / dim)
  auto exps = torch::arange(0, dim, 4, opts).slice(0, 0, dim / 4) / static_cast<double>(dim);
  auto freqs = 1.0 / torch::pow(theta, exps);
  auto t = torch::arange(end_x * end_y, opts);
  auto t_x = torch::remainder(t, end_x) * scale_pos;
  auto t_y = torch::div(t, end_x, "floor") * scale_pos;
  auto freqs_x = torch::outer(t_x, freqs);
  auto freqs_y = torch::outer(t_y, freqs);
  auto angle = torch::cat({freqs_x, freqs_y}, -1);
  return torch::polar(torch::ones_like(angle), angle);
}

torch::Tensor apply_rotary_enc(const torch::Tensor& x, const torch::Tensor& cos,
                               const torch::Tensor& sin) {
  auto xf = x.to(torch::kFloat);
  auto shape = xf.sizes().vec();
  auto pairs = xf.reshape({-1, shape[shape.size() - 2], shape.back() / 2, 2});
  auto re = pairs.select(-1, 0);
  auto im = pairs.select(-1, 1);
  // (re + i im) * (cos + i sin)
  auto out_re = re * cos - im * sin;
  auto out_im = re * sin + im * cos;
  return torch::stack({out_re, out_im}, -1).reshape(shape).to(x.scalar_type());
}

}  // namespace sam3::modeling
