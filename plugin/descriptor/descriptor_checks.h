// Argument checks of openmmnnp::se_a_descriptor(_backward), shared by the CPU, CUDA and Meta kernels.
#pragma once

#include <ATen/ATen.h>

namespace openmmnnp {
namespace descriptor {

inline void check_inputs(const char* op, const at::Tensor& t, int64_t axis_neuron) {
  TORCH_CHECK(t.dim() == 3 && t.size(2) == 4, op, ": t must be [N, M, 4], got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, op,
              ": t must be float32 or float64, got ", t.scalar_type());
  TORCH_CHECK(axis_neuron >= 1 && axis_neuron <= t.size(1), op, ": axis_neuron must be in 1..M = ", t.size(1), ", got ",
              axis_neuron);
}

inline void check_grad_output(const char* op, const at::Tensor& t, const at::Tensor& grad_output, int64_t axis_neuron) {
  TORCH_CHECK(
      grad_output.dim() == 2 && grad_output.size(0) == t.size(0) && grad_output.size(1) == t.size(1) * axis_neuron, op,
      ": grad_output must be [N, M * axis_neuron] = [", t.size(0), ", ", t.size(1) * axis_neuron, "], got ",
      grad_output.sizes());
  TORCH_CHECK(grad_output.scalar_type() == t.scalar_type() && grad_output.device() == t.device(), op,
              ": grad_output must have the dtype and device of t (", t.scalar_type(), ", ", t.device(), "), got ",
              grad_output.scalar_type(), ", ", grad_output.device());
}

}  // namespace descriptor
}  // namespace openmmnnp
