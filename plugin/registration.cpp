// The one registration point of openmm-nnp's torch ops: every schema is declared here, the device
// implementations (CPU, CUDA, Meta) and the autograd kernel register themselves with
// TORCH_LIBRARY_IMPL next to their code, one folder per op (docs/architecture.md, "Adding an op").
#include <torch/library.h>

#include "checks/flag_registry.h"

TORCH_LIBRARY(openmmnnp, m) {
  // Cell-list neighbour search (plugin/neighbors/neighbors.h): fixed-capacity pair list,
  // integer periodic shifts and the true pair count, on device, never read by the op.
  m.def(
      "neighbor_pairs(Tensor positions, float cutoff, Tensor? box, int max_pairs, bool full) "
      "-> (Tensor, Tensor, Tensor)");
  // Compressed se_e2_a from the pair list (plugin/env_tabulate/env_tabulate.h): T [N, M, 4] = raw sum over the
  // num_pairs valid pairs of G(s^) (x) R^ with the environment row computed in the kernel, per-type neighbour
  // counts [N, ntypes] and table-range statistics [5]; differentiable with respect to positions and box.
  m.def(
      "env_tabulate(Tensor positions, Tensor? box, Tensor pairs, Tensor shifts, Tensor num_pairs, Tensor types, "
      "Tensor davg, Tensor dstd, Tensor table, Tensor table_info, float rcut_smth, float rcut, bool type_one_side) "
      "-> (Tensor, Tensor, Tensor)");
  m.def(
      "env_tabulate_backward(Tensor positions, Tensor? box, Tensor pairs, Tensor shifts, Tensor num_pairs, "
      "Tensor types, Tensor davg, Tensor dstd, Tensor table, Tensor table_info, float rcut_smth, float rcut, "
      "bool type_one_side, Tensor grad_output) -> (Tensor, Tensor)");
  // se_e2_a descriptor (plugin/descriptor/descriptor.h): d [N, M * axis_neuron] = flatten(t t[:, :axis_neuron]^T) per
  // atom from t [N, M, 4]; differentiable once with respect to t.
  m.def("se_a_descriptor(Tensor t, int axis_neuron) -> Tensor");
  m.def("se_a_descriptor_backward(Tensor t, Tensor grad_output, int axis_neuron) -> Tensor");
  // SE(3) attention (plugin/se3_attention/se3_attention.h): per-edge keys and values of a channel-wise tensor-field
  // convolution built in registers, never stored. scores [E, heads] = <q_center, k_edge> per head; messages
  // [N, C, D] = sum over a centre's edges of attention x v_edge. edge_weights are [E, P C] radial weights, or the
  // radial features [E, B] when radial_mlp = [W1, b1, W2, b2] recomputes the weights in the kernel (low-memory mode).
  m.def(
      "se3_attention_scores(Tensor queries, Tensor x, Tensor y, Tensor edge_weights, Tensor[] radial_mlp, "
      "Tensor center, Tensor neighbor, Tensor cg_index, Tensor cg_value, int heads) -> Tensor");
  m.def(
      "se3_attention_scores_backward(Tensor queries, Tensor x, Tensor y, Tensor edge_weights, Tensor[] radial_mlp, "
      "Tensor center, Tensor neighbor, Tensor cg_index, Tensor cg_value, int heads, Tensor grad_scores) "
      "-> (Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "se3_attention_messages(Tensor attention, Tensor x, Tensor y, Tensor edge_weights, Tensor[] radial_mlp, "
      "Tensor center, Tensor neighbor, Tensor cg_index, Tensor cg_value) -> Tensor");
  m.def(
      "se3_attention_messages_backward(Tensor attention, Tensor x, Tensor y, Tensor edge_weights, "
      "Tensor[] radial_mlp, Tensor center, Tensor neighbor, Tensor cg_index, Tensor cg_value, Tensor grad_out) "
      "-> (Tensor, Tensor, Tensor, Tensor)");
  // Reference ops (plugin/reference/, python/openmmnnp/ops/reference.py): oracles and smoke tests, not
  // used by models.
  // Smoke-test op: y = factor * x. Exists so the build, the CPU/CUDA dispatch and the
  // TorchScript -> TorchForce path are tested end to end by something trivially checkable.
  m.def("scale(Tensor x, float factor) -> Tensor");
  // Compressed embedding from precomputed environment rows (plugin/reference/tabulate_fusion/): T[i] = sum over
  // edges e of atom i of G_{table_index[e]}(s_hat[e]) (x) r_hat[e], G from polynomial tables; table_index < 0
  // skips the edge. The unfused path that env_tabulate is tested against.
  m.def(
      "tabulate_fusion(Tensor table, Tensor table_info, Tensor s_hat, Tensor r_hat, Tensor center, "
      "Tensor table_index, int num_atoms) -> Tensor");
  m.def(
      "tabulate_fusion_backward(Tensor table, Tensor table_info, Tensor s_hat, Tensor r_hat, Tensor center, "
      "Tensor table_index, Tensor grad_output) -> (Tensor, Tensor)");
  // Overflow flags of running models (plugin/checks/flag_registry.h), read by the MD reporter.
  // Host bookkeeping only: catch-all kernels, valid for every device and inside CUDA-graph capture.
  // CONSERVATIVE alias analysis marks them as having side effects: TorchScript would otherwise
  // drop a call whose results are unused (register_flags returns nothing).
  const auto side_effects = c10::AliasAnalysisKind::CONSERVATIVE;
  m.def(torch::schema("register_flags(Tensor flags, str key) -> ()", side_effects), &openmmnnp::register_flags);
  m.def(torch::schema("registered_flags() -> (str[], Tensor[])", side_effects), &openmmnnp::registered_flags);
  m.def(torch::schema("forget_flags(str key) -> ()", side_effects), &openmmnnp::forget_flags);
}
