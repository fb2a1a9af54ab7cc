// Meta (fake) kernels of openmmnnp::se3_attention_*: output shapes from input shapes alone.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <vector>

#include "se3_attention/se3_attention_checks.h"

namespace openmmnnp {
namespace se3 {
namespace {

using Grads = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

Dims check(const char* op, const at::Tensor& x, const at::Tensor& y, const at::Tensor& ew, at::TensorList mlp,
           const at::Tensor& center, const at::Tensor& neighbor, const at::Tensor& cgi, const at::Tensor& cgv) {
  return check_inputs(op, x, y, ew, std::vector<at::Tensor>(mlp.begin(), mlp.end()), center, neighbor, cgi, cgv);
}

at::Tensor scores_meta(const at::Tensor& queries, const at::Tensor& x, const at::Tensor& y, const at::Tensor& ew,
                       at::TensorList mlp, const at::Tensor& center, const at::Tensor& neighbor, const at::Tensor& cgi,
                       const at::Tensor& cgv, int64_t heads) {
  const Dims d = check("openmmnnp::se3_attention_scores", x, y, ew, mlp, center, neighbor, cgi, cgv);
  return at::empty({d.E, heads}, x.options());
}

Grads scores_backward_meta(const at::Tensor& queries, const at::Tensor& x, const at::Tensor& y, const at::Tensor& ew,
                           at::TensorList mlp, const at::Tensor& center, const at::Tensor& neighbor,
                           const at::Tensor& cgi, const at::Tensor& cgv, int64_t, const at::Tensor&) {
  check("openmmnnp::se3_attention_scores_backward", x, y, ew, mlp, center, neighbor, cgi, cgv);
  return {at::empty_like(queries), at::empty_like(x), at::empty_like(y), at::empty_like(ew)};
}

at::Tensor messages_meta(const at::Tensor& attention, const at::Tensor& x, const at::Tensor& y, const at::Tensor& ew,
                         at::TensorList mlp, const at::Tensor& center, const at::Tensor& neighbor,
                         const at::Tensor& cgi, const at::Tensor& cgv) {
  check("openmmnnp::se3_attention_messages", x, y, ew, mlp, center, neighbor, cgi, cgv);
  return at::empty_like(x);
}

Grads messages_backward_meta(const at::Tensor& attention, const at::Tensor& x, const at::Tensor& y,
                             const at::Tensor& ew, at::TensorList mlp, const at::Tensor& center,
                             const at::Tensor& neighbor, const at::Tensor& cgi, const at::Tensor& cgv,
                             const at::Tensor&) {
  check("openmmnnp::se3_attention_messages_backward", x, y, ew, mlp, center, neighbor, cgi, cgv);
  return {at::empty_like(attention), at::empty_like(x), at::empty_like(y), at::empty_like(ew)};
}

}  // namespace
}  // namespace se3

TORCH_LIBRARY_IMPL(openmmnnp, Meta, m) {
  m.impl("se3_attention_scores", &se3::scores_meta);
  m.impl("se3_attention_scores_backward", &se3::scores_backward_meta);
  m.impl("se3_attention_messages", &se3::messages_meta);
  m.impl("se3_attention_messages_backward", &se3::messages_backward_meta);
}

}  // namespace openmmnnp
