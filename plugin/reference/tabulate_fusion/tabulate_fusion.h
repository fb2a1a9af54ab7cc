// openmmnnp::tabulate_fusion, a reference op (not used by models): the compressed embedding from
// precomputed normalised environment rows. The production op env_tabulate is tested against the
// unfused path built on it. The table rule and the per-edge math are the production ones
// (common/polynomial_table.h); this header holds what the op's CPU and CUDA kernels share beyond them.
//
// Schema (plugin/registration.cpp):
//   tabulate_fusion(table, table_info, s_hat [E], r_hat [E, 4], center [E], table_index [E], num_atoms) -> T [N, M, 4]
//   T[i, m, :] = sum over edges e with center[e] = i and table_index[e] >= 0 of G_{table_index[e], m}(s_hat[e])
//   r_hat[e, :] tabulate_fusion_backward(..., grad_output [N, M, 4]) -> (d s_hat [E], d r_hat [E, 4]) d r_hat[e, c] =
//   sum_m G_m(s_e) dT[i, m, c],   d s_hat[e] = sum_m G'_m(s_e) sum_c dT[i, m, c] r_hat[e, c]
// Edges with table_index < 0 (padding) are skipped entirely; their gradients are 0.
#pragma once

#include <cstdint>

#include "common/host_device.h"
#include "common/polynomial_table.h"

namespace openmmnnp {
namespace tabulate_fusion {

// Raw pointers of one call's contiguous inputs (passed by value to the CUDA kernels).
template <typename T>
struct Pointers {
  const T* table;              // [num_tables, n, M, 6]
  const T* info;               // [5] table_info, in the dtype of the table
  const T* s_hat;              // [E]
  const T* r_hat;              // [E, 4]
  const int64_t* center;       // [E]
  const int64_t* table_index;  // [E]
  int64_t num_edges, num_atoms, num_tables, n, M;

  // Edge e counts: not padding, its table and centre in range (the CPU raises on a non-padding edge
  // out of range; the CUDA kernels skip it, they cannot raise).
  OPENMMNNP_HD bool valid(int64_t e) const {
    return table_index[e] >= 0 && table_index[e] < num_tables && center[e] >= 0 && center[e] < num_atoms;
  }

  // The coefficient block of valid edge e, the offset t of its input; clamped beyond upper2.
  OPENMMNNP_HD const T* block(const table::Grid<T>& grid, int64_t e, T& t, bool& clamped) const {
    return table::lookup(grid, table, table_index[e], M, s_hat[e], t, clamped);
  }
};

}  // namespace tabulate_fusion
}  // namespace openmmnnp
