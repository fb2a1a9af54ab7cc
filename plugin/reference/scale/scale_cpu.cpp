// CPU kernel of openmmnnp::scale (math in scale.h, schema in registration.cpp): elements in parallel.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "reference/scale/scale.h"
#include "reference/scale/scale_checks.h"

namespace openmmnnp {
namespace scale {
namespace {

at::Tensor scale_cpu(const at::Tensor& x, double factor) {
  check_inputs(x);
  const at::Tensor xc = x.contiguous();
  at::Tensor y = at::empty_like(xc);
  AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "openmmnnp::scale", [&] {
    const scalar_t* in = xc.const_data_ptr<scalar_t>();
    scalar_t* out = y.mutable_data_ptr<scalar_t>();
    const scalar_t f = static_cast<scalar_t>(factor);
    at::parallel_for(0, xc.numel(), 4096, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) out[k] = scaled(in[k], f);
    });
  });
  return y;
}

}  // namespace
}  // namespace scale

TORCH_LIBRARY_IMPL(openmmnnp, CPU, m) { m.impl("scale", &scale::scale_cpu); }

}  // namespace openmmnnp
