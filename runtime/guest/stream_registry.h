// StreamRegistry: container stdio carried over the agent's own channel
// ("kuasar-stream://<token>") when the host's FIFOs are not visible in the guest. Each
// token is an agent-owned FIFO: the task service hands its path to OciTaskService as
// the process's stdio (so ProcessIo and the OCI runtime treat it like containerd's
// FIFOs), while ReadStream drains output and WriteStream feeds stdin through here.
// Output is pumped on the io_context into a buffer of up to `buffer_limit` bytes per
// token, so a reader that connects late gets everything; once full, the pump stops and
// the container's writes block. Readers and writers block on the caller's thread (ttrpc
// stream handlers on the worker pool). Thread-safe.
#pragma once

#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kuasar::guest {

inline constexpr std::string_view kStreamScheme = "kuasar-stream://";

// [A-Za-z0-9_.-]{1,128}
absl::Status ValidateStreamToken(std::string_view token);
// The token of a "kuasar-stream://<token>" URI; nullopt for any other stdio string.
absl::StatusOr<std::optional<std::string>> ParseStreamUri(std::string_view uri);

struct StreamRegistryOptions {
  std::string dir;                // FIFOs live here (created 0700)
  size_t buffer_limit = 1 << 20;  // unread output kept per token
  size_t max_tokens = 256;
  // A ReadStream/WriteStream may arrive just before the Create that names its token.
  absl::Duration unknown_token_wait = absl::Seconds(5);
};

class StreamRegistry {
 public:
  using Sink = std::function<absl::Status(std::string_view chunk)>;
  using Source = std::function<absl::StatusOr<bool>(std::string* chunk)>;  // false: end
  using Cancelled = std::function<bool()>;

  static absl::StatusOr<std::unique_ptr<StreamRegistry>> Create(boost::asio::io_context& io,
                                                                StreamRegistryOptions options);
  ~StreamRegistry();  // RemoveAll()

  // A FIFO for a process's stdout/stderr under `token`; returns its path.
  absl::StatusOr<std::string> AddOutput(const std::string& token);
  // A FIFO for a process's stdin. `on_end` runs once the writer's stream ended cleanly
  // and the process holds its end (it must then close the process's stdin).
  absl::StatusOr<std::string> AddInput(const std::string& token, std::function<void()> on_end);
  // The process has opened its ends (Create for init, Start for exec, or they failed):
  // drops our keep-alive so output can reach EOF, and unlinks the FIFO.
  void ProcessStarted(const std::string& token);
  // The process is gone (Task.Delete): a reader drains what is buffered, then sees EOF.
  void Remove(const std::string& token);
  void RemoveAll();

  // Streams `token`'s output into `send` until EOF (OK), a send error or cancellation.
  absl::Status Read(const std::string& token, const Sink& send, const Cancelled& cancelled);
  // Writes `first`, then every chunk `next` yields, into `token`'s stdin; a clean end
  // closes stdin (see AddInput); cancellation leaves it open for another writer.
  absl::Status Write(const std::string& token, std::string first, const Source& next,
                     const Cancelled& cancelled);

  size_t size() const;

  struct Entry;

 private:
  StreamRegistry(boost::asio::io_context& io, StreamRegistryOptions options)
      : io_(io), options_(std::move(options)) {}
  absl::StatusOr<std::shared_ptr<Entry>> Add(const std::string& token, bool output);
  absl::StatusOr<std::shared_ptr<Entry>> Await(const std::string& token,
                                               const Cancelled& cancelled);

  boost::asio::io_context& io_;
  const StreamRegistryOptions options_;
  mutable std::mutex mu_;
  std::condition_variable added_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
};

}  // namespace kuasar::guest
