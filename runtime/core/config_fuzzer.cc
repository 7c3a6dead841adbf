// libFuzzer target: the daemon's TOML config parser (runtime/core/config.cc) and the
// section reader every backend uses. A bad file must give an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/core/config.h"
#include "runtime/core/pod_settings.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)kuasar::ParseConfig(text, "fuzz.toml");
  // The same bytes as a CRI PodSandboxConfig (the Create options every backend decodes).
  (void)kuasar::DecodePodSettings("runtime.v1.PodSandboxConfig", std::string(text));
  return 0;
}
