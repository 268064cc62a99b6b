#include "storage.h"
#include <cstdlib>
#include <cstring>
#include "../cuda/cuda_api.h"
#include "host_allocator.h"

namespace valr {

std::shared_ptr<Storage> Storage::allocate(Device device, size_t nbytes) {
  if (device.isCuda()) {
    void* p = cuda::allocate(device.index, nbytes);
    return std::shared_ptr<Storage>(new Storage(device, p, nbytes, true));
  }
  void* p = host::allocate(nbytes);
  return std::shared_ptr<Storage>(new Storage(device, p, nbytes, true));
}

std::shared_ptr<Storage> Storage::borrow(Device device, void* data, size_t nbytes) {
  return std::shared_ptr<Storage>(new Storage(device, data, nbytes, false));
}

Storage::~Storage() {
  if (!owning_ || data_ == nullptr) return;
  if (device_.isCuda()) {
    cuda::release(device_.index, data_);  // never throws
  } else {
    host::release(data_, nbytes_);
  }
}

void copyBytes(const Storage& dst, size_t dstOffset, const Storage& src, size_t srcOffset, size_t nbytes) {
  VALR_CHECK(dstOffset + nbytes <= dst.nbytes() && srcOffset + nbytes <= src.nbytes(), Internal,
             "copyBytes out of range");
  if (nbytes == 0) return;
  char* d = static_cast<char*>(dst.data()) + dstOffset;
  const char* s = static_cast<const char*>(src.data()) + srcOffset;
  if (dst.device().isCpu() && src.device().isCpu()) {
    std::memcpy(d, s, nbytes);
    return;
  }
  int dd = dst.device().isCuda() ? dst.device().index : -1;
  int sd = src.device().isCuda() ? src.device().index : -1;
  cuda::copy(d, dd, s, sd, nbytes);
}

void copyFromHost(const Storage& dst, const void* src, size_t nbytes) {
  VALR_CHECK(nbytes <= dst.nbytes(), Internal, "copyFromHost out of range");
  if (nbytes == 0) return;
  if (dst.device().isCpu()) std::memcpy(dst.data(), src, nbytes);
  else cuda::copy(dst.data(), dst.device().index, src, -1, nbytes);
}

void copyToHost(void* dst, const Storage& src, size_t nbytes) {
  VALR_CHECK(nbytes <= src.nbytes(), Internal, "copyToHost out of range");
  if (nbytes == 0) return;
  if (src.device().isCpu()) std::memcpy(dst, src.data(), nbytes);
  else cuda::copy(dst, -1, src.data(), src.device().index, nbytes);
}

}  // namespace valr
