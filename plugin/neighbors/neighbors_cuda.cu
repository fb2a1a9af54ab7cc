// CUDA kernel of openmmnnp::neighbor_pairs (contract, algorithm, error codes and the cell traversal
// both devices run: neighbors.h).
// CUDA-graph safe: every buffer has a size fixed by N and max_pairs, the grid is computed on the
// device, nothing is read back on the host, and data errors become negative codes in num_pairs.
// Steps: setup (1 thread: grid from box/bounding box) -> locate atoms + count per cell ->
// exclusive scan -> scatter into cell order -> one thread per slot runs for_each_neighbor and
// appends pairs through an atomic counter, writes guarded by idx < max_pairs -> finalize.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/cuda_grid.h"
#include "neighbors/neighbors.h"
#include "neighbors/neighbors_checks.h"

namespace openmmnnp {
namespace {

using neighbors::Grid;
using ull = unsigned long long;

constexpr int kThreads = 128;
constexpr int64_t kMaxBlocks = 1 << 20;

template <typename scalar_t>
__global__ void setup_kernel(const scalar_t* box, const scalar_t* lo, const scalar_t* hi, double cutoff,
                             int64_t max_cells, Grid* grid, int64_t* error) {
  double b9[9], l[3] = {0, 0, 0}, h[3] = {0, 0, 0};
  if (box)
    for (int c = 0; c < 9; ++c) b9[c] = (double)box[c];
  if (lo)
    for (int d = 0; d < 3; ++d) {
      l[d] = (double)lo[d];
      h[d] = (double)hi[d];
    }
  *grid = neighbors::make_grid(box ? b9 : nullptr, l, h, cutoff, max_cells);
  *error = grid->error;
}

template <typename scalar_t>
__global__ void locate_kernel(const scalar_t* __restrict__ r, int64_t n, const Grid* __restrict__ grid,
                              int64_t* __restrict__ linear, int32_t* __restrict__ k, int64_t* __restrict__ counts,
                              int64_t* error) {
  const Grid g = *grid;
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    const double ri[3] = {(double)r[3 * i], (double)r[3 * i + 1], (double)r[3 * i + 2]};
    if (!(is_finite(ri[0]) && is_finite(ri[1]) && is_finite(ri[2]))) *error = neighbors::kNonFinitePositions;
    int64_t cell[3];
    if (!neighbors::locate(g, ri, cell, &k[3 * i]))  // clamps NaN to cell 0
      *error = neighbors::kFarFromBox;
    const int64_t c = (cell[0] * g.n[1] + cell[1]) * g.n[2] + cell[2];
    linear[i] = c;
    atomicAdd((ull*)&counts[c], 1ULL);
  }
}

template <typename scalar_t>
__global__ void scatter_kernel(const scalar_t* __restrict__ r, int64_t n, const Grid* __restrict__ grid,
                               const int64_t* __restrict__ linear, const int32_t* __restrict__ k,
                               const int64_t* __restrict__ start, int64_t* __restrict__ fill,
                               int64_t* __restrict__ atom, int64_t* __restrict__ slot_cell, scalar_t* __restrict__ q,
                               int32_t* __restrict__ slot_k) {
  const Grid g = *grid;
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    const int64_t c = linear[i];
    const int64_t s = start[c] + (int64_t)atomicAdd((ull*)&fill[c], 1ULL);
    atom[s] = i;
    slot_cell[s] = c;
    for (int d = 0; d < 3; ++d) slot_k[3 * s + d] = k[3 * i + d];
    neighbors::wrapped_position(g, r + 3 * i, k + 3 * i, q + 3 * s);
  }
}

template <typename scalar_t>
__global__ void pairs_kernel(int64_t n, const Grid* __restrict__ grid, neighbors::Cells<scalar_t> cl, scalar_t cutoff2,
                             bool full, int64_t max_pairs, const int64_t* __restrict__ error,
                             int64_t* __restrict__ counter, int32_t* __restrict__ pairs, int16_t* __restrict__ shifts) {
  if (*error != 0) return;
  const Grid g = *grid;
  scalar_t box[9];
  for (int c = 0; c < 9; ++c) box[c] = (scalar_t)g.box[c / 3][c % 3];
  for (int64_t a = grid_first(); a < n; a += grid_stride()) {
    neighbors::for_each_neighbor(g, cl, box, cutoff2, full, a, [&](int64_t b, int32_t s0, int32_t s1, int32_t s2) {
      const int64_t at = (int64_t)atomicAdd((ull*)counter, 1ULL);
      if (at < max_pairs)
        neighbors::store_pair(neighbors::listed_pair(cl, a, b, s0, s1, s2, full), at, max_pairs, pairs, shifts);
    });
  }
}

__global__ void finalize_kernel(const int64_t* error, int64_t* num_pairs) {
  if (*error != 0) *num_pairs = *error;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> neighbor_pairs_cuda(const at::Tensor& positions, double cutoff,
                                                                   const c10::optional<at::Tensor>& box,
                                                                   int64_t max_pairs, bool full) {
  neighbors::check_arguments(positions, cutoff, box, max_pairs);
  const c10::cuda::CUDAGuard guard(positions.device());
  const int64_t n = positions.size(0);
  const at::Tensor r = positions.contiguous();
  const auto lopt = positions.options().dtype(at::kLong);
  at::Tensor pairs = at::full({2, max_pairs}, -1, positions.options().dtype(at::kInt));
  at::Tensor shifts = at::zeros({max_pairs, 3}, positions.options().dtype(at::kShort));
  at::Tensor num_pairs = at::zeros({1}, lopt);  // the atomic pair counter itself
  at::Tensor error = at::zeros({1}, lopt);
  const int64_t max_cells = std::max<int64_t>(2 * n, 1);
  at::Tensor grid = at::empty({(int64_t)sizeof(Grid)}, positions.options().dtype(at::kByte));
  at::Tensor counts = at::zeros({max_cells}, lopt);
  at::Tensor linear = at::empty({n}, lopt), k = at::empty({n, 3}, positions.options().dtype(at::kInt));
  at::Tensor atom = at::empty({n}, lopt), slot_cell = at::empty({n}, lopt),
             slot_k = at::empty({n, 3}, positions.options().dtype(at::kInt));
  at::Tensor q = at::empty({n, 3}, r.options());
  auto stream = at::cuda::getCurrentCUDAStream();
  Grid* gp = reinterpret_cast<Grid*>(grid.mutable_data_ptr());
  AT_DISPATCH_FLOATING_TYPES(r.scalar_type(), "openmmnnp::neighbor_pairs", [&] {
    at::Tensor b = box.has_value() ? box->to(r.scalar_type()).contiguous() : at::Tensor();
    at::Tensor lo, hi;
    if (!box.has_value() && n > 0) {
      auto mm = at::aminmax(r, 0);
      lo = std::get<0>(mm).contiguous();
      hi = std::get<1>(mm).contiguous();
    }
    setup_kernel<scalar_t><<<1, 1, 0, stream>>>(b.defined() ? b.const_data_ptr<scalar_t>() : nullptr,
                                                lo.defined() ? lo.const_data_ptr<scalar_t>() : nullptr,
                                                hi.defined() ? hi.const_data_ptr<scalar_t>() : nullptr, cutoff,
                                                max_cells, gp, error.mutable_data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (n > 0) {
      locate_kernel<scalar_t><<<blocks_for(n, kThreads, kMaxBlocks), kThreads, 0, stream>>>(
          r.const_data_ptr<scalar_t>(), n, gp, linear.mutable_data_ptr<int64_t>(), k.mutable_data_ptr<int32_t>(),
          counts.mutable_data_ptr<int64_t>(), error.mutable_data_ptr<int64_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      // start[c] = number of atoms in cells before c (cells past num_cells stay empty)
      at::Tensor start = at::zeros({max_cells + 1}, lopt);
      start.narrow(0, 1, max_cells).copy_(at::cumsum(counts, 0));
      at::Tensor fill = at::zeros({max_cells}, lopt);
      scatter_kernel<scalar_t><<<blocks_for(n, kThreads, kMaxBlocks), kThreads, 0, stream>>>(
          r.const_data_ptr<scalar_t>(), n, gp, linear.const_data_ptr<int64_t>(), k.const_data_ptr<int32_t>(),
          start.const_data_ptr<int64_t>(), fill.mutable_data_ptr<int64_t>(), atom.mutable_data_ptr<int64_t>(),
          slot_cell.mutable_data_ptr<int64_t>(), q.mutable_data_ptr<scalar_t>(), slot_k.mutable_data_ptr<int32_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      const scalar_t cutoff2 = (scalar_t)cutoff * (scalar_t)cutoff;
      const neighbors::Cells<scalar_t> cl{start.const_data_ptr<int64_t>(), atom.const_data_ptr<int64_t>(),
                                          slot_cell.const_data_ptr<int64_t>(), q.const_data_ptr<scalar_t>(),
                                          slot_k.const_data_ptr<int32_t>()};
      pairs_kernel<scalar_t><<<blocks_for(n, kThreads, kMaxBlocks), kThreads, 0, stream>>>(
          n, gp, cl, cutoff2, full, max_pairs, error.const_data_ptr<int64_t>(), num_pairs.mutable_data_ptr<int64_t>(),
          pairs.mutable_data_ptr<int32_t>(), shifts.mutable_data_ptr<int16_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  finalize_kernel<<<1, 1, 0, stream>>>(error.const_data_ptr<int64_t>(), num_pairs.mutable_data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {pairs, shifts, num_pairs};
}

}  // namespace

TORCH_LIBRARY_IMPL(openmmnnp, CUDA, m) { m.impl("neighbor_pairs", &neighbor_pairs_cuda); }

}  // namespace openmmnnp
