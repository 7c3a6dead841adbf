// TempDir: a fresh directory removed with everything in it on destruction (tests,
// throwaway state dirs). Short paths under /tmp so unix socket paths fit in 108 bytes.
#pragma once

#include <string>

namespace kuasar {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "kuasar");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace kuasar
