#include "runtime/ttrpc/framed_connection.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include <boost/asio/bind_executor.hpp>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"

#include <spdlog/spdlog.h>

namespace kuasar::ttrpc {
namespace {

// One wakeup reads at most this much before yielding to other connections.
constexpr std::size_t kMaxReadPerWakeup = 1u << 20;
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxWriteBatch = 64;

std::string DescribePeer(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0) {
    return absl::StrFormat("pid:%d", cred.pid);
  }
  return absl::StrFormat("fd:%d", fd);
}

}  // namespace

FramedConnection::FramedConnection(boost::asio::io_context& io, UniqueFd fd, Options options)
    : strand_(boost::asio::make_strand(io)),
      stream_(strand_),
      frame_timer_(strand_),
      options_(std::move(options)),
      peer_(DescribePeer(fd.get())) {
  struct stat st {};
  is_socket_ = ::fstat(fd.get(), &st) == 0 && S_ISSOCK(st.st_mode);
  boost::system::error_code ec;
  stream_.assign(fd.Release(), ec);
  if (!ec) stream_.non_blocking(true, ec);
  if (ec) init_error_ = absl::InternalError(absl::StrFormat("ttrpc: register fd: %s", ec.message()));
}

FramedConnection::~FramedConnection() = default;

void FramedConnection::Start() {
  Post([self = shared_from_this()] {
    if (!self->init_error_.ok()) {
      self->Close(self->init_error_);
      return;
    }
    self->ArmRead();
  });
}

void FramedConnection::ArmRead() {
  if (reading_ || closed_ || paused_) return;
  reading_ = true;
  stream_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                     boost::asio::bind_executor(
                         strand_, [self = shared_from_this()](const boost::system::error_code& ec) {
                           self->OnReadable(ec);
                         }));
}

void FramedConnection::OnReadable(const boost::system::error_code& ec) {
  reading_ = false;
  if (closed_) return;
  if (ec) {
    Close(absl::UnavailableError(absl::StrFormat("wait for read: %s", ec.message())));
    return;
  }
  char buf[kReadChunk];
  std::size_t total = 0;
  bool eof = false;
  while (total < kMaxReadPerWakeup) {
    ssize_t n = ::read(stream_.native_handle(), buf, sizeof(buf));
    if (n > 0) {
      decoder_.Feed(std::string_view(buf, static_cast<std::size_t>(n)));
      total += static_cast<std::size_t>(n);
      if (static_cast<std::size_t>(n) < sizeof(buf) || decoder_.failed()) break;
      continue;
    }
    if (n == 0) {
      eof = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    Close(ErrnoStatus(errno, "read", peer_));
    return;
  }
  ProcessFrames();
  if (closed_) return;
  if (eof) {
    if (paused_) {
      eof_pending_ = true;
      return;
    }
    Close(absl::UnavailableError(decoder_.mid_frame() ? "peer closed the connection mid-frame"
                                                      : "peer closed the connection"));
    return;
  }
  UpdateFrameTimer();
  ArmRead();
}

void FramedConnection::ProcessFrames() {
  while (!closed_ && !paused_ && decoder_.HasFrame()) {
    DecodedFrame frame = decoder_.Next();
    if (!OnFrame(frame)) paused_ = true;
  }
  if (!closed_ && !decoder_.HasFrame() && decoder_.failed()) {
    spdlog::warn("{}: closing connection peer={} reason=\"{}\"", options_.role, peer_,
                 decoder_.error());
    Close(absl::InvalidArgumentError(decoder_.error()));
  }
}

void FramedConnection::ResumeReading() {
  if (closed_ || !paused_) return;
  paused_ = false;
  ProcessFrames();
  if (closed_ || paused_) return;
  if (eof_pending_) {
    Close(absl::UnavailableError("peer closed the connection"));
    return;
  }
  UpdateFrameTimer();
  ArmRead();
}

void FramedConnection::UpdateFrameTimer() {
  if (options_.partial_frame_timeout.count() <= 0) return;
  if (decoder_.mid_frame()) {
    if (frame_timer_armed_) return;
    frame_timer_armed_ = true;
    std::uint64_t gen = ++frame_timer_gen_;
    frame_timer_.expires_after(options_.partial_frame_timeout);
    frame_timer_.async_wait(boost::asio::bind_executor(
        strand_, [self = shared_from_this(), gen](const boost::system::error_code& ec) {
          if (ec || self->closed_ || gen != self->frame_timer_gen_) return;
          self->frame_timer_armed_ = false;
          if (!self->decoder_.mid_frame()) return;
          auto ms = static_cast<long long>(self->options_.partial_frame_timeout.count());
          spdlog::warn("{}: closing connection peer={} reason=\"frame incomplete after {} ms\"",
                       self->options_.role, self->peer_, ms);
          self->Close(absl::DeadlineExceededError(
              absl::StrFormat("frame incomplete after %d ms", ms)));
        }));
  } else if (frame_timer_armed_) {
    frame_timer_armed_ = false;
    ++frame_timer_gen_;
    frame_timer_.cancel();
  }
}

void FramedConnection::Send(std::string frame) {
  if (closed_ || close_after_flush_) return;
  SetQueuedBytes(queued_bytes_ + frame.size());
  queue_.push_back(std::move(frame));
  if (writing_.empty()) StartWrite();
}

void FramedConnection::StartWrite() {
  while (!queue_.empty() && writing_.size() < kMaxWriteBatch) {
    writing_.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  write_index_ = 0;
  write_pos_ = 0;
  TryWrite();
}

// Writes by hand rather than with async_write: sockets need send(MSG_NOSIGNAL), or a
// peer that went away would raise SIGPIPE and kill the process.
void FramedConnection::TryWrite() {
  while (!closed_) {
    iovec iov[kMaxWriteBatch];
    int count = 0;
    for (std::size_t i = write_index_; i < writing_.size(); ++i, ++count) {
      std::size_t skip = i == write_index_ ? write_pos_ : 0;
      iov[count].iov_base = writing_[i].data() + skip;
      iov[count].iov_len = writing_[i].size() - skip;
    }
    ssize_t n;
    if (is_socket_) {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<std::size_t>(count);
      n = ::sendmsg(stream_.native_handle(), &msg, MSG_NOSIGNAL);
    } else {
      n = ::writev(stream_.native_handle(), iov, count);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        stream_.async_wait(
            boost::asio::posix::descriptor_base::wait_write,
            boost::asio::bind_executor(strand_, [self = shared_from_this()](
                                                    const boost::system::error_code& ec) {
              if (self->closed_) return;
              if (ec) {
                self->Close(absl::UnavailableError(
                    absl::StrFormat("wait for write to %s: %s", self->peer_, ec.message())));
                return;
              }
              self->TryWrite();
            }));
        return;
      }
      Close(ErrnoStatus(errno, "write", peer_));
      return;
    }
    auto left = static_cast<std::size_t>(n);
    while (left > 0) {
      std::size_t rest = writing_[write_index_].size() - write_pos_;
      if (left < rest) {
        write_pos_ += left;
        left = 0;
      } else {
        left -= rest;
        ++write_index_;
        write_pos_ = 0;
      }
    }
    if (write_index_ == writing_.size()) {
      OnWritten();
      return;
    }
  }
}

void FramedConnection::OnWritten() {
  std::size_t written = 0;
  for (const auto& f : writing_) written += f.size();
  writing_.clear();
  SetQueuedBytes(queued_bytes_ - written);
  if (!queue_.empty()) {
    StartWrite();
  } else if (close_after_flush_) {
    close_after_flush_ = false;
    Close(flush_close_reason_);
  }
}

void FramedConnection::SetQueuedBytes(std::size_t n) {
  queued_bytes_ = n;
  budget_->Set(n);
}

void FramedConnection::CloseAfterFlush(absl::Status reason) {
  if (closed_) return;
  if (writing_.empty() && queue_.empty()) {
    Close(std::move(reason));
    return;
  }
  close_after_flush_ = true;
  flush_close_reason_ = std::move(reason);
}

void FramedConnection::Close(absl::Status reason) {
  if (closed_) return;
  closed_ = true;
  budget_->Close();
  boost::system::error_code ignored;
  stream_.close(ignored);
  frame_timer_.cancel();
  queue_.clear();
  writing_.clear();
  Post([self = shared_from_this(), reason = std::move(reason)] { self->OnClosed(reason); });
}

}  // namespace kuasar::ttrpc
