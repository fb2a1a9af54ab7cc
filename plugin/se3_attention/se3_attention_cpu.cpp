// CPU kernels of openmmnnp::se3_attention_scores/_messages and their backward (math in
// se3_attention.h, the functions the CUDA kernels call; schemas in registration.cpp, autograd in
// se3_attention_autograd.cpp). Neither a key k_e nor a value v_e is ever
// stored: each is built in registers for one (edge, channel), used and dropped, and rebuilt in the
// backward. So the per-edge memory of a layer is its inputs: the edge weights [E, P C] (fused mode)
// or nothing but the shared radial features (low-memory mode, weights recomputed by the MLP).
//
// Parallel decomposition: at::parallel_for over edges; sums into nodes (messages, d q, d x) go into
// one private copy per thread, reduced at the end, so there are no races or atomics.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "se3_attention/se3_attention.h"
#include "se3_attention/se3_attention_checks.h"

namespace openmmnnp {
namespace se3 {
namespace {

// The shared checks plus the range checks that need the data (CPU only: a kernel cannot raise).
Contiguous prepare(const char* op, const at::Tensor& x, const at::Tensor& y, const at::Tensor& ew, at::TensorList mlp,
                   const at::Tensor& center, const at::Tensor& neighbor, const at::Tensor& cgi, const at::Tensor& cgv) {
  Contiguous in = contiguous_inputs(op, x, y, ew, mlp, center, neighbor, cgi, cgv);
  const int32_t* idx = in.cgi.const_data_ptr<int32_t>();
  for (int64_t n = 0; n < in.d.K; ++n)
    TORCH_CHECK(idx[4 * n] >= 0 && idx[4 * n] < in.d.D && idx[4 * n + 1] >= 0 && idx[4 * n + 1] < in.d.D &&
                    idx[4 * n + 2] >= 0 && idx[4 * n + 2] < in.d.D && idx[4 * n + 3] >= 0 && idx[4 * n + 3] < in.d.P,
                op, ": coupling entry ", n, " is out of range for D = ", in.d.D, " and P = ", in.d.P);
  const int64_t* c = in.center.const_data_ptr<int64_t>();
  const int64_t* nb = in.neighbor.const_data_ptr<int64_t>();
  for (int64_t e = 0; e < in.d.E; ++e)
    TORCH_CHECK(c[e] >= 0 && c[e] < in.d.N && nb[e] >= 0 && nb[e] < in.d.N, op, ": edge ", e, " joins atoms ", c[e],
                " and ", nb[e], ", out of range for ", in.d.N, " atoms");
  return in;
}

// One private [N, C, D] sum per thread (a single thread writes straight into its row).
class NodeSums {
 public:
  NodeSums(const at::Tensor& like, int64_t N, int64_t C, int64_t D)
      : sums_(at::zeros({at::get_num_threads(), N, C, D}, like.options())), size_(N * C * D) {}
  template <typename T>
  T* mine() {
    return sums_.mutable_data_ptr<T>() + at::get_thread_num() * size_;
  }
  at::Tensor total() const { return sums_.size(0) == 1 ? sums_[0] : sums_.sum(0); }

 private:
  at::Tensor sums_;
  int64_t size_;
};

// Per-thread scratch of one edge, all channels at once in [D, C] / [P, C] layouts (channel innermost,
// see se3_attention.h): the neighbour's features transposed, the key or value, its gradient, and the
// edge weights, read in place ([E, P C] rows) or, in the low-memory mode, recomputed by the MLP.
template <typename T>
class EdgeScratch {
 public:
  explicit EdgeScratch(const Pointers<T>& p)
      : p_(p),
        xt(p.d.D * p.d.C),
        kv(p.d.D * p.d.C),
        dkv(p.d.D * p.d.C),
        dxt(p.d.D * p.d.C),
        wbuf(p.d.mlp ? p.d.P * p.d.C : 0),
        dwbuf(wbuf.size()),
        pre_(p.d.H),
        hidden_(p.d.H),
        dhidden_(p.d.H) {}

  // Loads edge e: x_j transposed into xt, the weights into w. Then kv = its key or value.
  void start(int64_t e) {
    const Dims& d = p_.d;
    e_ = e;
    const T* xj = p_.x + p_.neighbor[e] * d.C * d.D;
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t a = 0; a < d.D; ++a) xt[a * d.C + c] = xj[c * d.D + a];
    if (!d.mlp) {
      w = p_.ew + e * d.P * d.C;
    } else {
      mlp_hidden(p_.W1, p_.b1, d.H, d.B, p_.ew + e * d.B, pre_.data(), hidden_.data());
      for (int64_t q = 0; q < d.P * d.C; ++q) wbuf[q] = mlp_output(p_.W2, p_.b2, d.H, q, hidden_.data());
      w = wbuf.data();
    }
    std::fill(kv.begin(), kv.end(), T(0));
    product(p_.cgi, p_.cgv, d.K, xt.data(), d.C, p_.y + e * d.D, w, d.C, kv.data(), d.C, d.C);
  }

  // Backward of kv for dkv: d y into grad_y's row, d x_j into gx (a [N, C, D] sum), d weights into
  // grad_ew's row (or, low-memory mode, through the MLP into the radial features' row).
  void backward(T* grad_y, T* grad_ew, T* gx) {
    const Dims& d = p_.d;
    T* dw = d.mlp ? dwbuf.data() : grad_ew + e_ * d.P * d.C;
    if (d.mlp) std::fill(dwbuf.begin(), dwbuf.end(), T(0));
    std::fill(dxt.begin(), dxt.end(), T(0));
    product_backward(p_.cgi, p_.cgv, d.K, xt.data(), d.C, p_.y + e_ * d.D, w, d.C, dkv.data(), d.C, d.C, dw, dxt.data(),
                     grad_y + e_ * d.D);
    T* gxj = gx + p_.neighbor[e_] * d.C * d.D;
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t a = 0; a < d.D; ++a) gxj[c * d.D + a] += dxt[a * d.C + c];
    if (d.mlp) {
      std::fill(dhidden_.begin(), dhidden_.end(), T(0));
      for (int64_t q = 0; q < d.P * d.C; ++q) mlp_output_backward(p_.W2, d.H, q, dwbuf[q], dhidden_.data());
      mlp_radial_backward(p_.W1, d.H, d.B, pre_.data(), dhidden_.data(), grad_ew + e_ * d.B);
    }
  }

 private:
  const Pointers<T>& p_;
  int64_t e_ = 0;

 public:
  std::vector<T> xt, kv, dkv, dxt;  // [D, C]
  const T* w = nullptr;             // [P, C]

 private:
  std::vector<T> wbuf, dwbuf, pre_, hidden_, dhidden_;
};

constexpr int64_t kGrain = 64;

at::Tensor scores_cpu(const at::Tensor& queries, const at::Tensor& x, const at::Tensor& y,
                      const at::Tensor& edge_weights, at::TensorList radial_mlp, const at::Tensor& center,
                      const at::Tensor& neighbor, const at::Tensor& cg_index, const at::Tensor& cg_value,
                      int64_t heads) {
  const char* op = "openmmnnp::se3_attention_scores";
  Contiguous in = prepare(op, x, y, edge_weights, radial_mlp, center, neighbor, cg_index, cg_value);
  const Dims d = in.d;
  check_same(op, "queries", queries, in.x.sizes(), in.x);
  const int64_t per_head = check_heads(op, d, heads);
  const at::Tensor q = queries.contiguous();
  at::Tensor scores = at::zeros({d.E, heads}, in.x.options());
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "openmmnnp::se3_attention", [&] {
    const Pointers<scalar_t> p = pointers<scalar_t>(in);
    const scalar_t* qp = q.const_data_ptr<scalar_t>();
    scalar_t* sp = scores.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, d.E, kGrain, [&](int64_t begin, int64_t end) {
      EdgeScratch<scalar_t> s(p);
      for (int64_t e = begin; e < end; ++e) {
        s.start(e);
        const scalar_t* qi = qp + p.center[e] * d.C * d.D;
        for (int64_t c = 0; c < d.C; ++c)
          sp[e * heads + c / per_head] += channel_dot(qi + c * d.D, 1, s.kv.data() + c, d.C, d.D);
      }
    });
  });
  return scores;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> scores_backward_cpu(
    const at::Tensor& queries, const at::Tensor& x, const at::Tensor& y, const at::Tensor& edge_weights,
    at::TensorList radial_mlp, const at::Tensor& center, const at::Tensor& neighbor, const at::Tensor& cg_index,
    const at::Tensor& cg_value, int64_t heads, const at::Tensor& grad_scores) {
  const char* op = "openmmnnp::se3_attention_scores_backward";
  Contiguous in = prepare(op, x, y, edge_weights, radial_mlp, center, neighbor, cg_index, cg_value);
  const Dims d = in.d;
  check_same(op, "queries", queries, in.x.sizes(), in.x);
  const int64_t per_head = check_heads(op, d, heads);
  check_same(op, "grad_scores", grad_scores, {d.E, heads}, in.x);
  const at::Tensor q = queries.contiguous(), gs = grad_scores.contiguous();
  NodeSums grad_q(in.x, d.N, d.C, d.D), grad_x(in.x, d.N, d.C, d.D);
  at::Tensor grad_y = at::zeros_like(in.y), grad_ew = at::zeros_like(in.ew);
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "openmmnnp::se3_attention", [&] {
    const Pointers<scalar_t> p = pointers<scalar_t>(in);
    const scalar_t* qp = q.const_data_ptr<scalar_t>();
    const scalar_t* gsp = gs.const_data_ptr<scalar_t>();
    scalar_t* gyp = grad_y.mutable_data_ptr<scalar_t>();
    scalar_t* gwp = grad_ew.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, d.E, kGrain, [&](int64_t begin, int64_t end) {
      EdgeScratch<scalar_t> s(p);
      scalar_t* gq = grad_q.mine<scalar_t>();
      scalar_t* gx = grad_x.mine<scalar_t>();
      for (int64_t e = begin; e < end; ++e) {
        s.start(e);
        const int64_t i = p.center[e];
        const scalar_t* qi = qp + i * d.C * d.D;
        scalar_t* gqi = gq + i * d.C * d.D;
        for (int64_t c = 0; c < d.C; ++c) {
          const scalar_t g = gsp[e * heads + c / per_head];
          channel_add(g, s.kv.data() + c, d.C, gqi + c * d.D, 1, d.D);
          channel_scale(g, qi + c * d.D, 1, s.dkv.data() + c, d.C, d.D);
        }
        s.backward(gyp, gwp, gx);
      }
    });
  });
  return {grad_q.total(), grad_x.total(), grad_y, grad_ew};
}

at::Tensor messages_cpu(const at::Tensor& attention, const at::Tensor& x, const at::Tensor& y,
                        const at::Tensor& edge_weights, at::TensorList radial_mlp, const at::Tensor& center,
                        const at::Tensor& neighbor, const at::Tensor& cg_index, const at::Tensor& cg_value) {
  const char* op = "openmmnnp::se3_attention_messages";
  Contiguous in = prepare(op, x, y, edge_weights, radial_mlp, center, neighbor, cg_index, cg_value);
  const Dims d = in.d;
  const int64_t per_head = check_attention(op, attention, d, in.x), heads = attention.size(1);
  const at::Tensor a = attention.contiguous();
  NodeSums out(in.x, d.N, d.C, d.D);
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "openmmnnp::se3_attention", [&] {
    const Pointers<scalar_t> p = pointers<scalar_t>(in);
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    at::parallel_for(0, d.E, kGrain, [&](int64_t begin, int64_t end) {
      EdgeScratch<scalar_t> s(p);
      scalar_t* sums = out.mine<scalar_t>();
      for (int64_t e = begin; e < end; ++e) {
        bool any = false;  // edges beyond the cutoff (and padding) have zero attention: skip their product
        for (int64_t h = 0; h < heads; ++h) any = any || ap[e * heads + h] != scalar_t(0);
        if (!any) continue;
        s.start(e);
        scalar_t* row = sums + p.center[e] * d.C * d.D;
        for (int64_t c = 0; c < d.C; ++c)
          channel_add(ap[e * heads + c / per_head], s.kv.data() + c, d.C, row + c * d.D, 1, d.D);
      }
    });
  });
  return out.total();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> messages_backward_cpu(
    const at::Tensor& attention, const at::Tensor& x, const at::Tensor& y, const at::Tensor& edge_weights,
    at::TensorList radial_mlp, const at::Tensor& center, const at::Tensor& neighbor, const at::Tensor& cg_index,
    const at::Tensor& cg_value, const at::Tensor& grad_out) {
  const char* op = "openmmnnp::se3_attention_messages_backward";
  Contiguous in = prepare(op, x, y, edge_weights, radial_mlp, center, neighbor, cg_index, cg_value);
  const Dims d = in.d;
  const int64_t per_head = check_attention(op, attention, d, in.x), heads = attention.size(1);
  check_same(op, "grad_out", grad_out, in.x.sizes(), in.x);
  const at::Tensor a = attention.contiguous(), G = grad_out.contiguous();
  NodeSums grad_x(in.x, d.N, d.C, d.D);
  at::Tensor grad_a = at::zeros_like(a), grad_y = at::zeros_like(in.y), grad_ew = at::zeros_like(in.ew);
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "openmmnnp::se3_attention", [&] {
    const Pointers<scalar_t> p = pointers<scalar_t>(in);
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* gp = G.const_data_ptr<scalar_t>();
    scalar_t* gap = grad_a.mutable_data_ptr<scalar_t>();
    scalar_t* gyp = grad_y.mutable_data_ptr<scalar_t>();
    scalar_t* gwp = grad_ew.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, d.E, kGrain, [&](int64_t begin, int64_t end) {
      EdgeScratch<scalar_t> s(p);
      scalar_t* gx = grad_x.mine<scalar_t>();
      for (int64_t e = begin; e < end; ++e) {
        s.start(e);
        const scalar_t* gi = gp + p.center[e] * d.C * d.D;
        for (int64_t c = 0; c < d.C; ++c) {
          const scalar_t ae = ap[e * heads + c / per_head];
          gap[e * heads + c / per_head] += channel_dot(gi + c * d.D, 1, s.kv.data() + c, d.C, d.D);
          channel_scale(ae, gi + c * d.D, 1, s.dkv.data() + c, d.C, d.D);
        }
        s.backward(gyp, gwp, gx);
      }
    });
  });
  return {grad_a, grad_x.total(), grad_y, grad_ew};
}

}  // namespace
}  // namespace se3

TORCH_LIBRARY_IMPL(openmmnnp, CPU, m) {
  m.impl("se3_attention_scores", &se3::scores_cpu);
  m.impl("se3_attention_scores_backward", &se3::scores_backward_cpu);
  m.impl("se3_attention_messages", &se3::messages_cpu);
  m.impl("se3_attention_messages_backward", &se3::messages_backward_cpu);
}

}  // namespace openmmnnp
