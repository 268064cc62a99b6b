// A temporary device buffer from the caching allocator, returned on every path
// (also when a CUDA check throws). Used for uploads of host index arrays, masks and
// partial sums inside the kernel wrappers.
#pragma once
#include <cstddef>
#include "cuda_api.h"

namespace valr {
namespace cuda {

class Scratch {
 public:
  Scratch(int dev, size_t bytes) : dev_(dev), ptr_(bytes ? allocate(dev, bytes) : nullptr) {}
  ~Scratch() {
    if (ptr_) release(dev_, ptr_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  int dev_;
  void* ptr_;
};

}  // namespace cuda
}  // namespace valr
