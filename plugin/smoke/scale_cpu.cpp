// CPU kernel and autograd formula of openmmnnp::scale (see registration.cpp).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace openmmnnp {

static at::Tensor scale_cpu(const at::Tensor& x, double factor) {
  TORCH_CHECK(x.is_floating_point(), "openmmnnp::scale: x must be a floating-point tensor, got ", x.scalar_type());
  at::Tensor xc = x.contiguous();
  at::Tensor y = at::empty_like(xc);
  AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "openmmnnp::scale", [&] {
    const scalar_t* in = xc.const_data_ptr<scalar_t>();
    scalar_t* out = y.mutable_data_ptr<scalar_t>();
    const scalar_t f = static_cast<scalar_t>(factor);
    at::parallel_for(0, xc.numel(), 4096, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) out[k] = f * in[k];
    });
  });
  return y;
}

// d(factor * x)/dx = factor: the backward is the op itself, so it works on every device.
class ScaleFunction : public torch::autograd::Function<ScaleFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, double factor) {
    ctx->saved_data["factor"] = factor;
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("openmmnnp::scale", "").typed<at::Tensor(const at::Tensor&, double)>();
    return op.call(x, factor);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const double factor = ctx->saved_data["factor"].toDouble();
    return {ScaleFunction::apply(grads[0], factor), at::Tensor()};
  }
};

static at::Tensor scale_autograd(const at::Tensor& x, double factor) { return ScaleFunction::apply(x, factor); }

TORCH_LIBRARY_IMPL(openmmnnp, CPU, m) { m.impl("scale", &scale_cpu); }
TORCH_LIBRARY_IMPL(openmmnnp, Autograd, m) { m.impl("scale", &scale_autograd); }

}  // namespace openmmnnp
