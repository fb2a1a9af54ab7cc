// CPU kernels and autograd of openmmnnp::tabulate_fusion (schemas in registration.cpp).
//
// Forward: T[i, m, :] = sum over valid edges e with center(e) = i of G_{table(e), m}(s_e) * r_e[:],
// with G evaluated from the polynomial table (tabulate_fusion.h) in registers and accumulated at
// once, so G [E, M] is never stored. Edges with table_index < 0 (padding) are skipped entirely.
// Parallel decomposition: a counting sort groups the valid edges by center (O(E), edges keep
// their input order within an atom), then at::parallel_for runs over atoms; each atom owns its
// output rows, so there are no atomics and the sums are deterministic.
//
// Backward (d s_hat [E], d r_hat [E, 4] from dT [N, M, 4]): every edge is independent,
//   d r_e[k] = sum_m G_m(s_e) dT[i, m, k],   d s_e = sum_m G'_m(s_e) sum_k dT[i, m, k] r_e[k],
// so at::parallel_for runs over edges directly. Double backward is not supported.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <vector>

#include "tabulate/tabulate_fusion.h"
#include "tabulate/tabulate_fusion_checks.h"

namespace openmmnnp {

using tabulate::Grid;

// Valid edges grouped by center: edges of atom i are order[offsets[i] .. offsets[i+1]).
// Raises on a valid edge whose center or table_index is out of range.
static void group_edges_by_center(const int64_t* center, const int64_t* table_index, int64_t E, int64_t N, int64_t num_tables,
                                  std::vector<int64_t>& offsets, std::vector<int64_t>& order) {
  offsets.assign(N + 1, 0);
  for (int64_t e = 0; e < E; ++e) {
    if (table_index[e] < 0) continue;
    TORCH_CHECK(table_index[e] < num_tables, "openmmnnp::tabulate_fusion: table_index ", table_index[e], " of edge ", e,
                " is out of range for ", num_tables, " tables");
    TORCH_CHECK(center[e] >= 0 && center[e] < N, "openmmnnp::tabulate_fusion: center ", center[e], " of edge ", e,
                " is out of range for ", N, " atoms");
    ++offsets[center[e] + 1];
  }
  for (int64_t i = 0; i < N; ++i) offsets[i + 1] += offsets[i];
  order.resize(offsets[N]);
  std::vector<int64_t> cursor(offsets.begin(), offsets.end() - 1);
  for (int64_t e = 0; e < E; ++e)
    if (table_index[e] >= 0) order[cursor[center[e]]++] = e;
}

static at::Tensor tabulate_fusion_cpu(const at::Tensor& table, const at::Tensor& table_info, const at::Tensor& s_hat,
                                      const at::Tensor& r_hat, const at::Tensor& center, const at::Tensor& table_index,
                                      int64_t num_atoms) {
  tabulate::check_inputs("openmmnnp::tabulate_fusion", table, table_info, s_hat, r_hat, center, table_index);
  TORCH_CHECK(num_atoms >= 0, "openmmnnp::tabulate_fusion: num_atoms must be >= 0, got ", num_atoms);
  const at::Tensor tab = table.contiguous(), s = s_hat.contiguous(), r = r_hat.contiguous();
  const at::Tensor c = center.contiguous(), ti = table_index.contiguous();
  const int64_t E = s.numel(), N = num_atoms, n = tab.size(1), M = tab.size(2);
  at::Tensor out = at::zeros({N, M, 4}, s.options());
  std::vector<int64_t> offsets, order;
  group_edges_by_center(c.const_data_ptr<int64_t>(), ti.const_data_ptr<int64_t>(), E, N, tab.size(0), offsets, order);
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "openmmnnp::tabulate_fusion", [&] {
    const at::Tensor info = table_info.to(at::kCPU, s.scalar_type()).contiguous();
    const Grid<scalar_t> grid = tabulate::make_grid(info.const_data_ptr<scalar_t>(), n);
    const scalar_t* coef = tab.const_data_ptr<scalar_t>();
    const scalar_t* sp = s.const_data_ptr<scalar_t>();
    const scalar_t* rp = r.const_data_ptr<scalar_t>();
    const int64_t* tip = ti.const_data_ptr<int64_t>();
    scalar_t* outp = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        scalar_t* row = outp + i * M * 4;
        for (int64_t k = offsets[i]; k < offsets[i + 1]; ++k) {
          const int64_t e = order[k];
          int64_t idx;
          scalar_t t;
          bool clamped;
          tabulate::locate(grid, sp[e], idx, t, clamped);
          const scalar_t* block = coef + (tip[e] * n + idx) * M * 6;
          const scalar_t r0 = rp[4 * e], r1 = rp[4 * e + 1], r2 = rp[4 * e + 2], r3 = rp[4 * e + 3];
          for (int64_t m = 0; m < M; ++m) {
            scalar_t g, dg;
            tabulate::polynomial(block + 6 * m, t, g, dg);
            row[4 * m] += g * r0;
            row[4 * m + 1] += g * r1;
            row[4 * m + 2] += g * r2;
            row[4 * m + 3] += g * r3;
          }
        }
      }
    });
  });
  return out;
}

static std::tuple<at::Tensor, at::Tensor> tabulate_fusion_backward_cpu(const at::Tensor& table, const at::Tensor& table_info,
                                                                      const at::Tensor& s_hat, const at::Tensor& r_hat,
                                                                      const at::Tensor& center, const at::Tensor& table_index,
                                                                      const at::Tensor& grad_output) {
  const char* op = "openmmnnp::tabulate_fusion_backward";
  tabulate::check_inputs(op, table, table_info, s_hat, r_hat, center, table_index);
  const int64_t M = table.size(2);
  tabulate::check_grad_output(op, table, grad_output);
  const at::Tensor tab = table.contiguous(), s = s_hat.contiguous(), r = r_hat.contiguous();
  const at::Tensor c = center.contiguous(), ti = table_index.contiguous(), dT = grad_output.contiguous();
  const int64_t E = s.numel(), N = dT.size(0), n = tab.size(1), num_tables = tab.size(0);
  at::Tensor ds = at::zeros({E}, s.options());
  at::Tensor dr = at::zeros({E, 4}, s.options());
  const int64_t* cp = c.const_data_ptr<int64_t>();
  const int64_t* tip = ti.const_data_ptr<int64_t>();
  for (int64_t e = 0; e < E; ++e) {
    if (tip[e] < 0) continue;
    TORCH_CHECK(tip[e] < num_tables && cp[e] >= 0 && cp[e] < N, op, ": edge ", e, " has center ", cp[e], " and table_index ",
                tip[e], ", out of range for ", N, " atoms and ", num_tables, " tables");
  }
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "openmmnnp::tabulate_fusion_backward", [&] {
    const at::Tensor info = table_info.to(at::kCPU, s.scalar_type()).contiguous();
    const Grid<scalar_t> grid = tabulate::make_grid(info.const_data_ptr<scalar_t>(), n);
    const scalar_t* coef = tab.const_data_ptr<scalar_t>();
    const scalar_t* sp = s.const_data_ptr<scalar_t>();
    const scalar_t* rp = r.const_data_ptr<scalar_t>();
    const scalar_t* gp = dT.const_data_ptr<scalar_t>();
    scalar_t* dsp = ds.mutable_data_ptr<scalar_t>();
    scalar_t* drp = dr.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, E, 64, [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; ++e) {
        if (tip[e] < 0) continue;
        int64_t idx;
        scalar_t t;
        bool clamped;
        tabulate::locate(grid, sp[e], idx, t, clamped);
        const scalar_t* block = coef + (tip[e] * n + idx) * M * 6;
        const scalar_t* g_row = gp + cp[e] * M * 4;
        const scalar_t r0 = rp[4 * e], r1 = rp[4 * e + 1], r2 = rp[4 * e + 2], r3 = rp[4 * e + 3];
        scalar_t d_s = 0, d0 = 0, d1 = 0, d2 = 0, d3 = 0;
        for (int64_t m = 0; m < M; ++m) {
          scalar_t g, dg;
          tabulate::polynomial(block + 6 * m, t, g, dg);
          const scalar_t* gm = g_row + 4 * m;
          d_s += dg * (gm[0] * r0 + gm[1] * r1 + gm[2] * r2 + gm[3] * r3);
          d0 += g * gm[0];
          d1 += g * gm[1];
          d2 += g * gm[2];
          d3 += g * gm[3];
        }
        dsp[e] = clamped ? scalar_t(0) : d_s;
        drp[4 * e] = d0;
        drp[4 * e + 1] = d1;
        drp[4 * e + 2] = d2;
        drp[4 * e + 3] = d3;
      }
    });
  });
  return {ds, dr};
}

// Autograd: gradients flow to s_hat and r_hat only (the table is a constant of the compressed model).
class TabulateFusionFunction : public torch::autograd::Function<TabulateFusionFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& table, const at::Tensor& table_info,
                            const at::Tensor& s_hat, const at::Tensor& r_hat, const at::Tensor& center,
                            const at::Tensor& table_index, int64_t num_atoms) {
    TORCH_CHECK(!table.requires_grad() && !table_info.requires_grad(),
                "openmmnnp::tabulate_fusion: gradients with respect to the table are not supported; pass it detached");
    ctx->save_for_backward({table, table_info, s_hat, r_hat, center, table_index});
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmmnnp::tabulate_fusion", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const at::Tensor&, const at::Tensor&, int64_t)>();
    return op.call(table, table_info, s_hat, r_hat, center, table_index, num_atoms);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    // create_graph=True runs backward with grad mode on; the backward op has no derivative of its own.
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "openmmnnp::tabulate_fusion: double backward (create_graph=True) is not supported; the op provides "
                "first derivatives (forces) only");
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmmnnp::tabulate_fusion_backward", "")
                         .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                                   const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                                   const at::Tensor&)>();
    auto [ds, dr] = op.call(saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], grads[0]);
    return {at::Tensor(), at::Tensor(), ds, dr, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

static at::Tensor tabulate_fusion_autograd(const at::Tensor& table, const at::Tensor& table_info, const at::Tensor& s_hat,
                                           const at::Tensor& r_hat, const at::Tensor& center, const at::Tensor& table_index,
                                           int64_t num_atoms) {
  return TabulateFusionFunction::apply(table, table_info, s_hat, r_hat, center, table_index, num_atoms);
}

TORCH_LIBRARY_IMPL(openmmnnp, CPU, m) {
  m.impl("tabulate_fusion", &tabulate_fusion_cpu);
  m.impl("tabulate_fusion_backward", &tabulate_fusion_backward_cpu);
}
TORCH_LIBRARY_IMPL(openmmnnp, Autograd, m) { m.impl("tabulate_fusion", &tabulate_fusion_autograd); }

}  // namespace openmmnnp
