// Crash-safety fault points. In builds with KUASAR_FAULT_POINTS, a process whose
// environment has KUASAR_FAULT_POINT=<name> kills itself with SIGKILL when it reaches
// the point of that name, so tests can prove every step recovers. Compiled out otherwise.
#pragma once

#include <string_view>

namespace kuasar {

// Returns the armed point name ("" if none); read once per process.
std::string_view ArmedFaultPoint();

// SIGKILLs the calling process if `name` is the armed point.
void MaybeCrashAt(std::string_view name);

}  // namespace kuasar

#if defined(KUASAR_FAULT_POINTS)
#define KUASAR_FAULT_POINT(name) ::kuasar::MaybeCrashAt(name)
#else
#define KUASAR_FAULT_POINT(name) \
  do {                           \
  } while (0)
#endif
