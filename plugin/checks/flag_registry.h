// Process-wide table of overflow-flag tensors (flag_registry.cpp explains why it exists).
// Host-only bookkeeping, so the ops are registered as catch-all kernels (plugin/registration.cpp).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <tuple>
#include <vector>

namespace openmmnnp {

// Remember flags under key. One key may hold several tensors: every copy of a model (each OpenMM
// Context made from one force holds its own) registers its own buffer under the model's key.
void register_flags(const at::Tensor& flags, const std::string& key);
// Every (key, flags) registered in this process whose model still exists, ordered by key
// (entries that only this table still references are dropped).
std::tuple<std::vector<std::string>, std::vector<at::Tensor>> registered_flags();
// Drop key and all its tensors (no error if absent).
void forget_flags(const std::string& key);

}  // namespace openmmnnp
