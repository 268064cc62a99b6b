#include "tensor_object.h"
#include <cstring>
#include "../cuda/cuda_api.h"
#include "args.h"
#include "js_errors.h"

namespace valr {
namespace js {

Napi::FunctionReference* NativeTensor::constructor_ = nullptr;

namespace {
// Only New() may construct: JS `new NativeTensor()` lacks this token.
struct ConstructToken {
  std::shared_ptr<Storage> storage;
  DType dtype;
  std::vector<int64_t> shape;
};

}  // namespace

void NativeTensor::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(
      env, "NativeTensor",
      {
          InstanceMethod("dispose", &NativeTensor::Dispose),
          InstanceMethod("isDisposed", &NativeTensor::IsDisposed),
          InstanceMethod("shape", &NativeTensor::Shape),
          InstanceMethod("dtype", &NativeTensor::DTypeName),
          InstanceMethod("device", &NativeTensor::DeviceName),
          InstanceMethod("nbytes", &NativeTensor::NBytes),
          InstanceMethod("read", &NativeTensor::Read),
          InstanceMethod("write", &NativeTensor::Write),
          InstanceMethod("to", &NativeTensor::To),
          InstanceMethod("devicePointer", &NativeTensor::DevicePointer),
          InstanceMethod("stream", &NativeTensor::Stream),
          InstanceMethod("owning", &NativeTensor::Owning),
          InstanceMethod("reshape", &NativeTensor::Reshape),
      });
  constructor_ = new Napi::FunctionReference(Napi::Persistent(ctor));
  env.SetInstanceData<Napi::FunctionReference>(constructor_);
  exports.Set("NativeTensor", ctor);
}

Napi::Object NativeTensor::New(Napi::Env env, std::shared_ptr<Storage> storage, DType dtype,
                               std::vector<int64_t> shape) {
  ConstructToken token{std::move(storage), dtype, std::move(shape)};
  return constructor_->New({Napi::External<ConstructToken>::New(env, &token)});
}

std::pair<Napi::Object, float*> NativeTensor::NewFloat(Napi::Env env, Device device, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  auto storage = Storage::allocate(device, size_t(n) * sizeof(float));
  float* p = static_cast<float*>(storage->data());
  return {New(env, storage, DType::Float32, std::move(shape)), p};
}

NativeTensor::NativeTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeTensor>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    makeError(info.Env(), "ERR_VALR_ARGUMENT",
              "NativeTensor cannot be constructed from JS; use the tensor factories (empty, fromArray, ...)")
        .ThrowAsJavaScriptException();
    return;
  }
  ConstructToken* t = info[0].As<Napi::External<ConstructToken>>().Data();
  storage_ = std::move(t->storage);
  dtype_ = t->dtype;
  shape_ = std::move(t->shape);
  if (storage_->owning() && storage_->device().isCpu()) {
    reportedBytes_ = static_cast<int64_t>(storage_->nbytes());
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reportedBytes_);
  }
}

NativeTensor::~NativeTensor() { storage_.reset(); }

void NativeTensor::Finalize(Napi::Env env) { release(env); }

void NativeTensor::release(Napi::Env env) {
  if (!storage_) return;
  if (reportedBytes_) Napi::MemoryManagement::AdjustExternalMemory(env, -reportedBytes_);
  reportedBytes_ = 0;
  storage_.reset();
}

void NativeTensor::checkLive() const {
  VALR_CHECK(storage_ != nullptr, Disposed, "tensor " << shapeString(shape_) << " was disposed and cannot be used");
}

NativeTensor* NativeTensor::FromArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i);
  VALR_CHECK(v.IsObject() && v.As<Napi::Object>().InstanceOf(constructor_->Value()), Argument,
             "argument '" << name << "' must be a NativeTensor, got " << describe(v));
  NativeTensor* t = Napi::ObjectWrap<NativeTensor>::Unwrap(v.As<Napi::Object>());
  VALR_CHECK(t && t->storage_, Disposed, "argument '" << name << "' is a disposed tensor");
  return t;
}

int64_t NativeTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

void NativeTensor::expect(const char* name, DType dtype, const std::vector<int64_t>* shape) const {
  checkLive();
  VALR_CHECK(dtype_ == dtype, DType, "argument '" << name << "' must be " << dtypeName(dtype) << ", got "
                                                   << dtypeName(dtype_));
  VALR_CHECK(!shape || *shape == shape_, Shape, "argument '" << name << "' must have shape " << shapeString(*shape)
                                                             << ", got " << shapeString(shape_));
}

Napi::Value NativeTensor::Dispose(const Napi::CallbackInfo& info) {
  release(info.Env());
  return info.Env().Undefined();
}

Napi::Value NativeTensor::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), storage_ == nullptr);
}

Napi::Value NativeTensor::Shape(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env(), shape_.size());
  for (size_t i = 0; i < shape_.size(); ++i) a.Set(uint32_t(i), Napi::Number::New(info.Env(), double(shape_[i])));
  return a;
}

Napi::Value NativeTensor::DTypeName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtypeName(dtype_));
}

Napi::Value NativeTensor::DeviceName(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    checkLive();
    return Napi::String::New(info.Env(), device().str());
  });
}

Napi::Value NativeTensor::NBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(nbytes()));
}

// Copies the contents into a new JS-owned ArrayBuffer.
Napi::Value NativeTensor::Read(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    checkLive();
    Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(info.Env(), nbytes());
    copyToHost(buf.Data(), *storage_, nbytes());
    return buf;
  });
}

// Copies a typed array of exactly nbytes() bytes into the tensor.
Napi::Value NativeTensor::Write(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    checkLive();
    Napi::TypedArray ta = argTypedArray(info, 0, "data");
    bool typeOk = (dtype_ == DType::Float32 && ta.TypedArrayType() == napi_float32_array) ||
                  (dtype_ == DType::Int32 && ta.TypedArrayType() == napi_int32_array);
    VALR_CHECK(typeOk, DType, "argument 'data' must be a " << (dtype_ == DType::Int32 ? "Int32Array" : "Float32Array")
                                                           << " for a " << dtypeName(dtype_) << " tensor, got "
                                                           << describe(ta));
    VALR_CHECK(int64_t(ta.ElementLength()) == numel(), Shape,
               "argument 'data' must have " << numel() << " elements for shape " << shapeString(shape_) << ", got "
                                            << ta.ElementLength());
    const uint8_t* src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    copyFromHost(*storage_, src, nbytes());
    return info.Env().Undefined();
  });
}

// A copy of this tensor on another device.
Napi::Value NativeTensor::To(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    checkLive();
    Device dst = argDevice(info, 0, "device");
    auto out = Storage::allocate(dst, nbytes());
    copyBytes(*out, 0, *storage_, 0, nbytes());
    return New(info.Env(), out, dtype_, shape_);
  });
}

Napi::Value NativeTensor::DevicePointer(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    checkLive();
    return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(storage_->data())));
  });
}

// The cudaStream_t that ops on this tensor's device are queued on (null on CPU).
Napi::Value NativeTensor::Stream(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    checkLive();
    if (device().isCpu()) return info.Env().Null();
    return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(cuda::stream(device().index))));
  });
}

Napi::Value NativeTensor::Owning(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    checkLive();
    return Napi::Boolean::New(info.Env(), storage_->owning());
  });
}

}  // namespace js
}  // namespace valr

namespace valr {
namespace js {

// A new handle on the same storage with another shape of the same element count.
Napi::Value NativeTensor::Reshape(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    checkLive();
    auto shape = argShape(info, 0, "shape");
    VALR_CHECK(js::numel(shape) == numel(), Shape,
               "cannot reshape " << shapeString(shape_) << " (" << numel() << " elements) to " << shapeString(shape));
    return New(info.Env(), storage_, dtype_, shape);
  });
}

}  // namespace js
}  // namespace valr
