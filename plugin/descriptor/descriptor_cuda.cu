// CUDA kernels of openmmnnp::se_a_descriptor (math in descriptor.h, schemas in registration.cpp):
// one thread per output entry, no atomics (deterministic), no host synchronisation.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>


#include "cuda_grid.h"
#include "descriptor/descriptor.h"
#include "descriptor/descriptor_checks.h"

namespace openmmnnp {
namespace {

constexpr const char* kOp = "openmmnnp::se_a_descriptor";
constexpr const char* kBackwardOp = "openmmnnp::se_a_descriptor_backward";

constexpr int kThreads = 256;

constexpr int64_t kMaxBlocks = 65535;

template <typename scalar_t>
__global__ void forward_kernel(const scalar_t* __restrict__ t, int64_t N, int64_t M, int64_t axis, scalar_t* __restrict__ d) {
  const int64_t total = N * M * axis;
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < total; k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = k / (M * axis), m = (k / axis) % M, a = k % axis;
    d[k] = descriptor::entry(t + n * M * 4, m, a);
  }
}

template <typename scalar_t>
__global__ void backward_kernel(const scalar_t* __restrict__ t, const scalar_t* __restrict__ g, int64_t N, int64_t M, int64_t axis,
                                scalar_t* __restrict__ grad_t) {
  const int64_t total = N * M * 4;
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < total; k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = k / (M * 4), m = (k / 4) % M;
    grad_t[k] = descriptor::grad_entry(t + n * M * 4, g + n * M * axis, M, axis, m, static_cast<int>(k % 4));
  }
}

at::Tensor se_a_descriptor_cuda(const at::Tensor& t_in, int64_t axis) {
  descriptor::check_inputs(kOp, t_in, axis);
  const c10::cuda::CUDAGuard guard(t_in.device());
  const at::Tensor t = t_in.contiguous();
  const int64_t N = t.size(0), M = t.size(1);
  at::Tensor d = at::empty({N, M * axis}, t.options());
  if (d.numel() == 0) return d;
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), kOp, [&] {
    forward_kernel<<<blocks_for(d.numel(), kThreads, kMaxBlocks), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        t.const_data_ptr<scalar_t>(), N, M, axis, d.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return d;
}

at::Tensor se_a_descriptor_backward_cuda(const at::Tensor& t_in, const at::Tensor& grad_in, int64_t axis) {
  descriptor::check_inputs(kBackwardOp, t_in, axis);
  descriptor::check_grad_output(kBackwardOp, t_in, grad_in, axis);
  const c10::cuda::CUDAGuard guard(t_in.device());
  const at::Tensor t = t_in.contiguous();
  const at::Tensor g = grad_in.contiguous();
  const int64_t N = t.size(0), M = t.size(1);
  at::Tensor grad_t = at::empty_like(t);
  if (grad_t.numel() == 0) return grad_t;
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), kBackwardOp, [&] {
    backward_kernel<<<blocks_for(grad_t.numel(), kThreads, kMaxBlocks), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        t.const_data_ptr<scalar_t>(), g.const_data_ptr<scalar_t>(), N, M, axis, grad_t.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_t;
}

}  // namespace

TORCH_LIBRARY_IMPL(openmmnnp, CUDA, m) {
  m.impl("se_a_descriptor", &se_a_descriptor_cuda);
  m.impl("se_a_descriptor_backward", &se_a_descriptor_backward_cuda);
}

}  // namespace openmmnnp
