// Shared by the CPU and CUDA kernels of openmmnnp::tabulate_fusion: the table look-up rule and
// the polynomial evaluation, written once for host and device.
//
// Table layout (built by python/openmmnnp/compression/tables.py):
//   table      [num_tables, num_intervals, M, 6]  coefficients (a, b, c, d, e, f) of
//              y(t) = a + b t + c t^2 + d t^3 + e t^4 + f t^5, t = x - (start of the interval);
//              one interval's M outputs are contiguous, so an edge reads one M x 6 block.
//   table_info [5] (lower, upper, upper2, stride, stride2): intervals 0..n1-1 with
//              n1 = round((upper - lower) / stride) start at lower + k stride (first table);
//              intervals n1..num_intervals-1 start at upper + (k - n1) stride2 (extrapolation table).
// Look-up rule: x < upper -> first table (x < lower extrapolates interval 0's polynomial);
// upper <= x < upper2 -> second table; x >= upper2 -> value at the end of the last interval,
// derivative 0 (clamped). NaN propagates through t; no input value indexes out of range.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define OPENMMNNP_HD __host__ __device__ __forceinline__
#else
#define OPENMMNNP_HD inline
#endif

namespace openmmnnp {
namespace tabulate {

OPENMMNNP_HD double floor_of(double x) { return floor(x); }
OPENMMNNP_HD float floor_of(float x) { return floorf(x); }

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

// Value and derivative d/dt of one polynomial whose 6 coefficients lie `stride` apart, Horner form.
// (stride > 1: a coefficient-major copy of the table, so that a loop over outputs m is contiguous.)
template <typename T>
OPENMMNNP_HD void polynomial(const T* c, int64_t stride, T t, T& value, T& deriv) {
  const T c0 = c[0], c1 = c[stride], c2 = c[2 * stride], c3 = c[3 * stride], c4 = c[4 * stride], c5 = c[5 * stride];
  value = c0 + t * (c1 + t * (c2 + t * (c3 + t * (c4 + t * c5))));
  deriv = c1 + t * (T(2) * c2 + t * (T(3) * c3 + t * (T(4) * c4 + t * T(5) * c5)));
}

// Same with the 6 coefficients contiguous (the table's own layout).
template <typename T>
OPENMMNNP_HD void polynomial(const T* c, T t, T& value, T& deriv) {
  polynomial(c, 1, t, value, deriv);
}

}  // namespace tabulate
}  // namespace openmmnnp
