// Argument checks and host-side helpers of openmmnnp::env_tabulate(_backward), shared by the CPU,
// CUDA and Meta kernels: the contiguous inputs and the raw pointers the CPU and CUDA kernels read.
// Only shapes, dtypes and devices: checks that need data are done by the CPU kernel (the CUDA
// kernel never synchronises the host; it skips edges whose atoms are out of range).
#pragma once

#include <ATen/ATen.h>

#include "env_tabulate/env_tabulate.h"

namespace openmmnnp {
namespace env_tabulate {

inline void check_inputs(const char* op, const at::Tensor& positions, const c10::optional<at::Tensor>& box,
                         const at::Tensor& pairs, const at::Tensor& shifts, const at::Tensor& num_pairs,
                         const at::Tensor& types, const at::Tensor& davg, const at::Tensor& dstd,
                         const at::Tensor& table, const at::Tensor& table_info, double rcut_smth, double rcut,
                         bool type_one_side) {
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 3, op, ": positions must be [N, 3], got ",
              positions.sizes());
  const auto dtype = positions.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, op, ": positions must be float32 or float64, got ", dtype);
  const int64_t N = positions.size(0);
  if (box.has_value() && box->defined()) {
    TORCH_CHECK(box->dim() == 2 && box->size(0) == 3 && box->size(1) == 3, op, ": box must be [3, 3] (rows), got ",
                box->sizes());
    TORCH_CHECK(box->scalar_type() == dtype, op, ": box must have the dtype of positions (", dtype, "), got ",
                box->scalar_type());
  }
  TORCH_CHECK(pairs.dim() == 2 && pairs.size(0) == 2, op, ": pairs must be [2, capacity], got ", pairs.sizes());
  TORCH_CHECK(pairs.scalar_type() == at::kInt || pairs.scalar_type() == at::kLong, op,
              ": pairs must be int32 or int64, got ", pairs.scalar_type());
  const int64_t capacity = pairs.size(1);
  TORCH_CHECK(shifts.dim() == 2 && shifts.size(0) == capacity && shifts.size(1) == 3, op,
              ": shifts must be [capacity, 3] with capacity = ", capacity, ", got ", shifts.sizes());
  TORCH_CHECK(shifts.scalar_type() == at::kShort || shifts.scalar_type() == at::kInt, op,
              ": shifts must be int16 or int32, got ", shifts.scalar_type());
  TORCH_CHECK(num_pairs.numel() == 1 && num_pairs.scalar_type() == at::kLong, op,
              ": num_pairs must be a one-element int64 tensor, got ", num_pairs.scalar_type(), " ", num_pairs.sizes());
  TORCH_CHECK(types.dim() == 1 && types.size(0) == N && types.scalar_type() == at::kLong, op,
              ": types must be int64 [N] with N = ", N, ", got ", types.scalar_type(), " ", types.sizes());
  TORCH_CHECK(davg.dim() == 2 && davg.size(1) == 4 && davg.size(0) > 0 && dstd.sizes() == davg.sizes(), op,
              ": davg and dstd must be [ntypes, 4], got ", davg.sizes(), " and ", dstd.sizes());
  TORCH_CHECK(davg.scalar_type() == dtype && dstd.scalar_type() == dtype, op,
              ": davg and dstd must have the dtype of positions (", dtype, ")");
  const int64_t ntypes = davg.size(0);
  TORCH_CHECK(table.dim() == 4 && table.size(3) == 6 && table.size(1) > 0 && table.size(2) > 0, op,
              ": table must be [num_tables, num_intervals, M, 6], got ", table.sizes());
  TORCH_CHECK(table.scalar_type() == dtype, op, ": table must have the dtype of positions (", dtype, "), got ",
              table.scalar_type());
  const int64_t num_tables = type_one_side ? ntypes : ntypes * ntypes;
  TORCH_CHECK(table.size(0) == num_tables, op, ": ", ntypes, " types need ", num_tables,
              " tables (type_one_side = ", type_one_side, "), got ", table.size(0));
  TORCH_CHECK(table_info.dim() == 1 && table_info.numel() == 5 && table_info.is_floating_point(), op,
              ": table_info must be a floating-point [5] tensor (lower, upper, upper2, stride, stride2), got ",
              table_info.sizes());
  TORCH_CHECK(0.0 <= rcut_smth && rcut_smth < rcut, op, ": need 0 <= rcut_smth < rcut, got ", rcut_smth, ", ", rcut);
  const auto device = positions.device();
  for (const at::Tensor* t : {&pairs, &shifts, &num_pairs, &types, &davg, &dstd, &table, &table_info})
    TORCH_CHECK(t->device() == device, op, ": all tensors must be on ", device, ", got one on ", t->device());
  if (box.has_value() && box->defined())
    TORCH_CHECK(box->device() == device, op, ": all tensors must be on ", device, ", got the box on ", box->device());
}

inline void check_grad_output(const char* op, const at::Tensor& positions, const at::Tensor& table,
                              const at::Tensor& grad_output) {
  const int64_t N = positions.size(0), M = table.size(2);
  TORCH_CHECK(
      grad_output.dim() == 3 && grad_output.size(0) == N && grad_output.size(1) == M && grad_output.size(2) == 4, op,
      ": grad_output must be [N, M, 4] with N = ", N, " and M = ", M, ", got ", grad_output.sizes());
  TORCH_CHECK(grad_output.scalar_type() == table.scalar_type() && grad_output.device() == table.device(), op,
              ": grad_output must match the table's dtype and device");
}

inline bool has_box(const c10::optional<at::Tensor>& box) { return box.has_value() && box->defined(); }

// Calls fn(index_t{}, shift_t{}) with the C++ types of pairs (int32/int64) and shifts (int16/int32).
template <typename Fn>
void dispatch_index_types(const at::Tensor& pairs, const at::Tensor& shifts, Fn&& fn) {
  const bool long_pairs = pairs.scalar_type() == at::kLong, short_shifts = shifts.scalar_type() == at::kShort;
  if (long_pairs && short_shifts)
    fn(int64_t{}, int16_t{});
  else if (long_pairs)
    fn(int64_t{}, int32_t{});
  else if (short_shifts)
    fn(int32_t{}, int16_t{});
  else
    fn(int32_t{}, int32_t{});
}

// The inputs every kernel reads, contiguous (box undefined: not periodic); table is in the layout of
// the device's kernels (the CPU's coefficient-major copy, the table itself on CUDA), table_info on the
// device in the dtype of positions.
struct Contiguous {
  at::Tensor pos, box, pairs, shifts, types, davg, dstd, table, info;
};

inline Contiguous contiguous_inputs(const at::Tensor& positions, const c10::optional<at::Tensor>& box,
                                    const at::Tensor& pairs, const at::Tensor& shifts, const at::Tensor& types,
                                    const at::Tensor& davg, const at::Tensor& dstd, const at::Tensor& kernel_table,
                                    const at::Tensor& table_info) {
  return {positions.contiguous(),
          has_box(box) ? box->contiguous() : at::Tensor(),
          pairs.contiguous(),
          shifts.contiguous(),
          types.contiguous(),
          davg.contiguous(),
          dstd.contiguous(),
          kernel_table,
          table_info.to(positions.device(), positions.scalar_type()).contiguous()};
}

template <typename scalar_t, typename index_t, typename shift_t>
Pointers<scalar_t, index_t, shift_t> pointers(const Contiguous& c, double rcut_smth, double rcut, bool type_one_side) {
  return {c.pos.const_data_ptr<scalar_t>(),
          c.box.defined() ? c.box.const_data_ptr<scalar_t>() : nullptr,
          c.pairs.const_data_ptr<index_t>(),
          c.shifts.const_data_ptr<shift_t>(),
          c.types.const_data_ptr<int64_t>(),
          c.davg.const_data_ptr<scalar_t>(),
          c.dstd.const_data_ptr<scalar_t>(),
          c.pairs.size(1),
          c.davg.size(0),
          c.pos.size(0),
          type_one_side,
          static_cast<scalar_t>(rcut_smth),
          static_cast<scalar_t>(rcut)};
}

}  // namespace env_tabulate
}  // namespace openmmnnp
