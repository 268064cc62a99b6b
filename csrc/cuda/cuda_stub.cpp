// The CPU-only build's stand-in for the CUDA code: every entry reports that this
// binary was built without CUDA.
#include "cuda_api.h"
#include "../core/alignment_kernels.h"
#include "../core/elementwise_kernels.h"
#include "../core/model_kernels.h"
#include "../core/error.h"

namespace valr {
namespace cuda {

namespace {
[[noreturn]] void notBuilt() {
  throw Error(ErrorCode::Device,
              "this valr-node binary was built without CUDA; use device 'cpu' or install/build the CUDA binary "
              "(npm run build:native with nvcc on PATH)");
}
}  // namespace

Probe probe() { return Probe{}; }
void* allocate(int, size_t) { notBuilt(); }
void release(int, void*) noexcept {}
void emptyCache(int) { notBuilt(); }
MemoryStats memoryStats(int) { notBuilt(); }
void resetPeakStats(int) { notBuilt(); }
void copy(void*, int, const void*, int, size_t) { notBuilt(); }
void* stream(int) { notBuilt(); }
void synchronize(int) { notBuilt(); }
int currentDevice() { notBuilt(); }
void checkDevicePointer(int, const void*) { notBuilt(); }

}  // namespace cuda
}  // namespace valr

// Alignment kernels (csrc/cuda/{tap,upsample_bilinear,repa_cosine}.cu in CUDA builds).
namespace valr {
namespace cuda {
void tapGather(const float*, int64_t, int64_t, const int32_t*, int64_t, float*) { notBuilt(); }
void tapScatter(const float*, int64_t, int64_t, const ScatterPlan&, int64_t, float*, bool) { notBuilt(); }
void upsampleBilinear(const float*, float*, const UpsampleDims&) { notBuilt(); }
void upsampleBilinearBackward(const float*, float*, const UpsampleDims&, bool) { notBuilt(); }
RepaResult repaCosineLoss(const std::vector<RepaTeacher>&, int64_t, const float*, double) { notBuilt(); }
}  // namespace cuda
}  // namespace valr

namespace valr {
namespace cuda {
void fill(float*, int64_t, float) { notBuilt(); }
void scale(float*, int64_t, float) { notBuilt(); }
void addScaled(float*, const float*, int64_t, float) { notBuilt(); }
}  // namespace cuda
}  // namespace valr

// Model kernels (csrc/cuda/{gemm,attention,norms,rope,activations,cross_entropy,optimizer,copy}.cu).
namespace valr {
namespace cuda {
void gemm(const GemmArgs&) { notBuilt(); }
void attentionForward(const float*, const float*, const float*, const int32_t*, float*, float*, const AttentionDims&) { notBuilt(); }
void attentionBackward(const float*, const float*, const float*, const float*, const float*, const float*, const int32_t*,
                       float*, float*, float*, const AttentionDims&) { notBuilt(); }
void rmsNormForward(const float*, const float*, float*, float*, int64_t, int64_t, float) { notBuilt(); }
void rmsNormBackward(const float*, const float*, const float*, const float*, float*, float*, int64_t, int64_t) { notBuilt(); }
void layerNormForward(const float*, const float*, const float*, float*, float*, float*, int64_t, int64_t, float) { notBuilt(); }
void layerNormBackward(const float*, const float*, const float*, const float*, const float*, float*, float*, float*, int64_t,
                       int64_t) { notBuilt(); }
void rope(const float*, float*, const int32_t*, int64_t, int64_t, int64_t, float, bool) { notBuilt(); }
void swigluForward(const float*, const float*, float*, int64_t) { notBuilt(); }
void swigluBackward(const float*, const float*, const float*, float*, float*, int64_t) { notBuilt(); }
void geluForward(const float*, float*, int64_t) { notBuilt(); }
void geluBackward(const float*, const float*, float*, int64_t) { notBuilt(); }
double crossEntropy(const float*, const int32_t*, int64_t, int64_t, int32_t, double, float*, double, int64_t*) { notBuilt(); }
void adamw(float*, const float*, float*, float*, int64_t, float, float, float, float, float, int64_t) { notBuilt(); }
double sumSquares(const float*, int64_t) { notBuilt(); }
void copyBlock(const float*, int64_t, int64_t, float*, int64_t, int64_t, int64_t, int64_t, int64_t, bool) { notBuilt(); }
void scatterRows(const float*, const int32_t*, int64_t, int64_t, float*) { notBuilt(); }
}  // namespace cuda
}  // namespace valr
