// Small text helpers shared by the web module's parsers (multipart, forms, names, feeds).
// Internal to modules/web; pure functions, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace evert::web::text {

// `s` without leading and trailing spaces and tabs (HTTP's OWS).
std::string_view trim_ows(std::string_view s);

// Whether `a` and `b` are equal ignoring ASCII case.
bool iequals(std::string_view a, std::string_view b);

// The value of the hex digit `c`, or -1.
int hex_value(char c);

// Decodes the UTF-8 sequence at s[i] (i < s.size()) and advances `i` past it. Returns the code
// point, or -1 for a byte that does not start a valid sequence (a stray continuation byte, an
// overlong form, a surrogate, a code point above U+10FFFF, a truncated sequence); `i` then
// advances by one byte so the caller can go on.
int32_t next_code_point(std::string_view s, size_t& i);

// Appends the UTF-8 encoding of code point `cp` (<= U+10FFFF, not a surrogate) to `out`.
void append_utf8(std::string& out, uint32_t cp);

}  // namespace evert::web::text
