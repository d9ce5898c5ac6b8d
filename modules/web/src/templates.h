// The web pages' templates (mustache, modules/web/assets/*.html, built into the binary): every
// {{value}} is HTML-escaped by the engine; the only unescaped ones ({{{...}}}) are the layout's
// page body (itself rendered here) and the torrent page's QR code (SVG made by the site).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace evert::web {

// Renders the template `name` with `data` (objects, lists, strings, booleans; numbers are
// shown as JSON; null is false). A template that does not parse renders as an error line and
// sets `error`.
std::string render_template(std::string_view name, const nlohmann::json& data,
                            std::string* error = nullptr);

}  // namespace evert::web
