// The one registration point of openmm-nnp's torch ops: every schema is declared here,
// the device implementations register themselves with TORCH_LIBRARY_IMPL next to their code.
#include <torch/library.h>

TORCH_LIBRARY(openmmnnp, m) {
  // Smoke-test op: y = factor * x. Exists so the build, the CPU/CUDA dispatch and the
  // TorchScript -> TorchForce path are tested end to end by something trivially checkable.
  m.def("scale(Tensor x, float factor) -> Tensor");
  // Cell-list neighbour search (plugin/neighbors/neighbors.h): fixed-capacity pair list,
  // integer periodic shifts and the true pair count, on device, never read by the op.
  m.def("neighbor_pairs(Tensor positions, float cutoff, Tensor? box, int max_pairs, bool full) -> (Tensor, Tensor, Tensor)");
}
