// CUDA kernel of openmmnnp::scale (math in scale.h, schema in registration.cpp): a grid-stride loop
// over the elements.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/cuda_grid.h"
#include "reference/scale/scale.h"
#include "reference/scale/scale_checks.h"

namespace openmmnnp {
namespace scale {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

template <typename scalar_t>
__global__ void scale_kernel(const scalar_t* __restrict__ in, scalar_t* __restrict__ out, scalar_t factor, int64_t n) {
  for (int64_t k = grid_first(); k < n; k += grid_stride()) out[k] = scaled(in[k], factor);
}

at::Tensor scale_cuda(const at::Tensor& x, double factor) {
  check_inputs(x);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  at::Tensor y = at::empty_like(xc);
  const int64_t n = xc.numel();
  if (n == 0) return y;
  AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "openmmnnp::scale", [&] {
    scale_kernel<scalar_t><<<blocks_for(n, kThreads, kMaxBlocks), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        xc.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), static_cast<scalar_t>(factor), n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return y;
}

}  // namespace
}  // namespace scale

TORCH_LIBRARY_IMPL(openmmnnp, CUDA, m) { m.impl("scale", &scale::scale_cuda); }

}  // namespace openmmnnp
