#include "common/json_scanner.h"

#include <charconv>

#include "common/json_writer.h"

namespace kiln {

void JsonScanner::SkipSpace() {
  while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
    ++i_;
}

bool JsonScanner::Consume(char c) {
  SkipSpace();
  if (i_ >= s_.size() || s_[i_] != c) return false;
  ++i_;
  return true;
}

bool JsonScanner::Peek(char c) {
  SkipSpace();
  return i_ < s_.size() && s_[i_] == c;
}

bool JsonScanner::AtEnd() {
  SkipSpace();
  return i_ == s_.size();
}

bool JsonScanner::Hex4(uint32_t* out) {
  if (s_.size() - i_ < 4) return false;
  uint32_t v = 0;
  for (int k = 0; k < 4; ++k) {
    char c = s_[i_++];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= static_cast<uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= static_cast<uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= static_cast<uint32_t>(c - 'A' + 10);
    else
      return false;
  }
  *out = v;
  return true;
}

namespace {

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

bool JsonScanner::String(std::string* out) {
  if (!Consume('"')) return false;
  out->clear();
  size_t plain = i_;  // start of the run not yet copied
  while (i_ < s_.size()) {
    auto c = static_cast<unsigned char>(s_[i_]);
    if (c == '"') {
      out->append(s_.data() + plain, i_ - plain);
      ++i_;
      return true;
    }
    if (c < 0x20) return false;  // raw control characters are not JSON
    if (c >= 0x80) {
      size_t n = Utf8SequenceAt(s_, i_);
      if (n == 0) return false;
      i_ += n;
      continue;
    }
    if (c != '\\') {
      ++i_;
      continue;
    }
    out->append(s_.data() + plain, i_ - plain);
    if (++i_ >= s_.size()) return false;
    char e = s_[i_++];
    switch (e) {
      case '"': out->push_back('"'); break;
      case '\\': out->push_back('\\'); break;
      case '/': out->push_back('/'); break;
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      case 'u': {
        uint32_t cp = 0;
        if (!Hex4(&cp)) return false;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a lone low surrogate
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          // A high surrogate must be followed by an escaped low one.
          uint32_t lo = 0;
          if (s_.size() - i_ < 2 || s_[i_] != '\\' || s_[i_ + 1] != 'u') return false;
          i_ += 2;
          if (!Hex4(&lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        AppendUtf8(out, cp);
        break;
      }
      default: return false;
    }
    plain = i_;
  }
  return false;  // unterminated
}

bool JsonScanner::Int(int64_t* out) {
  SkipSpace();
  size_t start = i_;
  if (i_ < s_.size() && s_[i_] == '-') ++i_;
  if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9') return false;
  // JSON has no leading zeros: "0" alone, or a digit 1-9 and more digits.
  if (s_[i_] == '0') {
    ++i_;
  } else {
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
  }
  if (i_ < s_.size() &&
      (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E' || (s_[i_] >= '0' && s_[i_] <= '9')))
    return false;  // a fraction or exponent (a float), or a leading zero
  int64_t v = 0;
  auto r = std::from_chars(s_.data() + start, s_.data() + i_, v);
  if (r.ec != std::errc() || r.ptr != s_.data() + i_) return false;  // out of range
  *out = v;
  return true;
}

bool JsonScanner::Bool(bool* out) {
  SkipSpace();
  std::string_view rest = s_.substr(i_);
  if (rest.substr(0, 4) == "true") {
    i_ += 4;
    *out = true;
  } else if (rest.substr(0, 5) == "false") {
    i_ += 5;
    *out = false;
  } else {
    return false;
  }
  // "trueX" is not JSON; the next token must start with a delimiter.
  if (i_ < s_.size()) {
    char c = s_[i_];
    if (c != ',' && c != '}' && c != ']' && c != ' ' && c != '\t' && c != '\n' && c != '\r')
      return false;
  }
  return true;
}

}  // namespace kiln
