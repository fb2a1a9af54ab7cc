// The host/device vocabulary of the op library, written once. A function marked OPENMMNNP_HD is
// compiled for the CPU kernels and, under nvcc, for the CUDA kernels too: each op's per-element
// math lives in such functions (its <op>.h), so the CPU tests run the very lines a GPU runs.
// The numeric helpers have one overload per floating type because device code has no std:: maths.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define OPENMMNNP_HD __host__ __device__ __forceinline__
// Lets an OPENMMNNP_HD template call a device-only callable (a lambda written in a kernel).
#define OPENMMNNP_HD_TEMPLATE _Pragma("nv_exec_check_disable")
#else
#define OPENMMNNP_HD inline
#define OPENMMNNP_HD_TEMPLATE
#endif

namespace openmmnnp {

OPENMMNNP_HD double floor_of(double x) { return floor(x); }
OPENMMNNP_HD float floor_of(float x) { return floorf(x); }
OPENMMNNP_HD double sqrt_of(double x) { return sqrt(x); }
OPENMMNNP_HD float sqrt_of(float x) { return sqrtf(x); }

// floor(x / n) for n > 0 (C++ division truncates towards zero).
OPENMMNNP_HD int64_t floor_div(int64_t x, int64_t n) { return x >= 0 ? x / n : -((-x + n - 1) / n); }

// False for NaN and +-inf (no <cmath> overload questions on host or device).
OPENMMNNP_HD bool is_finite(double x) { return fabs(x) <= 1.7976931348623157e308; }

}  // namespace openmmnnp
