// JsonStreamSplitter cuts a byte stream into top-level JSON texts, as QEMU's JSON streamer
// does for QMP: objects and arrays end at their closing bracket (no newline needed),
// scalars at whitespace; strings and escapes are tracked so brackets inside them do not
// count. Texts are handed out unparsed. Bounded: a text over the limit, or brackets
// nested too deep, is reported and skipped. Not thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kuasar::sim {

struct JsonPiece {
  std::string text;
  enum class Kind { kValue, kTooLarge, kTooDeep, kStrayClose } kind = Kind::kValue;
};

class JsonStreamSplitter {
 public:
  explicit JsonStreamSplitter(size_t max_bytes = 1 << 20, int max_depth = 64)
      : max_bytes_(max_bytes), max_depth_(max_depth) {}
  std::vector<JsonPiece> Feed(std::string_view bytes);

 private:
  void Emit(std::vector<JsonPiece>* out, JsonPiece::Kind kind);

  size_t max_bytes_;
  int max_depth_;
  std::string cur_;
  int depth_ = 0;
  bool in_string_ = false, escape_ = false, in_scalar_ = false, skipping_ = false;
};

}  // namespace kuasar::sim
