// The inference decoder and fused latent segment on the CPU backend.
#include <algorithm>
#include <cmath>
#include <memory>
#include "../core/decoder_engine.h"
#include "../core/elementwise_kernels.h"
#include "../core/model_kernels.h"
#include "../core/storage.h"

namespace valr {
namespace cpu {
namespace {
Device kEngineDevice() { return Device::cpu(); }
}  // namespace
#include "../core/decoder_engine.inc"
}  // namespace cpu
}  // namespace valr
