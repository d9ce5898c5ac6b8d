// Byte sizes for people: parsing "16M", "512KiB", "1048576"; formatting "1.50 GiB".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace evert {

// Parses a size: a decimal number with an optional binary suffix K, M, G, T (also KiB, MiB,
// ... and KB, MB, which mean the same powers of 1024 here, as in mktorrent and transmission),
// case-insensitive. nullopt on anything else or on overflow.
std::optional<uint64_t> parse_size(std::string_view text);

// "0 B", "999 B", "1.00 KiB", "1.50 GiB".
std::string format_size(uint64_t bytes);

}  // namespace evert
