#include "sim/common/json_stream.h"

namespace kuasar::sim {

namespace {
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
}  // namespace

void JsonStreamSplitter::Emit(std::vector<JsonPiece>* out, JsonPiece::Kind kind) {
  out->push_back(
      JsonPiece{kind == JsonPiece::Kind::kValue ? std::move(cur_) : std::string(), kind});
  cur_.clear();
  depth_ = 0;
  in_string_ = escape_ = in_scalar_ = false;
}

std::vector<JsonPiece> JsonStreamSplitter::Feed(std::string_view bytes) {
  std::vector<JsonPiece> out;
  for (char c : bytes) {
    if (skipping_) {
      // After an oversized or too-deep text, resynchronise at the next newline.
      if (c == '\n') skipping_ = false;
      continue;
    }
    if (in_scalar_ && depth_ == 0) {
      if (in_string_) {  // a top-level string: spaces inside do not end it
        cur_.push_back(c);
        if (escape_) {
          escape_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          in_string_ = false;
        }
        if (cur_.size() > max_bytes_) {
          Emit(&out, JsonPiece::Kind::kTooLarge);
          skipping_ = true;
        }
        continue;
      }
      if (IsSpace(c) || c == '{' || c == '[') {
        Emit(&out, JsonPiece::Kind::kValue);
        if (IsSpace(c)) continue;
      } else {
        cur_.push_back(c);
        if (cur_.size() > max_bytes_) {
          Emit(&out, JsonPiece::Kind::kTooLarge);
          skipping_ = true;
        }
        continue;
      }
    }
    if (depth_ == 0 && cur_.empty()) {
      if (IsSpace(c)) continue;
      if (c == '}' || c == ']') {
        Emit(&out, JsonPiece::Kind::kStrayClose);
        continue;
      }
      if (c != '{' && c != '[') {
        in_scalar_ = true;
        if (c == '"') in_string_ = true;
        cur_.push_back(c);
        continue;
      }
    }
    cur_.push_back(c);
    if (cur_.size() > max_bytes_) {
      Emit(&out, JsonPiece::Kind::kTooLarge);
      skipping_ = true;
      continue;
    }
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      if (++depth_ > max_depth_) {
        Emit(&out, JsonPiece::Kind::kTooDeep);
        skipping_ = true;
      }
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) Emit(&out, JsonPiece::Kind::kValue);
    }
  }
  return out;
}

}  // namespace kuasar::sim
