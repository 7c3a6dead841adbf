// stand-in-agent: a stand-in for the guest agent (vmm-task) in simulator tests. It takes
// the agent's command line (--init namespace, then --listen unix:PATH or --serve-fd N) and
// echoes every byte back on each connection, except for a few commands a test can send
// as a chunk of its own:
//   "!pid\n"      -> "pid=<its pid as it sees it>\n" (1 inside a fresh PID namespace)
//   "!env NAME\n" -> "NAME=<value>\n"
//   "!exit N\n"   -> exits with status N (a guest crash or poweroff)
// SIGTERM makes it exit 0 (a guest's clean poweroff) unless --ignore-sigterm.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t g_term = 0;
void OnTerm(int) { g_term = 1; }

int Listen(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  ::unlink(path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 64) != 0) {
    std::perror("stand-in-agent: listen");
    std::exit(2);
  }
  return fd;
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Returns false when the connection ended.
bool Serve(int fd) {
  char buf[16384];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  if (n <= 0) return false;
  std::string in(buf, static_cast<size_t>(n));
  if (in == "!pid\n") {
    WriteAll(fd, "pid=" + std::to_string(::getpid()) + "\n");
  } else if (in.rfind("!env ", 0) == 0 && in.back() == '\n') {
    std::string name = in.substr(5, in.size() - 6);
    const char* v = std::getenv(name.c_str());
    WriteAll(fd, name + "=" + (v ? v : "") + "\n");
  } else if (in.rfind("!exit ", 0) == 0) {
    std::exit(std::atoi(in.c_str() + 6));
  } else {
    WriteAll(fd, in);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen_path;
  int serve_fd = -1;
  bool ignore_term = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--listen" && i + 1 < argc) {
      std::string v = argv[++i];
      if (v.rfind("unix:", 0) == 0) v = v.substr(5);
      listen_path = v;
    } else if (a == "--serve-fd" && i + 1 < argc) {
      serve_fd = std::atoi(argv[++i]);
    } else if (a == "--init" && i + 1 < argc) {
      ++i;
    } else if (a == "--ignore-sigterm") {
      ignore_term = true;
    }
  }
  struct sigaction sa {};
  sa.sa_handler = ignore_term ? SIG_IGN : OnTerm;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  std::vector<pollfd> fds;
  int listener = -1;
  if (!listen_path.empty()) {
    listener = Listen(listen_path);
    fds.push_back({listener, POLLIN, 0});
  }
  if (serve_fd >= 0) fds.push_back({serve_fd, POLLIN, 0});
  if (fds.empty()) {
    std::fprintf(stderr, "stand-in-agent: need --listen unix:PATH or --serve-fd N\n");
    return 2;
  }
  while (!g_term) {
    if (::poll(fds.data(), fds.size(), 200) < 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == listener) {
        int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) fds.push_back({c, POLLIN, 0});
      } else if (!Serve(fds[i].fd)) {
        if (fds[i].fd == serve_fd) {
          // The channel is gone (the VMM dropped it): keep running, as an agent whose port
          // closed would, until told to stop.
          fds[i].fd = -fds[i].fd - 1;
          continue;
        }
        ::close(fds[i].fd);
        fds.erase(fds.begin() + static_cast<long>(i));
        --i;
      }
      if (i < fds.size()) fds[i].revents = 0;
    }
  }
  if (!listen_path.empty()) ::unlink(listen_path.c_str());
  return 0;
}
