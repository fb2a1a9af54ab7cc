// Autograd of openmmnnp::tabulate_fusion (device independent: the backward op dispatches to the CPU or
// CUDA kernel). Gradients flow to s_hat and r_hat only (the table is a constant of the compressed
// model); first derivatives only.
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace openmmnnp {
namespace tabulate_fusion {
namespace {

class TabulateFusionFunction : public torch::autograd::Function<TabulateFusionFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& table,
                            const at::Tensor& table_info, const at::Tensor& s_hat, const at::Tensor& r_hat,
                            const at::Tensor& center, const at::Tensor& table_index, int64_t num_atoms) {
    TORCH_CHECK(!table.requires_grad() && !table_info.requires_grad(),
                "openmmnnp::tabulate_fusion: gradients with respect to the table are not supported; pass it detached");
    ctx->save_for_backward({table, table_info, s_hat, r_hat, center, table_index});
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmmnnp::tabulate_fusion", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const at::Tensor&, const at::Tensor&, int64_t)>();
    return op.call(table, table_info, s_hat, r_hat, center, table_index, num_atoms);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    // create_graph=True runs backward with grad mode on; the backward op has no derivative of its own.
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "openmmnnp::tabulate_fusion: double backward (create_graph=True) is not supported; the op provides "
                "first derivatives (forces) only");
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmmnnp::tabulate_fusion_backward", "")
                         .typed<std::tuple<at::Tensor, at::Tensor>(
                             const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                             const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
    auto [ds, dr] = op.call(saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], grads[0]);
    return {at::Tensor(), at::Tensor(), ds, dr, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor tabulate_fusion_autograd(const at::Tensor& table, const at::Tensor& table_info, const at::Tensor& s_hat,
                                    const at::Tensor& r_hat, const at::Tensor& center, const at::Tensor& table_index,
                                    int64_t num_atoms) {
  return TabulateFusionFunction::apply(table, table_info, s_hat, r_hat, center, table_index, num_atoms);
}

}  // namespace
}  // namespace tabulate_fusion

TORCH_LIBRARY_IMPL(openmmnnp, Autograd, m) { m.impl("tabulate_fusion", &tabulate_fusion::tabulate_fusion_autograd); }

}  // namespace openmmnnp
