// CUDA kernels of openmmnnp::env_tabulate and its backward (math in env_tabulate.h, autograd in
// env_tabulate_cpu.cpp, schemas in registration.cpp). No kernel synchronises the host: the number
// of valid edges is read from num_pairs on the device.
//
// Forward, parallel decomposition: per-atom CSR. A key kernel writes, for every slot, its centre
// when the slot is a valid edge (e < num_pairs, atoms and types in range) and N otherwise; a stable
// sort of the int32 keys groups the valid edges by centre (input order kept within an atom) and
// searchsorted gives each atom's range, N's past every atom. Then one block per atom walks its
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

#include "cuda_grid.h"
#include "env_tabulate/env_tabulate.h"
#include "env_tabulate/env_tabulate_checks.h"

namespace openmmnnp {
namespace {

using env_tabulate::Edge;
using env_tabulate::Inputs;
using tabulate::Grid;

constexpr const char* kOp = "openmmnnp::env_tabulate";
constexpr const char* kBackwardOp = "openmmnnp::env_tabulate_backward";
constexpr int kForwardThreads = 64;
constexpr int kBackwardThreads = 128;  // 4 warps, one edge each
constexpr int64_t kBackwardMaxBlocks = 4096;

__device__ __forceinline__ int64_t valid_count(const int64_t* num_pairs, int64_t capacity) {
  const int64_t n = num_pairs[0];
  return n < 0 ? 0 : (n > capacity ? capacity : n);
}

// Order-preserving unsigned image of a float (larger float -> larger key).
__device__ __forceinline__ uint32_t ordered_bits(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

template <typename scalar_t, typename index_t, typename shift_t>
__global__ void keys_kernel(Inputs<scalar_t, index_t, shift_t> in, const int64_t* __restrict__ num_pairs, int32_t* __restrict__ keys) {
  const int64_t count = valid_count(num_pairs, in.capacity);
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < in.capacity; e += (int64_t)gridDim.x * blockDim.x)
    keys[e] = (e < count && in.in_range(e)) ? static_cast<int32_t>(in.pairs[e]) : static_cast<int32_t>(in.num_atoms);
}

template <typename scalar_t, typename index_t, typename shift_t>
__global__ void forward_kernel(Inputs<scalar_t, index_t, shift_t> in, const scalar_t* __restrict__ info,
                               const scalar_t* __restrict__ table, int64_t n, int64_t M, const int64_t* __restrict__ order,
                               const int64_t* __restrict__ offsets, scalar_t* __restrict__ out,
                               unsigned long long* __restrict__ counts, unsigned long long* __restrict__ scratch) {
  const Grid<scalar_t> grid = tabulate::make_grid(info, n);
  // Shared: per chunk edge, its table block offset, t and R^[0..3].
  extern __shared__ unsigned char shared_raw[];
  int64_t* block_offset = reinterpret_cast<int64_t*>(shared_raw);
  scalar_t* t_of = reinterpret_cast<scalar_t*>(block_offset + blockDim.x);
  scalar_t* rhat = t_of + blockDim.x;  // [blockDim, 4]
  unsigned long long worst = 0;        // 0: no edge seen
  for (int64_t i = blockIdx.x; i < in.num_atoms; i += gridDim.x) {
    const int64_t begin = offsets[i], end = offsets[i + 1];
    for (int64_t chunk = begin; chunk < end; chunk += blockDim.x) {
      const int64_t k = chunk + threadIdx.x;
      if (k < end) {
        const int64_t e = order[k];
        Edge<scalar_t> edge;
        in.load(e, edge);
        atomicAdd(counts + i * in.ntypes + in.types[edge.j], 1ull);
        const scalar_t s_hat = edge.rhat[0];
        const int cls = env_tabulate::range_class(grid, s_hat);
        if (cls > 0) atomicAdd(scratch + cls - 1, 1ull);
        if (s_hat == s_hat) {
          const unsigned long long key = (static_cast<unsigned long long>(ordered_bits(static_cast<float>(s_hat))) << 32) |
                                         (0xFFFFFFFFull - static_cast<unsigned long long>(e));
          worst = key > worst ? key : worst;
        }
        int64_t idx;
        scalar_t t;
        bool clamped;
        tabulate::locate(grid, s_hat, idx, t, clamped);
        block_offset[threadIdx.x] = (edge.table * n + idx) * M * 6;
        t_of[threadIdx.x] = t;
        for (int c = 0; c < 4; ++c) rhat[4 * threadIdx.x + c] = edge.rhat[c];
      }
      __syncthreads();
      const int64_t len = end - chunk < blockDim.x ? end - chunk : blockDim.x;
      for (int64_t m = threadIdx.x; m < M; m += blockDim.x) {
        scalar_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
        for (int64_t q = 0; q < len; ++q) {
          scalar_t g, dg;
          tabulate::polynomial(table + block_offset[q] + 6 * m, t_of[q], g, dg);
          acc0 += g * rhat[4 * q];
          acc1 += g * rhat[4 * q + 1];
          acc2 += g * rhat[4 * q + 2];
          acc3 += g * rhat[4 * q + 3];
        }
        scalar_t* o = out + (i * M + m) * 4;
        o[0] += acc0;
        o[1] += acc1;
        o[2] += acc2;
        o[3] += acc3;
      }
      __syncthreads();  // the chunk's shared rows are read before the next chunk overwrites them
    }
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    const unsigned long long other = __shfl_down_sync(0xffffffffu, worst, offset);
    worst = other > worst ? other : worst;
  }
  if (threadIdx.x % 32 == 0 && worst != 0) atomicMax(scratch + 2, worst);
}

// stats [5] from the scratch counters and the worst key (one thread).
template <typename scalar_t, typename index_t, typename shift_t>
__global__ void finalize_kernel(Inputs<scalar_t, index_t, shift_t> in, const unsigned long long* __restrict__ scratch,
                                double* __restrict__ stats) {
  stats[env_tabulate::kStatOutside] = static_cast<double>(scratch[0]);
  stats[env_tabulate::kStatBeyond] = static_cast<double>(scratch[1]);
  if (scratch[2] == 0) {
    stats[env_tabulate::kStatWorst] = -CUDART_INF;
    stats[env_tabulate::kStatCenter] = -1.0;
    stats[env_tabulate::kStatNeighbor] = -1.0;
    return;
  }
  const int64_t e = static_cast<int64_t>(0xFFFFFFFFull - (scratch[2] & 0xFFFFFFFFull));
  Edge<scalar_t> edge;
  in.load(e, edge);
  stats[env_tabulate::kStatWorst] = static_cast<double>(edge.rhat[0]);
  stats[env_tabulate::kStatCenter] = static_cast<double>(edge.i);
  stats[env_tabulate::kStatNeighbor] = static_cast<double>(edge.j);
}

template <typename scalar_t>
__device__ __forceinline__ scalar_t warp_all_sum(scalar_t v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <typename scalar_t, typename index_t, typename shift_t>
__global__ void backward_kernel(Inputs<scalar_t, index_t, shift_t> in, const scalar_t* __restrict__ info,
                                const scalar_t* __restrict__ table, int64_t n, int64_t M, const int64_t* __restrict__ num_pairs,
                                const scalar_t* __restrict__ grad_output, scalar_t* __restrict__ grad_pos,
                                scalar_t* __restrict__ grad_box) {
  const Grid<scalar_t> grid = tabulate::make_grid(info, n);
  const int64_t count = valid_count(num_pairs, in.capacity);
  const int lane = threadIdx.x % 32;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x / 32);
  scalar_t box_acc[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t e = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32; e < count; e += warps) {
    if (!in.in_range(e)) continue;  // uniform over the warp
    Edge<scalar_t> edge;
    in.load(e, edge);
    int64_t idx;
    scalar_t t;
    bool clamped;
    tabulate::locate(grid, edge.rhat[0], idx, t, clamped);
    const scalar_t* block = table + (edge.table * n + idx) * M * 6;
    const scalar_t* dT = grad_output + edge.i * M * 4;
    const scalar_t r0 = edge.rhat[0], r1 = edge.rhat[1], r2 = edge.rhat[2], r3 = edge.rhat[3];
    scalar_t ds = 0, d0 = 0, d1 = 0, d2 = 0, d3 = 0;
    for (int64_t m = lane; m < M; m += 32) {
      scalar_t g, dg;
      tabulate::polynomial(block + 6 * m, t, g, dg);
      const scalar_t* gm = dT + 4 * m;
      ds += dg * (gm[0] * r0 + gm[1] * r1 + gm[2] * r2 + gm[3] * r3);
      d0 += g * gm[0];
      d1 += g * gm[1];
      d2 += g * gm[2];
      d3 += g * gm[3];
    }
    ds = warp_all_sum(ds);
    d0 = warp_all_sum(d0);
    d1 = warp_all_sum(d1);
    d2 = warp_all_sum(d2);
    d3 = warp_all_sum(d3);
    if (lane == 0) {
      const scalar_t d_rhat[4] = {d0 + (clamped ? scalar_t(0) : ds), d1, d2, d3};  // s^ = R^[0] feeds both
      scalar_t gv[3];
      in.backward(edge, d_rhat, gv);
      for (int c = 0; c < 3; ++c) {
        atomicAdd(grad_pos + 3 * edge.j + c, gv[c]);
        atomicAdd(grad_pos + 3 * edge.i + c, -gv[c]);
      }
      if (in.box != nullptr)
        for (int a = 0; a < 3; ++a)
          for (int b = 0; b < 3; ++b) box_acc[3 * a + b] += static_cast<scalar_t>(in.shifts[3 * e + a]) * gv[b];
    }
  }
  if (lane == 0 && in.box != nullptr)
    for (int k = 0; k < 9; ++k)
      if (box_acc[k] != scalar_t(0)) atomicAdd(grad_box + k, box_acc[k]);
}

struct Contiguous {
  at::Tensor pos, box, pairs, shifts, types, davg, dstd, table, info;
};

Contiguous contiguous_inputs(const at::Tensor& positions, const c10::optional<at::Tensor>& box, const at::Tensor& pairs,
                             const at::Tensor& shifts, const at::Tensor& types, const at::Tensor& davg, const at::Tensor& dstd,
                             const at::Tensor& table, const at::Tensor& table_info) {
  TORCH_CHECK(pairs.size(1) <= static_cast<int64_t>(std::numeric_limits<uint32_t>::max()) &&
                  positions.size(0) < static_cast<int64_t>(std::numeric_limits<int32_t>::max()),
              kOp, ": at most 2^32 pair slots and 2^31 atoms are supported on CUDA");
  return {positions.contiguous(), env_tabulate::has_box(box) ? box->contiguous() : at::Tensor(), pairs.contiguous(),
          shifts.contiguous(), types.contiguous(), davg.contiguous(), dstd.contiguous(), table.contiguous(),
          table_info.to(positions.device(), positions.scalar_type()).contiguous()};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> env_tabulate_cuda(const at::Tensor& positions, const c10::optional<at::Tensor>& box,
                                                                 const at::Tensor& pairs, const at::Tensor& shifts,
                                                                 const at::Tensor& num_pairs, const at::Tensor& types,
                                                                 const at::Tensor& davg, const at::Tensor& dstd, const at::Tensor& table,
                                                                 const at::Tensor& table_info, double rcut_smth, double rcut,
                                                                 bool type_one_side) {
  env_tabulate::check_inputs(kOp, positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info, rcut_smth, rcut,
                             type_one_side);
  const c10::cuda::CUDAGuard guard(positions.device());
  const Contiguous c = contiguous_inputs(positions, box, pairs, shifts, types, davg, dstd, table, table_info);
  const int64_t N = positions.size(0), M = table.size(2), n = table.size(1), capacity = pairs.size(1);
  at::Tensor out = at::zeros({N, M, 4}, positions.options());
  at::Tensor counts = at::zeros({N, davg.size(0)}, positions.options().dtype(at::kLong));
  at::Tensor stats = at::empty({env_tabulate::kNumStats}, positions.options().dtype(at::kDouble));
  at::Tensor scratch = at::zeros({3}, positions.options().dtype(at::kLong));  // outside, beyond, worst key
  const at::Tensor num = num_pairs.reshape({1}).contiguous();
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), kOp, [&] {
    env_tabulate::dispatch_index_types(pairs, shifts, [&](auto index_tag, auto shift_tag) {
      using index_t = decltype(index_tag);
      using shift_t = decltype(shift_tag);
      const auto in = env_tabulate::raw_inputs<scalar_t, index_t, shift_t>(c.pos, c.box, c.pairs, c.shifts, c.types, c.davg, c.dstd,
                                                                           rcut_smth, rcut, type_one_side);
      unsigned long long* scratch_ptr = reinterpret_cast<unsigned long long*>(scratch.mutable_data_ptr<int64_t>());
      if (N > 0 && capacity > 0) {
        at::Tensor keys = at::empty({capacity}, positions.options().dtype(at::kInt));
        keys_kernel<<<blocks_for(capacity, 256, 65535), 256, 0, stream>>>(in, num.const_data_ptr<int64_t>(),
                                                                          keys.mutable_data_ptr<int32_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        auto [sorted, order] = at::sort(keys, /*stable=*/true, /*dim=*/0, /*descending=*/false);
        keys = at::Tensor();
        const at::Tensor offsets = at::searchsorted(sorted, at::arange(N + 1, sorted.options())).contiguous();
        sorted = at::Tensor();
        const size_t shared = kForwardThreads * (sizeof(int64_t) + 5 * sizeof(scalar_t));
        forward_kernel<<<std::min<int64_t>(N, 65535), kForwardThreads, shared, stream>>>(
            in, c.info.const_data_ptr<scalar_t>(), c.table.const_data_ptr<scalar_t>(), n, M, order.const_data_ptr<int64_t>(),
            offsets.const_data_ptr<int64_t>(), out.mutable_data_ptr<scalar_t>(),
            reinterpret_cast<unsigned long long*>(counts.mutable_data_ptr<int64_t>()), scratch_ptr);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
      finalize_kernel<<<1, 1, 0, stream>>>(in, scratch_ptr, stats.mutable_data_ptr<double>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {out, counts, stats};
}

std::tuple<at::Tensor, at::Tensor> env_tabulate_backward_cuda(const at::Tensor& positions, const c10::optional<at::Tensor>& box,
                                                              const at::Tensor& pairs, const at::Tensor& shifts,
                                                              const at::Tensor& num_pairs, const at::Tensor& types,
                                                              const at::Tensor& davg, const at::Tensor& dstd, const at::Tensor& table,
                                                              const at::Tensor& table_info, double rcut_smth, double rcut,
                                                              bool type_one_side, const at::Tensor& grad_output) {
  env_tabulate::check_inputs(kBackwardOp, positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info, rcut_smth,
                             rcut, type_one_side);
  env_tabulate::check_grad_output(kBackwardOp, positions, table, grad_output);
  const c10::cuda::CUDAGuard guard(positions.device());
  const Contiguous c = contiguous_inputs(positions, box, pairs, shifts, types, davg, dstd, table, table_info);
  const at::Tensor dT = grad_output.contiguous();
  const int64_t N = positions.size(0), M = table.size(2), n = table.size(1), capacity = pairs.size(1);
  at::Tensor grad_pos = at::zeros({N, 3}, positions.options());
  at::Tensor grad_box = at::zeros({3, 3}, positions.options());
  if (N == 0 || capacity == 0) return {grad_pos, grad_box};
  const at::Tensor num = num_pairs.reshape({1}).contiguous();
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), kBackwardOp, [&] {
    env_tabulate::dispatch_index_types(pairs, shifts, [&](auto index_tag, auto shift_tag) {
      using index_t = decltype(index_tag);
      using shift_t = decltype(shift_tag);
      const auto in = env_tabulate::raw_inputs<scalar_t, index_t, shift_t>(c.pos, c.box, c.pairs, c.shifts, c.types, c.davg, c.dstd,
                                                                           rcut_smth, rcut, type_one_side);
      backward_kernel<<<blocks_for(capacity, kBackwardThreads / 32, kBackwardMaxBlocks), kBackwardThreads, 0, stream>>>(
          in, c.info.const_data_ptr<scalar_t>(), c.table.const_data_ptr<scalar_t>(), n, M, num.const_data_ptr<int64_t>(),
          dT.const_data_ptr<scalar_t>(), grad_pos.mutable_data_ptr<scalar_t>(), grad_box.mutable_data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {grad_pos, grad_box};
}

}  // namespace

TORCH_LIBRARY_IMPL(openmmnnp, CUDA, m) {
  m.impl("env_tabulate", &env_tabulate_cuda);
  m.impl("env_tabulate_backward", &env_tabulate_backward_cuda);
}

}  // namespace openmmnnp
