// Argument checks of openmmnnp::tabulate_fusion(_backward), shared by the CPU, CUDA and Meta kernels,
// and the contiguous inputs and raw pointers that the CPU and CUDA kernels both read.
#pragma once

#include <ATen/ATen.h>

#include "reference/tabulate_fusion/tabulate_fusion.h"

namespace openmmnnp {
namespace tabulate_fusion {

inline void check_inputs(const char* op, const at::Tensor& table, const at::Tensor& table_info, const at::Tensor& s_hat,
                         const at::Tensor& r_hat, const at::Tensor& center, const at::Tensor& table_index) {
  TORCH_CHECK(table.dim() == 4 && table.size(3) == 6, op, ": table must be [num_tables, num_intervals, M, 6], got ",
              table.sizes());
  TORCH_CHECK(table.size(0) > 0 && table.size(1) > 0, op, ": table is empty, got ", table.sizes());
  TORCH_CHECK(table.is_floating_point() && (table.scalar_type() == at::kFloat || table.scalar_type() == at::kDouble),
              op, ": table must be float32 or float64, got ", table.scalar_type());
  TORCH_CHECK(table_info.dim() == 1 && table_info.numel() == 5 && table_info.is_floating_point(), op,
              ": table_info must be a floating-point [5] tensor (lower, upper, upper2, stride, stride2), got ",
              table_info.sizes());
  const int64_t E = s_hat.numel();
  TORCH_CHECK(s_hat.dim() == 1, op, ": s_hat must be [E], got ", s_hat.sizes());
  TORCH_CHECK(r_hat.dim() == 2 && r_hat.size(0) == E && r_hat.size(1) == 4, op, ": r_hat must be [E, 4] with E = ", E,
              ", got ", r_hat.sizes());
  TORCH_CHECK(s_hat.scalar_type() == table.scalar_type() && r_hat.scalar_type() == table.scalar_type(), op,
              ": table, s_hat and r_hat must share one dtype, got ", table.scalar_type(), ", ", s_hat.scalar_type(),
              ", ", r_hat.scalar_type());
  TORCH_CHECK(center.dim() == 1 && center.numel() == E && center.scalar_type() == at::kLong, op,
              ": center must be int64 [E] with E = ", E, ", got ", center.scalar_type(), " ", center.sizes());
  TORCH_CHECK(table_index.dim() == 1 && table_index.numel() == E && table_index.scalar_type() == at::kLong, op,
              ": table_index must be int64 [E] with E = ", E, ", got ", table_index.scalar_type(), " ",
              table_index.sizes());
  const auto device = table.device();
  for (const at::Tensor* t : {&table_info, &s_hat, &r_hat, &center, &table_index})
    TORCH_CHECK(t->device() == device, op, ": all tensors must be on ", device, ", got one on ", t->device());
}

inline void check_num_atoms(const char* op, int64_t num_atoms) {
  TORCH_CHECK(num_atoms >= 0, op, ": num_atoms must be >= 0, got ", num_atoms);
}

inline void check_grad_output(const char* op, const at::Tensor& table, const at::Tensor& grad_output) {
  const int64_t M = table.size(2);
  TORCH_CHECK(grad_output.dim() == 3 && grad_output.size(1) == M && grad_output.size(2) == 4, op,
              ": grad_output must be [N, M, 4] with M = ", M, ", got ", grad_output.sizes());
  TORCH_CHECK(grad_output.scalar_type() == table.scalar_type() && grad_output.device() == table.device(), op,
              ": grad_output must match the table's dtype and device");
}

// The inputs every kernel reads, contiguous, table_info on the table's device in its dtype.
struct Contiguous {
  at::Tensor table, info, s_hat, r_hat, center, table_index;
};

inline Contiguous contiguous_inputs(const at::Tensor& table, const at::Tensor& table_info, const at::Tensor& s_hat,
                                    const at::Tensor& r_hat, const at::Tensor& center, const at::Tensor& table_index) {
  return {table.contiguous(),  table_info.to(table.device(), table.scalar_type()).contiguous(),
          s_hat.contiguous(),  r_hat.contiguous(),
          center.contiguous(), table_index.contiguous()};
}

template <typename T>
Pointers<T> pointers(const Contiguous& c, int64_t num_atoms) {
  return {c.table.const_data_ptr<T>(),
          c.info.const_data_ptr<T>(),
          c.s_hat.const_data_ptr<T>(),
          c.r_hat.const_data_ptr<T>(),
          c.center.const_data_ptr<int64_t>(),
          c.table_index.const_data_ptr<int64_t>(),
          c.s_hat.numel(),
          num_atoms,
          c.table.size(0),
          c.table.size(1),
          c.table.size(2)};
}

}  // namespace tabulate_fusion
}  // namespace openmmnnp
