// What a VM's teardown may leave behind, for the tests that check it left nothing:
// live processes naming one of the VM's paths, and files left in its directories.
// Plain /proc and readdir scans; thread-safe.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace kuasar::vmm::testing {

// Live processes (not zombies: their cmdline is empty) whose command line contains
// `needle`, other than this process.
std::vector<pid_t> ProcessesMentioning(const std::string& needle);

// The names in `dir` (not "." or ".."); empty when it is missing.
std::vector<std::string> FilesIn(const std::string& dir);

}  // namespace kuasar::vmm::testing
