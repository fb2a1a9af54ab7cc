// CPU kernel of openmmnnp::neighbor_pairs (contract and algorithm: neighbors.h).
// Atoms are sorted by cell. One thread: a single pass appends every atom's pairs. Several threads:
// two passes over the atoms in parallel: count each atom's pairs, scan, then write them at their
// final place. Output order is deterministic (by cell-sorted atom, then by
// cell scan order); candidate cells along z are scanned as contiguous runs. No
// temporary pair buffer is needed: memory is O(N + cells) besides the outputs.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "neighbors/neighbors.h"
#include "neighbors/neighbors_checks.h"

namespace openmmnnp {

using neighbors::Grid;

namespace {

// Atoms per parallel task. Scanning one atom's cells costs about a microsecond, so small systems
// stay on one thread: waking OpenMP threads costs more than it saves there.
constexpr int64_t kGrainAtoms = 2048;

// Atoms sorted by cell (counting sort, stable: ascending atom index within a cell).
template <typename scalar_t>
struct CellList {
  std::vector<int64_t> start;    // [num_cells + 1] first slot of each cell
  std::vector<int64_t> atom;     // [N] atom index of each slot
  std::vector<int64_t> cell;     // [N*3] cell coordinates of each slot
  std::vector<scalar_t> q;       // [N*3] wrapped position r - k @ box of each slot
  std::vector<int32_t> k;        // [N*3] wrap of each slot
};

template <typename scalar_t>
CellList<scalar_t> build_cells(const Grid& g, const scalar_t* r, const scalar_t box[9], int64_t n) {
  CellList<scalar_t> cl;
  std::vector<int64_t> cell(3 * n), linear(n);
  std::vector<int32_t> k(3 * n);
  std::vector<char> near(n);
  at::parallel_for(0, n, kGrainAtoms, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const double ri[3] = {(double)r[3 * i], (double)r[3 * i + 1], (double)r[3 * i + 2]};
      near[i] = neighbors::locate(g, ri, &cell[3 * i], &k[3 * i]);
      linear[i] = (cell[3 * i] * g.n[1] + cell[3 * i + 1]) * g.n[2] + cell[3 * i + 2];
    }
  });
  for (int64_t i = 0; i < n; ++i)
    TORCH_CHECK(near[i], "openmmnnp::neighbor_pairs: atom ", i, " lies more than ", neighbors::kMaxWrap,
                " box lengths outside the periodic box; wrap the positions into the box");
  cl.start.assign(g.num_cells + 1, 0);
  for (int64_t i = 0; i < n; ++i) ++cl.start[linear[i] + 1];
  for (int64_t c = 0; c < g.num_cells; ++c) cl.start[c + 1] += cl.start[c];
  std::vector<int64_t> fill(cl.start.begin(), cl.start.end() - 1);
  cl.atom.resize(n);
  cl.cell.resize(3 * n);
  cl.q.resize(3 * n);
  cl.k.resize(3 * n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = fill[linear[i]]++;
    cl.atom[s] = i;
    const scalar_t k0 = (scalar_t)k[3 * i], k1 = (scalar_t)k[3 * i + 1], k2 = (scalar_t)k[3 * i + 2];
    for (int d = 0; d < 3; ++d) {
      cl.cell[3 * s + d] = cell[3 * i + d];
      cl.k[3 * s + d] = k[3 * i + d];
      cl.q[3 * s + d] = r[3 * i + d] - (k0 * box[d] + k1 * box[3 + d] + k2 * box[6 + d]);
    }
  }
  return cl;
}

// floor(x / n) and x mod n for n > 0.
inline int64_t floor_div(int64_t x, int64_t n) { return x >= 0 ? x / n : -((-x + n - 1) / n); }

// Visit every neighbour slot b of slot a that the list keeps: visit(b, s0, s1, s2) with the image
// (s0, s1, s2) of b's cell; the pair vector is q_b - q_a + image @ box. A half list keeps b > a
// (and b == a for positive self-images), so each unordered pair is visited once.
template <typename scalar_t, typename Visit>
inline void for_each_neighbor(const Grid& g, const CellList<scalar_t>& cl, const scalar_t box[9], scalar_t cutoff2,
                              bool full, int64_t a, Visit&& visit) {
  const int64_t* ca = &cl.cell[3 * a];
  const scalar_t qx = cl.q[3 * a], qy = cl.q[3 * a + 1], qz = cl.q[3 * a + 2];
  for (int64_t ox = -g.m[0]; ox <= g.m[0]; ++ox) {
    int64_t cx = ca[0] + ox, ix = 0;
    if (g.periodic) {
      ix = floor_div(cx, g.n[0]);
      cx -= ix * g.n[0];
    } else if (cx < 0 || cx >= g.n[0]) continue;
    for (int64_t oy = -g.m[1]; oy <= g.m[1]; ++oy) {
      int64_t cy = ca[1] + oy, iy = 0;
      if (g.periodic) {
        iy = floor_div(cy, g.n[1]);
        cy -= iy * g.n[1];
      } else if (cy < 0 || cy >= g.n[1]) continue;
      const int64_t row = (cx * g.n[1] + cy) * g.n[2];
      // Cells ca[2]-m .. ca[2]+m along z, in runs that are contiguous in memory (same image).
      int64_t oz = -g.m[2];
      while (oz <= g.m[2]) {
        int64_t cz = ca[2] + oz, iz = 0, len;
        if (g.periodic) {
          iz = floor_div(cz, g.n[2]);
          cz -= iz * g.n[2];
          len = std::min(g.m[2] - oz + 1, g.n[2] - cz);
        } else {
          const int64_t lo = std::max<int64_t>(cz, 0), hi = std::min(ca[2] + g.m[2], g.n[2] - 1);
          if (lo > hi) break;
          cz = lo;
          len = hi - lo + 1;
          oz = g.m[2];  // one run covers everything
        }
        oz += g.periodic ? len : 1;
        int64_t b = cl.start[row + cz];
        const int64_t e = cl.start[row + cz + len];
        const int32_t s0 = (int32_t)ix, s1 = (int32_t)iy, s2 = (int32_t)iz;
        const bool zero_image = (s0 | s1 | s2) == 0;
        if (!full && b <= a) {
          if (a < e && !zero_image && neighbors::keep_pair(0, 0, s0, s1, s2, false)) b = a;
          else b = a + 1;
        }
        const scalar_t tx = (scalar_t)s0 * box[0] + (scalar_t)s1 * box[3] + (scalar_t)s2 * box[6] - qx;
        const scalar_t ty = (scalar_t)s0 * box[1] + (scalar_t)s1 * box[4] + (scalar_t)s2 * box[7] - qy;
        const scalar_t tz = (scalar_t)s0 * box[2] + (scalar_t)s1 * box[5] + (scalar_t)s2 * box[8] - qz;
        for (; b < e; ++b) {
          const scalar_t dx = cl.q[3 * b] + tx, dy = cl.q[3 * b + 1] + ty, dz = cl.q[3 * b + 2] + tz;
          if (dx * dx + dy * dy + dz * dz >= cutoff2) continue;
          if (b == a && zero_image) continue;
          visit(b, s0, s1, s2);
        }
      }
    }
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> neighbor_pairs_cpu(const at::Tensor& positions, double cutoff,
                                                                  const c10::optional<at::Tensor>& box, int64_t max_pairs,
                                                                  bool full) {
  neighbors::check_arguments(positions, cutoff, box, max_pairs);
  TORCH_CHECK(at::isfinite(positions).all().item<bool>(), "openmmnnp::neighbor_pairs: positions contain NaN or infinite values");
  const int64_t n = positions.size(0);
  const at::Tensor r = positions.contiguous();
  const bool periodic = box.has_value();
  double box9[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  double lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
  if (periodic) {
    const at::Tensor b = box->to(at::kDouble).contiguous();
    std::copy(b.const_data_ptr<double>(), b.const_data_ptr<double>() + 9, box9);
    double rows[3][3];
    for (int a = 0; a < 9; ++a) rows[a / 3][a % 3] = box9[a];
    TORCH_CHECK(neighbors::box_is_reduced(rows),
                "openmmnnp::neighbor_pairs: box must hold finite box vectors as rows in OpenMM's reduced form "
                "(a=(ax,0,0), b=(bx,by,0), c=(cx,cy,cz), ax,by,cz > 0, |bx|,|cx| <= ax/2, |cy| <= by/2), got ", *box);
  } else if (n > 0) {
    const auto minmax = at::aminmax(r.to(at::kDouble), 0);
    const at::Tensor mn = std::get<0>(minmax).contiguous(), mx = std::get<1>(minmax).contiguous();
    for (int d = 0; d < 3; ++d) {
      lo[d] = mn.const_data_ptr<double>()[d];
      hi[d] = mx.const_data_ptr<double>()[d];
    }
  }
  const Grid g = neighbors::make_grid(periodic ? box9 : nullptr, lo, hi, cutoff, std::max<int64_t>(2 * n, 1));
  TORCH_CHECK(g.error != neighbors::kBoxTooSmall, "openmmnnp::neighbor_pairs: the box is too small for cutoff ", cutoff,
              " (a box width below cutoff / 32 would need thousands of periodic images)");

  at::Tensor pairs = at::empty({2, max_pairs}, positions.options().dtype(at::kInt));
  at::Tensor shifts = at::empty({max_pairs, 3}, positions.options().dtype(at::kShort));
  int64_t total = 0;
  AT_DISPATCH_FLOATING_TYPES(r.scalar_type(), "openmmnnp::neighbor_pairs", [&] {
    const scalar_t* rp = r.const_data_ptr<scalar_t>();
    scalar_t boxs[9];
    for (int c = 0; c < 9; ++c) boxs[c] = (scalar_t)box9[c];
    const CellList<scalar_t> cl = build_cells<scalar_t>(g, rp, boxs, n);
    const scalar_t cutoff2 = (scalar_t)cutoff * (scalar_t)cutoff;
    int32_t* p0 = pairs.mutable_data_ptr<int32_t>();
    int32_t* p1 = p0 + max_pairs;
    int16_t* sh = shifts.mutable_data_ptr<int16_t>();
    // Writes the pairs of slot a from output index at on (none past max_pairs); returns the new at.
    auto write_pairs = [&](int64_t a, int64_t at) {
      const int64_t i = cl.atom[a];
      const int32_t* ka = &cl.k[3 * a];
      for_each_neighbor(g, cl, boxs, cutoff2, full, a, [&](int64_t b, int32_t s0, int32_t s1, int32_t s2) {
        if (at < max_pairs) {
          // r_j - r_i + shift @ box = q_b - q_a + image @ box with q = r - k @ box.
          const int64_t j = cl.atom[b];
          const int32_t* kb = &cl.k[3 * b];
          int32_t t0 = s0 + ka[0] - kb[0], t1 = s1 + ka[1] - kb[1], t2 = s2 + ka[2] - kb[2];
          int64_t first = i, second = j;
          if (!full && (i > j || (i == j && !neighbors::keep_pair(i, j, t0, t1, t2, false)))) {
            first = j;  // half list: canonical order i < j (the reversed pair has the opposite shift)
            second = i;
            t0 = -t0;
            t1 = -t1;
            t2 = -t2;
          }
          p0[at] = (int32_t)first;  // N < 2^31 is checked
          p1[at] = (int32_t)second;
          sh[3 * at] = (int16_t)t0;  // |t| <= kMaxCellRange + 1 + 2 * kMaxWrap < 2^15
          sh[3 * at + 1] = (int16_t)t1;
          sh[3 * at + 2] = (int16_t)t2;
        }
        ++at;
      });
      return at;
    };
    if (at::get_num_threads() == 1 || n <= kGrainAtoms) {
      // One task: a single pass appends at a running cursor (half the work of count + write).
      for (int64_t a = 0; a < n; ++a) total = write_pairs(a, total);
      return;
    }
    // Several tasks: count each slot's pairs, scan, then write each slot's pairs at its offset.
    std::vector<int64_t> offset(n + 1, 0);  // by slot
    at::parallel_for(0, n, kGrainAtoms, [&](int64_t begin, int64_t end) {
      for (int64_t a = begin; a < end; ++a) {
        int64_t count = 0;
        for_each_neighbor(g, cl, boxs, cutoff2, full, a, [&](int64_t, int32_t, int32_t, int32_t) { ++count; });
        offset[a + 1] = count;
      }
    });
    for (int64_t a = 0; a < n; ++a) offset[a + 1] += offset[a];
    total = offset[n];
    at::parallel_for(0, n, kGrainAtoms, [&](int64_t begin, int64_t end) {
      for (int64_t a = begin; a < end; ++a) {
        if (offset[a] >= max_pairs) break;  // later slots start even further: nothing fits
        write_pairs(a, offset[a]);
      }
    });
  });
  const int64_t written = std::min(total, max_pairs);
  pairs.narrow(1, written, max_pairs - written).fill_(-1);
  shifts.narrow(0, written, max_pairs - written).zero_();
  at::Tensor num_pairs = at::full({1}, total, positions.options().dtype(at::kLong));
  return {pairs, shifts, num_pairs};
}

}  // namespace

TORCH_LIBRARY_IMPL(openmmnnp, CPU, m) { m.impl("neighbor_pairs", &neighbor_pairs_cpu); }

}  // namespace openmmnnp
