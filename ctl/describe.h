// How evertctl shows a torrent or a magnet link, as text for people and as JSON for scripts.
// One place, so create, inspect (and later publish/show) print the same fields the same way.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>

#include "evert/magnet.h"
#include "evert/metainfo.h"

namespace evert::ctl {

nlohmann::json to_json(const Metainfo& m, bool with_files);
nlohmann::json to_json(const Magnet& g);

void print_human(std::ostream& out, const Metainfo& m, bool with_files);
void print_human(std::ostream& out, const Magnet& g);

// The hashes and magnet link, the short summary printed after create.
void print_hashes(std::ostream& out, const Metainfo& m);

}  // namespace evert::ctl
