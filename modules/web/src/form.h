// The small codecs of HTML forms and cookies: percent-decoding, application/x-www-form-urlencoded
// bodies, the Cookie and Set-Cookie headers (RFC 6265), and HTML escaping for the few strings
// not rendered through templates. No I/O.
//
// Thread-safety: pure functions, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "evert/result.h"

namespace evert::web {

// What '+' means to percent_decode(): itself (URL paths, RFC 3986) or a space (form bodies and
// query strings, application/x-www-form-urlencoded).
enum class PlusMode { kLiteral, kSpace };

// `s` with every "%XX" (hex, either case) replaced by its byte and, with PlusMode::kSpace, every
// '+' by a space. An error when a '%' is not followed by two hex digits (the offset is the
// '%'). The result is bytes: it is not checked to be UTF-8. (web_seed_http.h's one-argument
// percent_decode is the same as PlusMode::kLiteral, with nullopt for the error.)
Result<std::string> percent_decode(std::string_view s, PlusMode plus);

// The fields of a form, in the order sent; names may repeat.
using FormFields = std::vector<std::pair<std::string, std::string>>;

struct FormLimits {
  size_t max_fields = 256;
};

// Parses an application/x-www-form-urlencoded `body` (the HTML standard's format: fields
// separated by '&', name and value by the first '=', '+' for space, %-escapes). Empty fields
// ("a=1&&b=2") are skipped; a field without '=' has an empty value. Errors: a malformed
// %-escape (the offset is in `body`), more than `limits.max_fields` fields. The caller bounds
// the body's size before buffering it.
Result<FormFields> parse_urlencoded(std::string_view body, const FormLimits& limits = {});

// The value of the first field named `name`; nullopt when there is none. The view points into
// `fields`.
std::optional<std::string_view> form_value(const FormFields& fields, std::string_view name);

// The value of the first cookie named `name` (case-sensitive) in a Cookie header's value
// (RFC 6265 §5.4 syntax: "a=1; b=2"), with surrounding double quotes removed; nullopt when
// absent. Tolerant: spaces and tabs around names, values and separators are ignored, and pairs
// without '=' are skipped.
std::optional<std::string> parse_cookie(std::string_view header, std::string_view name);

struct CookieOptions {
  std::optional<int64_t> max_age;  // seconds; nullopt: a session cookie; 0: delete it
  bool http_only = true;
  bool same_site_strict = true;  // SameSite=Strict; false: SameSite=Lax
  bool secure = false;           // set when the page is served over HTTPS
  std::string path = "/";
};

// The value of a Set-Cookie header (RFC 6265 §4.1) setting cookie `name` to `value`:
// "sid=abc; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict".
// Preconditions (checked by assert): `name` is an RFC 7230 token; `value` and `options.path`
// hold only printable ASCII without ';', ',', '"', '\' or spaces. The callers' names and values
// are their own constants and random ids, never user input.
std::string set_cookie(std::string_view name, std::string_view value,
                       const CookieOptions& options = {});

// `s` with & < > " ' replaced by character references, safe in HTML text and in quoted
// attribute values.
std::string html_escape(std::string_view s);

}  // namespace evert::web
