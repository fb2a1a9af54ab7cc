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

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace openmmnnp {
namespace {

std::mutex registry_mutex;
// key -> the flags of every live copy of that model (a few: one per Context of one force).
std::map<std::string, std::vector<at::Tensor>>& registry() {
  static std::map<std::string, std::vector<at::Tensor>> flags;
  return flags;
}

// Drops the flags that only this table still references: their model (and its Context) is gone.
void drop_dead(std::vector<at::Tensor>& copies) {
  copies.erase(std::remove_if(copies.begin(), copies.end(), [](const at::Tensor& t) { return t.use_count() == 1; }),
               copies.end());
}

}  // namespace

void register_flags(const at::Tensor& flags, const std::string& key) {
  TORCH_CHECK(!key.empty(), "openmmnnp::register_flags: the key must not be empty");
  TORCH_CHECK(flags.dim() == 1, "openmmnnp::register_flags: flags must be one-dimensional, got ", flags.sizes());
  std::lock_guard<std::mutex> lock(registry_mutex);
  std::vector<at::Tensor>& copies = registry()[key];
  for (const at::Tensor& known : copies)
    if (known.is_same(flags)) return;  // every call registers again: usually already known
  drop_dead(copies);  // a new copy (a new Context): forget those of deleted ones, so the table stays small
  copies.push_back(flags);
}

std::tuple<std::vector<std::string>, std::vector<at::Tensor>> registered_flags() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  std::vector<std::string> keys;
  std::vector<at::Tensor> tensors;
  for (auto entry = registry().begin(); entry != registry().end();) {
    std::vector<at::Tensor>& copies = entry->second;
    drop_dead(copies);
    if (copies.empty()) {
      entry = registry().erase(entry);
      continue;
    }
    for (const at::Tensor& t : copies) {
      keys.push_back(entry->first);
      tensors.push_back(t);
    }
    ++entry;
  }
  return {keys, tensors};
}

void forget_flags(const std::string& key) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  registry().erase(key);
}

}  // namespace openmmnnp
