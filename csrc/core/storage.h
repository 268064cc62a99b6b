// A block of memory on one device. Owning storage returns its block to the device's
// allocator when destroyed; borrowed storage (a foreign pointer wrapped without a
// copy) never frees: its owner keeps it alive and the JS side holds the owner.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include "device.h"

namespace valr {

class Storage {
 public:
  static std::shared_ptr<Storage> allocate(Device device, size_t nbytes);
  static std::shared_ptr<Storage> borrow(Device device, void* data, size_t nbytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  bool owning() const { return owning_; }

 private:
  Storage(Device d, void* p, size_t n, bool owning) : device_(d), data_(p), nbytes_(n), owning_(owning) {}
  Device device_;
  void* data_;
  size_t nbytes_;
  bool owning_;
};

// Copies nbytes between any two devices (host<->device, device<->device, host<->host).
// Returns once the destination holds the data.
void copyBytes(const Storage& dst, size_t dstOffset, const Storage& src, size_t srcOffset, size_t nbytes);
// Host pointer variants used for typed-array conversions.
void copyFromHost(const Storage& dst, const void* src, size_t nbytes);
void copyToHost(void* dst, const Storage& src, size_t nbytes);

}  // namespace valr
