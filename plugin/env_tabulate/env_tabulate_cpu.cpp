// CPU kernels and autograd of openmmnnp::env_tabulate (math in env_tabulate.h, schemas in
// registration.cpp).
//
// Forward, parallel decomposition: the valid edges (e < num_pairs) are checked and grouped by
// centre with a counting sort (O(E) time, 4 bytes per edge; edges keep their input order within
// an atom), then at::parallel_for runs over fixed chunks of atoms. Each atom owns its row of T and
// of neighbor_counts, so there are no atomics and the sums are deterministic. Per edge the
// environment row is computed in registers and G (x) R^ is accumulated into a per-thread [4, M]
// buffer; G is never stored. The kernels read the table in a coefficient-major layout
// [num_tables, num_intervals, 6, M], so that the loop over m is contiguous (vectorisable); that
// copy is made once per table tensor and kept (table_cache.h).
// Table statistics are reduced per chunk, then over chunks in order (deterministic).
//
// Backward: every edge is independent; fixed chunks of edges run in parallel, each adding its
// edges' dE/dv to the two atoms (and dE/dbox) in a private [N, 3] buffer (chunk 0 writes the
// output), summed in chunk order at the end: deterministic for a given thread count, and nothing
// is stored per edge.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <array>
#include <limits>
#include <vector>

#include "env_tabulate/env_tabulate.h"
#include "env_tabulate/env_tabulate_checks.h"
#include "env_tabulate/table_cache.h"

namespace openmmnnp {
namespace {

using env_tabulate::Edge;
using env_tabulate::Inputs;
using tabulate::Grid;

constexpr const char* kOp = "openmmnnp::env_tabulate";
constexpr const char* kBackwardOp = "openmmnnp::env_tabulate_backward";

// Contiguous inputs of one call and the number of valid edges.
struct Prepared {
  at::Tensor pos, box, pairs, shifts, types, davg, dstd, table_t, info;
  int64_t count;
};

Prepared prepare(const at::Tensor& positions, const c10::optional<at::Tensor>& box, const at::Tensor& pairs, const at::Tensor& shifts,
                 const at::Tensor& num_pairs, const at::Tensor& types, const at::Tensor& davg, const at::Tensor& dstd,
                 const at::Tensor& table, const at::Tensor& table_info) {
  Prepared p;
  p.pos = positions.contiguous();
  p.box = env_tabulate::has_box(box) ? box->contiguous() : at::Tensor();
  p.pairs = pairs.contiguous();
  p.shifts = shifts.contiguous();
  p.types = types.contiguous();
  p.davg = davg.contiguous();
  p.dstd = dstd.contiguous();
  static env_tabulate::TableCache cache;
  p.table_t = cache.coefficient_major(table);  // [num_tables, num_intervals, 6, M]
  p.info = table_info.to(at::kCPU, positions.scalar_type()).contiguous();
  p.count = std::min<int64_t>(std::max<int64_t>(num_pairs.reshape({}).item<int64_t>(), 0), pairs.size(1));
  const int64_t N = positions.size(0), ntypes = davg.size(0);
  const int64_t* t = p.types.const_data_ptr<int64_t>();
  for (int64_t a = 0; a < N; ++a)
    TORCH_CHECK(t[a] >= 0 && t[a] < ntypes, kOp, ": types[", a, "] = ", t[a], " is out of range for ", ntypes, " types");
  return p;
}

// Raises on a valid edge whose atoms are out of range; counts the edges of each centre.
template <typename index_t>
void check_edges(const char* op, const index_t* pairs, int64_t capacity, int64_t count, int64_t N, std::vector<int64_t>* offsets) {
  for (int64_t e = 0; e < count; ++e) {
    const int64_t i = pairs[e], j = pairs[capacity + e];
    TORCH_CHECK(i >= 0 && i < N && j >= 0 && j < N, op, ": pair ", e, " (", i, ", ", j, ") of the ", count,
                " valid pairs (num_pairs) is out of range for ", N, " atoms");
    if (offsets) ++(*offsets)[i + 1];
  }
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

// acc_c[m] += G_m(t) rhat[c] for one edge: G from its table block (coefficient-major [6, M]).
// A function of its own with restrict pointers so that the loop over m vectorises (inlined in
// the edge loop, GCC could not prove the accumulators and the table apart).
template <typename scalar_t>
__attribute__((noinline)) void accumulate_edge(const scalar_t* __restrict__ block, int64_t M, scalar_t t, const scalar_t rhat[4],
                            scalar_t* __restrict__ a0, scalar_t* __restrict__ a1, scalar_t* __restrict__ a2,
                            scalar_t* __restrict__ a3) {
  const scalar_t r0 = rhat[0], r1 = rhat[1], r2 = rhat[2], r3 = rhat[3];
  for (int64_t m = 0; m < M; ++m) {
    scalar_t g, dg;
    tabulate::polynomial(block + m, M, t, g, dg);
    a0[m] += g * r0;
    a1[m] += g * r1;
    a2[m] += g * r2;
    a3[m] += g * r3;
  }
}

template <typename scalar_t, typename index_t, typename shift_t>
void forward_kernel(const Inputs<scalar_t, index_t, shift_t>& in, const Grid<scalar_t>& grid, const scalar_t* coef, int64_t M,
                    int64_t N, const std::vector<int64_t>& offsets, const std::vector<uint32_t>& order, scalar_t* out,
                    int64_t* counts, double* stats) {
  const int64_t chunks = chunk_count(N, 64);
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
          in.load(e, edge);
          ++counts[i * in.ntypes + in.types[edge.j]];
          const scalar_t s_hat = edge.rhat[0];
          st.add(env_tabulate::range_class(grid, s_hat), s_hat, e);
          int64_t idx;
          scalar_t t;
          bool clamped;
          tabulate::locate(grid, s_hat, idx, t, clamped);
          const scalar_t* block = coef + (edge.table * grid.n + idx) * 6 * M;
          accumulate_edge(block, M, t, edge.rhat, a0, a1, a2, a3);
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
  for (const auto& p : partial) total.merge(p);
  stats[env_tabulate::kStatOutside] = static_cast<double>(total.outside);
  stats[env_tabulate::kStatBeyond] = static_cast<double>(total.beyond);
  stats[env_tabulate::kStatWorst] = static_cast<double>(total.worst);
  stats[env_tabulate::kStatCenter] = total.edge < 0 ? -1.0 : static_cast<double>(in.pairs[total.edge]);
  stats[env_tabulate::kStatNeighbor] = total.edge < 0 ? -1.0 : static_cast<double>(in.pairs[in.capacity + total.edge]);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> env_tabulate_cpu(const at::Tensor& positions, const c10::optional<at::Tensor>& box,
                                                                const at::Tensor& pairs, const at::Tensor& shifts,
                                                                const at::Tensor& num_pairs, const at::Tensor& types,
                                                                const at::Tensor& davg, const at::Tensor& dstd, const at::Tensor& table,
                                                                const at::Tensor& table_info, double rcut_smth, double rcut,
                                                                bool type_one_side) {
  env_tabulate::check_inputs(kOp, positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info, rcut_smth, rcut,
                             type_one_side);
  const Prepared p = prepare(positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info);
  const int64_t N = positions.size(0), M = table.size(2), ntypes = davg.size(0);
  TORCH_CHECK(p.count <= static_cast<int64_t>(std::numeric_limits<uint32_t>::max()), kOp, ": more than 2^32 pairs are not supported");
  at::Tensor out = at::empty({N, M, 4}, positions.options());
  at::Tensor counts = at::zeros({N, ntypes}, positions.options().dtype(at::kLong));
  at::Tensor stats = at::empty({env_tabulate::kNumStats}, positions.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), kOp, [&] {
    env_tabulate::dispatch_index_types(pairs, shifts, [&](auto index_tag, auto shift_tag) {
      using index_t = decltype(index_tag);
      using shift_t = decltype(shift_tag);
      const auto in = env_tabulate::raw_inputs<scalar_t, index_t, shift_t>(p.pos, p.box, p.pairs, p.shifts, p.types, p.davg, p.dstd, rcut_smth, rcut,
                                                                           type_one_side);
      // Group the valid edges by centre (counting sort).
      std::vector<int64_t> offsets(N + 1, 0);
      check_edges(kOp, in.pairs, in.capacity, p.count, N, &offsets);
      for (int64_t i = 0; i < N; ++i) offsets[i + 1] += offsets[i];
      std::vector<uint32_t> order(p.count);
      {
        std::vector<int64_t> cursor(offsets.begin(), offsets.end() - 1);
        for (int64_t e = 0; e < p.count; ++e) order[cursor[in.pairs[e]]++] = static_cast<uint32_t>(e);
      }
      const Grid<scalar_t> grid = tabulate::make_grid(p.info.const_data_ptr<scalar_t>(), table.size(1));
      forward_kernel(in, grid, p.table_t.const_data_ptr<scalar_t>(), M, N, offsets, order, out.mutable_data_ptr<scalar_t>(),
                     counts.mutable_data_ptr<int64_t>(), stats.mutable_data_ptr<double>());
    });
  });
  return {out, counts, stats};
}

// One edge's backward from its table block and dE/dT row D [4, M] of its centre:
// d_rhat[c] = sum_m G_m D[c, m] and ds = sum_m G'_m sum_c D[c, m] rhat[c]. The sums run in
// kLanes fixed partial sums (m mod kLanes), added in a fixed order at the end: the compiler may
// then vectorise over the lanes without reordering (FP sums are not associative), so results
// do not depend on memory alignment. Not inlined, for the same reason as accumulate_edge.
constexpr int kLanes = 4;

template <typename scalar_t>
__attribute__((noinline)) void edge_gradient(const scalar_t* __restrict__ block, int64_t M, scalar_t t, const scalar_t rhat[4],
                                             const scalar_t* __restrict__ D, scalar_t d_rhat[4], scalar_t& ds) {
  const scalar_t* __restrict__ D0 = D;
  const scalar_t* __restrict__ D1 = D + M;
  const scalar_t* __restrict__ D2 = D + 2 * M;
  const scalar_t* __restrict__ D3 = D + 3 * M;
  const scalar_t r0 = rhat[0], r1 = rhat[1], r2 = rhat[2], r3 = rhat[3];
  scalar_t s[kLanes] = {}, d0[kLanes] = {}, d1[kLanes] = {}, d2[kLanes] = {}, d3[kLanes] = {};
  auto add = [&](int64_t m, int l) {
    scalar_t gm, dgm;
    tabulate::polynomial(block + m, M, t, gm, dgm);
    s[l] += dgm * (D0[m] * r0 + D1[m] * r1 + D2[m] * r2 + D3[m] * r3);
    d0[l] += gm * D0[m];
    d1[l] += gm * D1[m];
    d2[l] += gm * D2[m];
    d3[l] += gm * D3[m];
  };
  int64_t m0 = 0;
  for (; m0 + kLanes <= M; m0 += kLanes)
    for (int l = 0; l < kLanes; ++l) add(m0 + l, l);
  for (int64_t m = m0; m < M; ++m) add(m, static_cast<int>(m - m0));
  ds = d_rhat[0] = d_rhat[1] = d_rhat[2] = d_rhat[3] = scalar_t(0);
  for (int l = 0; l < kLanes; ++l) {
    ds += s[l];
    d_rhat[0] += d0[l];
    d_rhat[1] += d1[l];
    d_rhat[2] += d2[l];
    d_rhat[3] += d3[l];
  }
}

template <typename scalar_t, typename index_t, typename shift_t>
void backward_kernel(const Inputs<scalar_t, index_t, shift_t>& in, const Grid<scalar_t>& grid, const scalar_t* coef, int64_t M,
                     int64_t N, int64_t count, const scalar_t* grad_t /* [N, 4, M] */, scalar_t* grad_pos, scalar_t* grad_box) {
  const int64_t chunks = chunk_count(count, 4096);
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
        in.load(e, edge);
        int64_t idx;
        scalar_t t;
        bool clamped;
        tabulate::locate(grid, edge.rhat[0], idx, t, clamped);
        const scalar_t* block = coef + (edge.table * grid.n + idx) * 6 * M;
        scalar_t d_rhat[4], ds;
        edge_gradient(block, M, t, edge.rhat, grad_t + edge.i * 4 * M, d_rhat, ds);
        if (!clamped) d_rhat[0] += ds;  // s^ = R^[0] feeds both G and R^
        scalar_t gv[3];
        in.backward(edge, d_rhat, gv);
        for (int k = 0; k < 3; ++k) {
          g[3 * edge.j + k] += gv[k];
          g[3 * edge.i + k] -= gv[k];
        }
        if (in.box != nullptr) {
          for (int a = 0; a < 3; ++a) {
            const scalar_t shift = static_cast<scalar_t>(in.shifts[3 * e + a]);
            for (int b = 0; b < 3; ++b) gb[3 * a + b] += shift * gv[b];
          }
        }
      }
    }
  });
  for (int64_t c = 1; c < chunks; ++c)
    for (int64_t k = 0; k < 3 * N; ++k) grad_pos[k] += buffers[c][k];
  for (int64_t c = 0; c < chunks; ++c)
    for (int k = 0; k < 9; ++k) grad_box[k] += box_partial[c][k];
}

std::tuple<at::Tensor, at::Tensor> env_tabulate_backward_cpu(const at::Tensor& positions, const c10::optional<at::Tensor>& box,
                                                             const at::Tensor& pairs, const at::Tensor& shifts, const at::Tensor& num_pairs,
                                                             const at::Tensor& types, const at::Tensor& davg, const at::Tensor& dstd,
                                                             const at::Tensor& table, const at::Tensor& table_info, double rcut_smth,
                                                             double rcut, bool type_one_side, const at::Tensor& grad_output) {
  env_tabulate::check_inputs(kBackwardOp, positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info, rcut_smth,
                             rcut, type_one_side);
  env_tabulate::check_grad_output(kBackwardOp, positions, table, grad_output);
  const Prepared p = prepare(positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info);
  const int64_t N = positions.size(0), M = table.size(2);
  const at::Tensor grad_t = grad_output.transpose(1, 2).contiguous();  // [N, 4, M]: contiguous over m
  at::Tensor grad_pos = at::zeros({N, 3}, positions.options());
  at::Tensor grad_box = at::zeros({3, 3}, positions.options());
  AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), kBackwardOp, [&] {
    env_tabulate::dispatch_index_types(pairs, shifts, [&](auto index_tag, auto shift_tag) {
      using index_t = decltype(index_tag);
      using shift_t = decltype(shift_tag);
      const auto in = env_tabulate::raw_inputs<scalar_t, index_t, shift_t>(p.pos, p.box, p.pairs, p.shifts, p.types, p.davg, p.dstd, rcut_smth, rcut,
                                                                           type_one_side);
      check_edges<index_t>(kBackwardOp, in.pairs, in.capacity, p.count, N, nullptr);
      const Grid<scalar_t> grid = tabulate::make_grid(p.info.const_data_ptr<scalar_t>(), table.size(1));
      backward_kernel(in, grid, p.table_t.const_data_ptr<scalar_t>(), M, N, p.count, grad_t.const_data_ptr<scalar_t>(),
                      grad_pos.mutable_data_ptr<scalar_t>(), grad_box.mutable_data_ptr<scalar_t>());
    });
  });
  return {grad_pos, grad_box};
}

// Autograd: T is differentiable with respect to positions and box; nothing per edge is saved
// (the backward recomputes every edge from the inputs).
class EnvTabulateFunction : public torch::autograd::Function<EnvTabulateFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& positions,
                                                const c10::optional<at::Tensor>& box, const at::Tensor& pairs, const at::Tensor& shifts,
                                                const at::Tensor& num_pairs, const at::Tensor& types, const at::Tensor& davg,
                                                const at::Tensor& dstd, const at::Tensor& table, const at::Tensor& table_info,
                                                double rcut_smth, double rcut, bool type_one_side) {
    TORCH_CHECK(!table.requires_grad() && !table_info.requires_grad() && !davg.requires_grad() && !dstd.requires_grad(), kOp,
                ": gradients with respect to the table, davg and dstd are not supported; pass them detached");
    const at::Tensor box_or_undefined = env_tabulate::has_box(box) ? *box : at::Tensor();
    ctx->save_for_backward({positions, box_or_undefined, pairs, shifts, num_pairs, types, davg, dstd, table, table_info});
    ctx->saved_data["rcut_smth"] = rcut_smth;
    ctx->saved_data["rcut"] = rcut;
    ctx->saved_data["type_one_side"] = type_one_side;
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmmnnp::env_tabulate", "")
                         .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                             const at::Tensor&, const c10::optional<at::Tensor>&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                             const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                             double, bool)>();
    auto [out, counts, stats] =
        op.call(positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info, rcut_smth, rcut, type_one_side);
    ctx->mark_non_differentiable({counts, stats});
    return {out, counts, stats};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(), kOp,
                ": double backward (create_graph=True) is not supported; the op provides first derivatives (forces) only");
    const auto s = ctx->get_saved_variables();
    const c10::optional<at::Tensor> box = s[1].defined() ? c10::optional<at::Tensor>(s[1]) : c10::nullopt;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmmnnp::env_tabulate_backward", "")
                         .typed<std::tuple<at::Tensor, at::Tensor>(
                             const at::Tensor&, const c10::optional<at::Tensor>&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                             const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                             double, bool, const at::Tensor&)>();
    // grads[0] is defined: autograd materialises unused output gradients as zeros.
    auto [grad_pos, grad_box] = op.call(s[0], box, s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], ctx->saved_data["rcut_smth"].toDouble(),
                                        ctx->saved_data["rcut"].toDouble(), ctx->saved_data["type_one_side"].toBool(), grads[0]);
    return {grad_pos, box.has_value() ? grad_box : at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> env_tabulate_autograd(const at::Tensor& positions, const c10::optional<at::Tensor>& box,
                                                                     const at::Tensor& pairs, const at::Tensor& shifts,
                                                                     const at::Tensor& num_pairs, const at::Tensor& types,
                                                                     const at::Tensor& davg, const at::Tensor& dstd, const at::Tensor& table,
                                                                     const at::Tensor& table_info, double rcut_smth, double rcut,
                                                                     bool type_one_side) {
  auto outputs = EnvTabulateFunction::apply(positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info, rcut_smth,
                                            rcut, type_one_side);
  return {outputs[0], outputs[1], outputs[2]};
}

}  // namespace

TORCH_LIBRARY_IMPL(openmmnnp, CPU, m) {
  m.impl("env_tabulate", &env_tabulate_cpu);
  m.impl("env_tabulate_backward", &env_tabulate_backward_cpu);
}
TORCH_LIBRARY_IMPL(openmmnnp, Autograd, m) { m.impl("env_tabulate", &env_tabulate_autograd); }

}  // namespace openmmnnp
