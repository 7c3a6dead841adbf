#include "sim/common/byte_pump.h"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace kuasar::sim {

BytePump::BytePump(std::shared_ptr<UnixSocket> a, std::shared_ptr<UnixSocket> b,
                   std::function<void()> on_done)
    : a_(std::move(a)), b_(std::move(b)), on_done_(std::move(on_done)) {
  ab_.from = a_.get();
  ab_.to = b_.get();
  ba_.from = b_.get();
  ba_.to = a_.get();
}

std::shared_ptr<BytePump> BytePump::Start(std::shared_ptr<UnixSocket> a,
                                          std::shared_ptr<UnixSocket> b,
                                          std::function<void()> on_done) {
  std::shared_ptr<BytePump> p(new BytePump(std::move(a), std::move(b), std::move(on_done)));
  p->Pump(p->ab_);
  p->Pump(p->ba_);
  return p;
}

void BytePump::Pump(Direction& d) {
  if (closed_ || paused_ || d.busy) return;
  d.busy = true;
  d.from->async_read_some(boost::asio::buffer(d.buf),
                          [self = shared_from_this(), &d](auto ec, size_t n) {
                            if (ec || self->closed_) {
                              d.busy = false;
                              self->Close();
                              return;
                            }
                            boost::asio::async_write(*d.to, boost::asio::buffer(d.buf.data(), n),
                                                     [self, &d](auto wec, size_t) {
                                                       d.busy = false;
                                                       if (wec || self->closed_) {
                                                         self->Close();
                                                         return;
                                                       }
                                                       self->Pump(d);
                                                     });
                          });
}

void BytePump::SetPaused(bool paused) {
  paused_ = paused;
  if (!paused) {
    Pump(ab_);
    Pump(ba_);
  }
}

void BytePump::Close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  a_->close(ec);
  b_->close(ec);
  if (on_done_) {
    auto done = std::move(on_done_);
    on_done_ = nullptr;
    done();
  }
}

}  // namespace kuasar::sim
