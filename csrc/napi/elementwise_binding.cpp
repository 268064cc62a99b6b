// Elementwise tensor ops (float32, any device): fill, scale, addScaled.
#include "../core/elementwise_kernels.h"
#include "../cuda/cuda_api.h"
#include "args.h"
#include "bindings.h"
#include "js_errors.h"
#include "tensor_object.h"

namespace valr {
namespace js {
namespace {

NativeTensor* floatTensor(const Napi::CallbackInfo& info, size_t i, const char* name) {
  NativeTensor* t = NativeTensor::FromArg(info, i, name);
  t->expect(name, DType::Float32);
  if (t->device().isCuda()) cuda::stream(t->device().index);  // make its device current
  return t;
}

// fill(t, value)
Napi::Value Fill(const Napi::CallbackInfo& info) {
  NativeTensor* t = floatTensor(info, 0, "tensor");
  Napi::Value v = arg(info, 1);
  VALR_CHECK(v.IsNumber(), Argument, "argument 'value' must be a number, got " << describe(v));
  float value = float(v.As<Napi::Number>().DoubleValue());  // NaN allowed: tests poison buffers with it
  float* p = static_cast<float*>(t->data());
  if (t->device().isCuda()) cuda::fill(p, t->numel(), value);
  else cpu::fill(p, t->numel(), value);
  return info.Env().Undefined();
}

// scale(t, alpha): t *= alpha
Napi::Value Scale(const Napi::CallbackInfo& info) {
  NativeTensor* t = floatTensor(info, 0, "tensor");
  float alpha = float(argNumber(info, 1, "alpha"));
  float* p = static_cast<float*>(t->data());
  if (t->device().isCuda()) cuda::scale(p, t->numel(), alpha);
  else cpu::scale(p, t->numel(), alpha);
  return info.Env().Undefined();
}

// addScaled(y, x, alpha): y += alpha * x (same element count and device)
Napi::Value AddScaled(const Napi::CallbackInfo& info) {
  NativeTensor* y = floatTensor(info, 0, "y");
  NativeTensor* x = floatTensor(info, 1, "x");
  float alpha = float(argNumber(info, 2, "alpha"));
  VALR_CHECK(x->numel() == y->numel(), Shape, "argument 'x' " << shapeString(x->shape()) << " must have as many elements as 'y' "
                                                              << shapeString(y->shape()));
  VALR_CHECK(x->device() == y->device(), Device, "argument 'x' is on " << x->device().str() << ", 'y' on " << y->device().str());
  if (y->device().isCuda()) cuda::addScaled(static_cast<float*>(y->data()), static_cast<const float*>(x->data()), y->numel(), alpha);
  else cpu::addScaled(static_cast<float*>(y->data()), static_cast<const float*>(x->data()), y->numel(), alpha);
  return info.Env().Undefined();
}

}  // namespace

void initElementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("fill", Napi::Function::New<guarded<Fill>>(env, "fill"));
  exports.Set("scale", Napi::Function::New<guarded<Scale>>(env, "scale"));
  exports.Set("addScaled", Napi::Function::New<guarded<AddScaled>>(env, "addScaled"));
}

}  // namespace js
}  // namespace valr
