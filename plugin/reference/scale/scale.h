// openmmnnp::scale, a reference op: y = factor * x. It exists so that the build, the CPU/CUDA/Meta
// dispatch, autograd and the TorchScript -> TorchForce path are tested end to end by something
// trivially checkable, and it is the smallest example of an op's files (docs/architecture.md,
// "Adding an op"). Its per-element math, shared by the CPU and CUDA kernels:
#pragma once

#include "common/host_device.h"

namespace openmmnnp {
namespace scale {

template <typename T>
OPENMMNNP_HD T scaled(T x, T factor) {
  return factor * x;
}

}  // namespace scale
}  // namespace openmmnnp
