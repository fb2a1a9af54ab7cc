// openmmnnp::env_tabulate: pair list -> T of the compressed se_e2_a in one pass. The math shared
// by the CPU and CUDA kernels (host and device inline functions), written once.
//
// Schema (plugin/registration.cpp):
//   env_tabulate(positions, box?, pairs, shifts, num_pairs, types, davg, dstd, table, table_info,
//                rcut_smth, rcut, type_one_side) -> (T, neighbor_counts, stats)
// For each valid edge e = (i = pairs[0, e], j = pairs[1, e], shift), e < min(num_pairs[0], capacity):
//   v     = x_j - x_i + shift @ box                        (no box: shift ignored)
//   R     = (s, s v / r)(v),  s(r) = sw(u) / r  (models/env_matrix.py: 1/r below rcut_smth,
//           C2-switched to 0 at rcut, 0 beyond),  r = |v|
//   R^    = (R - davg[t_i]) / dstd[t_i],  s^ = R^[0]          (SeE2A.normalized_environment)
//   T[i] += G_k(s^) (x) R^,  k = t_j (type_one_side) or t_i * ntypes + t_j
// with G_k the polynomial table k (layout and look-up rule: common/polynomial_table.h). T is the raw
// sum: the caller divides by sum(sel). Slots past the count are never read, whatever they hold.
// Outputs besides T [N, M, 4]:
//   neighbor_counts [N, ntypes] int64: valid edges of centre i with a neighbour of each type
//                   (what SeE2A's sel check needs, without per-edge temporaries);
//   stats [5] float64 (kStat* below): table-range statistics of s^ over the valid edges.
// Backward: dE/dpositions (and dE/dbox) from dE/dT, recomputing each edge (nothing is saved per
// edge); see the kernels for the parallel decomposition.
#pragma once

#include <cstdint>

#include "common/host_device.h"
#include "common/polynomial_table.h"

namespace openmmnnp {
namespace env_tabulate {

// stats layout. s^ grows as r shrinks (s^ = (s - davg) / dstd, s >= 0 decreasing in r), so the
// reachable overflow is upward. lower is s^ of a neighbour exactly at rcut (s = 0); s^ below it
// comes only from rounding of the switch near rcut (s ~ -1e-7 in float32 at r = rcut - 0.01 A),
// where the first interval applies, so it counts as inside, not as an extrapolation.
constexpr int kStatOutside = 0;   // valid edges with s^ in [upper, upper2) (extrapolated)
constexpr int kStatBeyond = 1;    // valid edges with s^ >= upper2 or NaN (value clamped: wrong physics)
constexpr int kStatWorst = 2;     // largest non-NaN s^ (-inf when there is none)
constexpr int kStatCenter = 3;    // centre atom of that edge (-1 when none)
constexpr int kStatNeighbor = 4;  // neighbour atom of that edge (-1 when none)
constexpr int kNumStats = 5;

// Edges read: the first num_pairs slots, capped at the capacity (a negative num_pairs, a device error
// code of the neighbour list, reads none).
OPENMMNNP_HD int64_t valid_count(int64_t num_pairs, int64_t capacity) {
  return num_pairs < 0 ? 0 : (num_pairs > capacity ? capacity : num_pairs);
}

// 0: s^ in the accurate first table (or below it: rounding at rcut); 1: extrapolated
// (kStatOutside); 2: beyond (kStatBeyond).
template <typename T>
OPENMMNNP_HD int range_class(const table::Grid<T>& g, T x) {
  if (x < g.upper) return 0;
  if (x < g.upper2) return 1;
  return 2;  // NaN fails every comparison: class 2
}

// One edge's environment: what the forward produces and the backward needs.
template <typename T>
struct Edge {
  int64_t i, j;   // centre, neighbour
  T v[3];         // pair vector
  T r, s, ds;     // |v|, s(r), ds/dr
  T rhat[4];      // normalised environment row, rhat[0] = s^
  int64_t table;  // table (embedding net) of the edge
};

// s(r) and ds/dr, exactly as models/env_matrix.py's smooth_weight (u clamped to [0, 1]).
template <typename T>
OPENMMNNP_HD void smooth_weight(T r, T rcut_smth, T rcut, T& s, T& ds) {
  if (!(r < rcut)) {  // also NaN, like torch.where(r < rcut, ..., 0)
    s = T(0);
    ds = T(0);
    return;
  }
  T u = (r - rcut_smth) / (rcut - rcut_smth);
  const bool inside = u > T(0) && u < T(1);
  u = u < T(0) ? T(0) : (u > T(1) ? T(1) : u);
  const T sw = u * u * u * (T(-6) * u * u + T(15) * u - T(10)) + T(1);
  const T dsw = inside ? T(-30) * u * u * (u - T(1)) * (u - T(1)) / (rcut - rcut_smth) : T(0);
  s = sw / r;
  ds = (dsw - s) / r;  // d(sw / r)/dr = sw'/r - sw/r^2
}

// Raw pointers of one call's contiguous inputs (passed by value to the CUDA kernels), and the
// per-edge math both devices run.
template <typename T, typename index_t, typename shift_t>
struct Pointers {
  const T* pos;           // [N, 3]
  const T* box;           // [3, 3] rows, or nullptr: not periodic
  const index_t* pairs;   // [2, capacity]
  const shift_t* shifts;  // [capacity, 3]
  const int64_t* types;   // [N]
  const T* davg;          // [ntypes, 4]
  const T* dstd;          // [ntypes, 4]
  int64_t capacity, ntypes, num_atoms;
  bool type_one_side;
  T rcut_smth, rcut;

  // Edge e names atoms and types in range (the CPU raises otherwise; the CUDA kernels skip it).
  OPENMMNNP_HD bool in_range(int64_t e) const {
    const int64_t i = static_cast<int64_t>(pairs[e]), j = static_cast<int64_t>(pairs[capacity + e]);
    return i >= 0 && i < num_atoms && j >= 0 && j < num_atoms && types[i] >= 0 && types[i] < ntypes && types[j] >= 0 &&
           types[j] < ntypes;
  }

  // Fills `edge` for valid edge e (centre/neighbour assumed in range: checked by the caller).
  OPENMMNNP_HD void load(int64_t e, Edge<T>& edge) const {
    const int64_t i = static_cast<int64_t>(pairs[e]), j = static_cast<int64_t>(pairs[capacity + e]);
    edge.i = i;
    edge.j = j;
    for (int c = 0; c < 3; ++c) edge.v[c] = pos[3 * j + c] - pos[3 * i + c];
    if (box != nullptr) {
      const T s0 = T(shifts[3 * e]), s1 = T(shifts[3 * e + 1]), s2 = T(shifts[3 * e + 2]);
      for (int c = 0; c < 3; ++c) edge.v[c] += s0 * box[c] + s1 * box[3 + c] + s2 * box[6 + c];
    }
    edge.r = sqrt_of(edge.v[0] * edge.v[0] + edge.v[1] * edge.v[1] + edge.v[2] * edge.v[2]);
    smooth_weight(edge.r, rcut_smth, rcut, edge.s, edge.ds);
    const int64_t ti = types[i], tj = types[j];
    const T* avg = davg + 4 * ti;
    const T* std_ = dstd + 4 * ti;
    const T q = edge.s / edge.r;
    edge.rhat[0] = (edge.s - avg[0]) / std_[0];
    for (int c = 0; c < 3; ++c) edge.rhat[c + 1] = (q * edge.v[c] - avg[c + 1]) / std_[c + 1];
    edge.table = type_one_side ? tj : ti * ntypes + tj;
  }

  // dE/dv of one edge from dE/dR^ through the outer product (d_rhat) and dE/ds^ through G (d_table,
  // dropped when s^ was clamped: G is constant there): s^ = R^[0] feeds both.
  OPENMMNNP_HD void backward(const Edge<T>& edge, const T d_rhat[4], T d_table, bool clamped, T grad_v[3]) const {
    const T* std_ = dstd + 4 * types[edge.i];
    const T d_s = (d_rhat[0] + (clamped ? T(0) : d_table)) / std_[0];
    const T d0 = d_rhat[1] / std_[1], d1 = d_rhat[2] / std_[2], d2 = d_rhat[3] / std_[3];
    // R[1:] = q v with q = s / r:  dE/dv = q dR + (dR . v) q'(r) v / r,  q' = (s' - q) / r.
    const T q = edge.s / edge.r;
    const T dq = (edge.ds - q) / edge.r;
    const T radial = (d_s * edge.ds + (d0 * edge.v[0] + d1 * edge.v[1] + d2 * edge.v[2]) * dq) / edge.r;
    grad_v[0] = q * d0 + radial * edge.v[0];
    grad_v[1] = q * d1 + radial * edge.v[1];
    grad_v[2] = q * d2 + radial * edge.v[2];
  }

  // The coefficient block of the edge's table at s^ = rhat[0] (either table layout, common/polynomial_table.h),
  // the offset t of s^ in its interval; clamped beyond upper2.
  OPENMMNNP_HD const T* table_block(const table::Grid<T>& grid, const T* table, int64_t M, const Edge<T>& edge, T& t,
                                    bool& clamped) const {
    return table::lookup(grid, table, edge.table, M, edge.rhat[0], t, clamped);
  }

  // dE/dbox[a, b] += shift[a] dE/dv[b] of edge e (v = x_j - x_i + shift @ box).
  OPENMMNNP_HD void add_box_gradient(int64_t e, const T grad_v[3], T grad_box[9]) const {
    for (int a = 0; a < 3; ++a) {
      const T shift = static_cast<T>(shifts[3 * e + a]);
      for (int b = 0; b < 3; ++b) grad_box[3 * a + b] += shift * grad_v[b];
    }
  }
};

}  // namespace env_tabulate
}  // namespace openmmnnp
