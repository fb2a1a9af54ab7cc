// openmmnnp::neighbor_pairs: cell-list neighbour search (CPU, CUDA and Meta kernels).
//
// Schema (plugin/registration.cpp):
//   neighbor_pairs(Tensor positions, float cutoff, Tensor? box, int max_pairs, bool full)
//     -> (Tensor pairs, Tensor shifts, Tensor num_pairs)
// positions [N,3] float32/float64; box [3,3] (rows = box vectors, OpenMM reduced triclinic form:
// a=(ax,0,0), b=(bx,by,0), c=(cx,cy,cz), |bx|,|cx| <= ax/2, |cy| <= by/2) or None (no periodicity);
// max_pairs >= 0 the fixed capacity. Outputs: pairs [2,max_pairs] int32 padded with -1,
// shifts [max_pairs,3] int16 (zero in padding) with r[j] - r[i] + shifts @ box the pair vector,
// num_pairs [1] int64 = the true number of pairs (may exceed max_pairs: then only max_pairs are
// written, nothing out of bounds). Half list: each unordered (i, j, shift) once (i < j, or i == j
// with the first nonzero shift component positive); full list: both orders. Every periodic image
// closer than the cutoff is listed, so boxes smaller than 2*cutoff are handled (multiple images).
// The outputs are narrow on purpose (14 bytes per pair slot instead of 28): they are the op's whole
// memory. int32 atom indices bound N below 2^31 (checked); every count and offset is int64. int16
// shifts hold the cell-image offset (|s| <= kMaxCellRange + 1) plus the difference of the two
// atoms' wraps into the box, so positions may lie at most kMaxWrap box lengths outside the box
// (OpenMM does not wrap positions: a molecule diffusing for microseconds in a small box drifts
// tens of boxes away; tens of thousands would mean a broken simulation).
//
// Algorithm: fractional coordinates are wrapped into the primary cell (the integer wrap is kept to
// build the shifts); along each lattice direction d the cell count is n_d = floor(w_d * k / cutoff)
// (w_d the perpendicular width, k cells per cutoff), capped so the grid has O(N) cells. Atoms are
// sorted by cell (slot s holds one atom). An atom's neighbours then lie within +-m_d =
// ceil(cutoff * n_d / w_d) cells; each (cell offset) is a distinct (cell, image) combination, so no
// pair is found twice even when n_d < 2 m_d + 1. The cell traversal (for_each_neighbor) and the pair
// it lists (listed_pair) are written once below, for the CPU and CUDA kernels alike; one half-list
// rule: slot a lists slot b > a (and itself only for a positive image), so each unordered
// (i, j, shift) is found once, then named in the order i < j.
//
// Errors: the CPU kernel checks everything eagerly (TORCH_CHECK). The CUDA kernel checks shapes,
// dtypes, devices and the cutoff eagerly, but checks that need data never synchronise the host:
// instead num_pairs holds a negative code and all pairs are -1:
//   kNonFinitePositions (-1): a position is NaN or infinite;
//   kBadBox (-2): the box is not in reduced form, not finite, or degenerate;
//   kBoxTooSmall (-3): a box width is below cutoff / 32 (more than 64 cell layers of images);
//   kFarFromBox (-4): a position lies more than kMaxWrap box lengths outside the periodic box.
// openmmnnp.ops.neighbors.check_neighbor_overflow turns these codes into clear errors.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.h"

namespace openmmnnp {
namespace neighbors {

constexpr int64_t kNonFinitePositions = -1;
constexpr int64_t kBadBox = -2;
constexpr int64_t kBoxTooSmall = -3;
constexpr int64_t kFarFromBox = -4;
// Largest wrap |k| of a position into the periodic box (keeps shifts within int16).
constexpr double kMaxWrap = 16000.0;
// Most cell layers scanned per direction: beyond it the box is absurdly small for the cutoff.
constexpr int64_t kMaxCellRange = 64;
// Cells per cutoff along each direction: smaller cells mean fewer rejected candidates.
constexpr double kCellsPerCutoff = 2.0;
// Relative slack of the reduced-form test, so float32 boxes written by OpenMM pass.
constexpr double kReducedTolerance = 1e-5;

// The cell grid of one call, computed from the box (or the bounding box) and the cutoff.
struct Grid {
  bool periodic;
  double box[3][3];  // rows = box vectors (periodic) or diag(extent) (non-periodic)
  double origin[3];  // lower corner of the bounding box (non-periodic), else 0
  int64_t n[3];      // cells per direction
  int64_t m[3];      // neighbour cell range +-m per direction
  int64_t num_cells;
  int64_t error;  // 0, or kBadBox
};

// Box in OpenMM reduced form with positive diagonal and finite entries?
OPENMMNNP_HD bool box_is_reduced(const double b[3][3]) {
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c)
      if (!is_finite(b[r][c])) return false;
  if (!(b[0][0] > 0 && b[1][1] > 0 && b[2][2] > 0)) return false;
  if (b[0][1] != 0 || b[0][2] != 0 || b[1][2] != 0) return false;
  const double t = 1.0 + kReducedTolerance;
  return fabs(b[1][0]) <= 0.5 * b[0][0] * t && fabs(b[2][0]) <= 0.5 * b[0][0] * t && fabs(b[2][1]) <= 0.5 * b[1][1] * t;
}

// Fractional coordinates of r in a lower-triangular box (r = f0 a + f1 b + f2 c).
OPENMMNNP_HD void to_fractional(const double b[3][3], const double r[3], double f[3]) {
  f[2] = r[2] / b[2][2];
  f[1] = (r[1] - f[2] * b[2][1]) / b[1][1];
  f[0] = (r[0] - f[1] * b[1][0] - f[2] * b[2][0]) / b[0][0];
}

// Cell counts and search ranges. max_cells caps the grid (memory O(max_cells)).
// For the non-periodic case lo/hi are the bounding box corners.
OPENMMNNP_HD Grid make_grid(const double* box9, const double* lo, const double* hi, double cutoff, int64_t max_cells) {
  Grid g;
  g.periodic = box9 != nullptr;
  g.error = 0;
  double w[3];
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) g.box[r][c] = g.periodic ? box9[3 * r + c] : 0.0;
  if (g.periodic) {
    for (int d = 0; d < 3; ++d) g.origin[d] = 0.0;
    if (!box_is_reduced(g.box)) {
      g.error = kBadBox;
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) g.box[r][c] = r == c ? 1.0 : 0.0;  // keeps the rest finite
    }
    const double (*b)[3] = g.box;
    const double volume = b[0][0] * b[1][1] * b[2][2];
    // |b x c| and |c x a| for the lower-triangular box; |a x b| = ax * by.
    const double bc0 = b[1][1] * b[2][2], bc1 = -b[1][0] * b[2][2], bc2 = b[1][0] * b[2][1] - b[1][1] * b[2][0];
    w[0] = volume / sqrt(bc0 * bc0 + bc1 * bc1 + bc2 * bc2);
    w[1] = volume / (b[0][0] * sqrt(b[2][2] * b[2][2] + b[2][1] * b[2][1]));
    w[2] = b[2][2];
  } else {
    for (int d = 0; d < 3; ++d) {
      g.origin[d] = is_finite(lo[d]) ? lo[d] : 0.0;
      const double e = hi[d] - lo[d];
      w[d] = (is_finite(e) && e > cutoff) ? e : cutoff;  // at least one cutoff wide
      g.box[d][d] = w[d];
    }
  }
  double nd[3], cells = 1.0;
  for (int d = 0; d < 3; ++d) {
    nd[d] = fmax(1.0, floor(w[d] * kCellsPerCutoff / cutoff));
    if (!(nd[d] < 1e6)) nd[d] = 1e6;  // also catches NaN
    cells *= nd[d];
  }
  const double cap = max_cells < 1 ? 1.0 : (double)max_cells;
  while (cells > cap) {  // coarser grid: correctness only needs n_d >= 1
    const double f = cbrt(cap / cells);
    cells = 1.0;
    for (int d = 0; d < 3; ++d) {
      nd[d] = fmax(1.0, floor(nd[d] * f));
      cells *= nd[d];
    }
    if (cells > cap) {  // floor kept a dimension too large: shrink the largest one
      int big = nd[0] >= nd[1] ? (nd[0] >= nd[2] ? 0 : 2) : (nd[1] >= nd[2] ? 1 : 2);
      nd[big] = fmax(1.0, nd[big] - 1.0);
      cells = nd[0] * nd[1] * nd[2];
    }
  }
  g.num_cells = 1;
  for (int d = 0; d < 3; ++d) {
    g.n[d] = (int64_t)nd[d];
    g.num_cells *= g.n[d];
    // cells are w/n wide: the cutoff spans at most ceil(cutoff * n / w) of them
    const double range = ceil(cutoff * nd[d] / w[d]);
    int64_t m = 1;
    if (!g.periodic) {
      m = (int64_t)fmin(fmax(range, 1.0), nd[d] - 1.0);
    } else if (range <= (double)kMaxCellRange) {
      m = (int64_t)fmax(range, 1.0);
    } else if (g.error == 0) {  // never loop (almost) forever over images
      g.error = kBoxTooSmall;
    }
    g.m[d] = m;
  }
  return g;
}

// Cell coordinate along d of a fractional coordinate already wrapped into [0, 1).
OPENMMNNP_HD int64_t cell_of(double f, int64_t n) {
  double c = floor(f * (double)n);
  if (!(c >= 0)) c = 0;  // also NaN
  if (c > (double)(n - 1)) c = (double)(n - 1);
  return (int64_t)c;
}

// Wrap an atom: fractional coordinates f (periodic: into [0,1), image k = floor(f)), cell coords.
// Returns false when the atom lies more than kMaxWrap box lengths away (its k is then set to 0).
OPENMMNNP_HD bool locate(const Grid& g, const double r[3], int64_t cell[3], int32_t k[3]) {
  double f[3];
  bool near = true;
  if (g.periodic) {
    to_fractional(g.box, r, f);
    for (int d = 0; d < 3; ++d) {
      double fl = floor(f[d]);
      if (is_finite(fl) && fabs(fl) > kMaxWrap) near = false;
      if (!is_finite(fl) || fabs(fl) > kMaxWrap) fl = 0;  // NaN is flagged elsewhere; keeps the cast defined
      k[d] = (int32_t)fl;
      cell[d] = cell_of(f[d] - fl, g.n[d]);
    }
  } else {
    for (int d = 0; d < 3; ++d) {
      k[d] = 0;
      cell[d] = cell_of((r[d] - g.origin[d]) / g.box[d][d], g.n[d]);
    }
  }
  return near;
}

// The cell list of one call, raw pointers (built by each device's kernels; atoms sorted by cell).
template <typename T>
struct Cells {
  const int64_t* start;  // [num_cells + 1] first slot of each cell
  const int64_t* atom;   // [N] atom index of each slot
  const int64_t* cell;   // [N] linear cell (x n1 + y) n2 + z of each slot
  const T* q;            // [N, 3] wrapped position r - k @ box of each slot
  const int32_t* k;      // [N, 3] wrap k of each slot
};

// The wrapped position q = r - k @ box (box rows) of an atom at r with wrap k.
template <typename T>
OPENMMNNP_HD void wrapped_position(const Grid& g, const T r[3], const int32_t k[3], T q[3]) {
  const T k0 = (T)k[0], k1 = (T)k[1], k2 = (T)k[2];
  for (int d = 0; d < 3; ++d) q[d] = r[d] - (k0 * (T)g.box[0][d] + k1 * (T)g.box[1][d] + k2 * (T)g.box[2][d]);
}

// Is the image (s0, s1, s2) positive: its first nonzero component is? (A half list keeps an atom's
// own images only with a positive shift: the negative one is the same pair reversed.)
OPENMMNNP_HD bool positive_image(int32_t s0, int32_t s1, int32_t s2) {
  if (s0 != 0) return s0 > 0;
  if (s1 != 0) return s1 > 0;
  return s2 > 0;
}

// Cell coordinate c along an axis of n cells. Periodic: wrapped into [0, n), its image floor(c / n) in
// `image`; not periodic: false when c lies outside the grid.
OPENMMNNP_HD bool wrap_cell(bool periodic, int64_t n, int64_t& c, int64_t& image) {
  if (!periodic) return c >= 0 && c < n;
  image = floor_div(c, n);
  c -= image * n;
  return true;
}

// Visits every neighbour slot b of slot a that the list keeps: visit(b, s0, s1, s2) with the image
// (s0, s1, s2) of b's cell, so that the pair vector is q_b - q_a + s @ box. The cells along z are
// scanned in runs that are contiguous in memory (one image per run). Full list: every b within the
// cutoff but a itself (zero image). Half list (one rule on every device): b > a, or b == a with a
// positive image, so each unordered (slot pair, image) is visited once.
OPENMMNNP_HD_TEMPLATE
template <typename T, typename Visit>
OPENMMNNP_HD void for_each_neighbor(const Grid& g, const Cells<T>& cl, const T box[9], T cutoff2, bool full, int64_t a,
                                    Visit&& visit) {
  const int64_t lin = cl.cell[a];
  const int64_t ca[3] = {lin / (g.n[1] * g.n[2]), (lin / g.n[2]) % g.n[1], lin % g.n[2]};
  const T qx = cl.q[3 * a], qy = cl.q[3 * a + 1], qz = cl.q[3 * a + 2];
  for (int64_t ox = -g.m[0]; ox <= g.m[0]; ++ox) {
    int64_t cx = ca[0] + ox, ix = 0;
    if (!wrap_cell(g.periodic, g.n[0], cx, ix)) continue;
    for (int64_t oy = -g.m[1]; oy <= g.m[1]; ++oy) {
      int64_t cy = ca[1] + oy, iy = 0;
      if (!wrap_cell(g.periodic, g.n[1], cy, iy)) continue;
      const int64_t row = (cx * g.n[1] + cy) * g.n[2];
      // Cells ca[2]-m .. ca[2]+m along z, in runs that are contiguous in memory (same image).
      int64_t oz = -g.m[2];
      while (oz <= g.m[2]) {
        int64_t cz = ca[2] + oz, iz = 0, len;
        if (g.periodic) {
          iz = floor_div(cz, g.n[2]);
          cz -= iz * g.n[2];
          len = g.m[2] - oz + 1 < g.n[2] - cz ? g.m[2] - oz + 1 : g.n[2] - cz;
          oz += len;
        } else {
          const int64_t lo = cz > 0 ? cz : 0, hi = ca[2] + g.m[2] < g.n[2] - 1 ? ca[2] + g.m[2] : g.n[2] - 1;
          if (lo > hi) break;
          cz = lo;
          len = hi - lo + 1;
          oz = g.m[2] + 1;  // one run covers everything
        }
        int64_t b = cl.start[row + cz];
        const int64_t e = cl.start[row + cz + len];
        const int32_t s0 = (int32_t)ix, s1 = (int32_t)iy, s2 = (int32_t)iz;
        const bool zero_image = (s0 | s1 | s2) == 0;
        if (!full && b <= a) b = (a < e && positive_image(s0, s1, s2)) ? a : a + 1;
        const T tx = (T)s0 * box[0] + (T)s1 * box[3] + (T)s2 * box[6] - qx;
        const T ty = (T)s0 * box[1] + (T)s1 * box[4] + (T)s2 * box[7] - qy;
        const T tz = (T)s0 * box[2] + (T)s1 * box[5] + (T)s2 * box[8] - qz;
        for (; b < e; ++b) {
          const T dx = cl.q[3 * b] + tx, dy = cl.q[3 * b + 1] + ty, dz = cl.q[3 * b + 2] + tz;
          if (dx * dx + dy * dy + dz * dz >= cutoff2) continue;
          if (b == a && zero_image) continue;
          visit(b, s0, s1, s2);
        }
      }
    }
  }
}

// One listed pair: atoms (first, second) and shift with r[second] - r[first] + shift @ box the pair vector.
struct Pair {
  int64_t first, second;
  int32_t shift[3];
};

// The pair of slots a and b visited with image s. Since q = r - k @ box, r_j - r_i + (s + k_a - k_b) @ box
// is the pair vector. A half list names it in the order i < j (the reversed pair has the opposite shift);
// i == j only for a positive image, which is kept as it is.
template <typename T>
OPENMMNNP_HD Pair listed_pair(const Cells<T>& cl, int64_t a, int64_t b, int32_t s0, int32_t s1, int32_t s2, bool full) {
  const int32_t* ka = cl.k + 3 * a;
  const int32_t* kb = cl.k + 3 * b;
  Pair p{cl.atom[a], cl.atom[b], {s0 + ka[0] - kb[0], s1 + ka[1] - kb[1], s2 + ka[2] - kb[2]}};
  if (!full && p.first > p.second) {
    const int64_t i = p.first;
    p.first = p.second;
    p.second = i;
    for (int d = 0; d < 3; ++d) p.shift[d] = -p.shift[d];
  }
  return p;
}

// Writes pair p at output slot `at` (< max_pairs): int32 atoms (N < 2^31 is checked) and int16 shifts
// (|shift| <= kMaxCellRange + 1 + 2 kMaxWrap < 2^15).
OPENMMNNP_HD void store_pair(const Pair& p, int64_t at, int64_t max_pairs, int32_t* pairs, int16_t* shifts) {
  pairs[at] = (int32_t)p.first;
  pairs[max_pairs + at] = (int32_t)p.second;
  for (int d = 0; d < 3; ++d) shifts[3 * at + d] = (int16_t)p.shift[d];
}

}  // namespace neighbors
}  // namespace openmmnnp
