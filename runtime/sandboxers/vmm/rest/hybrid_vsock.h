// Hybrid vsock (Firecracker docs/vsock.md, also Cloud Hypervisor's): the VMM listens on a
// unix socket; a host process connects, writes "CONNECT <port>\n" and, once a guest
// process listens on that vsock port, reads "OK <host port>\n" and then talks to it. Until
// then the VMM closes the connection without a word, so dialing retries. Shared by the
// Cloud Hypervisor and Firecracker drivers. Blocking; thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/base/unique_fd.h"

namespace kuasar::vmm {

// One attempt: the connected stream after "OK", or UNAVAILABLE if the VMM (or the guest
// port) is not there yet, DEADLINE_EXCEEDED if no answer within `timeout`.
absl::StatusOr<UniqueFd> ConnectHybridVsockOnce(const std::string& path, uint32_t port,
                                                absl::Duration timeout);

// Retries ConnectHybridVsockOnce until `deadline`. `keep_trying` runs between attempts;
// its error ends the wait (the VMM died).
absl::StatusOr<UniqueFd> DialHybridVsock(
    const std::string& path, uint32_t port, absl::Time deadline,
    const std::function<absl::Status()>& keep_trying = nullptr);

}  // namespace kuasar::vmm
