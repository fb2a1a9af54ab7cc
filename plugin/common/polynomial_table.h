// The compressed embedding's polynomial tables, written once for host and device: the table
// look-up rule, the polynomial evaluation and one edge's G (x) R contribution and its gradient,
// called by the CPU and CUDA kernels of env_tabulate (production) and tabulate_fusion (reference).
//
// Table layout (built by python/openmmnnp/compression/tables.py):
//   table      [num_tables, num_intervals, M, 6]  coefficients (a, b, c, d, e, f) of
//              y(t) = a + b t + c t^2 + d t^3 + e t^4 + f t^5, t = x - (start of the interval);
//              one interval's M outputs are contiguous, so an edge reads one M x 6 block.
//              (The CPU kernels of env_tabulate read a coefficient-major copy [.., 6, M] instead,
//              so that their loops over m are contiguous: the functions below take both strides.)
//   table_info [5] (lower, upper, upper2, stride, stride2): intervals 0..n1-1 with
//              n1 = round((upper - lower) / stride) start at lower + k stride (first table);
//              intervals n1..num_intervals-1 start at upper + (k - n1) stride2 (extrapolation table).
// Look-up rule: x < upper -> first table (x < lower extrapolates interval 0's polynomial);
// upper <= x < upper2 -> second table; x >= upper2 -> value at the end of the last interval,
// derivative 0 (clamped). NaN propagates through t; no input value indexes out of range.
#pragma once

#include <cstdint>

#include "common/host_device.h"

namespace openmmnnp {
namespace table {

template <typename T>
struct Grid {
  T lower, upper, upper2, stride, stride2;
  int64_t n1;  // intervals in the first table
  int64_t n;   // intervals in all
};

template <typename T>
OPENMMNNP_HD Grid<T> make_grid(const T* info, int64_t num_intervals) {
  Grid<T> g{info[0], info[1], info[2], info[3], info[4], 1, num_intervals};
  const T q = floor_of((g.upper - g.lower) / g.stride + T(0.5));
  // Written so that NaN or nonsense in table_info still yields 1 <= n1 <= n.
  g.n1 = !(q >= T(1)) ? 1 : (q >= T(num_intervals) ? num_intervals : static_cast<int64_t>(q));
  return g;
}

// Clamp a floored float into [0, hi] before converting (casting NaN or inf to int is undefined).
template <typename T>
OPENMMNNP_HD int64_t clamp_index(T f, int64_t hi) {
  return !(f >= T(0)) ? 0 : (f >= T(hi) ? hi : static_cast<int64_t>(f));
}

// Interval index `idx` and offset `t` of x; `clamped` when x lies beyond upper2.
template <typename T>
OPENMMNNP_HD void locate(const Grid<T>& g, T x, int64_t& idx, T& t, bool& clamped) {
  clamped = false;
  if (x >= g.upper2) {
    clamped = true;
    idx = g.n - 1;
    t = g.n > g.n1 ? g.stride2 : g.stride;
  } else if (x >= g.upper) {
    const int64_t k = clamp_index(floor_of((x - g.upper) / g.stride2), g.n - g.n1 - 1);
    idx = g.n1 + k;
    t = x - (g.upper + T(k) * g.stride2);
  } else {  // also NaN: t stays NaN
    const int64_t k = clamp_index(floor_of((x - g.lower) / g.stride), g.n1 - 1);
    idx = k;
    t = x - (g.lower + T(k) * g.stride);
  }
}

// The coefficient block (M outputs x 6 coefficients, in either layout) of table k for the input x,
// with its offset t in the interval; clamped beyond upper2.
template <typename T>
OPENMMNNP_HD const T* lookup(const Grid<T>& g, const T* table, int64_t k, int64_t M, T x, T& t, bool& clamped) {
  int64_t idx;
  locate(g, x, idx, t, clamped);
  return table + (k * g.n + idx) * M * 6;
}

// Value and derivative d/dt of one polynomial whose 6 coefficients lie `cs` apart, Horner form.
template <typename T>
OPENMMNNP_HD void polynomial(const T* c, int64_t cs, T t, T& value, T& deriv) {
  const T c0 = c[0], c1 = c[cs], c2 = c[2 * cs], c3 = c[3 * cs], c4 = c[4 * cs], c5 = c[5 * cs];
  value = c0 + t * (c1 + t * (c2 + t * (c3 + t * (c4 + t * c5))));
  deriv = c1 + t * (T(2) * c2 + t * (T(3) * c3 + t * (T(4) * c4 + t * T(5) * c5)));
}

// One edge's share of T for the outputs m in [m0, m1): acc_c[(m - m0) as] += G_m(t) r[c], c < 4.
// G_m's coefficients start at block + m ms and lie cs apart. The CPU passes all M outputs with
// unit strides (a vectorisable loop); a CUDA thread passes its one output m.
template <typename T>
OPENMMNNP_HD void accumulate_edge(const T* __restrict__ block, int64_t ms, int64_t cs, T t, const T* __restrict__ r,
                                  int64_t m0, int64_t m1, T* __restrict__ a0, T* __restrict__ a1, T* __restrict__ a2,
                                  T* __restrict__ a3, int64_t as) {
  const T r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
  for (int64_t m = m0; m < m1; ++m) {
    T g, dg;
    polynomial(block + m * ms, cs, t, g, dg);
    const int64_t k = (m - m0) * as;
    a0[k] += g * r0;
    a1[k] += g * r1;
    a2[k] += g * r2;
    a3[k] += g * r3;
  }
}

// Partial sums of edge_gradient: m is summed into lane m mod kLanes, the lanes are added in a
// fixed order at the end, so a compiler may vectorise over the lanes without reordering a sum
// (FP sums are not associative) and results do not depend on memory alignment.
constexpr int kLanes = 4;

// One edge's gradient from dE/dT of its centre for the outputs m in [m0, m1), added to d_r and ds:
//   d_r[c] += sum_m G_m(t) D_c[m],   ds += sum_m G'_m(t) sum_c D_c[m] r[c],   D_c[m] = D[c dcs + m dms]
// (coefficients as in accumulate_edge). ds is the derivative with respect to the table input; the
// caller drops it for a clamped input (derivative 0 beyond upper2).
template <typename T>
OPENMMNNP_HD void edge_gradient(const T* __restrict__ block, int64_t ms, int64_t cs, T t, const T* __restrict__ r,
                                const T* __restrict__ D, int64_t dms, int64_t dcs, int64_t m0, int64_t m1,
                                T* __restrict__ d_r, T& ds) {
  const T* __restrict__ D0 = D;
  const T* __restrict__ D1 = D + dcs;
  const T* __restrict__ D2 = D + 2 * dcs;
  const T* __restrict__ D3 = D + 3 * dcs;
  const T r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
  T s[kLanes] = {}, d0[kLanes] = {}, d1[kLanes] = {}, d2[kLanes] = {}, d3[kLanes] = {};
  auto add = [&](int64_t m, int l) {
    T g, dg;
    polynomial(block + m * ms, cs, t, g, dg);
    const int64_t k = m * dms;
    s[l] += dg * (D0[k] * r0 + D1[k] * r1 + D2[k] * r2 + D3[k] * r3);
    d0[l] += g * D0[k];
    d1[l] += g * D1[k];
    d2[l] += g * D2[k];
    d3[l] += g * D3[k];
  };
  int64_t m = m0;
  for (; m + kLanes <= m1; m += kLanes)
    for (int l = 0; l < kLanes; ++l) add(m + l, l);
  for (int l = 0; m < m1; ++m, ++l) add(m, l);
  T sum_s = s[0], sum0 = d0[0], sum1 = d1[0], sum2 = d2[0], sum3 = d3[0];
  for (int l = 1; l < kLanes; ++l) {
    sum_s += s[l];
    sum0 += d0[l];
    sum1 += d1[l];
    sum2 += d2[l];
    sum3 += d3[l];
  }
  ds += sum_s;
  d_r[0] += sum0;
  d_r[1] += sum1;
  d_r[2] += sum2;
  d_r[3] += sum3;
}

}  // namespace table
}  // namespace openmmnnp
