// openmmnnp::se3_attention_scores/_messages: the math shared by the CPU and CUDA kernels, written once
// for host and device: the channel-wise tensor product of one edge, forward and backward, what one
// channel of an edge adds to a score or a message, and the radial MLP of the low-memory mode.
//
//   scores   [E, H]    s[e, h]      = sum_{c in head h, o} q[i, c, o] k_e[c, o]
//   messages [N, C, D] out[i, c, o] = sum_{e of i} a[e, h(c)] v_e[c, o]
// with k_e, v_e the keys and values below.
//
// Features are packed irreps x [N, C, D], D = (L+1)^2. For an edge i <- j with harmonics Y [D] and
// channel-wise weights w [P, C] (one per path p = (l_in, l_f, l_out)), channel c of the edge's
// key or value is
//     k[c, o] = sum over coupling entries n with out[n] = o of  w[p_n, c] g_n x_j[c, a_n] Y[f_n]
// The entries (a, f, o, p, g) are the nonzero real Clebsch-Gordan coefficients of every path,
// packed once by python/openmmnnp/models/kv_convolution.py: index [K, 4] int32, value [K].
//
// Low-memory mode: w is not stored per edge but recomputed from the radial features r [B]:
//     w[p, c] = W2[p C + c, :] . silu(W1 r + b1) + b2[p C + c]
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.h"

namespace openmmnnp {
namespace se3 {

constexpr int kMaxDim = 16;      // (L+1)^2 for L <= 3
constexpr int kMaxPaths = 64;    // parity paths for L <= 3 are far fewer
constexpr int kMaxHidden = 128;  // radial MLP width in the low-memory mode
constexpr int kMaxRadial = 64;   // radial features in the low-memory mode

template <typename T>
OPENMMNNP_HD T sigmoid(T x) {
  return T(1) / (T(1) + exp(-x));
}

// One edge, nc channels at once, channel index c innermost with unit stride (the CPU passes all C
// channels in transposed [D, C] / [P, C] scratch so the loop vectorises; a CUDA thread passes one):
//   out[o os + c] += sum_n g_n y[f_n] w[p_n ws + c] x[a_n xs + c]
template <typename T>
OPENMMNNP_HD void product(const int32_t* index, const T* value, int64_t K, const T* x, int64_t xs, const T* y,
                          const T* w, int64_t ws, T* out, int64_t os, int64_t nc) {
  for (int64_t n = 0; n < K; ++n) {
    const int32_t* e = index + 4 * n;
    const T gy = value[n] * y[e[1]];
    const T* xa = x + e[0] * xs;
    const T* wp = w + e[3] * ws;
    T* oo = out + e[2] * os;
    for (int64_t c = 0; c < nc; ++c) oo[c] += gy * wp[c] * xa[c];
  }
}

// Backward of product for d out (same layout): dw, dx (same strides as w, x) and dy[f] accumulated.
template <typename T>
OPENMMNNP_HD void product_backward(const int32_t* index, const T* value, int64_t K, const T* x, int64_t xs, const T* y,
                                   const T* w, int64_t ws, const T* dout, int64_t os, int64_t nc, T* dw, T* dx, T* dy) {
  for (int64_t n = 0; n < K; ++n) {
    const int32_t* e = index + 4 * n;
    const T g = value[n], yf = y[e[1]];
    const T* xa = x + e[0] * xs;
    const T* wp = w + e[3] * ws;
    const T* go = dout + e[2] * os;
    T* dwp = dw + e[3] * ws;
    T* dxa = dx + e[0] * xs;
    T sum = 0;
    for (int64_t c = 0; c < nc; ++c) {
      const T gw = go[c] * wp[c];
      dwp[c] += g * yf * go[c] * xa[c];
      dxa[c] += g * yf * gw;
      sum += gw * xa[c];
    }
    dy[e[1]] += g * sum;
  }
}

// One channel of one edge, its D entries `s` apart in each array (a CUDA thread holds them in registers,
// s = 1; the CPU's [D, C] scratch has s = C):
// sum_o a[o as] b[o bs]: the channel's share of a score (q . k) and of d attention (dE/dout . v).
template <typename T>
OPENMMNNP_HD T channel_dot(const T* a, int64_t as, const T* b, int64_t bs, int64_t D) {
  T dot = 0;
  for (int64_t o = 0; o < D; ++o) dot += a[o * as] * b[o * bs];
  return dot;
}

// dst[o ds] = f src[o ss]: a channel's d key (= d score x q) or d value (= attention x dE/dout).
template <typename T>
OPENMMNNP_HD void channel_scale(T f, const T* src, int64_t ss, T* dst, int64_t ds, int64_t D) {
  for (int64_t o = 0; o < D; ++o) dst[o * ds] = f * src[o * ss];
}

// dst[o ds] += f src[o ss]: a channel's message (attention x value) and d q (d score x key).
template <typename T>
OPENMMNNP_HD void channel_add(T f, const T* src, int64_t ss, T* dst, int64_t ds, int64_t D) {
  for (int64_t o = 0; o < D; ++o) dst[o * ds] += f * src[o * ss];
}

// Radial MLP layer 1 of one edge: pre = W1 r + b1 [H], hidden = silu(pre) [H]; W1 [H, B].
template <typename T>
OPENMMNNP_HD void mlp_hidden(const T* W1, const T* b1, int64_t H, int64_t B, const T* r, T* pre, T* hidden) {
  for (int64_t h = 0; h < H; ++h) {
    T s = b1[h];
    for (int64_t b = 0; b < B; ++b) s += W1[h * B + b] * r[b];
    pre[h] = s;
    hidden[h] = s * sigmoid(s);
  }
}

// Output q of the MLP's last layer: W2[q, :] . hidden + b2[q]; W2 [P C, H].
template <typename T>
OPENMMNNP_HD T mlp_output(const T* W2, const T* b2, int64_t H, int64_t q, const T* hidden) {
  const T* row = W2 + q * H;
  T s = b2[q];
  for (int64_t h = 0; h < H; ++h) s += row[h] * hidden[h];
  return s;
}

// Backward of mlp_output: d hidden[h] += W2[q, h] d w_q.
template <typename T>
OPENMMNNP_HD void mlp_output_backward(const T* W2, int64_t H, int64_t q, T dwq, T* dhidden) {
  const T* row = W2 + q * H;
  for (int64_t h = 0; h < H; ++h) dhidden[h] += row[h] * dwq;
}

// dr[b] += sum_h W1[h, b] silu'(pre[h]) dhidden[h].
template <typename T>
OPENMMNNP_HD void mlp_radial_backward(const T* W1, int64_t H, int64_t B, const T* pre, const T* dhidden, T* dr) {
  for (int64_t h = 0; h < H; ++h) {
    const T s = sigmoid(pre[h]);
    const T d = dhidden[h] * s * (T(1) + pre[h] * (T(1) - s));
    for (int64_t b = 0; b < B; ++b) dr[b] += W1[h * B + b] * d;
  }
}

}  // namespace se3
}  // namespace openmmnnp
