// The VaLR alignment kernels (tap, bilinear upsample, batched cosine REPA loss).
// The same declarations are implemented twice: valr::cpu (csrc/cpu/*.cpp) and
// valr::cuda (csrc/cuda/*.cu; cuda_stub.cpp in CPU-only builds). Tensor data
// pointers live on the backend's device; index arrays, plans and weights are
// always host pointers (they are small; the CUDA side uploads them).
// Callers (the N-API glue) validate shapes, indices and weights before calling.
// Activation gradients are written (=) unless `accumulate` asks for +=.
#pragma once
#include <cstdint>
#include <vector>

namespace valr {

// Row r of a [B*T, D] matrix receives the sum of the gradient rows i with
// rows[i] == r, added in increasing i: a CSR view built on the host so the order
// of every sum is fixed (deterministic, no atomics).
struct ScatterPlan {
  std::vector<int32_t> offsets;  // [numRows + 1]
  std::vector<int32_t> sources;  // [count], grouped by target row
};
ScatterPlan buildScatterPlan(const int32_t* rows, int64_t count, int64_t numRows);

struct UpsampleDims {
  int64_t S, gh, gw, Gh, Gw, D;  // x [S, gh, gw, D] -> y [S, Gh, Gw, D]
};

struct RepaTeacher {
  const float* pred;    // [S, P, D]
  const float* target;  // [S, P, D]
  float* gradPred;      // [S, P, D], written (=)
  int64_t P, D;
};

struct RepaResult {
  double total = 0;                 // mean over teachers
  std::vector<double> perTeacher;   // L_m = -(1/(sum(w) P_m)) sum_s w_s sum_p cos
};

constexpr double kCosineEps = 1e-8;  // F.cosine_similarity's default
constexpr int kMaxTeachers = 16;

#define VALR_ALIGNMENT_KERNELS                                                                              \
  /* out[i, :] = hidden[rows[i], :]; hidden [numRows, D], out [count, D] */                                \
  void tapGather(const float* hidden, int64_t numRows, int64_t D, const int32_t* rows, int64_t count,       \
                 float* out);                                                                               \
  /* out[r, :] (=|+=) sum over plan sources of grad[i, :]; grad [count, D], out [numRows, D] */            \
  void tapScatter(const float* grad, int64_t count, int64_t D, const ScatterPlan& plan, int64_t numRows,    \
                  float* out, bool accumulate);                                                             \
  /* F.interpolate(mode='bilinear', align_corners=False), channels last */                                 \
  void upsampleBilinear(const float* x, float* y, const UpsampleDims& d);                                   \
  /* gradient of the above: dy [S, Gh, Gw, D] -> dx [S, gh, gw, D] */                                       \
  void upsampleBilinearBackward(const float* dy, float* dx, const UpsampleDims& d, bool accumulate);        \
  /* Loss of every teacher and gradPred = gradScale * d(total)/d(pred) in one pass per row.                \
     weights: host [S] or nullptr (all 1); sum(weights) == 0 gives loss 0 and zero gradients. */           \
  RepaResult repaCosineLoss(const std::vector<RepaTeacher>& teachers, int64_t S, const float* weights,      \
                            double gradScale);

namespace cpu {
VALR_ALIGNMENT_KERNELS
}
namespace cuda {
VALR_ALIGNMENT_KERNELS
}

}  // namespace valr
