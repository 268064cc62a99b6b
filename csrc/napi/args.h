// Argument readers for bindings. Each checks the JS type and range and throws a
// valr::Error naming the argument, what was expected and what was given.
#pragma once
#include <napi.h>
#include <cstdint>
#include <string>
#include <vector>
#include "../core/device.h"
#include "../core/dtype.h"

namespace valr {
namespace js {

// "a number", "an Int32Array of length 3", "undefined", ... for messages.
std::string describe(const Napi::Value& v);

Napi::Value arg(const Napi::CallbackInfo& info, size_t i);
int64_t argInt(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min, int64_t max);
double argNumber(const Napi::CallbackInfo& info, size_t i, const char* name);  // finite
std::string argString(const Napi::CallbackInfo& info, size_t i, const char* name);
Device argDevice(const Napi::CallbackInfo& info, size_t i, const char* name);
DType argDType(const Napi::CallbackInfo& info, size_t i, const char* name);
// An array of non-negative integers (rank <= 8, element count below 2^48).
std::vector<int64_t> argShape(const Napi::CallbackInfo& info, size_t i, const char* name, size_t rank = 0);
Napi::Float32Array argFloat32Array(const Napi::CallbackInfo& info, size_t i, const char* name);
Napi::Int32Array argInt32Array(const Napi::CallbackInfo& info, size_t i, const char* name);
Napi::TypedArray argTypedArray(const Napi::CallbackInfo& info, size_t i, const char* name);
bool isAbsent(const Napi::CallbackInfo& info, size_t i);  // undefined or null or missing

int64_t numel(const std::vector<int64_t>& shape);

}  // namespace js
}  // namespace valr
