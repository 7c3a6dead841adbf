// The simulated guest's RAM footprint: an anonymous private mapping whose pages are all
// written, so the VMM process's RSS and PSS (/proc/PID/smaps_rollup) grow by the modelled
// amount, as a real VMM's do when its guest boots. Not thread-safe.
#pragma once

#include <cstddef>

#include "absl/status/status.h"

namespace kuasar::sim {

class GuestMemory {
 public:
  GuestMemory() = default;
  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // Maps `bytes` (rounded up to pages) and dirties every page; replaces any earlier map.
  absl::Status MapAndTouch(size_t bytes);
  void Release();
  size_t bytes() const { return size_; }

 private:
  void* base_ = nullptr;
  size_t size_ = 0;
};

}  // namespace kuasar::sim
