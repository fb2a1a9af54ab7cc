// Autograd of openmmnnp::scale: d(factor * x)/dx = factor, so the backward is the op itself and works
// on every device.
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace openmmnnp {
namespace scale {
namespace {

class ScaleFunction : public torch::autograd::Function<ScaleFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, double factor) {
    ctx->saved_data["factor"] = factor;
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmmnnp::scale", "")
                         .typed<at::Tensor(const at::Tensor&, double)>();
    return op.call(x, factor);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const double factor = ctx->saved_data["factor"].toDouble();
    return {ScaleFunction::apply(grads[0], factor), at::Tensor()};
  }
};

at::Tensor scale_autograd(const at::Tensor& x, double factor) { return ScaleFunction::apply(x, factor); }

}  // namespace
}  // namespace scale

TORCH_LIBRARY_IMPL(openmmnnp, Autograd, m) { m.impl("scale", &scale::scale_autograd); }

}  // namespace openmmnnp
