// Sanitising the names that come with uploads (a torrent's name, a file's name, the relative
// paths of a folder upload) before they become file names on this disk and in a torrent's info
// dictionary, where clients on Linux, macOS and Windows will write them. No I/O.
//
// What is rejected and what is quietly fixed: anything that changes what a name means or that
// cannot be shown (bad UTF-8, control characters, separators, "." and "..", too long) is an
// error; what only trips up a file system is normalised the way Windows itself would (leading
// spaces, trailing dots and spaces trimmed) or made harmless:
//  - Names Windows reserves for devices (CON, PRN, AUX, NUL, COM0-COM9, LPT0-LPT9, COM¹²³,
//    LPT¹²³, CONIN$, CONOUT$, any case, alone or before an extension, e.g. "nul.tar.gz") get a
//    '_' prefix ("_nul.tar.gz"): a Windows client could not create them, and rejecting an
//    upload of "con.txt" would puzzle its owner.
//  - Characters Windows forbids in names (< > : " | ? *) are kept: they are valid elsewhere,
//    and Windows BitTorrent clients (libtorrent, qBittorrent, Transmission) replace them when
//    they write the file.
//
// Thread-safety: pure functions, any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "evert/result.h"

namespace evert::web {

inline constexpr size_t kMaxNameBytes = 255;   // one component (ext4, NTFS in UTF-16 units)
inline constexpr size_t kMaxPathBytes = 4096;  // a relative path (PATH_MAX)
inline constexpr size_t kMaxPathDepth = 32;    // components of a relative path

// One path component (a torrent's or a file's name), sanitised: the name with leading spaces
// and trailing dots and spaces trimmed and a '_' before a Windows device name. Errors, each
// naming the problem and quoting the name with control characters and bad bytes escaped: not
// valid UTF-8 (overlong forms and surrogates included), a control character (C0, DEL, C1), a
// bidirectional embedding, override or isolate (U+202A-U+202E, U+2066-U+2069: they disguise a
// name's extension), '/' or '\', "." or "..", empty after trimming, longer than kMaxNameBytes
// after sanitising (never truncated).
Result<std::string> sanitise_name(std::string_view name);

// A relative path from a folder upload ("Album/CD1/01 track.flac", as browsers send with
// webkitdirectory), split on '/' into its components, each through sanitise_name(). Errors: an
// empty path, longer than kMaxPathBytes, absolute (a leading '/'), an empty component ("a//b",
// "a/"), more than kMaxPathDepth components, or a component sanitise_name() rejects (the error
// says which component).
Result<std::vector<std::string>> sanitise_relative_path(std::string_view path);

}  // namespace evert::web
