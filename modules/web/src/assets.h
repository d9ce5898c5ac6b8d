// The web module's files built into evertd (modules/web/assets: page templates, the style
// sheet, the script), so an installed daemon needs nothing beside its binary to serve pages.
#pragma once

#include <string_view>
#include <vector>

namespace evert::web {

struct Asset {
  std::string_view name;  // the path below modules/web/assets, "style.css"
  std::string_view bytes;
};

// Every asset, in a fixed order.
const std::vector<Asset>& assets();

// The asset `name`, or an empty view when there is none.
inline std::string_view asset(std::string_view name) {
  for (const Asset& a : assets()) {
    if (a.name == name) return a.bytes;
  }
  return {};
}

}  // namespace evert::web
