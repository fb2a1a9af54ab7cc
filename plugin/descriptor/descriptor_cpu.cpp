// CPU kernels of openmmnnp::se_a_descriptor (math in descriptor.h, schemas in registration.cpp):
// atoms in parallel, each atom's [M, 4] block read once from cache.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "descriptor/descriptor_checks.h"

namespace openmmnnp {
namespace {

constexpr const char* kOp = "openmmnnp::se_a_descriptor";
constexpr const char* kBackwardOp = "openmmnnp::se_a_descriptor_backward";

// ta[c][a] = t[a, c] for a < axis: one atom's second factor, transposed.
template <typename scalar_t>
void transpose_head(const scalar_t* __restrict__ t, int64_t axis, scalar_t* __restrict__ ta) {
  for (int64_t a = 0; a < axis; ++a)
    for (int c = 0; c < 4; ++c) ta[c * axis + a] = t[4 * a + c];
}

// One atom, loops ordered for the CPU: the second factor is held transposed (ta[c][a]) so that
// the forward's and the backward's second term run contiguous over a (vectorisable, no reordered
// sums); the backward's first term is a short dot product over a per (m, c).
template <typename scalar_t>
void atom_forward(const scalar_t* __restrict__ t, int64_t M, int64_t axis, scalar_t* __restrict__ ta, scalar_t* __restrict__ d) {
  transpose_head(t, axis, ta);
  const scalar_t* __restrict__ ta0 = ta;
  const scalar_t* __restrict__ ta1 = ta + axis;
  const scalar_t* __restrict__ ta2 = ta + 2 * axis;
  const scalar_t* __restrict__ ta3 = ta + 3 * axis;
  for (int64_t m = 0; m < M; ++m) {
    const scalar_t x0 = t[4 * m], x1 = t[4 * m + 1], x2 = t[4 * m + 2], x3 = t[4 * m + 3];
    scalar_t* __restrict__ row = d + m * axis;
    for (int64_t a = 0; a < axis; ++a) row[a] = x0 * ta0[a] + x1 * ta1[a] + x2 * ta2[a] + x3 * ta3[a];
  }
}

template <typename scalar_t>
void atom_backward(const scalar_t* __restrict__ t, const scalar_t* __restrict__ g, int64_t M, int64_t axis,
                   scalar_t* __restrict__ ta, scalar_t* __restrict__ acc, scalar_t* __restrict__ out) {
  transpose_head(t, axis, ta);
  // Second term, for m < axis: acc[c][m] = sum_k g[k, m] t[k, c], contiguous over m.
  scalar_t* __restrict__ acc0 = acc;
  scalar_t* __restrict__ acc1 = acc + axis;
  scalar_t* __restrict__ acc2 = acc + 2 * axis;
  scalar_t* __restrict__ acc3 = acc + 3 * axis;
  for (int64_t m = 0; m < 4 * axis; ++m) acc[m] = scalar_t(0);
  for (int64_t k = 0; k < M; ++k) {
    const scalar_t y0 = t[4 * k], y1 = t[4 * k + 1], y2 = t[4 * k + 2], y3 = t[4 * k + 3];
    const scalar_t* __restrict__ row = g + k * axis;
    for (int64_t m = 0; m < axis; ++m) {
      acc0[m] += row[m] * y0;
      acc1[m] += row[m] * y1;
      acc2[m] += row[m] * y2;
      acc3[m] += row[m] * y3;
    }
  }
  // First term: out[m, c] = sum_a g[m, a] ta[c][a].
  for (int64_t m = 0; m < M; ++m) {
    const scalar_t* __restrict__ row = g + m * axis;
    scalar_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t a = 0; a < axis; ++a) {
      s0 += row[a] * ta[a];
      s1 += row[a] * ta[axis + a];
      s2 += row[a] * ta[2 * axis + a];
      s3 += row[a] * ta[3 * axis + a];
    }
    if (m < axis) {
      s0 += acc0[m];
      s1 += acc1[m];
      s2 += acc2[m];
      s3 += acc3[m];
    }
    out[4 * m] = s0;
    out[4 * m + 1] = s1;
    out[4 * m + 2] = s2;
    out[4 * m + 3] = s3;
  }
}

at::Tensor se_a_descriptor_cpu(const at::Tensor& t_in, int64_t axis) {
  descriptor::check_inputs(kOp, t_in, axis);
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
  descriptor::check_inputs(kBackwardOp, t_in, axis);
  descriptor::check_grad_output(kBackwardOp, t_in, grad_in, axis);
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

TORCH_LIBRARY_IMPL(openmmnnp, CPU, m) {
  m.impl("se_a_descriptor", &se_a_descriptor_cpu);
  m.impl("se_a_descriptor_backward", &se_a_descriptor_backward_cpu);
}

}  // namespace openmmnnp
