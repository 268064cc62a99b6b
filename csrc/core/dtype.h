// Element types. float32 is the compute type today; int32 carries indices; bfloat16
// is reserved so that the enum, names and sizes do not change when it is added.
#pragma once
#include <cstddef>
#include <string>
#include "error.h"

namespace valr {

enum class DType : int { Float32 = 0, Int32 = 1, BFloat16 = 2 };

inline size_t dtypeSize(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Int32: return 4;
    case DType::BFloat16: return 2;
  }
  return 0;
}

inline const char* dtypeName(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Int32: return "int32";
    case DType::BFloat16: return "bfloat16";
  }
  return "?";
}

inline DType parseDType(const std::string& name) {
  if (name == "float32") return DType::Float32;
  if (name == "int32") return DType::Int32;
  VALR_CHECK(name != "bfloat16", DType, "dtype 'bfloat16' is reserved but not supported yet; use 'float32'");
  VALR_CHECK(false, DType, "unknown dtype '" << name << "'; expected 'float32' or 'int32'");
  return DType::Float32;
}

}  // namespace valr
