// Creating tensors: empty buffers, copies of typed arrays, and foreign device
// pointers wrapped without a copy.
#include "bindings.h"
#include <cstring>
#include "../cuda/cuda_api.h"
#include "args.h"
#include "js_errors.h"
#include "tensor_object.h"

namespace valr {
namespace js {
namespace {

// empty(shape, dtype, device) -> NativeTensor (contents undefined)
Napi::Value Empty(const Napi::CallbackInfo& info) {
  auto shape = argShape(info, 0, "shape");
  DType dtype = argDType(info, 1, "dtype");
  Device device = argDevice(info, 2, "device");
  auto storage = Storage::allocate(device, size_t(numel(shape)) * dtypeSize(dtype));
  return NativeTensor::New(info.Env(), storage, dtype, shape);
}

// fromArray(typedArray, shape, device) -> NativeTensor; dtype follows the array type.
Napi::Value FromArray(const Napi::CallbackInfo& info) {
  Napi::TypedArray ta = argTypedArray(info, 0, "data");
  auto shape = argShape(info, 1, "shape");
  Device device = argDevice(info, 2, "device");
  DType dtype;
  if (ta.TypedArrayType() == napi_float32_array) dtype = DType::Float32;
  else if (ta.TypedArrayType() == napi_int32_array) dtype = DType::Int32;
  else VALR_CHECK(false, DType, "argument 'data' must be a Float32Array or Int32Array, got " << describe(ta));
  VALR_CHECK(int64_t(ta.ElementLength()) == numel(shape), Shape,
             "argument 'data' has " << ta.ElementLength() << " elements but shape " << shapeString(shape) << " needs "
                                    << numel(shape));
  size_t nbytes = size_t(numel(shape)) * dtypeSize(dtype);
  auto storage = Storage::allocate(device, nbytes);
  copyFromHost(*storage, static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), nbytes);
  return NativeTensor::New(info.Env(), storage, dtype, shape);
}

// wrapDevicePointer(ptr: bigint, shape, dtype, device) -> NativeTensor borrowing the
// memory. The caller (lib/tensor.ts) keeps the owner object alive alongside it.
Napi::Value WrapDevicePointer(const Napi::CallbackInfo& info) {
  Napi::Value p = arg(info, 0);
  VALR_CHECK(p.IsBigInt(), Argument, "argument 'pointer' must be a bigint device address, got " << describe(p));
  bool lossless = false;
  uint64_t addr = p.As<Napi::BigInt>().Uint64Value(&lossless);
  VALR_CHECK(lossless && addr != 0, Argument, "argument 'pointer' must be a non-zero 64-bit address");
  auto shape = argShape(info, 1, "shape");
  DType dtype = argDType(info, 2, "dtype");
  Device device = argDevice(info, 3, "device");
  VALR_CHECK(device.isCuda(), Device, "argument 'device' must be a CUDA device to wrap a device pointer, got "
                                          << device.str());
  VALR_CHECK(addr % dtypeSize(dtype) == 0, Argument,
             "argument 'pointer' is not aligned to " << dtypeSize(dtype) << " bytes for " << dtypeName(dtype));
  void* ptr = reinterpret_cast<void*>(static_cast<uintptr_t>(addr));
  cuda::checkDevicePointer(device.index, ptr);
  auto storage = Storage::borrow(device, ptr, size_t(numel(shape)) * dtypeSize(dtype));
  return NativeTensor::New(info.Env(), storage, dtype, shape);
}

}  // namespace

void initTensorFactories(Napi::Env env, Napi::Object exports) {
  exports.Set("empty", Napi::Function::New<guarded<Empty>>(env, "empty"));
  exports.Set("fromArray", Napi::Function::New<guarded<FromArray>>(env, "fromArray"));
  exports.Set("wrapDevicePointer", Napi::Function::New<guarded<WrapDevicePointer>>(env, "wrapDevicePointer"));
}

}  // namespace js
}  // namespace valr
