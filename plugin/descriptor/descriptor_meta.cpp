// Meta (fake) kernels of openmmnnp::se_a_descriptor(_backward): shapes from the input shapes.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "descriptor/descriptor_checks.h"

namespace openmmnnp {
namespace descriptor {
namespace {

at::Tensor se_a_descriptor_meta(const at::Tensor& t, int64_t axis) {
  check_inputs("openmmnnp::se_a_descriptor", t, axis);
  return at::empty({t.size(0), t.size(1) * axis}, t.options());
}

at::Tensor se_a_descriptor_backward_meta(const at::Tensor& t, const at::Tensor& grad_output, int64_t axis) {
  const char* op = "openmmnnp::se_a_descriptor_backward";
  check_inputs(op, t, axis);
  check_grad_output(op, t, grad_output, axis);
  return at::empty_like(t);
}

}  // namespace
}  // namespace descriptor

TORCH_LIBRARY_IMPL(openmmnnp, Meta, m) {
  m.impl("se_a_descriptor", &descriptor::se_a_descriptor_meta);
  m.impl("se_a_descriptor_backward", &descriptor::se_a_descriptor_backward_meta);
}

}  // namespace openmmnnp
