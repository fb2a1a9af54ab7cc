// Autograd of openmmnnp::se3_attention_scores/_messages (device independent: the backward ops
// dispatch to the CPU or CUDA kernels). First derivatives only: enough for forces; training with a
// force loss (double backward) uses the pure-torch implementation of the same layer.
//
// Gradients flow to queries/attention, x, y and the edge weights (fused mode) or the radial features
// (low-memory mode). The radial MLP's parameters get none: the low-memory mode is for inference, so
// it refuses parameters that require grad rather than return a silently wrong zero.
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <vector>

namespace openmmnnp {
namespace se3 {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The radial MLP travels through autograd as four tensors; without one (fused mode) they are
// empty placeholders (Function::apply rejects undefined tensors).
std::vector<at::Tensor> mlp_list(const at::Tensor& W1, const at::Tensor& b1, const at::Tensor& W2,
                                 const at::Tensor& b2) {
  if (W1.numel() == 0) return {};
  return {W1, b1, W2, b2};
}

void check_mlp(const char* op, at::TensorList mlp) {
  for (const at::Tensor& t : mlp)
    TORCH_CHECK(
        !t.requires_grad(), op,
        ": the low-memory mode gives no gradients with respect to the radial MLP's "
        "parameters (it is for inference); pass them detached, or train with the fused or torch implementation");
}

void check_first_order(const char* op) {
  // create_graph=True runs backward with grad mode on; the backward ops have no derivative of their own.
  TORCH_CHECK(!at::GradMode::is_enabled(), op,
              ": double backward (create_graph=True) is not supported; the op gives first "
              "derivatives (forces) only; train with the torch implementation");
}

at::Tensor undefined() { return at::Tensor(); }

class ScoresFunction : public torch::autograd::Function<ScoresFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& queries, const at::Tensor& x, const at::Tensor& y,
                            const at::Tensor& edge_weights, const at::Tensor& W1, const at::Tensor& b1,
                            const at::Tensor& W2, const at::Tensor& b2, const at::Tensor& center,
                            const at::Tensor& neighbor, const at::Tensor& cg_index, const at::Tensor& cg_value,
                            int64_t heads) {
    const std::vector<at::Tensor> mlp = mlp_list(W1, b1, W2, b2);
    check_mlp("openmmnnp::se3_attention_scores", mlp);
    ctx->save_for_backward({queries, x, y, edge_weights, W1, b1, W2, b2, center, neighbor, cg_index, cg_value});
    ctx->saved_data["heads"] = heads;
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmmnnp::se3_attention_scores", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           at::TensorList, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const at::Tensor&, int64_t)>();
    return op.call(queries, x, y, edge_weights, mlp, center, neighbor, cg_index, cg_value, heads);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    check_first_order("openmmnnp::se3_attention_scores");
    const auto s = ctx->get_saved_variables();
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmmnnp::se3_attention_scores_backward", "")
                         .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
                             const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, at::TensorList,
                             const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t,
                             const at::Tensor&)>();
    auto [gq, gx, gy, gw] = op.call(s[0], s[1], s[2], s[3], mlp_list(s[4], s[5], s[6], s[7]), s[8], s[9], s[10], s[11],
                                    ctx->saved_data["heads"].toInt(), grads[0]);
    return {gq,          gx,          gy,          gw,          undefined(), undefined(), undefined(),
            undefined(), undefined(), undefined(), undefined(), undefined(), undefined()};
  }
};

class MessagesFunction : public torch::autograd::Function<MessagesFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& attention, const at::Tensor& x, const at::Tensor& y,
                            const at::Tensor& edge_weights, const at::Tensor& W1, const at::Tensor& b1,
                            const at::Tensor& W2, const at::Tensor& b2, const at::Tensor& center,
                            const at::Tensor& neighbor, const at::Tensor& cg_index, const at::Tensor& cg_value) {
    const std::vector<at::Tensor> mlp = mlp_list(W1, b1, W2, b2);
    check_mlp("openmmnnp::se3_attention_messages", mlp);
    ctx->save_for_backward({attention, x, y, edge_weights, W1, b1, W2, b2, center, neighbor, cg_index, cg_value});
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmmnnp::se3_attention_messages", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           at::TensorList, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const at::Tensor&)>();
    return op.call(attention, x, y, edge_weights, mlp, center, neighbor, cg_index, cg_value);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    check_first_order("openmmnnp::se3_attention_messages");
    const auto s = ctx->get_saved_variables();
    static auto op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("openmmnnp::se3_attention_messages_backward", "")
            .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
                const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, at::TensorList,
                const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
    auto [ga, gx, gy, gw] =
        op.call(s[0], s[1], s[2], s[3], mlp_list(s[4], s[5], s[6], s[7]), s[8], s[9], s[10], s[11], grads[0]);
    return {ga,          gx,          gy,          gw,          undefined(), undefined(),
            undefined(), undefined(), undefined(), undefined(), undefined(), undefined()};
  }
};

// Unpacks the optional radial MLP [W1, b1, W2, b2] into four tensors (empty placeholders without it).
std::vector<at::Tensor> unpack(const char* op, at::TensorList mlp, const at::Tensor& like) {
  TORCH_CHECK(mlp.empty() || mlp.size() == 4, op, ": radial_mlp must be [W1, b1, W2, b2] or empty, got ", mlp.size(),
              " tensors");
  if (mlp.empty()) {
    const at::Tensor none = at::empty({0}, like.options());
    return {none, none, none, none};
  }
  TORCH_CHECK(mlp[0].numel() > 0, op, ": the radial MLP's W1 is empty");
  return {mlp[0], mlp[1], mlp[2], mlp[3]};
}

at::Tensor scores_autograd(const at::Tensor& queries, const at::Tensor& x, const at::Tensor& y,
                           const at::Tensor& edge_weights, at::TensorList radial_mlp, const at::Tensor& center,
                           const at::Tensor& neighbor, const at::Tensor& cg_index, const at::Tensor& cg_value,
                           int64_t heads) {
  const auto m = unpack("openmmnnp::se3_attention_scores", radial_mlp, x);
  return ScoresFunction::apply(queries, x, y, edge_weights, m[0], m[1], m[2], m[3], center, neighbor, cg_index,
                               cg_value, heads);
}

at::Tensor messages_autograd(const at::Tensor& attention, const at::Tensor& x, const at::Tensor& y,
                             const at::Tensor& edge_weights, at::TensorList radial_mlp, const at::Tensor& center,
                             const at::Tensor& neighbor, const at::Tensor& cg_index, const at::Tensor& cg_value) {
  const auto m = unpack("openmmnnp::se3_attention_messages", radial_mlp, x);
  return MessagesFunction::apply(attention, x, y, edge_weights, m[0], m[1], m[2], m[3], center, neighbor, cg_index,
                                 cg_value);
}

}  // namespace
}  // namespace se3

TORCH_LIBRARY_IMPL(openmmnnp, Autograd, m) {
  m.impl("se3_attention_scores", &se3::scores_autograd);
  m.impl("se3_attention_messages", &se3::messages_autograd);
}

}  // namespace openmmnnp
