// The addon's entry point.
#include <napi.h>
#include "bindings.h"
#include "tensor_object.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  valr::js::NativeTensor::Init(env, exports);
  valr::js::initRuntime(env, exports);
  valr::js::initTensorFactories(env, exports);
  valr::js::initAlignmentKernels(env, exports);
  valr::js::initElementwise(env, exports);
  valr::js::initModelKernels(env, exports);
  valr::js::initDecoderEngine(env, exports);
#ifdef VALR_WITH_CUDA
  exports.Set("variant", "cuda");
#else
  exports.Set("variant", "cpu");
#endif
  exports.Set("abiVersion", 1);
  return exports;
}

}  // namespace

NODE_API_MODULE(valr, Init)
