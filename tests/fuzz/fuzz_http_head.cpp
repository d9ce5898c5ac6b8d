// libFuzzer target: the HTTP request head parser (http_head.h), fed as a server reads: the
// input in pieces of the sizes its first bytes choose. A head must read the same in pieces as
// whole (every shorter prefix asks for more), its views must lie within the buffer, and a
// refusal must carry an error status.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "evert/tracker/http_head.h"

namespace {

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check(const evert::tracker::HttpHeadResult& r, std::string_view buf) {
  using namespace evert::tracker;
  if (const auto* f = std::get_if<HttpRefusal>(&r)) {
    if (f->status < 400 || f->status > 599 || f->message.empty()) std::abort();
    return;
  }
  if (const auto* h = std::get_if<HttpHead>(&r)) {
    if (h->size > buf.size() || h->size < 4 || !inside(h->head, buf) || !inside(h->path, buf) ||
        !inside(h->query, buf) || !inside(h->method, buf) || h->method.empty() ||
        h->target.empty() || !inside(h->range, buf) || !inside(h->x_forwarded_for, buf)) {
      std::abort();
    }
    if (buf.substr(h->size - 4, 4) != "\r\n\r\n") std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace evert::tracker;
  if (size < 1) return 0;
  const size_t step = 1 + data[0] % 64;  // how much each read brings
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const HttpHeadResult whole = parse_http_head(in, 1024);
  check(whole, in);
  // Read as it arrives: every prefix asks for more until the one the whole stops at.
  for (size_t have = 0; have < in.size(); have += step) {
    const std::string_view prefix = in.substr(0, have);
    const HttpHeadResult r = parse_http_head(prefix, 1024);
    check(r, prefix);
    if (const auto* h = std::get_if<HttpHead>(&r)) {
      const auto* w = std::get_if<HttpHead>(&whole);
      if (w == nullptr || w->size != h->size) std::abort();
      break;
    }
    if (std::holds_alternative<HttpRefusal>(r)) {
      if (!std::holds_alternative<HttpRefusal>(whole)) std::abort();
      break;
    }
  }
  return 0;
}
