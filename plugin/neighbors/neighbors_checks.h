// Argument checks of openmmnnp::neighbor_pairs that need no tensor data (shared by every kernel,
// so they never synchronise a device).
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>

namespace openmmnnp {
namespace neighbors {

inline void check_arguments(const at::Tensor& positions, double cutoff, const c10::optional<at::Tensor>& box,
                            int64_t max_pairs) {
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 3,
              "openmmnnp::neighbor_pairs: positions must have shape [N, 3], got ", positions.sizes());
  TORCH_CHECK(positions.scalar_type() == at::kFloat || positions.scalar_type() == at::kDouble,
              "openmmnnp::neighbor_pairs: positions must be float32 or float64, got ", positions.scalar_type());
  TORCH_CHECK(std::isfinite(cutoff) && cutoff > 0,
              "openmmnnp::neighbor_pairs: cutoff must be positive and finite, got ", cutoff);
  TORCH_CHECK(positions.size(0) <= INT32_MAX,
              "openmmnnp::neighbor_pairs: at most 2^31 - 1 atoms (pairs are int32), got ", positions.size(0));
  TORCH_CHECK(max_pairs >= 0,
              "openmmnnp::neighbor_pairs: max_pairs must be >= 0 (the Python wrapper resolves -1), got ", max_pairs);
  if (box.has_value()) {
    TORCH_CHECK(box->dim() == 2 && box->size(0) == 3 && box->size(1) == 3,
                "openmmnnp::neighbor_pairs: box must have shape [3, 3] (rows = box vectors), got ", box->sizes());
    TORCH_CHECK(box->is_floating_point(), "openmmnnp::neighbor_pairs: box must be floating point, got ",
                box->scalar_type());
    TORCH_CHECK(box->device() == positions.device(), "openmmnnp::neighbor_pairs: box is on ", box->device(),
                " but positions are on ", positions.device());
  }
}

}  // namespace neighbors
}  // namespace openmmnnp
