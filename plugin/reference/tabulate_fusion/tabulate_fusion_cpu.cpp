// CPU kernels of openmmnnp::tabulate_fusion (reference op; math in tabulate_fusion.h and
// common/polynomial_table.h, schemas in registration.cpp, autograd in tabulate_fusion_autograd.cpp).
//
// Forward, parallel decomposition: the valid edges are grouped by centre (common/edge_groups.h), then
// at::parallel_for runs over atoms; each atom owns its output rows, so there are no atomics and the
// sums are deterministic. G [E, M] is never stored.
// Backward: every edge is independent, so at::parallel_for runs over edges directly.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "common/edge_groups.h"
#include "reference/tabulate_fusion/tabulate_fusion.h"
#include "reference/tabulate_fusion/tabulate_fusion_checks.h"

namespace openmmnnp {
namespace tabulate_fusion {
namespace {

constexpr const char* kOp = "openmmnnp::tabulate_fusion";
constexpr const char* kBackwardOp = "openmmnnp::tabulate_fusion_backward";

// Raises on a non-padding edge whose centre or table is out of range (a kernel on the CPU can).
template <typename T>
void check_edge(const char* op, const Pointers<T>& p, int64_t e) {
  TORCH_CHECK(p.table_index[e] < 0 || p.valid(e), op, ": edge ", e, " has center ", p.center[e], " and table_index ",
              p.table_index[e], ", out of range for ", p.num_atoms, " atoms and ", p.num_tables, " tables");
}

at::Tensor tabulate_fusion_cpu(const at::Tensor& table, const at::Tensor& table_info, const at::Tensor& s_hat,
                               const at::Tensor& r_hat, const at::Tensor& center, const at::Tensor& table_index,
                               int64_t num_atoms) {
  check_inputs(kOp, table, table_info, s_hat, r_hat, center, table_index);
  check_num_atoms(kOp, num_atoms);
  const Contiguous c = contiguous_inputs(table, table_info, s_hat, r_hat, center, table_index);
  const int64_t M = table.size(2);
  at::Tensor out = at::zeros({num_atoms, M, 4}, s_hat.options());
  AT_DISPATCH_FLOATING_TYPES(s_hat.scalar_type(), kOp, [&] {
    const Pointers<scalar_t> p = pointers<scalar_t>(c, num_atoms);
    const table::Grid<scalar_t> grid = table::make_grid(p.info, p.n);
    std::vector<int64_t> offsets, order;
    group_edges_by_center(
        p.num_edges, p.num_atoms,
        [&](int64_t e) -> int64_t {
          check_edge(kOp, p, e);
          return p.table_index[e] < 0 ? -1 : p.center[e];
        },
        offsets, order);
    scalar_t* outp = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, num_atoms, 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        scalar_t* row = outp + i * M * 4;  // [M, 4]: output m, component c at row[4 m + c]
        for (int64_t k = offsets[i]; k < offsets[i + 1]; ++k) {
          const int64_t e = order[k];
          scalar_t t;
          bool clamped;
          const scalar_t* block = p.block(grid, e, t, clamped);
          table::accumulate_edge(block, 6, 1, t, p.r_hat + 4 * e, 0, M, row, row + 1, row + 2, row + 3, 4);
        }
      }
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> tabulate_fusion_backward_cpu(const at::Tensor& table, const at::Tensor& table_info,
                                                                const at::Tensor& s_hat, const at::Tensor& r_hat,
                                                                const at::Tensor& center, const at::Tensor& table_index,
                                                                const at::Tensor& grad_output) {
  check_inputs(kBackwardOp, table, table_info, s_hat, r_hat, center, table_index);
  check_grad_output(kBackwardOp, table, grad_output);
  const Contiguous c = contiguous_inputs(table, table_info, s_hat, r_hat, center, table_index);
  const at::Tensor dT = grad_output.contiguous();
  const int64_t E = s_hat.numel(), M = table.size(2);
  at::Tensor ds = at::zeros({E}, s_hat.options());
  at::Tensor dr = at::zeros({E, 4}, s_hat.options());
  AT_DISPATCH_FLOATING_TYPES(s_hat.scalar_type(), kBackwardOp, [&] {
    const Pointers<scalar_t> p = pointers<scalar_t>(c, dT.size(0));
    for (int64_t e = 0; e < E; ++e) check_edge(kBackwardOp, p, e);
    const table::Grid<scalar_t> grid = table::make_grid(p.info, p.n);
    const scalar_t* gp = dT.const_data_ptr<scalar_t>();
    scalar_t* dsp = ds.mutable_data_ptr<scalar_t>();
    scalar_t* drp = dr.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, E, 64, [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; ++e) {
        if (!p.valid(e)) continue;
        scalar_t t, d_s = 0;
        bool clamped;
        const scalar_t* block = p.block(grid, e, t, clamped);
        // dT of the centre: output m, component c at [4 m + c].
        table::edge_gradient(block, 6, 1, t, p.r_hat + 4 * e, gp + p.center[e] * M * 4, 4, 1, 0, M, drp + 4 * e, d_s);
        dsp[e] = clamped ? scalar_t(0) : d_s;
      }
    });
  });
  return {ds, dr};
}

}  // namespace
}  // namespace tabulate_fusion

TORCH_LIBRARY_IMPL(openmmnnp, CPU, m) {
  m.impl("tabulate_fusion", &tabulate_fusion::tabulate_fusion_cpu);
  m.impl("tabulate_fusion_backward", &tabulate_fusion::tabulate_fusion_backward_cpu);
}

}  // namespace openmmnnp
