// Meta (fake) kernels of openmmnnp::tabulate_fusion(_backward): output shapes follow from the
// input shapes alone, so tracing and compilation know them without evaluating the tables.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "reference/tabulate_fusion/tabulate_fusion_checks.h"

namespace openmmnnp {
namespace tabulate_fusion {
namespace {

at::Tensor tabulate_fusion_meta(const at::Tensor& table, const at::Tensor& table_info, const at::Tensor& s_hat,
                                const at::Tensor& r_hat, const at::Tensor& center, const at::Tensor& table_index,
                                int64_t num_atoms) {
  check_inputs("openmmnnp::tabulate_fusion", table, table_info, s_hat, r_hat, center, table_index);
  check_num_atoms("openmmnnp::tabulate_fusion", num_atoms);
  return at::empty({num_atoms, table.size(2), 4}, s_hat.options());
}

std::tuple<at::Tensor, at::Tensor> tabulate_fusion_backward_meta(const at::Tensor& table, const at::Tensor& table_info,
                                                                 const at::Tensor& s_hat, const at::Tensor& r_hat,
                                                                 const at::Tensor& center,
                                                                 const at::Tensor& table_index,
                                                                 const at::Tensor& /*grad_output*/) {
  check_inputs("openmmnnp::tabulate_fusion_backward", table, table_info, s_hat, r_hat, center, table_index);
  return {at::empty({s_hat.numel()}, s_hat.options()), at::empty({s_hat.numel(), 4}, s_hat.options())};
}

}  // namespace
}  // namespace tabulate_fusion

TORCH_LIBRARY_IMPL(openmmnnp, Meta, m) {
  m.impl("tabulate_fusion", &tabulate_fusion::tabulate_fusion_meta);
  m.impl("tabulate_fusion_backward", &tabulate_fusion::tabulate_fusion_backward_meta);
}

}  // namespace openmmnnp
