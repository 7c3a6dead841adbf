// FramedConnection: one ttrpc byte stream (unix socket, socketpair end, virtio-serial
// port) on Boost.Asio, shared by the client and server connections. It reads and decodes
// frames, keeps a write queue (frames go out in the order queued, batched into one
// sendmsg/writev), closes a peer whose frame stays incomplete past a timeout, and offers a
// soft write budget to blocking senders. Internal to runtime/ttrpc.
// Threading: every method marked "strand" runs on the connection's strand; the others
// may be called from any thread. Subclass hooks run on the strand.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "absl/status/status.h"
#include "runtime/base/unique_fd.h"
#include "runtime/ttrpc/frame.h"
#include "runtime/ttrpc/io_lifetime.h"

namespace kuasar::ttrpc {

class FramedConnection : public std::enable_shared_from_this<FramedConnection> {
 public:
  struct Options {
    // Close the connection when a frame started this long ago and is still incomplete
    // (slow-loris). Zero disables.
    std::chrono::milliseconds partial_frame_timeout{30'000};
    std::string role = "ttrpc";  // log prefix: "ttrpc server", "ttrpc client"
  };
  FramedConnection(boost::asio::io_context& io, UniqueFd fd, Options options);
  virtual ~FramedConnection();
  FramedConnection(const FramedConnection&) = delete;
  FramedConnection& operator=(const FramedConnection&) = delete;

  // Starts reading. Call once, after construction through a shared_ptr.
  void Start();
  // Runs `fn` on the strand. From a thread other than an io thread, call this only
  // inside IoLifetime::Run (the io_context might be going away) unless you own it.
  template <typename Fn>
  void Post(Fn&& fn) {
    boost::asio::post(strand_, std::forward<Fn>(fn));
  }
  bool RunningOnStrand() const { return strand_.running_in_this_thread(); }
  const std::string& peer() const { return peer_; }
  // Shared with blocking senders, who wait on it for room in the write queue.
  const std::shared_ptr<WriteBudget>& write_budget() const { return budget_; }

 protected:
  // strand: queue one encoded frame.
  void Send(std::string frame);
  // strand: close now; queued writes are dropped. OnClosed runs later, once.
  void Close(absl::Status reason);
  // strand: close once the write queue has drained.
  void CloseAfterFlush(absl::Status reason);
  // strand: stop/restart handing frames to OnFrame (backpressure from a full stream).
  void ResumeReading();
  bool closed() const { return closed_; }

  // strand hooks. OnFrame returns false to pause: it keeps the frame and calls
  // ResumeReading later. Oversized frames arrive with oversized=true and no payload.
  virtual bool OnFrame(DecodedFrame& frame) = 0;
  virtual void OnClosed(const absl::Status& reason) = 0;

  boost::asio::strand<boost::asio::io_context::executor_type>& strand() { return strand_; }

 private:
  void ArmRead();
  void OnReadable(const boost::system::error_code& ec);
  void ProcessFrames();
  void UpdateFrameTimer();
  void StartWrite();
  void TryWrite();
  void OnWritten();
  void SetQueuedBytes(std::size_t n);

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::posix::stream_descriptor stream_;
  boost::asio::steady_timer frame_timer_;
  const Options options_;
  std::string peer_;
  absl::Status init_error_;

  FrameDecoder decoder_;
  bool reading_ = false;
  bool paused_ = false;
  bool eof_pending_ = false;
  bool closed_ = false;
  bool close_after_flush_ = false;
  absl::Status flush_close_reason_;
  bool frame_timer_armed_ = false;
  std::uint64_t frame_timer_gen_ = 0;

  std::deque<std::string> queue_;
  std::vector<std::string> writing_;  // the batch being written
  std::size_t write_index_ = 0;        // first frame of the batch not fully written
  std::size_t write_pos_ = 0;          // bytes of it already written
  bool is_socket_ = false;
  std::size_t queued_bytes_ = 0;
  const std::shared_ptr<WriteBudget> budget_ = std::make_shared<WriteBudget>();
};

}  // namespace kuasar::ttrpc
