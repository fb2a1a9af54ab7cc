// Argument checks of openmmnnp::scale, shared by the CPU, CUDA and Meta kernels.
#pragma once

#include <ATen/ATen.h>

namespace openmmnnp {
namespace scale {

inline void check_inputs(const at::Tensor& x) {
  TORCH_CHECK(x.is_floating_point(), "openmmnnp::scale: x must be a floating-point tensor, got ", x.scalar_type());
}

}  // namespace scale
}  // namespace openmmnnp
