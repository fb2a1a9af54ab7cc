// Meta (fake) kernels of openmmnnp::env_tabulate(_backward): output shapes follow from the input
// shapes alone, so tracing and compilation know them without reading the pair list.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "env_tabulate/env_tabulate.h"
#include "env_tabulate/env_tabulate_checks.h"

namespace openmmnnp {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> env_tabulate_meta(const at::Tensor& positions,
                                                                 const c10::optional<at::Tensor>& box,
                                                                 const at::Tensor& pairs, const at::Tensor& shifts,
                                                                 const at::Tensor& num_pairs, const at::Tensor& types,
                                                                 const at::Tensor& davg, const at::Tensor& dstd,
                                                                 const at::Tensor& table, const at::Tensor& table_info,
                                                                 double rcut_smth, double rcut, bool type_one_side) {
  env_tabulate::check_inputs("openmmnnp::env_tabulate", positions, box, pairs, shifts, num_pairs, types, davg, dstd,
                             table, table_info, rcut_smth, rcut, type_one_side);
  return {at::empty({positions.size(0), table.size(2), 4}, positions.options()),
          at::empty({positions.size(0), davg.size(0)}, positions.options().dtype(at::kLong)),
          at::empty({env_tabulate::kNumStats}, positions.options().dtype(at::kDouble))};
}

std::tuple<at::Tensor, at::Tensor> env_tabulate_backward_meta(
    const at::Tensor& positions, const c10::optional<at::Tensor>& box, const at::Tensor& pairs,
    const at::Tensor& shifts, const at::Tensor& num_pairs, const at::Tensor& types, const at::Tensor& davg,
    const at::Tensor& dstd, const at::Tensor& table, const at::Tensor& table_info, double rcut_smth, double rcut,
    bool type_one_side, const at::Tensor& grad_output) {
  const char* op = "openmmnnp::env_tabulate_backward";
  env_tabulate::check_inputs(op, positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info,
                             rcut_smth, rcut, type_one_side);
  env_tabulate::check_grad_output(op, positions, table, grad_output);
  return {at::empty({positions.size(0), 3}, positions.options()), at::empty({3, 3}, positions.options())};
}

}  // namespace

TORCH_LIBRARY_IMPL(openmmnnp, Meta, m) {
  m.impl("env_tabulate", &env_tabulate_meta);
  m.impl("env_tabulate_backward", &env_tabulate_backward_meta);
}

}  // namespace openmmnnp
