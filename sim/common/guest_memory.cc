#include "sim/common/guest_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace kuasar::sim {

GuestMemory::~GuestMemory() { Release(); }

void GuestMemory::Release() {
  if (base_ != nullptr) ::munmap(base_, size_);
  base_ = nullptr;
  size_ = 0;
}

absl::Status GuestMemory::MapAndTouch(size_t bytes) {
  Release();
  if (bytes == 0) return absl::OkStatus();
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_t size = (bytes + page - 1) / page * page;
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return ErrnoStatus(errno, "mmap guest memory", absl::StrCat(size));
  // Small pages, as a guest's first touches are; a THP would inflate the footprint. Not
  // inherited by the agent's clone: sharing it copy-on-write until the exec would halve
  // the VMM's PSS for that moment (and copy page tables for nothing).
  (void)::madvise(p, size, MADV_NOHUGEPAGE);
  (void)::madvise(p, size, MADV_DONTFORK);
  auto* bytes_ptr = static_cast<volatile unsigned char*>(p);
  for (size_t off = 0; off < size; off += page) bytes_ptr[off] = 0x5a;
  base_ = p;
  size_ = size;
  return absl::OkStatus();
}

}  // namespace kuasar::sim
