// CUDA kernel of openmmnnp::scale (see registration.cpp); autograd lives in scale_cpu.cpp.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

namespace openmmnnp {

template <typename scalar_t>
__global__ void scale_kernel(const scalar_t* __restrict__ in, scalar_t* __restrict__ out, scalar_t factor, int64_t n) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n; k += (int64_t)gridDim.x * blockDim.x)
    out[k] = factor * in[k];
}

static at::Tensor scale_cuda(const at::Tensor& x, double factor) {
  TORCH_CHECK(x.is_floating_point(), "openmmnnp::scale: x must be a floating-point tensor, got ", x.scalar_type());
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor xc = x.contiguous();
  at::Tensor y = at::empty_like(xc);
  const int64_t n = xc.numel();
  if (n == 0) return y;
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((n + threads - 1) / threads, 65535));
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "openmmnnp::scale", [&] {
    scale_kernel<scalar_t><<<blocks, threads, 0, stream>>>(xc.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), static_cast<scalar_t>(factor), n);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return y;
}

TORCH_LIBRARY_IMPL(openmmnnp, CUDA, m) { m.impl("scale", &scale_cuda); }

}  // namespace openmmnnp
