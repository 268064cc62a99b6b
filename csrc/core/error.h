// Errors raised by native code. Plain C++ (no Node, no CUDA headers) so CPU code,
// CUDA host code and the N-API glue share one type; the glue turns it into a JS
// Error whose `code` property is `code` below.
#pragma once
#include <stdexcept>
#include <string>
#include <sstream>
#include <vector>
#include <cstdint>

namespace valr {

enum class ErrorCode { Shape, DType, Device, Disposed, Cuda, Oom, Argument, Range, Internal };

inline const char* errorCodeName(ErrorCode c) {
  switch (c) {
    case ErrorCode::Shape: return "ERR_VALR_SHAPE";
    case ErrorCode::DType: return "ERR_VALR_DTYPE";
    case ErrorCode::Device: return "ERR_VALR_DEVICE";
    case ErrorCode::Disposed: return "ERR_VALR_DISPOSED";
    case ErrorCode::Cuda: return "ERR_VALR_CUDA";
    case ErrorCode::Oom: return "ERR_VALR_OOM";
    case ErrorCode::Argument: return "ERR_VALR_ARGUMENT";
    case ErrorCode::Range: return "ERR_VALR_RANGE";
    default: return "ERR_VALR_INTERNAL";
  }
}

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }
 private:
  ErrorCode code_;
};

inline std::string shapeString(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

}  // namespace valr

// Throws valr::Error(code, <streamed message>) when `cond` is false.
#define VALR_CHECK(cond, code, msg)                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::ostringstream valr_check_stream_;                          \
      valr_check_stream_ << msg;                                      \
      throw ::valr::Error(::valr::ErrorCode::code, valr_check_stream_.str()); \
    }                                                                 \
  } while (0)
