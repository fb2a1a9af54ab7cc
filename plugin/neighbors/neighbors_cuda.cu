// CUDA kernel of openmmnnp::neighbor_pairs (contract, algorithm and error codes: neighbors.h).
// CUDA-graph safe: every buffer has a size fixed by N and max_pairs, the grid is computed on the
// device, nothing is read back on the host, and data errors become negative codes in num_pairs.
// Steps: setup (1 thread: grid from box/bounding box) -> locate atoms + count per cell ->
// exclusive scan -> scatter into cell order -> one thread per atom scans neighbouring cells and
// appends pairs through an atomic counter, writes guarded by idx < max_pairs -> finalize.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "cuda_grid.h"
#include "neighbors/neighbors.h"
#include "neighbors/neighbors_checks.h"

namespace openmmnnp {
namespace {

using neighbors::Grid;
using ull = unsigned long long;

constexpr int kThreads = 128;

constexpr int64_t kMaxBlocks = 1 << 20;

__device__ inline int64_t floor_div(int64_t x, int64_t n) { return x >= 0 ? x / n : -((-x + n - 1) / n); }

template <typename scalar_t>
__global__ void setup_kernel(const scalar_t* box, const scalar_t* lo, const scalar_t* hi, double cutoff, int64_t max_cells,
                             Grid* grid, int64_t* error) {
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
__global__ void locate_kernel(const scalar_t* __restrict__ r, int64_t n, const Grid* __restrict__ grid, int64_t* __restrict__ linear,
                              int32_t* __restrict__ k, int64_t* __restrict__ counts, int64_t* error) {
  const Grid g = *grid;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const double ri[3] = {(double)r[3 * i], (double)r[3 * i + 1], (double)r[3 * i + 2]};
    if (!(neighbors::is_finite(ri[0]) && neighbors::is_finite(ri[1]) && neighbors::is_finite(ri[2])))
      *error = neighbors::kNonFinitePositions;
    int64_t cell[3];
    if (!neighbors::locate(g, ri, cell, &k[3 * i]))  // clamps NaN to cell 0
      *error = neighbors::kFarFromBox;
    const int64_t c = (cell[0] * g.n[1] + cell[1]) * g.n[2] + cell[2];
    linear[i] = c;
    atomicAdd((ull*)&counts[c], 1ULL);
  }
}

template <typename scalar_t>
__global__ void scatter_kernel(const scalar_t* __restrict__ r, int64_t n, const Grid* __restrict__ grid, const int64_t* __restrict__ linear,
                               const int32_t* __restrict__ k, const int64_t* __restrict__ start, int64_t* __restrict__ fill,
                               int64_t* __restrict__ atom, int64_t* __restrict__ slot_cell, scalar_t* __restrict__ q,
                               int32_t* __restrict__ slot_k) {
  const Grid g = *grid;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t c = linear[i];
    const int64_t s = start[c] + (int64_t)atomicAdd((ull*)&fill[c], 1ULL);
    atom[s] = i;
    slot_cell[s] = c;
    const scalar_t k0 = (scalar_t)k[3 * i], k1 = (scalar_t)k[3 * i + 1], k2 = (scalar_t)k[3 * i + 2];
    for (int d = 0; d < 3; ++d) {
      slot_k[3 * s + d] = k[3 * i + d];
      q[3 * s + d] = r[3 * i + d] - (k0 * (scalar_t)g.box[0][d] + k1 * (scalar_t)g.box[1][d] + k2 * (scalar_t)g.box[2][d]);
    }
  }
}

template <typename scalar_t>
__global__ void pairs_kernel(int64_t n, const Grid* __restrict__ grid, const int64_t* __restrict__ start, const int64_t* __restrict__ atom,
                             const int64_t* __restrict__ slot_cell, const scalar_t* __restrict__ q, const int32_t* __restrict__ slot_k,
                             scalar_t cutoff2, bool full, int64_t max_pairs, const int64_t* __restrict__ error, int64_t* __restrict__ counter,
                             int32_t* __restrict__ p0, int32_t* __restrict__ p1, int16_t* __restrict__ sh) {
  if (*error != 0) return;
  const Grid g = *grid;
  scalar_t box[9];
  for (int c = 0; c < 9; ++c) box[c] = (scalar_t)g.box[c / 3][c % 3];
  for (int64_t a = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; a < n; a += (int64_t)gridDim.x * blockDim.x) {
    const int64_t lin = slot_cell[a];
    const int64_t ca[3] = {lin / (g.n[1] * g.n[2]), (lin / g.n[2]) % g.n[1], lin % g.n[2]};
    const scalar_t qx = q[3 * a], qy = q[3 * a + 1], qz = q[3 * a + 2];
    const int64_t i = atom[a];
    const int32_t ka0 = slot_k[3 * a], ka1 = slot_k[3 * a + 1], ka2 = slot_k[3 * a + 2];
    for (int64_t ox = -g.m[0]; ox <= g.m[0]; ++ox) {
      int64_t cx = ca[0] + ox, ix = 0;
      if (g.periodic) {
        ix = floor_div(cx, g.n[0]);
        cx -= ix * g.n[0];
      } else if (cx < 0 || cx >= g.n[0]) continue;
      for (int64_t oy = -g.m[1]; oy <= g.m[1]; ++oy) {
        int64_t cy = ca[1] + oy, iy = 0;
        if (g.periodic) {
          iy = floor_div(cy, g.n[1]);
          cy -= iy * g.n[1];
        } else if (cy < 0 || cy >= g.n[1]) continue;
        for (int64_t oz = -g.m[2]; oz <= g.m[2]; ++oz) {
          int64_t cz = ca[2] + oz, iz = 0;
          if (g.periodic) {
            iz = floor_div(cz, g.n[2]);
            cz -= iz * g.n[2];
          } else if (cz < 0 || cz >= g.n[2]) continue;
          const int64_t c = (cx * g.n[1] + cy) * g.n[2] + cz;
          const int32_t s0 = (int32_t)ix, s1 = (int32_t)iy, s2 = (int32_t)iz;
          const bool zero_image = (s0 | s1 | s2) == 0;
          const scalar_t tx = (scalar_t)s0 * box[0] + (scalar_t)s1 * box[3] + (scalar_t)s2 * box[6] - qx;
          const scalar_t ty = (scalar_t)s0 * box[1] + (scalar_t)s1 * box[4] + (scalar_t)s2 * box[7] - qy;
          const scalar_t tz = (scalar_t)s0 * box[2] + (scalar_t)s1 * box[5] + (scalar_t)s2 * box[8] - qz;
          for (int64_t b = start[c]; b < start[c + 1]; ++b) {
            const int64_t j = atom[b];
            // Half list: each unordered (i, j, shift) once, decided on the atom indices.
            if (!full && j < i) continue;
            if (j == i && zero_image) continue;
            const scalar_t dx = q[3 * b] + tx, dy = q[3 * b + 1] + ty, dz = q[3 * b + 2] + tz;
            if (dx * dx + dy * dy + dz * dz >= cutoff2) continue;
            // r_j - r_i + shift @ box = q_b - q_a + image @ box with q = r - k @ box.
            const int32_t t0 = s0 + ka0 - slot_k[3 * b], t1 = s1 + ka1 - slot_k[3 * b + 1], t2 = s2 + ka2 - slot_k[3 * b + 2];
            if (!neighbors::keep_pair(i, j, t0, t1, t2, full)) continue;
            const int64_t at = (int64_t)atomicAdd((ull*)counter, 1ULL);
            if (at < max_pairs) {
              p0[at] = (int32_t)i;  // N < 2^31 is checked
              p1[at] = (int32_t)j;
              sh[3 * at] = (int16_t)t0;  // |t| < 2^15 (neighbors.h, kMaxWrap)
              sh[3 * at + 1] = (int16_t)t1;
              sh[3 * at + 2] = (int16_t)t2;
            }
          }
        }
      }
    }
  }
}

__global__ void finalize_kernel(const int64_t* error, int64_t* num_pairs) {
  if (*error != 0) *num_pairs = *error;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> neighbor_pairs_cuda(const at::Tensor& positions, double cutoff,
                                                                   const c10::optional<at::Tensor>& box, int64_t max_pairs,
                                                                   bool full) {
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
  at::Tensor atom = at::empty({n}, lopt), slot_cell = at::empty({n}, lopt), slot_k = at::empty({n, 3}, positions.options().dtype(at::kInt));
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
                                                hi.defined() ? hi.const_data_ptr<scalar_t>() : nullptr, cutoff, max_cells, gp,
                                                error.mutable_data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (n > 0) {
      locate_kernel<scalar_t><<<blocks_for(n, kThreads, kMaxBlocks), kThreads, 0, stream>>>(r.const_data_ptr<scalar_t>(), n, gp, linear.mutable_data_ptr<int64_t>(),
                                                                      k.mutable_data_ptr<int32_t>(), counts.mutable_data_ptr<int64_t>(),
                                                                      error.mutable_data_ptr<int64_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      // start[c] = number of atoms in cells before c (cells past num_cells stay empty)
      at::Tensor start = at::zeros({max_cells + 1}, lopt);
      start.narrow(0, 1, max_cells).copy_(at::cumsum(counts, 0));
      at::Tensor fill = at::zeros({max_cells}, lopt);
      scatter_kernel<scalar_t><<<blocks_for(n, kThreads, kMaxBlocks), kThreads, 0, stream>>>(
          r.const_data_ptr<scalar_t>(), n, gp, linear.const_data_ptr<int64_t>(), k.const_data_ptr<int32_t>(), start.const_data_ptr<int64_t>(),
          fill.mutable_data_ptr<int64_t>(), atom.mutable_data_ptr<int64_t>(), slot_cell.mutable_data_ptr<int64_t>(),
          q.mutable_data_ptr<scalar_t>(), slot_k.mutable_data_ptr<int32_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      const scalar_t cutoff2 = (scalar_t)cutoff * (scalar_t)cutoff;
      int32_t* p0 = pairs.mutable_data_ptr<int32_t>();
      pairs_kernel<scalar_t><<<blocks_for(n, kThreads, kMaxBlocks), kThreads, 0, stream>>>(
          n, gp, start.const_data_ptr<int64_t>(), atom.const_data_ptr<int64_t>(), slot_cell.const_data_ptr<int64_t>(),
          q.const_data_ptr<scalar_t>(), slot_k.const_data_ptr<int32_t>(), cutoff2, full, max_pairs, error.const_data_ptr<int64_t>(),
          num_pairs.mutable_data_ptr<int64_t>(), p0, p0 + max_pairs, shifts.mutable_data_ptr<int16_t>());
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
