#pragma once
// Base64 (RFC 4648, standard alphabet, padded): plan files that are not
// UTF-8 travel in JSON this way.

#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln {

std::string Base64Encode(std::string_view in);
// kInvalidArgument naming the offset of the first character that is not
// base64, or a length that is not a multiple of 4. Whitespace is skipped.
Result<std::string> Base64Decode(std::string_view in);

}  // namespace kiln
