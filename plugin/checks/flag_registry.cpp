// openmmnnp::register_flags / registered_flags: a process-wide table of models' overflow-flag
// tensors, so that a Python MD reporter can read flags that a model running inside openmm-torch's
// TorchForce (a separate copy of the module, loaded by C++) accumulates on the device.
//
// Why: under CUDA graphs a model's forward is captured once and then replayed as kernels only, so
// no check written in the model (which needs the host) runs during replay. The flags are module
// buffers with a fixed address; the kernels that update them are part of the graph, and this table
// holds a reference to the same storage, so reading it every N steps sees every replay's updates.
// Registering costs a hash-map insert on the host and launches nothing (safe during capture).
#include "checks/flag_registry.h"

#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace openmmnnp {
namespace {

std::mutex registry_mutex;
std::map<std::string, at::Tensor>& registry() {
  static std::map<std::string, at::Tensor> flags;
  return flags;
}

}  // namespace

void register_flags(const at::Tensor& flags, const std::string& key) {
  TORCH_CHECK(!key.empty(), "openmmnnp::register_flags: the key must not be empty");
  TORCH_CHECK(flags.dim() == 1, "openmmnnp::register_flags: flags must be one-dimensional, got ", flags.sizes());
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto found = registry().find(key);
  if (found == registry().end() || !found->second.is_same(flags)) registry()[key] = flags;
}

std::tuple<std::vector<std::string>, std::vector<at::Tensor>> registered_flags() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  std::vector<std::string> keys;
  std::vector<at::Tensor> tensors;
  for (auto entry = registry().begin(); entry != registry().end();) {
    // Only this table still holds the flags: their model (and its Context) is gone.
    if (entry->second.use_count() == 1) {
      entry = registry().erase(entry);
      continue;
    }
    keys.push_back(entry->first);
    tensors.push_back(entry->second);
    ++entry;
  }
  return {keys, tensors};
}

void forget_flags(const std::string& key) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  registry().erase(key);
}

}  // namespace openmmnnp
