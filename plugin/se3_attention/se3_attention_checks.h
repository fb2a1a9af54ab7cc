// Shape and dtype checks of openmmnnp::se3_attention_scores/_messages (and their backward), shared by
// the CPU, CUDA and Meta kernels, so bad input gives the same clear error on every device; and the
// contiguous inputs and raw pointers that the CPU and CUDA kernels both read.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "se3_attention/se3_attention.h"  // the register bounds the checks enforce

namespace openmmnnp {
namespace se3 {

struct Dims {
  int64_t N, C, D, E, P, K, B,
      H;     // atoms, channels, (L+1)^2, edges, paths, coupling entries, radial features, MLP width
  bool mlp;  // low-memory mode: edge weights recomputed from radial features
};

// x [N, C, D], y [E, D], edge_weights [E, P C] (or radial features [E, B] with radial_mlp = [W1 [H, B],
// b1 [H], W2 [P C, H], b2 [P C]]), center/neighbor [E] int64, cg_index [K, 4] int32, cg_value [K].
inline Dims check_inputs(const char* op, const at::Tensor& x, const at::Tensor& y, const at::Tensor& edge_weights,
                         const std::vector<at::Tensor>& radial_mlp, const at::Tensor& center,
                         const at::Tensor& neighbor, const at::Tensor& cg_index, const at::Tensor& cg_value) {
  TORCH_CHECK(x.dim() == 3, op, ": x must be [N, C, D], got ", x.sizes());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op, ": x must be float32 or float64");
  Dims d{x.size(0), x.size(1), x.size(2), y.size(0), 0, cg_index.size(0), 0, 0, !radial_mlp.empty()};
  TORCH_CHECK(d.D >= 1 && d.D <= kMaxDim, op, ": feature dimension D = (L+1)^2 must be 1..", kMaxDim, ", got ", d.D);
  TORCH_CHECK(d.C >= 1, op, ": x needs at least one channel");
  // P C weights per edge: the columns of edge_weights, or the rows of W2 in the low-memory mode
  const int64_t PC = d.mlp ? (radial_mlp.size() == 4 && radial_mlp[2].dim() == 2 ? radial_mlp[2].size(0) : 0)
                           : (edge_weights.dim() == 2 ? edge_weights.size(1) : 0);
  TORCH_CHECK(PC % d.C == 0 && PC / d.C >= 1 && PC / d.C <= kMaxPaths, op,
              ": the edge weights must hold P C values, 1 <= P <= ", kMaxPaths, ", for C = ", d.C, " channels; got ",
              PC);
  d.P = PC / d.C;
  TORCH_CHECK(y.dim() == 2 && y.size(1) == d.D, op, ": y must be [E, ", d.D, "], got ", y.sizes());
  for (const at::Tensor* t : {&y, &edge_weights, &cg_value}) {
    TORCH_CHECK(t->scalar_type() == x.scalar_type(), op, ": y, edge_weights and cg_value must have x's dtype");
    TORCH_CHECK(t->device() == x.device(), op, ": all tensors must be on one device");
  }
  for (const at::Tensor* t : {&center, &neighbor}) {
    TORCH_CHECK(t->scalar_type() == at::kLong && t->dim() == 1 && t->size(0) == d.E, op,
                ": center and neighbor must be int64 [E] with E = ", d.E);
    TORCH_CHECK(t->device() == x.device(), op, ": all tensors must be on one device");
  }
  TORCH_CHECK(cg_index.scalar_type() == at::kInt && cg_index.dim() == 2 && cg_index.size(1) == 4 &&
                  cg_value.dim() == 1 && cg_value.size(0) == d.K && cg_index.device() == x.device(),
              op, ": cg_index must be int32 [K, 4] and cg_value [K] on x's device");
  if (!d.mlp) {
    TORCH_CHECK(edge_weights.dim() == 2 && edge_weights.size(0) == d.E && edge_weights.size(1) == PC, op,
                ": edge_weights must be [E, P C] = [", d.E, ", ", PC, "], got ", edge_weights.sizes());
  } else {
    TORCH_CHECK(radial_mlp.size() == 4, op, ": radial_mlp must be [W1, b1, W2, b2] or empty");
    const at::Tensor &W1 = radial_mlp[0], &b1 = radial_mlp[1], &W2 = radial_mlp[2], &b2 = radial_mlp[3];
    TORCH_CHECK(W1.dim() == 2, op, ": W1 must be [H, B]");
    d.H = W1.size(0);
    d.B = W1.size(1);
    TORCH_CHECK(d.H >= 1 && d.H <= kMaxHidden && d.B >= 1 && d.B <= kMaxRadial, op,
                ": in the low-memory mode the radial MLP "
                "must be 1..",
                kMaxHidden, " wide on 1..", kMaxRadial, " radial features, got ", d.H, " and ", d.B);
    TORCH_CHECK(b1.dim() == 1 && b1.size(0) == d.H && W2.dim() == 2 && W2.size(0) == PC && W2.size(1) == d.H &&
                    b2.dim() == 1 && b2.size(0) == PC,
                op, ": radial MLP shapes must be W1 [H, B], b1 [H], W2 [P C, H], b2 [P C] with P C = ", PC);
    TORCH_CHECK(edge_weights.dim() == 2 && edge_weights.size(0) == d.E && edge_weights.size(1) == d.B, op,
                ": with a radial MLP, edge_weights are the radial features [E, B] = [", d.E, ", ", d.B, "]");
    for (const at::Tensor& t : radial_mlp)
      TORCH_CHECK(t.scalar_type() == x.scalar_type() && t.device() == x.device(), op,
                  ": radial MLP tensors must have x's dtype and device");
  }
  return d;
}

// Channels per head: heads must divide the channels.
inline int64_t check_heads(const char* op, const Dims& d, int64_t heads) {
  TORCH_CHECK(heads >= 1 && d.C % heads == 0, op, ": heads must divide the ", d.C, " channels, got ", heads);
  return d.C / heads;
}

// attention [E, heads] with x's dtype and device; returns the channels per head.
inline int64_t check_attention(const char* op, const at::Tensor& attention, const Dims& d, const at::Tensor& x) {
  TORCH_CHECK(attention.dim() == 2 && attention.size(0) == d.E, op, ": attention must be [E, heads], got ",
              attention.sizes());
  TORCH_CHECK(attention.scalar_type() == x.scalar_type() && attention.device() == x.device(), op,
              ": attention must have x's dtype and device");
  return check_heads(op, d, attention.size(1));
}

inline void check_same(const char* op, const char* name, const at::Tensor& t, at::IntArrayRef sizes,
                       const at::Tensor& x) {
  TORCH_CHECK(t.sizes() == sizes, op, ": ", name, " must be ", sizes, ", got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == x.scalar_type() && t.device() == x.device(), op, ": ", name,
              " must have x's dtype and device");
}

// The inputs every kernel reads, contiguous and checked.
struct Contiguous {
  at::Tensor x, y, ew, center, neighbor, cgi, cgv;
  std::vector<at::Tensor> mlp;
  Dims d;
};

inline Contiguous contiguous_inputs(const char* op, const at::Tensor& x, const at::Tensor& y, const at::Tensor& ew,
                                    at::TensorList mlp, const at::Tensor& center, const at::Tensor& neighbor,
                                    const at::Tensor& cgi, const at::Tensor& cgv) {
  Contiguous in{x.contiguous(),
                y.contiguous(),
                ew.contiguous(),
                center.contiguous(),
                neighbor.contiguous(),
                cgi.contiguous(),
                cgv.contiguous(),
                {},
                {}};
  for (const at::Tensor& t : mlp) in.mlp.push_back(t.contiguous());
  in.d = check_inputs(op, in.x, in.y, in.ew, in.mlp, in.center, in.neighbor, in.cgi, in.cgv);
  return in;
}

// Raw pointers of the inputs (passed by value to CUDA kernels).
template <typename T>
struct Pointers {
  Dims d;
  const T *x, *y, *ew, *cgv;  // ew: edge weights [E, P C] or radial features [E, B]
  const int32_t* cgi;
  const int64_t *center, *neighbor;
  const T *W1, *b1, *W2, *b2;  // radial MLP (low-memory mode), else null
};

template <typename T>
Pointers<T> pointers(const Contiguous& in) {
  Pointers<T> p{in.d,
                in.x.const_data_ptr<T>(),
                in.y.const_data_ptr<T>(),
                in.ew.const_data_ptr<T>(),
                in.cgv.const_data_ptr<T>(),
                in.cgi.const_data_ptr<int32_t>(),
                in.center.const_data_ptr<int64_t>(),
                in.neighbor.const_data_ptr<int64_t>(),
                nullptr,
                nullptr,
                nullptr,
                nullptr};
  if (in.d.mlp) {
    p.W1 = in.mlp[0].const_data_ptr<T>();
    p.b1 = in.mlp[1].const_data_ptr<T>();
    p.W2 = in.mlp[2].const_data_ptr<T>();
    p.b2 = in.mlp[3].const_data_ptr<T>();
  }
  return p;
}

}  // namespace se3
}  // namespace openmmnnp
