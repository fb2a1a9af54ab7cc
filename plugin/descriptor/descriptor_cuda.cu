// CUDA kernels of openmmnnp::se_a_descriptor (math in descriptor.h, the functions the CPU kernels call;
// schemas in registration.cpp, autograd in descriptor_autograd.cpp). Forward: one thread per output
// entry D[n, m, a]; backward: one thread per row dE/dt[n, m, :]. No atomics (deterministic), no host
// synchronisation.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/cuda_grid.h"
#include "descriptor/descriptor.h"
#include "descriptor/descriptor_checks.h"

namespace openmmnnp {
namespace descriptor {
namespace {

constexpr const char* kOp = "openmmnnp::se_a_descriptor";
constexpr const char* kBackwardOp = "openmmnnp::se_a_descriptor_backward";
constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

// The head of an atom read in place: element (a, c) of t at 4 a + c (as = 4, cs = 1).
template <typename scalar_t>
__global__ void forward_kernel(const scalar_t* __restrict__ t, int64_t N, int64_t M, int64_t axis,
                               scalar_t* __restrict__ d) {
  for (int64_t k = grid_first(); k < N * M * axis; k += grid_stride()) {
    const int64_t n = k / (M * axis), m = (k / axis) % M, a = k % axis;
    const scalar_t* tn = t + n * M * 4;
    forward_row(tn + 4 * m, tn, 4, 1, a, a + 1, d + k);
  }
}

template <typename scalar_t>
__global__ void backward_kernel(const scalar_t* __restrict__ t, const scalar_t* __restrict__ g, int64_t N, int64_t M,
                                int64_t axis, scalar_t* __restrict__ grad_t) {
  for (int64_t k = grid_first(); k < N * M; k += grid_stride()) {
    const int64_t n = k / M, m = k % M;
    const scalar_t* tn = t + n * M * 4;
    const scalar_t* gn = g + n * M * axis;
    scalar_t s[4];
    head_gradient(gn + m * axis, tn, 4, 1, axis, s);
    if (m < axis) {
      scalar_t tail[4] = {0, 0, 0, 0};
      for (int64_t r = 0; r < M; ++r)
        tail_gradient(gn + r * axis, tn + 4 * r, m, m + 1, tail, tail + 1, tail + 2, tail + 3);
      for (int c = 0; c < 4; ++c) s[c] += tail[c];
    }
    for (int c = 0; c < 4; ++c) grad_t[4 * k + c] = s[c];
  }
}

at::Tensor se_a_descriptor_cuda(const at::Tensor& t_in, int64_t axis) {
  check_inputs(kOp, t_in, axis);
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
  check_inputs(kBackwardOp, t_in, axis);
  check_grad_output(kBackwardOp, t_in, grad_in, axis);
  const c10::cuda::CUDAGuard guard(t_in.device());
  const at::Tensor t = t_in.contiguous();
  const at::Tensor g = grad_in.contiguous();
  const int64_t N = t.size(0), M = t.size(1);
  at::Tensor grad_t = at::empty_like(t);
  if (grad_t.numel() == 0) return grad_t;
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), kBackwardOp, [&] {
    backward_kernel<<<blocks_for(N * M, kThreads, kMaxBlocks), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        t.const_data_ptr<scalar_t>(), g.const_data_ptr<scalar_t>(), N, M, axis, grad_t.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_t;
}

}  // namespace
}  // namespace descriptor

TORCH_LIBRARY_IMPL(openmmnnp, CUDA, m) {
  m.impl("se_a_descriptor", &descriptor::se_a_descriptor_cuda);
  m.impl("se_a_descriptor_backward", &descriptor::se_a_descriptor_backward_cuda);
}

}  // namespace openmmnnp
