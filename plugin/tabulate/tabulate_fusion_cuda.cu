// CUDA kernels of openmmnnp::tabulate_fusion and its backward (schemas in registration.cpp,
// autograd in tabulate_fusion_cpu.cpp, table layout in tabulate_fusion.h).
//
// Forward, parallel decomposition: per-atom CSR. The valid edges are grouped by center with a
// stable sort of the keys (center, or N for padded edges so that they sort past every atom) and
// atom i's range found by searchsorted; all of it torch ops on the stream, no host sync. Then
// one thread block per atom, one thread per output column m (strided when M > blockDim):
// the thread walks the atom's edges in order, evaluates G_m(s_e) from the table in registers
// and accumulates G_m r_e[0..3] in four registers, writing T[i, m, :] once at the end. So G is
// never stored, there are no atomics, and the sums are deterministic. Edges with an out-of-range
// center sort outside [0, N) and are skipped; an out-of-range table_index is skipped in the
// kernel (the CPU op raises on both; a device-side check would need a host sync).
//
// Backward: one warp per edge, lanes over m; the lane sums of d s and d r[0..3] are reduced
// with warp shuffles (fixed order: deterministic), lane 0 writes them.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "tabulate/tabulate_fusion.h"
#include "tabulate/tabulate_fusion_checks.h"

namespace openmmnnp {

using tabulate::Grid;

template <typename scalar_t>
__global__ void tabulate_fusion_forward_kernel(const scalar_t* __restrict__ table, const scalar_t* __restrict__ info,
                                               const scalar_t* __restrict__ s_hat, const scalar_t* __restrict__ r_hat,
                                               const int64_t* __restrict__ table_index, const int64_t* __restrict__ order,
                                               const int64_t* __restrict__ offsets, scalar_t* __restrict__ out,
                                               int64_t num_atoms, int64_t num_tables, int64_t n, int64_t M) {
  const Grid<scalar_t> grid = tabulate::make_grid(info, n);
  for (int64_t i = blockIdx.x; i < num_atoms; i += gridDim.x) {
    const int64_t begin = offsets[i], end = offsets[i + 1];
    for (int64_t m = threadIdx.x; m < M; m += blockDim.x) {
      scalar_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
      for (int64_t k = begin; k < end; ++k) {
        const int64_t e = order[k];
        const int64_t tab = table_index[e];
        if (tab < 0 || tab >= num_tables) continue;
        int64_t idx;
        scalar_t t;
        bool clamped;
        tabulate::locate(grid, s_hat[e], idx, t, clamped);
        scalar_t g, dg;
        tabulate::polynomial(table + ((tab * n + idx) * M + m) * 6, t, g, dg);
        acc0 += g * r_hat[4 * e];
        acc1 += g * r_hat[4 * e + 1];
        acc2 += g * r_hat[4 * e + 2];
        acc3 += g * r_hat[4 * e + 3];
      }
      scalar_t* o = out + (i * M + m) * 4;
      o[0] = acc0;
      o[1] = acc1;
      o[2] = acc2;
      o[3] = acc3;
    }
  }
}

template <typename scalar_t>
__device__ __forceinline__ scalar_t warp_sum(scalar_t v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

template <typename scalar_t>
__global__ void tabulate_fusion_backward_kernel(const scalar_t* __restrict__ table, const scalar_t* __restrict__ info,
                                                const scalar_t* __restrict__ s_hat, const scalar_t* __restrict__ r_hat,
                                                const int64_t* __restrict__ center, const int64_t* __restrict__ table_index,
                                                const scalar_t* __restrict__ grad_output, scalar_t* __restrict__ d_s,
                                                scalar_t* __restrict__ d_r, int64_t num_edges, int64_t num_atoms,
                                                int64_t num_tables, int64_t n, int64_t M) {
  const Grid<scalar_t> grid = tabulate::make_grid(info, n);
  const int lane = threadIdx.x % 32;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x / 32);
  for (int64_t e = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32; e < num_edges; e += warps) {
    const int64_t tab = table_index[e], i = center[e];
    const bool valid = tab >= 0 && tab < num_tables && i >= 0 && i < num_atoms;  // uniform over the warp
    scalar_t ds = 0, dr0 = 0, dr1 = 0, dr2 = 0, dr3 = 0;
    bool clamped = false;
    if (valid) {
      int64_t idx;
      scalar_t t;
      tabulate::locate(grid, s_hat[e], idx, t, clamped);
      const scalar_t r0 = r_hat[4 * e], r1 = r_hat[4 * e + 1], r2 = r_hat[4 * e + 2], r3 = r_hat[4 * e + 3];
      for (int64_t m = lane; m < M; m += 32) {
        scalar_t g, dg;
        tabulate::polynomial(table + ((tab * n + idx) * M + m) * 6, t, g, dg);
        const scalar_t* gm = grad_output + (i * M + m) * 4;
        ds += dg * (gm[0] * r0 + gm[1] * r1 + gm[2] * r2 + gm[3] * r3);
        dr0 += g * gm[0];
        dr1 += g * gm[1];
        dr2 += g * gm[2];
        dr3 += g * gm[3];
      }
    }
    ds = warp_sum(ds);
    dr0 = warp_sum(dr0);
    dr1 = warp_sum(dr1);
    dr2 = warp_sum(dr2);
    dr3 = warp_sum(dr3);
    if (lane == 0) {
      d_s[e] = clamped ? scalar_t(0) : ds;
      d_r[4 * e] = dr0;
      d_r[4 * e + 1] = dr1;
      d_r[4 * e + 2] = dr2;
      d_r[4 * e + 3] = dr3;
    }
  }
}

static int64_t block_count(int64_t work, int64_t per_block) {
  return std::max<int64_t>(1, std::min<int64_t>((work + per_block - 1) / per_block, 65535));
}

static at::Tensor tabulate_fusion_cuda(const at::Tensor& table, const at::Tensor& table_info, const at::Tensor& s_hat,
                                       const at::Tensor& r_hat, const at::Tensor& center, const at::Tensor& table_index,
                                       int64_t num_atoms) {
  tabulate::check_inputs("openmmnnp::tabulate_fusion", table, table_info, s_hat, r_hat, center, table_index);
  TORCH_CHECK(num_atoms >= 0, "openmmnnp::tabulate_fusion: num_atoms must be >= 0, got ", num_atoms);
  const c10::cuda::CUDAGuard guard(s_hat.device());
  const at::Tensor tab = table.contiguous(), s = s_hat.contiguous(), r = r_hat.contiguous(), ti = table_index.contiguous();
  const int64_t N = num_atoms, n = tab.size(1), M = tab.size(2);
  at::Tensor out = at::empty({N, M, 4}, s.options());
  if (N == 0) return out;
  // Per-atom CSR without a host sync: padded edges get key N and sort past every atom.
  const at::Tensor key = at::where(table_index >= 0, center, at::full({}, N, center.options()));
  const auto sorted = at::sort(key, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  const at::Tensor order = std::get<1>(sorted);
  const at::Tensor offsets = at::searchsorted(std::get<0>(sorted), at::arange(N + 1, center.options())).contiguous();
  const int threads = static_cast<int>(std::min<int64_t>(256, std::max<int64_t>(32, (M + 31) / 32 * 32)));
  const int64_t blocks = std::min<int64_t>(N, 65535);
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "openmmnnp::tabulate_fusion", [&] {
    const at::Tensor info = table_info.to(s.device(), s.scalar_type()).contiguous();
    tabulate_fusion_forward_kernel<scalar_t><<<blocks, threads, 0, stream>>>(
        tab.const_data_ptr<scalar_t>(), info.const_data_ptr<scalar_t>(), s.const_data_ptr<scalar_t>(), r.const_data_ptr<scalar_t>(),
        ti.const_data_ptr<int64_t>(), order.const_data_ptr<int64_t>(), offsets.const_data_ptr<int64_t>(),
        out.mutable_data_ptr<scalar_t>(), N, tab.size(0), n, M);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

static std::tuple<at::Tensor, at::Tensor> tabulate_fusion_backward_cuda(const at::Tensor& table, const at::Tensor& table_info,
                                                                       const at::Tensor& s_hat, const at::Tensor& r_hat,
                                                                       const at::Tensor& center, const at::Tensor& table_index,
                                                                       const at::Tensor& grad_output) {
  const char* op = "openmmnnp::tabulate_fusion_backward";
  tabulate::check_inputs(op, table, table_info, s_hat, r_hat, center, table_index);
  const int64_t M = table.size(2);
  tabulate::check_grad_output(op, table, grad_output);
  const c10::cuda::CUDAGuard guard(s_hat.device());
  const at::Tensor tab = table.contiguous(), s = s_hat.contiguous(), r = r_hat.contiguous();
  const at::Tensor c = center.contiguous(), ti = table_index.contiguous(), dT = grad_output.contiguous();
  const int64_t E = s.numel(), n = tab.size(1);
  at::Tensor ds = at::empty({E}, s.options());
  at::Tensor dr = at::empty({E, 4}, s.options());
  if (E == 0) return {ds, dr};
  const int threads = 128;  // 4 warps, one edge each
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "openmmnnp::tabulate_fusion_backward", [&] {
    const at::Tensor info = table_info.to(s.device(), s.scalar_type()).contiguous();
    tabulate_fusion_backward_kernel<scalar_t><<<block_count(E, threads / 32), threads, 0, stream>>>(
        tab.const_data_ptr<scalar_t>(), info.const_data_ptr<scalar_t>(), s.const_data_ptr<scalar_t>(), r.const_data_ptr<scalar_t>(),
        c.const_data_ptr<int64_t>(), ti.const_data_ptr<int64_t>(), dT.const_data_ptr<scalar_t>(), ds.mutable_data_ptr<scalar_t>(),
        dr.mutable_data_ptr<scalar_t>(), E, dT.size(0), tab.size(0), n, M);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {ds, dr};
}

TORCH_LIBRARY_IMPL(openmmnnp, CUDA, m) {
  m.impl("tabulate_fusion", &tabulate_fusion_cuda);
  m.impl("tabulate_fusion_backward", &tabulate_fusion_backward_cuda);
}

}  // namespace openmmnnp
