// The coefficient-major copy [num_tables, num_intervals, 6, M] of a compression table, kept
// between calls by the CPU kernels of env_tabulate (their loops over the M outputs need it
// contiguous). A model passes the same table tensor on every MD step, and copying it took as long
// as a small system's whole forward pass (1 ms of a 6 ms step for 195 waters).
//
// An entry is served only to the very tensor it was made from, unchanged since: a weak reference
// to that TensorImpl (a freed table is never matched, even when its memory is reused), its data
// pointer and its version counter (bumped by every in-place change). At most kEntries tables are
// kept; expired entries are dropped at every look-up.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/intrusive_ptr.h>

#include <cstdint>
#include <deque>
#include <mutex>

namespace openmmnnp {
namespace env_tabulate {

class TableCache {
 public:
  at::Tensor coefficient_major(const at::Tensor& table) {
    // Tensors made under torch.inference_mode have no version counter: copied every call.
    if (table.is_inference()) return copy(table);
    const std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->source.expired()) {
        it = entries_.erase(it);
        continue;
      }
      if (it->source.lock().get() == table.unsafeGetTensorImpl() && it->data == table.const_data_ptr() &&
          it->version == table._version())
        return it->copy;
      ++it;
    }
    Entry entry{c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>(table.getIntrusivePtr()),
                table.const_data_ptr(), table._version(), copy(table)};
    entries_.push_front(entry);
    if (entries_.size() > kEntries) entries_.pop_back();
    return entry.copy;
  }

 private:
  static at::Tensor copy(const at::Tensor& table) { return table.permute({0, 1, 3, 2}).contiguous(); }

  static constexpr size_t kEntries = 4;
  struct Entry {
    c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl> source;
    const void* data;
    int64_t version;
    at::Tensor copy;
  };
  std::mutex mutex_;
  std::deque<Entry> entries_;
};

}  // namespace env_tabulate
}  // namespace openmmnnp
