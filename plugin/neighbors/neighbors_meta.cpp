// Meta (fake) kernel of openmmnnp::neighbor_pairs: the output shapes depend only on max_pairs,
// so tracing and compilation know them without running the search.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "neighbors/neighbors_checks.h"

namespace openmmnnp {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> neighbor_pairs_meta(const at::Tensor& positions, double cutoff,
                                                                   const c10::optional<at::Tensor>& box,
                                                                   int64_t max_pairs, bool /*full*/) {
  neighbors::check_arguments(positions, cutoff, box, max_pairs);
  const auto options = positions.options();
  return {at::empty({2, max_pairs}, options.dtype(at::kInt)), at::empty({max_pairs, 3}, options.dtype(at::kShort)),
          at::empty({1}, options.dtype(at::kLong))};
}

}  // namespace

TORCH_LIBRARY_IMPL(openmmnnp, Meta, m) { m.impl("neighbor_pairs", &neighbor_pairs_meta); }

}  // namespace openmmnnp
