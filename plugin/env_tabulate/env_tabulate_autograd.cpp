// Autograd of openmmnnp::env_tabulate (device independent: the backward op dispatches to the CPU or
// CUDA kernel). T is differentiable with respect to positions and box; nothing per edge is saved (the
// backward recomputes every edge from the inputs); first derivatives only.
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include "env_tabulate/env_tabulate_checks.h"

namespace openmmnnp {
namespace env_tabulate {
namespace {

constexpr const char* kOp = "openmmnnp::env_tabulate";

class EnvTabulateFunction : public torch::autograd::Function<EnvTabulateFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& positions,
                                                const c10::optional<at::Tensor>& box, const at::Tensor& pairs,
                                                const at::Tensor& shifts, const at::Tensor& num_pairs,
                                                const at::Tensor& types, const at::Tensor& davg, const at::Tensor& dstd,
                                                const at::Tensor& table, const at::Tensor& table_info, double rcut_smth,
                                                double rcut, bool type_one_side) {
    TORCH_CHECK(!table.requires_grad() && !table_info.requires_grad() && !davg.requires_grad() && !dstd.requires_grad(),
                kOp, ": gradients with respect to the table, davg and dstd are not supported; pass them detached");
    const at::Tensor box_or_undefined = has_box(box) ? *box : at::Tensor();
    ctx->save_for_backward(
        {positions, box_or_undefined, pairs, shifts, num_pairs, types, davg, dstd, table, table_info});
    ctx->saved_data["rcut_smth"] = rcut_smth;
    ctx->saved_data["rcut"] = rcut;
    ctx->saved_data["type_one_side"] = type_one_side;
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmmnnp::env_tabulate", "")
                         .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                             const at::Tensor&, const c10::optional<at::Tensor>&, const at::Tensor&, const at::Tensor&,
                             const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                             const at::Tensor&, const at::Tensor&, double, double, bool)>();
    auto [out, counts, stats] = op.call(positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info,
                                        rcut_smth, rcut, type_one_side);
    ctx->mark_non_differentiable({counts, stats});
    return {out, counts, stats};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(
        !at::GradMode::is_enabled(), kOp,
        ": double backward (create_graph=True) is not supported; the op provides first derivatives (forces) only");
    const auto s = ctx->get_saved_variables();
    const c10::optional<at::Tensor> box = s[1].defined() ? c10::optional<at::Tensor>(s[1]) : c10::nullopt;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmmnnp::env_tabulate_backward", "")
                         .typed<std::tuple<at::Tensor, at::Tensor>(
                             const at::Tensor&, const c10::optional<at::Tensor>&, const at::Tensor&, const at::Tensor&,
                             const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                             const at::Tensor&, const at::Tensor&, double, double, bool, const at::Tensor&)>();
    // grads[0] is defined: autograd materialises unused output gradients as zeros.
    auto [grad_pos, grad_box] =
        op.call(s[0], box, s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], ctx->saved_data["rcut_smth"].toDouble(),
                ctx->saved_data["rcut"].toDouble(), ctx->saved_data["type_one_side"].toBool(), grads[0]);
    return {grad_pos,     box.has_value() ? grad_box : at::Tensor(),
            at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> env_tabulate_autograd(
    const at::Tensor& positions, const c10::optional<at::Tensor>& box, const at::Tensor& pairs,
    const at::Tensor& shifts, const at::Tensor& num_pairs, const at::Tensor& types, const at::Tensor& davg,
    const at::Tensor& dstd, const at::Tensor& table, const at::Tensor& table_info, double rcut_smth, double rcut,
    bool type_one_side) {
  auto outputs = EnvTabulateFunction::apply(positions, box, pairs, shifts, num_pairs, types, davg, dstd, table,
                                            table_info, rcut_smth, rcut, type_one_side);
  return {outputs[0], outputs[1], outputs[2]};
}

}  // namespace
}  // namespace env_tabulate

TORCH_LIBRARY_IMPL(openmmnnp, Autograd, m) { m.impl("env_tabulate", &env_tabulate::env_tabulate_autograd); }

}  // namespace openmmnnp
