// Meta (fake) kernel of openmmnnp::scale: the output has the input's shape.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "reference/scale/scale_checks.h"

namespace openmmnnp {
namespace scale {
namespace {

at::Tensor scale_meta(const at::Tensor& x, double /*factor*/) {
  check_inputs(x);
  return at::empty_like(x, at::MemoryFormat::Contiguous);
}

}  // namespace
}  // namespace scale

TORCH_LIBRARY_IMPL(openmmnnp, Meta, m) { m.impl("scale", &scale::scale_meta); }

}  // namespace openmmnnp
