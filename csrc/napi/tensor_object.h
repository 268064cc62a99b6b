// NativeTensor: the JS handle of a contiguous buffer with a shape and dtype on one
// device. The TypeScript Tensor class wraps it. Memory goes back on dispose() or, as
// a safety net, when the GC collects the handle; host bytes are reported to V8.
#pragma once
#include <napi.h>
#include <memory>
#include <utility>
#include <vector>
#include "../core/dtype.h"
#include "../core/storage.h"

namespace valr {
namespace js {

class NativeTensor : public Napi::ObjectWrap<NativeTensor> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object New(Napi::Env env, std::shared_ptr<Storage> storage, DType dtype, std::vector<int64_t> shape);
  // A new float32 tensor of `shape` on `device` (contents undefined) and its data pointer.
  static std::pair<Napi::Object, float*> NewFloat(Napi::Env env, Device device, std::vector<int64_t> shape);
  // Reads argument i as a live NativeTensor; throws naming `name` otherwise.
  static NativeTensor* FromArg(const Napi::CallbackInfo& info, size_t i, const char* name);

  explicit NativeTensor(const Napi::CallbackInfo& info);
  ~NativeTensor() override;
  void Finalize(Napi::Env env) override;  // GC safety net for undisposed tensors

  const Storage& storage() const { return *storage_; }
  void* data() const { return storage_->data(); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_->device(); }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t numel() const;
  size_t nbytes() const { return size_t(numel()) * dtypeSize(dtype_); }

  // Throws a clear error unless this tensor has `dtype`, `shape` (when given) and is on `device`.
  void expect(const char* name, DType dtype, const std::vector<int64_t>* shape = nullptr) const;

 private:
  static Napi::FunctionReference* constructor_;
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value DTypeName(const Napi::CallbackInfo& info);
  Napi::Value DeviceName(const Napi::CallbackInfo& info);
  Napi::Value NBytes(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value DevicePointer(const Napi::CallbackInfo& info);
  Napi::Value Stream(const Napi::CallbackInfo& info);
  Napi::Value Owning(const Napi::CallbackInfo& info);
  Napi::Value Reshape(const Napi::CallbackInfo& info);
  void release(Napi::Env env);
  void checkLive() const;

  std::shared_ptr<Storage> storage_;
  DType dtype_ = DType::Float32;
  std::vector<int64_t> shape_;
  int64_t reportedBytes_ = 0;  // host bytes told to V8 via AdjustExternalMemory
};

}  // namespace js
}  // namespace valr
