// CPU kernels of openmmnnp::env_tabulate (math in env_tabulate.h and common/polynomial_table.h, the
// functions the CUDA kernels call; schemas in registration.cpp, autograd in env_tabulate_autograd.cpp).
//
// Forward, parallel decomposition: the valid edges (e < num_pairs) are checked and grouped by centre
// (common/edge_groups.h, 4 bytes per edge; edges keep their input order within an atom), then
// at::parallel_for runs over fixed chunks of atoms. Each atom owns its row of T and of
// neighbor_counts, so there are no atomics and the sums are deterministic. Per edge the environment
// row is computed in registers and G (x) R^ is accumulated into a per-thread [4, M] buffer; G is never
// stored. The kernels read the table in a coefficient-major layout [num_tables, num_intervals, 6, M],
// so that the loop over m is contiguous (vectorisable); that copy is made once per table tensor and
// kept (table_cache.h). Table statistics are reduced per chunk, then over chunks in order
// (deterministic).
//
// Backward: every edge is independent; fixed chunks of edges run in parallel, each adding its
// edges' dE/dv to the two atoms (and dE/dbox) in a private [N, 3] buffer (chunk 0 writes the
// output), summed in chunk order at the end: deterministic for a given thread count, and nothing
// is stored per edge.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <array>
#include <limits>
#include <vector>

#include "common/edge_groups.h"
#include "env_tabulate/env_tabulate.h"
#include "env_tabulate/env_tabulate_checks.h"
#include "env_tabulate/table_cache.h"

namespace openmmnnp {
namespace env_tabulate {
namespace {

constexpr const char* kOp = "openmmnnp::env_tabulate";
constexpr const char* kBackwardOp = "openmmnnp::env_tabulate_backward";

// The contiguous inputs (table: the kept coefficient-major copy) and the number of valid edges; raises
// on types out of range.
Contiguous prepare(const at::Tensor& positions, const c10::optional<at::Tensor>& box, const at::Tensor& pairs,
                   const at::Tensor& shifts, const at::Tensor& num_pairs, const at::Tensor& types,
                   const at::Tensor& davg, const at::Tensor& dstd, const at::Tensor& table,
                   const at::Tensor& table_info, int64_t& count) {
  static TableCache cache;
  Contiguous c =
      contiguous_inputs(positions, box, pairs, shifts, types, davg, dstd, cache.coefficient_major(table), table_info);
  count = valid_count(num_pairs.reshape({}).item<int64_t>(), pairs.size(1));
  const int64_t N = positions.size(0), ntypes = davg.size(0);
  const int64_t* t = c.types.const_data_ptr<int64_t>();
  for (int64_t a = 0; a < N; ++a)
    TORCH_CHECK(t[a] >= 0 && t[a] < ntypes, kOp, ": types[", a, "] = ", t[a], " is out of range for ", ntypes,
                " types");
  return c;
}

// Raises on a valid edge whose atoms are out of range; returns its centre.
template <typename P>
int64_t checked_center(const char* op, const P& p, int64_t e, int64_t count) {
  const int64_t i = p.pairs[e], j = p.pairs[p.capacity + e];
  TORCH_CHECK(i >= 0 && i < p.num_atoms && j >= 0 && j < p.num_atoms, op, ": pair ", e, " (", i, ", ", j, ") of the ",
              count, " valid pairs (num_pairs) is out of range for ", p.num_atoms, " atoms");
  return i;
}

// Number of fixed chunks for `work` items: one per thread, none smaller than `grain`.
int64_t chunk_count(int64_t work, int64_t grain) {
  return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), work / grain));
}

template <typename scalar_t>
struct RangeStats {
  int64_t outside = 0, beyond = 0, edge = -1;
  scalar_t worst = -std::numeric_limits<scalar_t>::infinity();
  void add(int cls, scalar_t s_hat, int64_t e) {
    outside += cls == 1;
    beyond += cls == 2;
    if (s_hat == s_hat && (edge < 0 || s_hat > worst || (s_hat == worst && e < edge))) {  // s_hat == s_hat: not NaN
      worst = s_hat;
      edge = e;
    }
  }
  void merge(const RangeStats& o) {
    outside += o.outside;
    beyond += o.beyond;
    if (o.edge >= 0 && (edge < 0 || o.worst > worst || (o.worst == worst && o.edge < edge))) {
      worst = o.worst;
      edge = o.edge;
    }
  }
};

// table::accumulate_edge over all M outputs of a coefficient-major block, out of line with restrict
// pointers and unit strides: so GCC vectorises the loop over m (inlined into the edge loop, it could
// not prove the accumulators and the table apart and kept it scalar).
template <typename scalar_t>
__attribute__((noinline)) void accumulate_all(const scalar_t* __restrict__ block, int64_t M, scalar_t t,
                                              const scalar_t* __restrict__ rhat, scalar_t* __restrict__ a0,
                                              scalar_t* __restrict__ a1, scalar_t* __restrict__ a2,
                                              scalar_t* __restrict__ a3) {
  table::accumulate_edge(block, 1, M, t, rhat, 0, M, a0, a1, a2, a3, 1);
}

// table::edge_gradient over all M outputs, dE/dT of the centre transposed to [4, M]; out of line for
// the same reason.
template <typename scalar_t>
__attribute__((noinline)) void gradient_all(const scalar_t* __restrict__ block, int64_t M, scalar_t t,
                                            const scalar_t* __restrict__ rhat, const scalar_t* __restrict__ D,
                                            scalar_t* __restrict__ d_rhat, scalar_t& ds) {
  table::edge_gradient(block, 1, M, t, rhat, D, 1, M, 0, M, d_rhat, ds);
}

template <typename scalar_t, typename index_t, typename shift_t>
void forward_kernel(const Pointers<scalar_t, index_t, shift_t>& p, const table::Grid<scalar_t>& grid,
                    const scalar_t* coef, int64_t M, const std::vector<int64_t>& offsets,
                    const std::vector<uint32_t>& order, scalar_t* out, int64_t* counts, double* stats) {
  const int64_t N = p.num_atoms, chunks = chunk_count(N, 64);
  std::vector<RangeStats<scalar_t>> partial(chunks);
  at::parallel_for(0, chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    std::vector<scalar_t> acc(4 * M);
    scalar_t* a0 = acc.data();
    scalar_t* a1 = a0 + M;
    scalar_t* a2 = a1 + M;
    scalar_t* a3 = a2 + M;
    for (int64_t c = chunk_begin; c < chunk_end; ++c) {
      RangeStats<scalar_t>& st = partial[c];
      for (int64_t i = c * N / chunks; i < (c + 1) * N / chunks; ++i) {
        std::fill(acc.begin(), acc.end(), scalar_t(0));
        for (int64_t k = offsets[i]; k < offsets[i + 1]; ++k) {
          const int64_t e = order[k];
          Edge<scalar_t> edge;
          p.load(e, edge);
          ++counts[i * p.ntypes + p.types[edge.j]];
          st.add(range_class(grid, edge.rhat[0]), edge.rhat[0], e);
          scalar_t t;
          bool clamped;
          const scalar_t* block = p.table_block(grid, coef, M, edge, t, clamped);
          accumulate_all(block, M, t, edge.rhat, a0, a1, a2, a3);
        }
        scalar_t* row = out + i * M * 4;
        for (int64_t m = 0; m < M; ++m) {
          row[4 * m] = a0[m];
          row[4 * m + 1] = a1[m];
          row[4 * m + 2] = a2[m];
          row[4 * m + 3] = a3[m];
        }
      }
    }
  });
  RangeStats<scalar_t> total;
  for (const auto& part : partial) total.merge(part);
  stats[kStatOutside] = static_cast<double>(total.outside);
  stats[kStatBeyond] = static_cast<double>(total.beyond);
  stats[kStatWorst] = static_cast<double>(total.worst);
  stats[kStatCenter] = total.edge < 0 ? -1.0 : static_cast<double>(p.pairs[total.edge]);
  stats[kStatNeighbor] = total.edge < 0 ? -1.0 : static_cast<double>(p.pairs[p.capacity + total.edge]);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> env_tabulate_cpu(const at::Tensor& positions,
                                                                const c10::optional<at::Tensor>& box,
                                                                const at::Tensor& pairs, const at::Tensor& shifts,
                                                                const at::Tensor& num_pairs, const at::Tensor& types,
                                                                const at::Tensor& davg, const at::Tensor& dstd,
                                                                const at::Tensor& table, const at::Tensor& table_info,
                                                                double rcut_smth, double rcut, bool type_one_side) {
  check_inputs(kOp, positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info, rcut_smth, rcut,
               type_one_side);
  int64_t count = 0;
  const Contiguous c = prepare(positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info, count);
  const int64_t N = positions.size(0), M = table.size(2), ntypes = davg.size(0);
  TORCH_CHECK(count <= static_cast<int64_t>(std::numeric_limits<uint32_t>::max()), kOp,
              ": more than 2^32 pairs are not supported");
  at::Tensor out = at::empty({N, M, 4}, positions.options());
  at::Tensor counts = at::zeros({N, ntypes}, positions.options().dtype(at::kLong));
  at::Tensor stats = at::empty({kNumStats}, positions.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), kOp, [&] {
    dispatch_index_types(pairs, shifts, [&](auto index_tag, auto shift_tag) {
      const auto p = pointers<scalar_t, decltype(index_tag), decltype(shift_tag)>(c, rcut_smth, rcut, type_one_side);
      std::vector<int64_t> offsets;
      std::vector<uint32_t> order;
      group_edges_by_center(count, N, [&](int64_t e) { return checked_center(kOp, p, e, count); }, offsets, order);
      const table::Grid<scalar_t> grid = table::make_grid(c.info.const_data_ptr<scalar_t>(), table.size(1));
      forward_kernel(p, grid, c.table.const_data_ptr<scalar_t>(), M, offsets, order, out.mutable_data_ptr<scalar_t>(),
                     counts.mutable_data_ptr<int64_t>(), stats.mutable_data_ptr<double>());
    });
  });
  return {out, counts, stats};
}

template <typename scalar_t, typename index_t, typename shift_t>
void backward_kernel(const Pointers<scalar_t, index_t, shift_t>& p, const table::Grid<scalar_t>& grid,
                     const scalar_t* coef, int64_t M, int64_t count, const scalar_t* grad_t /* [N, 4, M] */,
                     scalar_t* grad_pos, scalar_t* grad_box) {
  const int64_t N = p.num_atoms, chunks = chunk_count(count, 4096);
  std::vector<std::vector<scalar_t>> buffers(chunks);  // chunk 0 writes grad_pos directly
  std::vector<std::array<scalar_t, 9>> box_partial(chunks);
  at::parallel_for(0, chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    for (int64_t c = chunk_begin; c < chunk_end; ++c) {
      if (c > 0) buffers[c].assign(3 * N, scalar_t(0));
      scalar_t* g = c == 0 ? grad_pos : buffers[c].data();
      std::array<scalar_t, 9>& gb = box_partial[c];
      gb.fill(scalar_t(0));
      for (int64_t e = c * count / chunks; e < (c + 1) * count / chunks; ++e) {
        Edge<scalar_t> edge;
        p.load(e, edge);
        scalar_t t;
        bool clamped;
        const scalar_t* block = p.table_block(grid, coef, M, edge, t, clamped);
        scalar_t d_rhat[4] = {0, 0, 0, 0}, ds = 0;
        gradient_all(block, M, t, edge.rhat, grad_t + edge.i * 4 * M, d_rhat, ds);
        scalar_t gv[3];
        p.backward(edge, d_rhat, ds, clamped, gv);
        for (int k = 0; k < 3; ++k) {
          g[3 * edge.j + k] += gv[k];
          g[3 * edge.i + k] -= gv[k];
        }
        if (p.box != nullptr) p.add_box_gradient(e, gv, gb.data());
      }
    }
  });
  for (int64_t c = 1; c < chunks; ++c)
    for (int64_t k = 0; k < 3 * N; ++k) grad_pos[k] += buffers[c][k];
  for (int64_t c = 0; c < chunks; ++c)
    for (int k = 0; k < 9; ++k) grad_box[k] += box_partial[c][k];
}

std::tuple<at::Tensor, at::Tensor> env_tabulate_backward_cpu(
    const at::Tensor& positions, const c10::optional<at::Tensor>& box, const at::Tensor& pairs,
    const at::Tensor& shifts, const at::Tensor& num_pairs, const at::Tensor& types, const at::Tensor& davg,
    const at::Tensor& dstd, const at::Tensor& table, const at::Tensor& table_info, double rcut_smth, double rcut,
    bool type_one_side, const at::Tensor& grad_output) {
  check_inputs(kBackwardOp, positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info, rcut_smth,
               rcut, type_one_side);
  check_grad_output(kBackwardOp, positions, table, grad_output);
  int64_t count = 0;
  const Contiguous c = prepare(positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info, count);
  const int64_t N = positions.size(0), M = table.size(2);
  const at::Tensor grad_t = grad_output.transpose(1, 2).contiguous();  // [N, 4, M]: contiguous over m
  at::Tensor grad_pos = at::zeros({N, 3}, positions.options());
  at::Tensor grad_box = at::zeros({3, 3}, positions.options());
  AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), kBackwardOp, [&] {
    dispatch_index_types(pairs, shifts, [&](auto index_tag, auto shift_tag) {
      const auto p = pointers<scalar_t, decltype(index_tag), decltype(shift_tag)>(c, rcut_smth, rcut, type_one_side);
      for (int64_t e = 0; e < count; ++e) checked_center(kBackwardOp, p, e, count);
      const table::Grid<scalar_t> grid = table::make_grid(c.info.const_data_ptr<scalar_t>(), table.size(1));
      backward_kernel(p, grid, c.table.const_data_ptr<scalar_t>(), M, count, grad_t.const_data_ptr<scalar_t>(),
                      grad_pos.mutable_data_ptr<scalar_t>(), grad_box.mutable_data_ptr<scalar_t>());
    });
  });
  return {grad_pos, grad_box};
}

}  // namespace
}  // namespace env_tabulate

TORCH_LIBRARY_IMPL(openmmnnp, CPU, m) {
  m.impl("env_tabulate", &env_tabulate::env_tabulate_cpu);
  m.impl("env_tabulate_backward", &env_tabulate::env_tabulate_backward_cpu);
}

}  // namespace openmmnnp
