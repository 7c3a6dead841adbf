#include "runtime/guest/stream_registry.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "runtime/base/id_check.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"

namespace kuasar::guest {
namespace {

using boost::asio::posix::stream_descriptor;
constexpr size_t kChunk = 64 << 10;
constexpr auto kPoll = std::chrono::milliseconds(100);

}  // namespace

absl::Status ValidateStreamToken(std::string_view token) {
  bool ok = !token.empty() && token.size() <= 128;
  for (char c : token) {
    ok = ok &&
         (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bad stream token \"%s\": want [A-Za-z0-9_.-]{1,128}", token));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> ParseStreamUri(std::string_view uri) {
  if (!uri.starts_with(kStreamScheme)) return std::nullopt;
  std::string_view token = uri.substr(kStreamScheme.size());
  RETURN_IF_ERROR(ValidateStreamToken(token));
  return std::string(token);
}

struct StreamRegistry::Entry : std::enable_shared_from_this<Entry> {
  Entry(boost::asio::io_context& io, std::string token, std::string path, bool output, size_t limit)
      : token(std::move(token)), path(std::move(path)), output(output), limit(limit), sd(io) {}

  // Output pump: every descriptor operation happens with `mu` held.
  void Arm() {
    if (armed || eof || removed || buf.size() >= limit || !sd.is_open()) return;
    armed = true;
    sd.async_wait(stream_descriptor::wait_read,
                  [self = shared_from_this()](const boost::system::error_code& ec) {
                    std::lock_guard<std::mutex> l(self->mu);
                    self->armed = false;
                    if (ec || self->removed) return;
                    self->Pump();
                  });
  }

  void Pump() {
    char tmp[kChunk];
    while (buf.size() < limit) {
      size_t want = std::min(sizeof(tmp), limit - buf.size());
      ssize_t n = ::read(sd.native_handle(), tmp, want);
      if (n > 0) {
        buf.append(tmp, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        eof = true;  // every writer (the process, its children, our keep-alive) closed
        boost::system::error_code ignored;
        sd.close(ignored);
      }
      break;
    }
    cv.notify_all();
    Arm();
  }

  void Unlink() {
    if (!unlinked) ::unlink(path.c_str());
    unlinked = true;
  }

  const std::string token, path;
  const bool output;
  const size_t limit;
  std::mutex mu;
  std::condition_variable cv;
  bool removed = false, started = false, unlinked = false;
  // output
  stream_descriptor sd;  // our read end
  UniqueFd keepalive;    // a writer until the process holds its own
  std::string buf;
  bool armed = false, eof = false, reading = false;
  // input
  UniqueFd writer;  // O_RDWR: data written before the process opens its end is kept
  bool writing = false, end_requested = false, ended = false;
  std::function<void()> on_end;
};

absl::StatusOr<std::unique_ptr<StreamRegistry>> StreamRegistry::Create(
    boost::asio::io_context& io, StreamRegistryOptions options) {
  RETURN_IF_ERROR(EnsurePrivateDirectory(options.dir));
  return std::unique_ptr<StreamRegistry>(new StreamRegistry(io, std::move(options)));
}

StreamRegistry::~StreamRegistry() { RemoveAll(); }

size_t StreamRegistry::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return entries_.size();
}

absl::StatusOr<std::shared_ptr<StreamRegistry::Entry>> StreamRegistry::Add(const std::string& token,
                                                                           bool output) {
  RETURN_IF_ERROR(ValidateStreamToken(token));
  std::string path = absl::StrFormat("%s/%s.%s", options_.dir, token, output ? "out" : "in");
  std::lock_guard<std::mutex> l(mu_);
  if (entries_.contains(token)) {
    return absl::AlreadyExistsError(absl::StrFormat("stream token %s is in use", token));
  }
  if (entries_.size() >= options_.max_tokens) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("more than %d stdio streams in use", options_.max_tokens));
  }
  ::unlink(path.c_str());  // a leftover of an earlier agent
  if (::mkfifo(path.c_str(), 0600) != 0) return ErrnoStatus(errno, "mkfifo", path);
  auto e = std::make_shared<Entry>(io_, token, path, output, options_.buffer_limit);
  auto fail = [&](const char* call) {
    absl::Status st = ErrnoStatus(errno, call, path);
    ::unlink(path.c_str());
    return st;
  };
  if (output) {
    UniqueFd r(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!r) return fail("open");
    e->keepalive.Reset(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    if (!e->keepalive) return fail("open keep-alive");
    std::lock_guard<std::mutex> el(e->mu);
    e->sd.assign(r.Release());
    e->Arm();
  } else {
    // O_RDWR never blocks on a FIFO and keeps its buffer alive with no reader yet.
    e->writer.Reset(::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!e->writer) return fail("open");
  }
  entries_[token] = e;
  added_.notify_all();
  return e;
}

absl::StatusOr<std::string> StreamRegistry::AddOutput(const std::string& token) {
  ASSIGN_OR_RETURN(auto e, Add(token, true));
  return e->path;
}

absl::StatusOr<std::string> StreamRegistry::AddInput(const std::string& token,
                                                     std::function<void()> on_end) {
  ASSIGN_OR_RETURN(auto e, Add(token, false));
  std::lock_guard<std::mutex> l(e->mu);
  e->on_end = std::move(on_end);
  return e->path;
}

void StreamRegistry::ProcessStarted(const std::string& token) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = entries_.find(token);
    if (it == entries_.end()) return;
    e = it->second;
  }
  std::function<void()> end;
  {
    std::lock_guard<std::mutex> l(e->mu);
    e->started = true;
    e->keepalive.Reset();
    e->Unlink();
    if (!e->output && e->end_requested && !e->ended) {
      e->ended = true;
      e->writer.Reset();
      end = std::move(e->on_end);
    }
  }
  if (end) end();
}

void StreamRegistry::Remove(const std::string& token) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = entries_.find(token);
    if (it == entries_.end()) return;
    e = std::move(it->second);
    entries_.erase(it);
  }
  std::lock_guard<std::mutex> l(e->mu);
  e->removed = true;
  e->keepalive.Reset();
  e->writer.Reset();
  e->on_end = nullptr;
  boost::system::error_code ignored;
  e->sd.close(ignored);
  e->Unlink();
  e->cv.notify_all();
}

void StreamRegistry::RemoveAll() {
  std::vector<std::string> tokens;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [t, e] : entries_) tokens.push_back(t);
  }
  for (const auto& t : tokens) Remove(t);
}

absl::StatusOr<std::shared_ptr<StreamRegistry::Entry>> StreamRegistry::Await(
    const std::string& token, const Cancelled& cancelled) {
  RETURN_IF_ERROR(ValidateStreamToken(token));
  absl::Time deadline = absl::Now() + options_.unknown_token_wait;
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    auto it = entries_.find(token);
    if (it != entries_.end()) return it->second;
    if (absl::Now() >= deadline || cancelled()) {
      return absl::NotFoundError(absl::StrFormat("no stdio stream with token %s", token));
    }
    added_.wait_for(l, kPoll);
  }
}

absl::Status StreamRegistry::Read(const std::string& token, const Sink& send,
                                  const Cancelled& cancelled) {
  ASSIGN_OR_RETURN(auto e, Await(token, cancelled));
  std::unique_lock<std::mutex> l(e->mu);
  if (!e->output) {
    return absl::FailedPreconditionError(absl::StrFormat("stream %s is a stdin stream", token));
  }
  if (e->reading) {
    return absl::AlreadyExistsError(absl::StrFormat("stream %s already has a reader", token));
  }
  e->reading = true;
  absl::Status result;
  while (true) {
    if (e->buf.empty()) {
      if (e->eof || e->removed) break;
      if (cancelled()) {
        result = absl::CancelledError(absl::StrFormat("reading stream %s: call cancelled", token));
        break;
      }
      e->cv.wait_for(l, kPoll);
      continue;
    }
    size_t n = std::min(kChunk, e->buf.size());
    std::string chunk = e->buf.substr(0, n);
    e->buf.erase(0, n);
    e->Arm();  // there is room again if the pump had stopped
    l.unlock();
    result = send(chunk);
    l.lock();
    if (!result.ok()) {
      // What was taken is lost to this reader: it went away mid-stream.
      break;
    }
  }
  e->reading = false;
  return result;
}

absl::Status StreamRegistry::Write(const std::string& token, std::string first, const Source& next,
                                   const Cancelled& cancelled) {
  ASSIGN_OR_RETURN(auto e, Await(token, cancelled));
  UniqueFd mine;  // ours while writing, whatever Remove does meanwhile
  {
    std::lock_guard<std::mutex> l(e->mu);
    if (e->output) {
      return absl::FailedPreconditionError(absl::StrFormat("stream %s is an output stream", token));
    }
    if (e->writing) {
      return absl::AlreadyExistsError(absl::StrFormat("stream %s already has a writer", token));
    }
    if (e->end_requested || e->removed) {
      return absl::FailedPreconditionError(absl::StrFormat("stdin of stream %s is closed", token));
    }
    mine.Reset(::fcntl(e->writer.get(), F_DUPFD_CLOEXEC, 0));
    if (!mine) return ErrnoStatus(errno, "dup", e->path);
    e->writing = true;
  }
  auto write_all = [&](std::string_view data) -> absl::Status {
    while (!data.empty()) {
      {
        std::lock_guard<std::mutex> l(e->mu);
        if (e->removed) {
          return absl::FailedPreconditionError(absl::StrFormat("stream %s was closed", token));
        }
      }
      ssize_t n = ::write(mine.get(), data.data(), data.size());
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EINTR) return ErrnoStatus(errno, "write", e->path);
      // The process is not reading: its pipe is full. Block, but keep noticing a cancel.
      if (cancelled()) return absl::CancelledError("writing stdin: call cancelled");
      pollfd p{mine.get(), POLLOUT, 0};
      (void)::poll(&p, 1, static_cast<int>(kPoll.count()));
    }
    return absl::OkStatus();
  };
  absl::Status st = write_all(first);
  while (st.ok()) {
    std::string chunk;
    absl::StatusOr<bool> more = next(&chunk);
    if (!more.ok()) {
      st = more.status();
      break;
    }
    if (!*more) break;
    st = write_all(chunk);
  }
  std::function<void()> end;
  {
    std::lock_guard<std::mutex> l(e->mu);
    e->writing = false;
    if (st.ok() && !e->removed) {
      e->end_requested = true;
      // Closing our end before the process opened its own would drop what is buffered.
      if (e->started && !e->ended) {
        e->ended = true;
        e->writer.Reset();
        end = std::move(e->on_end);
      }
    }
  }
  if (end) end();
  return st;
}

}  // namespace kuasar::guest
