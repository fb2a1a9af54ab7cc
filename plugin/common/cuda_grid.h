// How the CUDA kernels spread work over threads, written once: the grid size of a grid-stride
// launch, the loop bounds of one thread (or one warp) in such a launch, and the warp reductions.
// Every kernel is a grid-stride loop, so any grid size is correct and the cap only bounds the
// launch (gridDim.x may not exceed 2^31 - 1, and fewer blocks keep per-block state small).
#pragma once

#include <algorithm>
#include <cstdint>

namespace openmmnnp {

// Enough blocks of per_block work items to cover work, at least one (a launch of zero blocks is an
// error) and at most max_blocks (the grid-stride loops cover the rest).
inline int64_t blocks_for(int64_t work, int64_t per_block, int64_t max_blocks) {
  return std::max<int64_t>(1, std::min<int64_t>((work + per_block - 1) / per_block, max_blocks));
}

#ifdef __CUDACC__
constexpr int kWarpSize = 32;

// First item and stride of this thread in a grid-stride loop over items.
__device__ __forceinline__ int64_t grid_first() { return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; }
__device__ __forceinline__ int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// Same with one item per warp (blockDim.x a multiple of kWarpSize).
__device__ __forceinline__ int64_t grid_first_warp() {
  return blockIdx.x * static_cast<int64_t>(blockDim.x / kWarpSize) + threadIdx.x / kWarpSize;
}
__device__ __forceinline__ int64_t grid_stride_warps() {
  return static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarpSize);
}

// Butterfly all-reduce over the 32 lanes of a full warp: every lane gets combine() of all 32 values,
// in a fixed order (deterministic).
template <typename T, typename Combine>
__device__ __forceinline__ T warp_all_reduce(T v, Combine combine) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v = combine(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  return warp_all_reduce(v, [](T a, T b) { return a + b; });
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
  return warp_all_reduce(v, [](T a, T b) { return a > b ? a : b; });
}
#endif

}  // namespace openmmnnp
