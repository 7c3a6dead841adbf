// kuasar-appkernel-wait RUNSC ROOT START_FIFO ID: the host process that stands for an app
// container inside a gVisor pod sandbox. Spawned by the pod's holder at Create, it blocks
// on START_FIFO; on 'S' (started) it runs `runsc --root ROOT wait ID` and exits with the
// container's exit code (runsc reports 128+signal for a killed one), so the holder reaps
// and journals it as it does a runc container's init. Anything else: exit 255.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/base/child_process.h"
#include "runtime/base/unique_fd.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: kuasar-appkernel-wait RUNSC ROOT START_FIFO ID\n");
    return 255;
  }
  kuasar::UniqueFd fifo(::open(argv[3], O_RDONLY | O_CLOEXEC));
  if (!fifo) return 255;
  char what = 0;
  ssize_t n;
  while ((n = ::read(fifo.get(), &what, 1)) < 0 && errno == EINTR) {
  }
  if (n != 1 || what != 'S') return 255;
  fifo.Reset();
  char tmpl[] = "/tmp/kuasar-wait.XXXXXX";
  kuasar::UniqueFd out(::mkostemp(tmpl, O_CLOEXEC));
  if (!out) return 255;
  ::unlink(tmpl);
  kuasar::SpawnOptions so;
  so.stdout_fd = out.get();
  auto child = kuasar::ChildProcess::Spawn({argv[1], "--root", argv[2], "wait", argv[4]}, so);
  if (!child.ok()) return 255;
  auto status = child->Wait();
  if (!status.ok() || *status != 0) return 255;
  std::string text;
  char buf[4096];
  ::lseek(out.get(), 0, SEEK_SET);
  while ((n = ::read(out.get(), buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("exitStatus") || !j["exitStatus"].is_number_integer()) {
    return 255;
  }
  int code = j["exitStatus"].get<int>();
  return code < 0 || code > 255 ? 255 : code;
}
