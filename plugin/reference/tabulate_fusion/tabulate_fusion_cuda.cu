// CUDA kernels of openmmnnp::tabulate_fusion and its backward (reference op; math in tabulate_fusion.h
// and common/polynomial_table.h, the functions the CPU kernels call; autograd in
// tabulate_fusion_autograd.cpp).
//
// Forward, parallel decomposition: the valid edges are grouped by centre on the device
// (common/edge_groups.h: padded edges get key N and sort past every atom; no host sync). Then one
// thread block per atom, one thread per output column m (strided when M > blockDim): the thread
// walks the atom's edges in order and accumulates G_m r_e[0..3] in four registers, writing
// T[i, m, :] once at the end. So G is never stored, there are no atomics, and the sums are
// deterministic. Edges out of range are skipped (the CPU op raises; a device check would need a
// host sync).
//
// Backward: one warp per edge, lanes over m; the lane sums of d s and d r[0..3] are reduced with
// warp shuffles (fixed order: deterministic), lane 0 writes them.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/cuda_grid.h"
#include "common/edge_groups.h"
#include "reference/tabulate_fusion/tabulate_fusion.h"
#include "reference/tabulate_fusion/tabulate_fusion_checks.h"

namespace openmmnnp {
namespace tabulate_fusion {
namespace {

constexpr const char* kOp = "openmmnnp::tabulate_fusion";
constexpr const char* kBackwardOp = "openmmnnp::tabulate_fusion_backward";
constexpr int64_t kMaxBlocks = 65535;
constexpr int kBackwardThreads = 128;  // 4 warps, one edge each

template <typename scalar_t>
__global__ void forward_kernel(Pointers<scalar_t> p, const int64_t* __restrict__ order,
                               const int64_t* __restrict__ offsets, scalar_t* __restrict__ out) {
  const table::Grid<scalar_t> grid = table::make_grid(p.info, p.n);
  for (int64_t i = blockIdx.x; i < p.num_atoms; i += gridDim.x) {
    const int64_t begin = offsets[i], end = offsets[i + 1];
    for (int64_t m = threadIdx.x; m < p.M; m += blockDim.x) {
      scalar_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
      for (int64_t k = begin; k < end; ++k) {
        const int64_t e = order[k];
        if (!p.valid(e)) continue;
        scalar_t t;
        bool clamped;
        const scalar_t* block = p.block(grid, e, t, clamped);
        table::accumulate_edge(block, 6, 1, t, p.r_hat + 4 * e, m, m + 1, &acc0, &acc1, &acc2, &acc3, 1);
      }
      scalar_t* o = out + (i * p.M + m) * 4;
      o[0] = acc0;
      o[1] = acc1;
      o[2] = acc2;
      o[3] = acc3;
    }
  }
}

template <typename scalar_t>
__global__ void backward_kernel(Pointers<scalar_t> p, const scalar_t* __restrict__ grad_output,
                                scalar_t* __restrict__ d_s, scalar_t* __restrict__ d_r) {
  const table::Grid<scalar_t> grid = table::make_grid(p.info, p.n);
  const int lane = threadIdx.x % kWarpSize;
  for (int64_t e = grid_first_warp(); e < p.num_edges; e += grid_stride_warps()) {
    const bool valid = p.valid(e);  // uniform over the warp
    scalar_t ds = 0, dr[4] = {0, 0, 0, 0};
    bool clamped = false;
    if (valid) {
      scalar_t t;
      const scalar_t* block = p.block(grid, e, t, clamped);
      const scalar_t* dT = grad_output + p.center[e] * p.M * 4;
      for (int64_t m = lane; m < p.M; m += kWarpSize)
        table::edge_gradient(block, 6, 1, t, p.r_hat + 4 * e, dT, 4, 1, m, m + 1, dr, ds);
    }
    ds = warp_sum(ds);
    for (int c = 0; c < 4; ++c) dr[c] = warp_sum(dr[c]);
    if (lane == 0) {
      d_s[e] = clamped ? scalar_t(0) : ds;
      for (int c = 0; c < 4; ++c) d_r[4 * e + c] = dr[c];
    }
  }
}

at::Tensor tabulate_fusion_cuda(const at::Tensor& table, const at::Tensor& table_info, const at::Tensor& s_hat,
                                const at::Tensor& r_hat, const at::Tensor& center, const at::Tensor& table_index,
                                int64_t num_atoms) {
  check_inputs(kOp, table, table_info, s_hat, r_hat, center, table_index);
  check_num_atoms(kOp, num_atoms);
  const c10::cuda::CUDAGuard guard(s_hat.device());
  const Contiguous c = contiguous_inputs(table, table_info, s_hat, r_hat, center, table_index);
  const int64_t N = num_atoms, M = table.size(2);
  at::Tensor out = at::empty({N, M, 4}, s_hat.options());
  if (N == 0) return out;
  const at::Tensor keys = at::where(c.table_index >= 0, c.center, at::full({}, N, c.center.options()));
  at::Tensor order, offsets;  // (a structured binding could not be captured by the dispatch lambda)
  std::tie(order, offsets) = group_edges_by_key(keys, N);
  const int threads = static_cast<int>(
      std::min<int64_t>(256, std::max<int64_t>(kWarpSize, (M + kWarpSize - 1) / kWarpSize * kWarpSize)));
  AT_DISPATCH_FLOATING_TYPES(s_hat.scalar_type(), kOp, [&] {
    forward_kernel<scalar_t><<<blocks_for(N, 1, kMaxBlocks), threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        pointers<scalar_t>(c, N), order.const_data_ptr<int64_t>(), offsets.const_data_ptr<int64_t>(),
        out.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> tabulate_fusion_backward_cuda(const at::Tensor& table, const at::Tensor& table_info,
                                                                 const at::Tensor& s_hat, const at::Tensor& r_hat,
                                                                 const at::Tensor& center,
                                                                 const at::Tensor& table_index,
                                                                 const at::Tensor& grad_output) {
  check_inputs(kBackwardOp, table, table_info, s_hat, r_hat, center, table_index);
  check_grad_output(kBackwardOp, table, grad_output);
  const c10::cuda::CUDAGuard guard(s_hat.device());
  const Contiguous c = contiguous_inputs(table, table_info, s_hat, r_hat, center, table_index);
  const at::Tensor dT = grad_output.contiguous();
  const int64_t E = s_hat.numel();
  at::Tensor ds = at::empty({E}, s_hat.options());
  at::Tensor dr = at::empty({E, 4}, s_hat.options());
  if (E == 0) return {ds, dr};
  AT_DISPATCH_FLOATING_TYPES(s_hat.scalar_type(), kBackwardOp, [&] {
    backward_kernel<scalar_t>
        <<<blocks_for(E, kBackwardThreads / kWarpSize, kMaxBlocks), kBackwardThreads, 0,
           at::cuda::getCurrentCUDAStream()>>>(pointers<scalar_t>(c, dT.size(0)), dT.const_data_ptr<scalar_t>(),
                                               ds.mutable_data_ptr<scalar_t>(), dr.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {ds, dr};
}

}  // namespace
}  // namespace tabulate_fusion

TORCH_LIBRARY_IMPL(openmmnnp, CUDA, m) {
  m.impl("tabulate_fusion", &tabulate_fusion::tabulate_fusion_cuda);
  m.impl("tabulate_fusion_backward", &tabulate_fusion::tabulate_fusion_backward_cuda);
}

}  // namespace openmmnnp
