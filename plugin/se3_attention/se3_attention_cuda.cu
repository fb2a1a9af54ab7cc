// CUDA kernels of openmmnnp::se3_attention_scores/_messages and their backward (math and layouts in
// se3_attention.h, the same functions the CPU kernels call; autograd in se3_attention_autograd.cpp).
//
// A grid-stride loop over (edge, channel) pairs, one per thread at a time: it builds that channel's key or value (D
// numbers) in registers from the neighbour's features, the edge's harmonics and the channel's weights (read from [E, P
// C], or recomputed by the radial MLP in the low-memory mode), uses it and drops it. Sums over channels (scores, d y, d
// radial features) and over edges (messages, d q, d x) are atomics. No host synchronisation and no allocation beyond
// the outputs: safe inside CUDA-graph capture. Edges whose atom indices are out of range are skipped (a kernel cannot
// raise; the CPU op checks them).
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <vector>

#include "common/cuda_grid.h"
#include "se3_attention/se3_attention.h"
#include "se3_attention/se3_attention_checks.h"

namespace openmmnnp {
namespace se3 {
namespace {

// Registers of one (edge, channel): neighbour features, key or value, and in the low-memory mode (MLP)
// the channel's weights per path and the MLP's hidden layer (sized 1 otherwise, so that the fused
// mode's threads reserve no local memory for them).
template <typename T, bool MLP>
struct Lane {
  int64_t e, c, i, j;
  T xjc[kMaxDim], kv[kMaxDim];
  T wl[MLP ? kMaxPaths : 1];
  T pre[MLP ? kMaxHidden : 1];
  T hid[MLP ? kMaxHidden : 1];
  const T* w;  // this channel's weight of path p at w[p ws]
  int64_t ws;
};

// Loads item t = (edge, channel) and builds its key or value; false for an edge whose atoms are out of range.
template <typename T, bool MLP>
__device__ bool load(const Pointers<T>& a, int64_t t, Lane<T, MLP>& l) {
  const Dims& d = a.d;
  l.e = t / d.C;
  l.c = t % d.C;
  l.i = a.center[l.e];
  l.j = a.neighbor[l.e];
  if (l.i < 0 || l.i >= d.N || l.j < 0 || l.j >= d.N) return false;
  const T* x = a.x + (l.j * d.C + l.c) * d.D;
  for (int64_t k = 0; k < d.D; ++k) {
    l.xjc[k] = x[k];
    l.kv[k] = T(0);
  }
  if constexpr (!MLP) {
    l.w = a.ew + l.e * d.P * d.C + l.c;
    l.ws = d.C;
  } else {
    mlp_hidden(a.W1, a.b1, d.H, d.B, a.ew + l.e * d.B, l.pre, l.hid);
    for (int64_t p = 0; p < d.P; ++p) l.wl[p] = mlp_output(a.W2, a.b2, d.H, p * d.C + l.c, l.hid);
    l.w = l.wl;
    l.ws = 1;
  }
  product(a.cgi, a.cgv, d.K, l.xjc, 1, a.y + l.e * d.D, l.w, l.ws, l.kv, 1, 1);
  return true;
}

// Backward of the lane's key or value for dkv [D]: d y, d x_j and d weights (or d radial features).
template <typename T, bool MLP>
__device__ void backward(const Pointers<T>& a, Lane<T, MLP>& l, const T* dkv, T* grad_y, T* grad_x, T* grad_ew) {
  const Dims& d = a.d;
  T dx[kMaxDim], dy[kMaxDim], dwl[MLP ? kMaxPaths : 1];
  for (int64_t k = 0; k < d.D; ++k) dx[k] = dy[k] = T(0);
  // Fused mode: this thread owns its channel's weights of the edge, so it writes their gradient directly.
  T* dw = MLP ? dwl : grad_ew + l.e * d.P * d.C + l.c;
  if constexpr (MLP)
    for (int64_t p = 0; p < d.P; ++p) dwl[p] = T(0);
  product_backward(a.cgi, a.cgv, d.K, l.xjc, 1, a.y + l.e * d.D, l.w, l.ws, dkv, 1, 1, dw, dx, dy);
  for (int64_t k = 0; k < d.D; ++k) {
    atomicAdd(grad_x + (l.j * d.C + l.c) * d.D + k, dx[k]);
    atomicAdd(grad_y + l.e * d.D + k, dy[k]);
  }
  if constexpr (MLP) {  // the channel's share of d radial: linear in d w, so the shares add up
    T* dh = l.hid;      // the hidden values are no longer needed: reuse the registers for d hidden
    for (int64_t h = 0; h < d.H; ++h) dh[h] = T(0);
    for (int64_t p = 0; p < d.P; ++p) mlp_output_backward(a.W2, d.H, p * d.C + l.c, dwl[p], dh);
    T dr[kMaxRadial];
    for (int64_t b = 0; b < d.B; ++b) dr[b] = T(0);
    mlp_radial_backward(a.W1, d.H, d.B, l.pre, dh, dr);
    for (int64_t b = 0; b < d.B; ++b) atomicAdd(grad_ew + l.e * d.B + b, dr[b]);
  }
}

template <typename T, bool MLP>
__global__ void scores_kernel(Pointers<T> a, const T* q, int64_t heads, T* scores) {
  for (int64_t t = grid_first(); t < a.d.E * a.d.C; t += grid_stride()) {
    Lane<T, MLP> l;
    if (!load(a, t, l)) continue;
    const T* qi = q + (l.i * a.d.C + l.c) * a.d.D;
    atomicAdd(scores + l.e * heads + l.c / (a.d.C / heads), channel_dot(qi, 1, l.kv, 1, a.d.D));
  }
}

template <typename T, bool MLP>
__global__ void scores_backward_kernel(Pointers<T> a, const T* q, int64_t heads, const T* grad_scores, T* grad_q,
                                       T* grad_x, T* grad_y, T* grad_ew) {
  for (int64_t t = grid_first(); t < a.d.E * a.d.C; t += grid_stride()) {
    Lane<T, MLP> l;
    if (!load(a, t, l)) continue;
    const T g = grad_scores[l.e * heads + l.c / (a.d.C / heads)];
    const int64_t row = (l.i * a.d.C + l.c) * a.d.D;
    T dk[kMaxDim];
    channel_scale(g, q + row, 1, dk, 1, a.d.D);
    for (int64_t k = 0; k < a.d.D; ++k) atomicAdd(grad_q + row + k, g * l.kv[k]);
    backward(a, l, dk, grad_y, grad_x, grad_ew);
  }
}

template <typename T, bool MLP>
__global__ void messages_kernel(Pointers<T> a, const T* attention, int64_t heads, T* out) {
  for (int64_t t = grid_first(); t < a.d.E * a.d.C; t += grid_stride()) {
    Lane<T, MLP> l;
    if (!load(a, t, l)) continue;
    const T ae = attention[l.e * heads + l.c / (a.d.C / heads)];
    if (ae == T(0)) continue;
    for (int64_t k = 0; k < a.d.D; ++k) atomicAdd(out + (l.i * a.d.C + l.c) * a.d.D + k, ae * l.kv[k]);
  }
}

template <typename T, bool MLP>
__global__ void messages_backward_kernel(Pointers<T> a, const T* attention, int64_t heads, const T* grad_out, T* grad_a,
                                         T* grad_x, T* grad_y, T* grad_ew) {
  for (int64_t t = grid_first(); t < a.d.E * a.d.C; t += grid_stride()) {
    Lane<T, MLP> l;
    if (!load(a, t, l)) continue;
    const int64_t h = l.e * heads + l.c / (a.d.C / heads);
    const T* gi = grad_out + (l.i * a.d.C + l.c) * a.d.D;
    T dv[kMaxDim];
    channel_scale(attention[h], gi, 1, dv, 1, a.d.D);
    atomicAdd(grad_a + h, channel_dot(gi, 1, l.kv, 1, a.d.D));
    backward(a, l, dv, grad_y, grad_x, grad_ew);
  }
}

constexpr int kThreads = 128;
constexpr int64_t kMaxBlocks = 65535;

int64_t blocks(const Dims& d) { return blocks_for(d.E * d.C, kThreads, kMaxBlocks); }

at::Tensor scores_cuda(const at::Tensor& queries, const at::Tensor& x, const at::Tensor& y,
                       const at::Tensor& edge_weights, at::TensorList radial_mlp, const at::Tensor& center,
                       const at::Tensor& neighbor, const at::Tensor& cg_index, const at::Tensor& cg_value,
                       int64_t heads) {
  const char* op = "openmmnnp::se3_attention_scores";
  const c10::cuda::CUDAGuard guard(x.device());
  Contiguous in = contiguous_inputs(op, x, y, edge_weights, radial_mlp, center, neighbor, cg_index, cg_value);
  check_same(op, "queries", queries, in.x.sizes(), in.x);
  check_heads(op, in.d, heads);
  const at::Tensor q = queries.contiguous();
  at::Tensor scores = at::zeros({in.d.E, heads}, in.x.options());
  if (in.d.E == 0) return scores;
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "openmmnnp::se3_attention", [&] {
    if (in.d.mlp)
      scores_kernel<scalar_t, true><<<blocks(in.d), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          pointers<scalar_t>(in), q.const_data_ptr<scalar_t>(), heads, scores.mutable_data_ptr<scalar_t>());
    else
      scores_kernel<scalar_t, false><<<blocks(in.d), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          pointers<scalar_t>(in), q.const_data_ptr<scalar_t>(), heads, scores.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return scores;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> scores_backward_cuda(
    const at::Tensor& queries, const at::Tensor& x, const at::Tensor& y, const at::Tensor& edge_weights,
    at::TensorList radial_mlp, const at::Tensor& center, const at::Tensor& neighbor, const at::Tensor& cg_index,
    const at::Tensor& cg_value, int64_t heads, const at::Tensor& grad_scores) {
  const char* op = "openmmnnp::se3_attention_scores_backward";
  const c10::cuda::CUDAGuard guard(x.device());
  Contiguous in = contiguous_inputs(op, x, y, edge_weights, radial_mlp, center, neighbor, cg_index, cg_value);
  check_same(op, "queries", queries, in.x.sizes(), in.x);
  check_heads(op, in.d, heads);
  check_same(op, "grad_scores", grad_scores, {in.d.E, heads}, in.x);
  const at::Tensor q = queries.contiguous(), gs = grad_scores.contiguous();
  at::Tensor grad_q = at::zeros_like(in.x), grad_x = at::zeros_like(in.x);
  at::Tensor grad_y = at::zeros_like(in.y), grad_ew = at::zeros_like(in.ew);
  if (in.d.E == 0) return {grad_q, grad_x, grad_y, grad_ew};
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "openmmnnp::se3_attention", [&] {
    if (in.d.mlp)
      scores_backward_kernel<scalar_t, true><<<blocks(in.d), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          pointers<scalar_t>(in), q.const_data_ptr<scalar_t>(), heads, gs.const_data_ptr<scalar_t>(),
          grad_q.mutable_data_ptr<scalar_t>(), grad_x.mutable_data_ptr<scalar_t>(), grad_y.mutable_data_ptr<scalar_t>(),
          grad_ew.mutable_data_ptr<scalar_t>());
    else
      scores_backward_kernel<scalar_t, false><<<blocks(in.d), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          pointers<scalar_t>(in), q.const_data_ptr<scalar_t>(), heads, gs.const_data_ptr<scalar_t>(),
          grad_q.mutable_data_ptr<scalar_t>(), grad_x.mutable_data_ptr<scalar_t>(), grad_y.mutable_data_ptr<scalar_t>(),
          grad_ew.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {grad_q, grad_x, grad_y, grad_ew};
}

at::Tensor messages_cuda(const at::Tensor& attention, const at::Tensor& x, const at::Tensor& y,
                         const at::Tensor& edge_weights, at::TensorList radial_mlp, const at::Tensor& center,
                         const at::Tensor& neighbor, const at::Tensor& cg_index, const at::Tensor& cg_value) {
  const char* op = "openmmnnp::se3_attention_messages";
  const c10::cuda::CUDAGuard guard(x.device());
  Contiguous in = contiguous_inputs(op, x, y, edge_weights, radial_mlp, center, neighbor, cg_index, cg_value);
  check_attention(op, attention, in.d, in.x);
  const int64_t heads = attention.size(1);
  const at::Tensor a = attention.contiguous();
  at::Tensor out = at::zeros_like(in.x);
  if (in.d.E == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "openmmnnp::se3_attention", [&] {
    if (in.d.mlp)
      messages_kernel<scalar_t, true><<<blocks(in.d), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          pointers<scalar_t>(in), a.const_data_ptr<scalar_t>(), heads, out.mutable_data_ptr<scalar_t>());
    else
      messages_kernel<scalar_t, false><<<blocks(in.d), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          pointers<scalar_t>(in), a.const_data_ptr<scalar_t>(), heads, out.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> messages_backward_cuda(
    const at::Tensor& attention, const at::Tensor& x, const at::Tensor& y, const at::Tensor& edge_weights,
    at::TensorList radial_mlp, const at::Tensor& center, const at::Tensor& neighbor, const at::Tensor& cg_index,
    const at::Tensor& cg_value, const at::Tensor& grad_out) {
  const char* op = "openmmnnp::se3_attention_messages_backward";
  const c10::cuda::CUDAGuard guard(x.device());
  Contiguous in = contiguous_inputs(op, x, y, edge_weights, radial_mlp, center, neighbor, cg_index, cg_value);
  check_attention(op, attention, in.d, in.x);
  check_same(op, "grad_out", grad_out, in.x.sizes(), in.x);
  const int64_t heads = attention.size(1);
  const at::Tensor a = attention.contiguous(), G = grad_out.contiguous();
  at::Tensor grad_a = at::zeros_like(a), grad_x = at::zeros_like(in.x);
  at::Tensor grad_y = at::zeros_like(in.y), grad_ew = at::zeros_like(in.ew);
  if (in.d.E == 0) return {grad_a, grad_x, grad_y, grad_ew};
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "openmmnnp::se3_attention", [&] {
    if (in.d.mlp)
      messages_backward_kernel<scalar_t, true><<<blocks(in.d), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          pointers<scalar_t>(in), a.const_data_ptr<scalar_t>(), heads, G.const_data_ptr<scalar_t>(),
          grad_a.mutable_data_ptr<scalar_t>(), grad_x.mutable_data_ptr<scalar_t>(), grad_y.mutable_data_ptr<scalar_t>(),
          grad_ew.mutable_data_ptr<scalar_t>());
    else
      messages_backward_kernel<scalar_t, false><<<blocks(in.d), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          pointers<scalar_t>(in), a.const_data_ptr<scalar_t>(), heads, G.const_data_ptr<scalar_t>(),
          grad_a.mutable_data_ptr<scalar_t>(), grad_x.mutable_data_ptr<scalar_t>(), grad_y.mutable_data_ptr<scalar_t>(),
          grad_ew.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {grad_a, grad_x, grad_y, grad_ew};
}

}  // namespace
}  // namespace se3

TORCH_LIBRARY_IMPL(openmmnnp, CUDA, m) {
  m.impl("se3_attention_scores", &se3::scores_cuda);
  m.impl("se3_attention_scores_backward", &se3::scores_backward_cuda);
  m.impl("se3_attention_messages", &se3::messages_cuda);
  m.impl("se3_attention_messages_backward", &se3::messages_backward_cuda);
}

}  // namespace openmmnnp
