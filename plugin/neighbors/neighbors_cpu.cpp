// CPU kernel of openmmnnp::neighbor_pairs (contract, algorithm and the cell traversal both devices
// run: neighbors.h). Atoms are sorted by cell (a counting sort). One thread: a single pass appends
// every atom's pairs. Several threads: two passes over the atoms in parallel: count each atom's
// pairs, scan, then write them at their final place. Output order is deterministic (by cell-sorted
// atom, then by cell scan order). No temporary pair buffer is needed: memory is O(N + cells) besides
// the outputs.
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

// Atoms sorted by cell (counting sort, stable: ascending atom index within a cell); cells() views it.
template <typename scalar_t>
struct CellList {
  std::vector<int64_t> start;  // [num_cells + 1] first slot of each cell
  std::vector<int64_t> atom;   // [N] atom index of each slot
  std::vector<int64_t> cell;   // [N] linear cell of each slot
  std::vector<scalar_t> q;     // [N*3] wrapped position r - k @ box of each slot
  std::vector<int32_t> k;      // [N*3] wrap of each slot

  neighbors::Cells<scalar_t> cells() const { return {start.data(), atom.data(), cell.data(), q.data(), k.data()}; }
};

template <typename scalar_t>
CellList<scalar_t> build_cells(const Grid& g, const scalar_t* r, int64_t n) {
  CellList<scalar_t> cl;
  std::vector<int64_t> linear(n);
  std::vector<int32_t> k(3 * n);
  std::vector<char> near(n);
  at::parallel_for(0, n, kGrainAtoms, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const double ri[3] = {(double)r[3 * i], (double)r[3 * i + 1], (double)r[3 * i + 2]};
      int64_t cell[3];
      near[i] = neighbors::locate(g, ri, cell, &k[3 * i]);
      linear[i] = (cell[0] * g.n[1] + cell[1]) * g.n[2] + cell[2];
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
  cl.cell.resize(n);
  cl.q.resize(3 * n);
  cl.k.resize(3 * n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = fill[linear[i]]++;
    cl.atom[s] = i;
    cl.cell[s] = linear[i];
    for (int d = 0; d < 3; ++d) cl.k[3 * s + d] = k[3 * i + d];
    neighbors::wrapped_position(g, r + 3 * i, &k[3 * i], &cl.q[3 * s]);
  }
  return cl;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> neighbor_pairs_cpu(const at::Tensor& positions, double cutoff,
                                                                  const c10::optional<at::Tensor>& box,
                                                                  int64_t max_pairs, bool full) {
  neighbors::check_arguments(positions, cutoff, box, max_pairs);
  TORCH_CHECK(at::isfinite(positions).all().item<bool>(),
              "openmmnnp::neighbor_pairs: positions contain NaN or infinite values");
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
                "(a=(ax,0,0), b=(bx,by,0), c=(cx,cy,cz), ax,by,cz > 0, |bx|,|cx| <= ax/2, |cy| <= by/2), got ",
                *box);
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
    const CellList<scalar_t> list = build_cells<scalar_t>(g, rp, n);
    const neighbors::Cells<scalar_t> cl = list.cells();
    const scalar_t cutoff2 = (scalar_t)cutoff * (scalar_t)cutoff;
    int32_t* pp = pairs.mutable_data_ptr<int32_t>();
    int16_t* sh = shifts.mutable_data_ptr<int16_t>();
    // Writes the pairs of slot a from output index at on (none past max_pairs); returns the new at.
    auto write_pairs = [&](int64_t a, int64_t at) {
      neighbors::for_each_neighbor(g, cl, boxs, cutoff2, full, a, [&](int64_t b, int32_t s0, int32_t s1, int32_t s2) {
        if (at < max_pairs)
          neighbors::store_pair(neighbors::listed_pair(cl, a, b, s0, s1, s2, full), at, max_pairs, pp, sh);
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
        neighbors::for_each_neighbor(g, cl, boxs, cutoff2, full, a,
                                     [&](int64_t, int32_t, int32_t, int32_t) { ++count; });
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
