// Where a buffer lives: host memory or one CUDA device.
#pragma once
#include <string>
#include "error.h"

namespace valr {

struct Device {
  enum class Kind { Cpu, Cuda };
  Kind kind = Kind::Cpu;
  int index = 0;

  bool isCpu() const { return kind == Kind::Cpu; }
  bool isCuda() const { return kind == Kind::Cuda; }
  bool operator==(const Device& o) const { return kind == o.kind && (isCpu() || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }

  std::string str() const { return isCpu() ? "cpu" : "cuda:" + std::to_string(index); }

  static Device cpu() { return Device{}; }
  static Device cuda(int index) { return Device{Kind::Cuda, index}; }

  // Accepts "cpu", "cuda" (device 0) and "cuda:N".
  static Device parse(const std::string& s) {
    if (s == "cpu") return cpu();
    if (s == "cuda") return cuda(0);
    if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() < 9) {
      int idx = 0;
      for (size_t i = 5; i < s.size(); ++i) {
        VALR_CHECK(s[i] >= '0' && s[i] <= '9', Device, "device '" << s << "' is not 'cpu', 'cuda' or 'cuda:N'");
        idx = idx * 10 + (s[i] - '0');
      }
      return cuda(idx);
    }
    VALR_CHECK(false, Device, "device '" << s << "' is not 'cpu', 'cuda' or 'cuda:N'");
    return cpu();
  }
};

}  // namespace valr
