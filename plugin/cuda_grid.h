// Grid size of the CUDA ops' grid-stride launches, written once: enough blocks of per_block work
// items to cover work, at least one (a launch of zero blocks is an error) and at most max_blocks
// (the kernels' grid-stride loops cover the rest).
#pragma once

#include <algorithm>
#include <cstdint>

namespace openmmnnp {

inline int64_t blocks_for(int64_t work, int64_t per_block, int64_t max_blocks) {
  return std::max<int64_t>(1, std::min<int64_t>((work + per_block - 1) / per_block, max_blocks));
}

}  // namespace openmmnnp
