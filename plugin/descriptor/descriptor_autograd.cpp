// Autograd of openmmnnp::se_a_descriptor (device independent: the backward op dispatches to the
// CPU or CUDA kernel). First derivatives only, like env_tabulate: compressed models, which use it,
// are for inference; training differentiates the bmm form in models/se_e2_a.py twice.
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace openmmnnp {
namespace descriptor {
namespace {

class DescriptorFunction : public torch::autograd::Function<DescriptorFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& t, int64_t axis) {
    ctx->save_for_backward({t});
    ctx->saved_data["axis"] = axis;
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmmnnp::se_a_descriptor", "")
                         .typed<at::Tensor(const at::Tensor&, int64_t)>();
    return op.call(t, axis);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "openmmnnp::se_a_descriptor: double backward (create_graph=True) is not supported; "
                "the op provides first derivatives (forces) only");
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmmnnp::se_a_descriptor_backward", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t)>();
    const auto saved = ctx->get_saved_variables();
    return {op.call(saved[0], grads[0], ctx->saved_data["axis"].toInt()), at::Tensor()};
  }
};

at::Tensor se_a_descriptor_autograd(const at::Tensor& t, int64_t axis) { return DescriptorFunction::apply(t, axis); }

}  // namespace
}  // namespace descriptor

TORCH_LIBRARY_IMPL(openmmnnp, Autograd, m) { m.impl("se_a_descriptor", &descriptor::se_a_descriptor_autograd); }

}  // namespace openmmnnp
