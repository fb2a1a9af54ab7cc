// Edges grouped by their centre atom (CSR: the edges of atom i are order[offsets[i] .. offsets[i+1]),
// in input order within an atom), written once per device: the kernels that sum edges into their
// centre's row walk an atom's edges so that each atom's row has one writer (no atomics, fixed
// summation order, deterministic results).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <tuple>
#include <vector>

namespace openmmnnp {

// CPU: counting sort of the edges e < count by center(e) in [0, N), or -1 for an edge to leave out
// (O(E) time, no memory per edge beyond order). center is called twice per edge and may raise
// (TORCH_CHECK) on an edge it finds invalid, the first time.
template <typename order_t, typename Center>
void group_edges_by_center(int64_t count, int64_t N, Center&& center, std::vector<int64_t>& offsets,
                           std::vector<order_t>& order) {
  offsets.assign(N + 1, 0);
  for (int64_t e = 0; e < count; ++e) {
    const int64_t i = center(e);
    if (i >= 0) ++offsets[i + 1];
  }
  for (int64_t i = 0; i < N; ++i) offsets[i + 1] += offsets[i];
  order.resize(offsets[N]);
  std::vector<int64_t> cursor(offsets.begin(), offsets.end() - 1);
  for (int64_t e = 0; e < count; ++e) {
    const int64_t i = center(e);
    if (i >= 0) order[cursor[i]++] = static_cast<order_t>(e);
  }
}

// Any device, without a host synchronisation (CUDA-graph safe): keys [E] hold each edge's centre, or N
// for an edge to leave out (it sorts past every atom). Returns (order [E] int64, offsets [N + 1] int64)
// by a stable sort and a search of the sorted keys; the left-out edges sit past offsets[N].
inline std::tuple<at::Tensor, at::Tensor> group_edges_by_key(const at::Tensor& keys, int64_t N) {
  auto [sorted, order] = at::sort(keys, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  const at::Tensor offsets = at::searchsorted(sorted, at::arange(N + 1, sorted.options())).contiguous();
  return {order, offsets};
}

}  // namespace openmmnnp
