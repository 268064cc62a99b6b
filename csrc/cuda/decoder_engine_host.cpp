// The inference decoder and fused latent segment on the CUDA backend: host code
// that queues the CUDA kernels on the device's stream; nothing waits for the GPU
// between steps. In CPU-only builds the kernels are the stubs and this reports
// that CUDA was not built.
#include <algorithm>
#include <cmath>
#include <memory>
#include "../core/decoder_engine.h"
#include "../core/elementwise_kernels.h"
#include "../core/model_kernels.h"
#include "../core/storage.h"
#include "cuda_api.h"

namespace valr {
namespace cuda {
namespace {
Device kEngineDevice() {
  // The binding made the tensors' device current; the stream helper knows which.
  return Device::cuda(currentDevice());
}
}  // namespace
#include "../core/decoder_engine.inc"
}  // namespace cuda
}  // namespace valr
