// openmmnnp::se_a_descriptor: se_e2_a's descriptor D = T T[:axis]^T of each atom, and its gradient.
// The math shared by the CPU and CUDA kernels (host and device inline functions).
//
// Schema (plugin/registration.cpp):
//   se_a_descriptor(t, axis_neuron) -> d                                 t [N, M, 4], d [N, M * axis]
//   se_a_descriptor_backward(t, grad_output, axis_neuron) -> grad_t      grad_output [N, M * axis]
//   D[n, m, a]       = sum_c t[n, m, c] t[n, a, c],                            a < axis
//   dE/dt[n, m, c]   = sum_a G[n, m, a] t[n, a, c] + [m < axis] sum_k G[n, k, m] t[n, k, c]
// Why an op: torch's bmm on N tiny [M, 4] x [4, axis] products runs at a few GFLOPS on the CPU,
// and its slice of T[:, :axis] costs a zero fill of T in the backward. The fused kernels read
// each atom's T once and store nothing but D (and dE/dT).
//
// The functions below cover a range of one index, with the atom's "head" t[:axis] read through two
// strides: element (a, c) at head[a as + c cs]. In t itself as = 4, cs = 1 (a CUDA thread passes
// one row and these); the CPU passes all rows and a transposed copy of the head (as = 1, cs = axis),
// so that its loops over a are contiguous and vectorise.
#pragma once

#include <cstdint>

#include "common/host_device.h"

namespace openmmnnp {
namespace descriptor {

// D[m, a] for a in [a0, a1) into row[a - a0]; x = t[m, :] (4 values).
template <typename T>
OPENMMNNP_HD void forward_row(const T* __restrict__ x, const T* __restrict__ head, int64_t as, int64_t cs, int64_t a0,
                              int64_t a1, T* __restrict__ row) {
  const T x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
  for (int64_t a = a0; a < a1; ++a) {
    const T* h = head + a * as;
    row[a - a0] = x0 * h[0] + x1 * h[cs] + x2 * h[2 * cs] + x3 * h[3 * cs];
  }
}

// First term of dE/dt[m, :]: out[c] = sum_a G[m, a] t[a, c] over all a < axis; g_row = G[m, :].
template <typename T>
OPENMMNNP_HD void head_gradient(const T* __restrict__ g_row, const T* __restrict__ head, int64_t as, int64_t cs,
                                int64_t axis, T out[4]) {
  T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int64_t a = 0; a < axis; ++a) {
    const T* h = head + a * as;
    s0 += g_row[a] * h[0];
    s1 += g_row[a] * h[cs];
    s2 += g_row[a] * h[2 * cs];
    s3 += g_row[a] * h[3 * cs];
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

// Row k's share of the second term, for m in [m0, m1) (m < axis): acc_c[m - m0] += G[k, m] t[k, c];
// g_row = G[k, :], y = t[k, :]. Summed over all rows k it is sum_k G[k, m] t[k, c].
template <typename T>
OPENMMNNP_HD void tail_gradient(const T* __restrict__ g_row, const T* __restrict__ y, int64_t m0, int64_t m1,
                                T* __restrict__ acc0, T* __restrict__ acc1, T* __restrict__ acc2,
                                T* __restrict__ acc3) {
  const T y0 = y[0], y1 = y[1], y2 = y[2], y3 = y[3];
  for (int64_t m = m0; m < m1; ++m) {
    acc0[m - m0] += g_row[m] * y0;
    acc1[m - m0] += g_row[m] * y1;
    acc2[m - m0] += g_row[m] * y2;
    acc3[m - m0] += g_row[m] * y3;
  }
}

}  // namespace descriptor
}  // namespace openmmnnp
