// Port of sam3/sam/rope.py: 2-D axial rotary position embedding.
#pragma once

#include <torch/torch.h>

namespace sam3::modeling {

// The official `compute_axial_cis(dim, end_x, end_y, theta, scale_pos)` table
// as complex64 (end_x*end_y, dim/2): columns [0, dim/4) rotate by col*scale*f_k,
// columns [dim/4, dim/2) by row*scale*f_k, f_k = theta^(-4k/dim).
torch::Tensor compute_axial_cis(int64_t dim, int64_t end_x, int64_t end_y, double theta,
                                double scale_pos);

// Applies the rotation given as cos/sin tables (L, hd/2) to x (..., L, hd),
// pairing adjacent channels (x[2j], x[2j+1]) as complex numbers. Computed in
// float32, returned in x's dtype.
torch::Tensor apply_rotary_enc(const torch::Tensor& x, const torch::Tensor& cos,
                               const torch::Tensor& sin);

}  // namespace sam3::modeling
