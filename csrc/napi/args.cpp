#include "args.h"
#include <cmath>
#include <sstream>
#include "../core/error.h"

namespace valr {
namespace js {

namespace {
constexpr int64_t kMaxElements = int64_t(1) << 48;
constexpr size_t kMaxRank = 8;

const char* typedArrayName(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}
}  // namespace

std::string describe(const Napi::Value& v) {
  std::ostringstream s;
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsBoolean()) return "a boolean";
  if (v.IsNumber()) {
    s << "the number " << v.As<Napi::Number>().DoubleValue();
    return s.str();
  }
  if (v.IsString()) {
    std::string str = v.As<Napi::String>().Utf8Value();
    if (str.size() > 40) str = str.substr(0, 40) + "...";
    return "the string '" + str + "'";
  }
  if (v.IsBigInt()) return "a bigint";
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    s << "a " << typedArrayName(ta.TypedArrayType()) << " of length " << ta.ElementLength();
    return s.str();
  }
  if (v.IsArrayBuffer()) return "an ArrayBuffer";
  if (v.IsArray()) {
    s << "an array of length " << v.As<Napi::Array>().Length();
    return s.str();
  }
  if (v.IsFunction()) return "a function";
  if (v.IsSymbol()) return "a symbol";
  return "an object";
}

Napi::Value arg(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

bool isAbsent(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = arg(info, i);
  return v.IsUndefined() || v.IsNull();
}

int64_t argInt(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min, int64_t max) {
  Napi::Value v = arg(info, i);
  VALR_CHECK(v.IsNumber(), Argument, "argument '" << name << "' must be an integer, got " << describe(v));
  double d = v.As<Napi::Number>().DoubleValue();
  VALR_CHECK(std::isfinite(d) && std::floor(d) == d, Argument,
             "argument '" << name << "' must be an integer, got " << describe(v));
  VALR_CHECK(d >= double(min) && d <= double(max), Range,
             "argument '" << name << "' must be in [" << min << ", " << max << "], got " << d);
  return static_cast<int64_t>(d);
}

double argNumber(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i);
  VALR_CHECK(v.IsNumber(), Argument, "argument '" << name << "' must be a number, got " << describe(v));
  double d = v.As<Napi::Number>().DoubleValue();
  VALR_CHECK(std::isfinite(d), Argument, "argument '" << name << "' must be finite, got " << d);
  return d;
}

std::string argString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i);
  VALR_CHECK(v.IsString(), Argument, "argument '" << name << "' must be a string, got " << describe(v));
  return v.As<Napi::String>().Utf8Value();
}

Device argDevice(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i);
  VALR_CHECK(v.IsString(), Device,
             "argument '" << name << "' must be a device string ('cpu', 'cuda', 'cuda:N'), got " << describe(v));
  return Device::parse(v.As<Napi::String>().Utf8Value());
}

DType argDType(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i);
  VALR_CHECK(v.IsString(), DType, "argument '" << name << "' must be a dtype string ('float32', 'int32'), got "
                                               << describe(v));
  return parseDType(v.As<Napi::String>().Utf8Value());
}

std::vector<int64_t> argShape(const Napi::CallbackInfo& info, size_t i, const char* name, size_t rank) {
  Napi::Value v = arg(info, i);
  VALR_CHECK(v.IsArray(), Shape, "argument '" << name << "' must be a shape array"
                                              << (rank ? " of length " + std::to_string(rank) : std::string())
                                              << ", got " << describe(v));
  Napi::Array a = v.As<Napi::Array>();
  uint32_t n = a.Length();
  VALR_CHECK(n <= kMaxRank, Shape, "argument '" << name << "' has rank " << n << "; at most " << kMaxRank << " dims");
  VALR_CHECK(rank == 0 || n == rank, Shape, "argument '" << name << "' must have " << rank << " dims, got " << n);
  std::vector<int64_t> shape(n);
  double total = 1;
  for (uint32_t k = 0; k < n; ++k) {
    Napi::Value e = a.Get(k);
    VALR_CHECK(e.IsNumber(), Shape, "argument '" << name << "'[" << k << "] must be an integer, got " << describe(e));
    double d = e.As<Napi::Number>().DoubleValue();
    VALR_CHECK(std::isfinite(d) && std::floor(d) == d && d >= 0, Shape,
               "argument '" << name << "'[" << k << "] must be a non-negative integer, got " << d);
    VALR_CHECK(d < double(kMaxElements), Range, "argument '" << name << "'[" << k << "] = " << d << " is too large");
    shape[k] = static_cast<int64_t>(d);
    total *= d;
  }
  VALR_CHECK(total < double(kMaxElements), Range,
             "argument '" << name << "' " << shapeString(shape) << " has " << total << " elements; the limit is 2^48");
  return shape;
}

Napi::TypedArray argTypedArray(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i);
  VALR_CHECK(v.IsTypedArray(), Argument, "argument '" << name << "' must be a typed array, got " << describe(v));
  return v.As<Napi::TypedArray>();
}

Napi::Float32Array argFloat32Array(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i);
  VALR_CHECK(v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array, DType,
             "argument '" << name << "' must be a Float32Array, got " << describe(v));
  return v.As<Napi::Float32Array>();
}

Napi::Int32Array argInt32Array(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i);
  VALR_CHECK(v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array, DType,
             "argument '" << name << "' must be an Int32Array, got " << describe(v));
  return v.As<Napi::Int32Array>();
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace js
}  // namespace valr
