// openmmnnp::se_a_descriptor: se_e2_a's descriptor D = T T[:axis]^T of each atom, and its
// gradient. The math shared by the CPU and CUDA kernels (host and device inline functions).
//
// Schema (plugin/registration.cpp):
//   se_a_descriptor(t, axis_neuron) -> d                                 t [N, M, 4], d [N, M * axis]
//   se_a_descriptor_backward(t, grad_output, axis_neuron) -> grad_t      grad_output [N, M * axis]
//   D[n, m, a]       = sum_c t[n, m, c] t[n, a, c],                            a < axis
//   dE/dt[n, m, c]   = sum_a G[n, m, a] t[n, a, c] + [m < axis] sum_k G[n, k, m] t[n, k, c]
// Why an op: torch's bmm on N tiny [M, 4] x [4, axis] products runs at a few GFLOPS on the CPU,
// and its slice of T[:, :axis] costs a zero fill of T in the backward. The fused kernels read
// each atom's T once and store nothing but D (and dE/dT).
#pragma once

#include <cstdint>

#include "tabulate/tabulate_fusion.h"  // OPENMMNNP_HD

namespace openmmnnp {
namespace descriptor {

// D[m, a] of one atom; t is its [M, 4] row block.
template <typename T>
OPENMMNNP_HD T entry(const T* t, int64_t m, int64_t a) {
  const T* x = t + 4 * m;
  const T* y = t + 4 * a;
  return x[0] * y[0] + x[1] * y[1] + x[2] * y[2] + x[3] * y[3];
}

// dE/dt[m, c] of one atom from its t [M, 4] and G = dE/dD [M, axis].
template <typename T>
OPENMMNNP_HD T grad_entry(const T* t, const T* g, int64_t M, int64_t axis, int64_t m, int c) {
  T sum = T(0);
  const T* g_row = g + m * axis;
  for (int64_t a = 0; a < axis; ++a) sum += g_row[a] * t[4 * a + c];
  if (m < axis)
    for (int64_t k = 0; k < M; ++k) sum += g[k * axis + m] * t[4 * k + c];
  return sum;
}

}  // namespace descriptor
}  // namespace openmmnnp
