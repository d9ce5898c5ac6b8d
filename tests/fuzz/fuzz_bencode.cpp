// libFuzzer target: the bencode decoder. The decoder accepts only canonical bencode, so anything
// it accepts must encode back to exactly the input bytes.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "evert/bencode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto v = evert::bencode::decode(input);
  if (v.ok()) {
    if (evert::bencode::encode(*v) != input) std::abort();
    if (v->raw() != input) std::abort();
  } else if (v.error().offset > size) {
    std::abort();  // an error offset must point into the input (or at its end)
  }
  return 0;
}
