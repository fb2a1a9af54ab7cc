// CUDA kernels of openmmnnp::env_tabulate and its backward (math in env_tabulate.h and
// common/polynomial_table.h, the functions the CPU kernels call; autograd in env_tabulate_autograd.cpp,
// schemas in registration.cpp). No kernel synchronises the host: the number
// of valid edges is read from num_pairs on the device.
//
// Forward, parallel decomposition: per-atom CSR. A key kernel writes, for every slot, its centre
// when the slot is a valid edge (e < num_pairs, atoms and types in range) and N otherwise; a stable
// sort of the int32 keys groups the valid edges by centre (common/edge_groups.h: input order kept
// within an atom, N's past every atom). Then one block per atom walks its
// edges in chunks of blockDim: thread k computes edge k's environment row (and its counts and
// statistics) into shared memory, then thread m accumulates G_m(s^) R^ over the chunk in four
// registers and adds them to T[i, m, :], which only this block writes. So G is never stored,
// there are no atomics on T and T is deterministic.
// Statistics: out-of-range edges are counted with atomics (rare); the worst s^ is an atomicMax
// on a 64-bit key (order-preserving bits of float(s^), then the complement of the edge index, so
// ties pick the first edge); a one-thread kernel decodes it and recomputes s^ exactly.
//
// Backward: one warp per edge, lanes over m, warp all-reduce of d s^ and d R^[0..3]; lane 0 adds
// dE/dv to the two atoms with atomics (the summation order, hence the last bits of the forces,
// may vary between runs) and keeps its warp's dE/dbox in registers, added once per warp.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <math_constants.h>

#include <limits>

#include "common/cuda_grid.h"
#include "common/edge_groups.h"
#include "env_tabulate/env_tabulate.h"
#include "env_tabulate/env_tabulate_checks.h"

namespace openmmnnp {
namespace env_tabulate {
namespace {

constexpr const char* kOp = "openmmnnp::env_tabulate";
constexpr const char* kBackwardOp = "openmmnnp::env_tabulate_backward";
constexpr int kForwardThreads = 64;
constexpr int kBackwardThreads = 128;  // 4 warps, one edge each
constexpr int64_t kBackwardMaxBlocks = 4096;
constexpr int64_t kMaxBlocks = 65535;

// Order-preserving unsigned image of a float (larger float -> larger key).
__device__ __forceinline__ uint32_t ordered_bits(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

template <typename scalar_t, typename index_t, typename shift_t>
__global__ void keys_kernel(Pointers<scalar_t, index_t, shift_t> p, const int64_t* __restrict__ num_pairs,
                            int32_t* __restrict__ keys) {
  const int64_t count = valid_count(num_pairs[0], p.capacity);
  for (int64_t e = grid_first(); e < p.capacity; e += grid_stride())
    keys[e] = (e < count && p.in_range(e)) ? static_cast<int32_t>(p.pairs[e]) : static_cast<int32_t>(p.num_atoms);
}

template <typename scalar_t, typename index_t, typename shift_t>
__global__ void forward_kernel(Pointers<scalar_t, index_t, shift_t> p, const scalar_t* __restrict__ info,
                               const scalar_t* __restrict__ table, int64_t n, int64_t M,
                               const int64_t* __restrict__ order, const int64_t* __restrict__ offsets,
                               scalar_t* __restrict__ out, unsigned long long* __restrict__ counts,
                               unsigned long long* __restrict__ scratch) {
  const table::Grid<scalar_t> grid = table::make_grid(info, n);
  // Shared: per chunk edge, its table block offset, t and R^[0..3].
  extern __shared__ unsigned char shared_raw[];
  int64_t* block_offset = reinterpret_cast<int64_t*>(shared_raw);
  scalar_t* t_of = reinterpret_cast<scalar_t*>(block_offset + blockDim.x);
  scalar_t* rhat = t_of + blockDim.x;  // [blockDim, 4]
  unsigned long long worst = 0;        // 0: no edge seen
  for (int64_t i = blockIdx.x; i < p.num_atoms; i += gridDim.x) {
    const int64_t begin = offsets[i], end = offsets[i + 1];
    for (int64_t chunk = begin; chunk < end; chunk += blockDim.x) {
      const int64_t k = chunk + threadIdx.x;
      if (k < end) {
        const int64_t e = order[k];
        Edge<scalar_t> edge;
        p.load(e, edge);
        atomicAdd(counts + i * p.ntypes + p.types[edge.j], 1ull);
        const scalar_t s_hat = edge.rhat[0];
        const int cls = range_class(grid, s_hat);
        if (cls > 0) atomicAdd(scratch + cls - 1, 1ull);
        if (s_hat == s_hat) {
          const unsigned long long key =
              (static_cast<unsigned long long>(ordered_bits(static_cast<float>(s_hat))) << 32) |
              (0xFFFFFFFFull - static_cast<unsigned long long>(e));
          worst = key > worst ? key : worst;
        }
        scalar_t t;
        bool clamped;
        block_offset[threadIdx.x] = p.table_block(grid, table, M, edge, t, clamped) - table;
        t_of[threadIdx.x] = t;
        for (int c = 0; c < 4; ++c) rhat[4 * threadIdx.x + c] = edge.rhat[c];
      }
      __syncthreads();
      const int64_t len = end - chunk < blockDim.x ? end - chunk : blockDim.x;
      for (int64_t m = threadIdx.x; m < M; m += blockDim.x) {
        scalar_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
        for (int64_t q = 0; q < len; ++q)
          table::accumulate_edge(table + block_offset[q], 6, 1, t_of[q], rhat + 4 * q, m, m + 1, &acc0, &acc1, &acc2,
                                 &acc3, 1);
        scalar_t* o = out + (i * M + m) * 4;
        o[0] += acc0;
        o[1] += acc1;
        o[2] += acc2;
        o[3] += acc3;
      }
      __syncthreads();  // the chunk's shared rows are read before the next chunk overwrites them
    }
  }
  worst = warp_max(worst);
  if (threadIdx.x % kWarpSize == 0 && worst != 0) atomicMax(scratch + 2, worst);
}

// stats [5] from the scratch counters and the worst key (one thread).
template <typename scalar_t, typename index_t, typename shift_t>
__global__ void finalize_kernel(Pointers<scalar_t, index_t, shift_t> p, const unsigned long long* __restrict__ scratch,
                                double* __restrict__ stats) {
  stats[kStatOutside] = static_cast<double>(scratch[0]);
  stats[kStatBeyond] = static_cast<double>(scratch[1]);
  if (scratch[2] == 0) {
    stats[kStatWorst] = -CUDART_INF;
    stats[kStatCenter] = -1.0;
    stats[kStatNeighbor] = -1.0;
    return;
  }
  const int64_t e = static_cast<int64_t>(0xFFFFFFFFull - (scratch[2] & 0xFFFFFFFFull));
  Edge<scalar_t> edge;
  p.load(e, edge);
  stats[kStatWorst] = static_cast<double>(edge.rhat[0]);
  stats[kStatCenter] = static_cast<double>(edge.i);
  stats[kStatNeighbor] = static_cast<double>(edge.j);
}

template <typename scalar_t, typename index_t, typename shift_t>
__global__ void backward_kernel(Pointers<scalar_t, index_t, shift_t> p, const scalar_t* __restrict__ info,
                                const scalar_t* __restrict__ table, int64_t n, int64_t M,
                                const int64_t* __restrict__ num_pairs, const scalar_t* __restrict__ grad_output,
                                scalar_t* __restrict__ grad_pos, scalar_t* __restrict__ grad_box) {
  const table::Grid<scalar_t> grid = table::make_grid(info, n);
  const int64_t count = valid_count(num_pairs[0], p.capacity);
  const int lane = threadIdx.x % kWarpSize;
  scalar_t box_acc[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t e = grid_first_warp(); e < count; e += grid_stride_warps()) {
    if (!p.in_range(e)) continue;  // uniform over the warp
    Edge<scalar_t> edge;
    p.load(e, edge);
    scalar_t t;
    bool clamped;
    const scalar_t* block = p.table_block(grid, table, M, edge, t, clamped);
    const scalar_t* dT = grad_output + edge.i * M * 4;  // output m, component c at dT[4 m + c]
    scalar_t d_rhat[4] = {0, 0, 0, 0}, ds = 0;
    for (int64_t m = lane; m < M; m += kWarpSize)
      table::edge_gradient(block, 6, 1, t, edge.rhat, dT, 4, 1, m, m + 1, d_rhat, ds);
    ds = warp_sum(ds);
    for (int c = 0; c < 4; ++c) d_rhat[c] = warp_sum(d_rhat[c]);
    if (lane == 0) {
      scalar_t gv[3];
      p.backward(edge, d_rhat, ds, clamped, gv);
      for (int c = 0; c < 3; ++c) {
        atomicAdd(grad_pos + 3 * edge.j + c, gv[c]);
        atomicAdd(grad_pos + 3 * edge.i + c, -gv[c]);
      }
      if (p.box != nullptr) p.add_box_gradient(e, gv, box_acc);
    }
  }
  if (lane == 0 && p.box != nullptr)
    for (int k = 0; k < 9; ++k)
      if (box_acc[k] != scalar_t(0)) atomicAdd(grad_box + k, box_acc[k]);
}

// The contiguous inputs (the table itself: the kernels read its [.., M, 6] layout).
Contiguous contiguous_cuda_inputs(const at::Tensor& positions, const c10::optional<at::Tensor>& box,
                                  const at::Tensor& pairs, const at::Tensor& shifts, const at::Tensor& types,
                                  const at::Tensor& davg, const at::Tensor& dstd, const at::Tensor& table,
                                  const at::Tensor& table_info) {
  TORCH_CHECK(pairs.size(1) <= static_cast<int64_t>(std::numeric_limits<uint32_t>::max()) &&
                  positions.size(0) < static_cast<int64_t>(std::numeric_limits<int32_t>::max()),
              kOp, ": at most 2^32 pair slots and 2^31 atoms are supported on CUDA");
  return contiguous_inputs(positions, box, pairs, shifts, types, davg, dstd, table.contiguous(), table_info);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> env_tabulate_cuda(const at::Tensor& positions,
                                                                 const c10::optional<at::Tensor>& box,
                                                                 const at::Tensor& pairs, const at::Tensor& shifts,
                                                                 const at::Tensor& num_pairs, const at::Tensor& types,
                                                                 const at::Tensor& davg, const at::Tensor& dstd,
                                                                 const at::Tensor& table, const at::Tensor& table_info,
                                                                 double rcut_smth, double rcut, bool type_one_side) {
  check_inputs(kOp, positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info, rcut_smth, rcut,
               type_one_side);
  const c10::cuda::CUDAGuard guard(positions.device());
  const Contiguous c = contiguous_cuda_inputs(positions, box, pairs, shifts, types, davg, dstd, table, table_info);
  const int64_t N = positions.size(0), M = table.size(2), n = table.size(1), capacity = pairs.size(1);
  at::Tensor out = at::zeros({N, M, 4}, positions.options());
  at::Tensor counts = at::zeros({N, davg.size(0)}, positions.options().dtype(at::kLong));
  at::Tensor stats = at::empty({kNumStats}, positions.options().dtype(at::kDouble));
  at::Tensor scratch = at::zeros({3}, positions.options().dtype(at::kLong));  // outside, beyond, worst key
  const at::Tensor num = num_pairs.reshape({1}).contiguous();
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), kOp, [&] {
    dispatch_index_types(pairs, shifts, [&](auto index_tag, auto shift_tag) {
      const auto p = pointers<scalar_t, decltype(index_tag), decltype(shift_tag)>(c, rcut_smth, rcut, type_one_side);
      unsigned long long* scratch_ptr = reinterpret_cast<unsigned long long*>(scratch.mutable_data_ptr<int64_t>());
      if (N > 0 && capacity > 0) {
        at::Tensor keys = at::empty({capacity}, positions.options().dtype(at::kInt));
        keys_kernel<<<blocks_for(capacity, 256, kMaxBlocks), 256, 0, stream>>>(p, num.const_data_ptr<int64_t>(),
                                                                               keys.mutable_data_ptr<int32_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        at::Tensor order, offsets;
        std::tie(order, offsets) = group_edges_by_key(keys, N);
        keys = at::Tensor();
        const size_t shared = kForwardThreads * (sizeof(int64_t) + 5 * sizeof(scalar_t));
        forward_kernel<<<blocks_for(N, 1, kMaxBlocks), kForwardThreads, shared, stream>>>(
            p, c.info.const_data_ptr<scalar_t>(), c.table.const_data_ptr<scalar_t>(), n, M,
            order.const_data_ptr<int64_t>(), offsets.const_data_ptr<int64_t>(), out.mutable_data_ptr<scalar_t>(),
            reinterpret_cast<unsigned long long*>(counts.mutable_data_ptr<int64_t>()), scratch_ptr);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
      finalize_kernel<<<1, 1, 0, stream>>>(p, scratch_ptr, stats.mutable_data_ptr<double>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {out, counts, stats};
}

std::tuple<at::Tensor, at::Tensor> env_tabulate_backward_cuda(
    const at::Tensor& positions, const c10::optional<at::Tensor>& box, const at::Tensor& pairs,
    const at::Tensor& shifts, const at::Tensor& num_pairs, const at::Tensor& types, const at::Tensor& davg,
    const at::Tensor& dstd, const at::Tensor& table, const at::Tensor& table_info, double rcut_smth, double rcut,
    bool type_one_side, const at::Tensor& grad_output) {
  check_inputs(kBackwardOp, positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info, rcut_smth,
               rcut, type_one_side);
  check_grad_output(kBackwardOp, positions, table, grad_output);
  const c10::cuda::CUDAGuard guard(positions.device());
  const Contiguous c = contiguous_cuda_inputs(positions, box, pairs, shifts, types, davg, dstd, table, table_info);
  const at::Tensor dT = grad_output.contiguous();
  const int64_t N = positions.size(0), M = table.size(2), n = table.size(1), capacity = pairs.size(1);
  at::Tensor grad_pos = at::zeros({N, 3}, positions.options());
  at::Tensor grad_box = at::zeros({3, 3}, positions.options());
  if (N == 0 || capacity == 0) return {grad_pos, grad_box};
  const at::Tensor num = num_pairs.reshape({1}).contiguous();
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), kBackwardOp, [&] {
    dispatch_index_types(pairs, shifts, [&](auto index_tag, auto shift_tag) {
      const auto p = pointers<scalar_t, decltype(index_tag), decltype(shift_tag)>(c, rcut_smth, rcut, type_one_side);
      backward_kernel<<<blocks_for(capacity, kBackwardThreads / kWarpSize, kBackwardMaxBlocks), kBackwardThreads, 0,
                        stream>>>(p, c.info.const_data_ptr<scalar_t>(), c.table.const_data_ptr<scalar_t>(), n, M,
                                  num.const_data_ptr<int64_t>(), dT.const_data_ptr<scalar_t>(),
                                  grad_pos.mutable_data_ptr<scalar_t>(), grad_box.mutable_data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {grad_pos, grad_box};
}

}  // namespace
}  // namespace env_tabulate

TORCH_LIBRARY_IMPL(openmmnnp, CUDA, m) {
  m.impl("env_tabulate", &env_tabulate::env_tabulate_cuda);
  m.impl("env_tabulate_backward", &env_tabulate::env_tabulate_backward_cuda);
}

}  // namespace openmmnnp
