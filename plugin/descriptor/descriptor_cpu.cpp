// CPU kernels of openmmnnp::se_a_descriptor (math in descriptor.h, the functions the CUDA kernels call;
// schemas in registration.cpp, autograd in descriptor_autograd.cpp): atoms in parallel, each atom's
// [M, 4] block read once from cache, every row of it at once.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "descriptor/descriptor.h"
#include "descriptor/descriptor_checks.h"

namespace openmmnnp {
namespace descriptor {
namespace {

constexpr const char* kOp = "openmmnnp::se_a_descriptor";
constexpr const char* kBackwardOp = "openmmnnp::se_a_descriptor_backward";

// ta[c][a] = t[a, c] for a < axis: one atom's second factor, transposed.
template <typename scalar_t>
void transpose_head(const scalar_t* __restrict__ t, int64_t axis, scalar_t* __restrict__ ta) {
  for (int64_t a = 0; a < axis; ++a)
    for (int c = 0; c < 4; ++c) ta[c * axis + a] = t[4 * a + c];
}

// One atom. The head is held transposed (ta[c][a], strides as = 1, cs = axis) so that the loops over
// a run contiguous (vectorisable, no reordered sums).
template <typename scalar_t>
void atom_forward(const scalar_t* __restrict__ t, int64_t M, int64_t axis, scalar_t* __restrict__ ta,
                  scalar_t* __restrict__ d) {
  transpose_head(t, axis, ta);
  for (int64_t m = 0; m < M; ++m) forward_row(t + 4 * m, ta, 1, axis, 0, axis, d + m * axis);
}

template <typename scalar_t>
void atom_backward(const scalar_t* __restrict__ t, const scalar_t* __restrict__ g, int64_t M, int64_t axis,
                   scalar_t* __restrict__ ta, scalar_t* __restrict__ acc, scalar_t* __restrict__ out) {
  transpose_head(t, axis, ta);
  // Second term for all m < axis at once: acc[c][m] = sum_k G[k, m] t[k, c], contiguous over m.
  scalar_t* __restrict__ acc0 = acc;
  scalar_t* __restrict__ acc1 = acc + axis;
  scalar_t* __restrict__ acc2 = acc + 2 * axis;
  scalar_t* __restrict__ acc3 = acc + 3 * axis;
  for (int64_t m = 0; m < 4 * axis; ++m) acc[m] = scalar_t(0);
  for (int64_t k = 0; k < M; ++k) tail_gradient(g + k * axis, t + 4 * k, 0, axis, acc0, acc1, acc2, acc3);
  for (int64_t m = 0; m < M; ++m) {
    scalar_t s[4];
    head_gradient(g + m * axis, ta, 1, axis, axis, s);
    if (m < axis) {
      s[0] += acc0[m];
      s[1] += acc1[m];
      s[2] += acc2[m];
      s[3] += acc3[m];
    }
    for (int c = 0; c < 4; ++c) out[4 * m + c] = s[c];
  }
}

at::Tensor se_a_descriptor_cpu(const at::Tensor& t_in, int64_t axis) {
  check_inputs(kOp, t_in, axis);
  const at::Tensor t = t_in.contiguous();
  const int64_t N = t.size(0), M = t.size(1);
  at::Tensor d = at::empty({N, M * axis}, t.options());
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), kOp, [&] {
    const scalar_t* tp = t.const_data_ptr<scalar_t>();
    scalar_t* dp = d.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, N, 64, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> ta(4 * axis);
      for (int64_t n = begin; n < end; ++n) atom_forward(tp + n * M * 4, M, axis, ta.data(), dp + n * M * axis);
    });
  });
  return d;
}

at::Tensor se_a_descriptor_backward_cpu(const at::Tensor& t_in, const at::Tensor& grad_in, int64_t axis) {
  check_inputs(kBackwardOp, t_in, axis);
  check_grad_output(kBackwardOp, t_in, grad_in, axis);
  const at::Tensor t = t_in.contiguous();
  const at::Tensor g = grad_in.contiguous();
  const int64_t N = t.size(0), M = t.size(1);
  at::Tensor grad_t = at::empty_like(t);
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), kBackwardOp, [&] {
    const scalar_t* tp = t.const_data_ptr<scalar_t>();
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    scalar_t* out = grad_t.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, N, 64, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> ta(4 * axis), acc(4 * axis);
      for (int64_t n = begin; n < end; ++n)
        atom_backward(tp + n * M * 4, gp + n * M * axis, M, axis, ta.data(), acc.data(), out + n * M * 4);
    });
  });
  return grad_t;
}

}  // namespace
}  // namespace descriptor

TORCH_LIBRARY_IMPL(openmmnnp, CPU, m) {
  m.impl("se_a_descriptor", &descriptor::se_a_descriptor_cpu);
  m.impl("se_a_descriptor_backward", &descriptor::se_a_descriptor_backward_cpu);
}

}  // namespace openmmnnp
