// Autograd of openmmnnp::neighbor_pairs: none. Its outputs are integers (atom indices, image shifts,
// a count), so nothing is differentiable; models recompute the pair vectors from the positions with
// ordinary torch ops, which carry the gradient. A fallthrough says so explicitly: calls with
// positions that require grad go straight to the device kernel.
#include <torch/library.h>

TORCH_LIBRARY_IMPL(openmmnnp, Autograd, m) { m.impl("neighbor_pairs", torch::CppFunction::makeFallthrough()); }
