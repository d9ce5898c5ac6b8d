#include "templates.h"

#include <kainjow/mustache.hpp>

#include "assets.h"
#include "evert/json_text.h"

namespace evert::web {
namespace {

kainjow::mustache::data to_data(const nlohmann::json& j) {
  using kainjow::mustache::data;
  if (j.is_object()) {
    data d;
    for (const auto& [k, v] : j.items())
      d.set(k, to_data(v));
    return d;
  }
  if (j.is_array()) {
    data list{data::type::list};
    for (const auto& v : j)
      list.push_back(to_data(v));
    return list;
  }
  if (j.is_boolean()) {
    return j.get<bool>() ? data{data::type::bool_true} : data{data::type::bool_false};
  }
  if (j.is_string()) return data{j.get<std::string>()};
  if (j.is_null()) return data{data::type::bool_false};
  return data{evert::json_text(j)};
}

}  // namespace

std::string render_template(std::string_view name, const nlohmann::json& data, std::string* error) {
  // Parsed at each use: a few microseconds, and no cache to keep consistent.
  kainjow::mustache::mustache tmpl{std::string(asset(name))};
  if (!tmpl.is_valid()) {
    if (error != nullptr) *error = std::string(name) + ": " + tmpl.error_message();
    return "template error\n";
  }
  return tmpl.render(to_data(data));
}

}  // namespace evert::web
