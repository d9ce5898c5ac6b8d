#include "feed.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "text.h"

namespace evert::web {
namespace {

// The ezRSS namespace BitTorrent clients read torrent details from.
constexpr std::string_view kTorrentNs = "http://xmlns.ezrss.it/0.1/";

// Appends <name>escaped text</name> on its own line, indented.
void element(std::string& out, std::string_view indent, std::string_view name,
             std::string_view value) {
  out.append(indent).append("<").append(name).append(">");
  out.append(xml_escape(value));
  out.append("</").append(name).append(">\n");
}

void render_item(std::string& out, const FeedItem& item) {
  constexpr std::string_view in = "      ";
  out.append("    <item>\n");
  element(out, in, "title", item.title);
  element(out, in, "link", item.link);
  element(out, in, "description", item.description);
  out.append(in).append("<guid isPermaLink=\"false\">").append(xml_escape(item.guid));
  out.append("</guid>\n");
  element(out, in, "pubDate", rfc822_date(item.pub_date));
  out.append(in).append("<enclosure url=\"").append(xml_escape(item.torrent_url));
  out.append("\" length=\"").append(std::to_string(item.torrent_length));
  out.append("\" type=\"application/x-bittorrent\"/>\n");
  element(out, in, "torrent:infoHash", item.info_hash);
  element(out, in, "torrent:magnetURI", item.magnet);
  element(out, in, "torrent:contentLength", std::to_string(item.content_length));
  if (!item.torrent_file_name.empty()) {
    element(out, in, "torrent:fileName", item.torrent_file_name);
  }
  out.append("    </item>\n");
}

}  // namespace

std::string rfc822_date(int64_t unix_seconds) {
  // Names spelt out: strftime's %a and %b follow the locale.
  static constexpr std::string_view kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto t = static_cast<time_t>(unix_seconds);
  tm g{};
  if (gmtime_r(&t, &g) == nullptr) g = tm{};
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000",
                              kDays[g.tm_wday % 7].data(), g.tm_mday, kMonths[g.tm_mon % 12].data(),
                              g.tm_year + 1900, g.tm_hour, g.tm_min, g.tm_sec);
  return std::string(buf, static_cast<size_t>(std::clamp(n, 0, int{sizeof buf} - 1)));
}

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    const int32_t cp = text::next_code_point(s, i);
    if (cp < 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      continue;
    }
    switch (cp) {
      case '&':
        out += "&amp;";
        continue;
      case '<':
        out += "&lt;";
        continue;
      case '>':
        out += "&gt;";
        continue;
      case '"':
        out += "&quot;";
        continue;
      case '\'':
        out += "&apos;";
        continue;
      default:
        break;
    }
    // XML 1.0 §2.2 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
    // (surrogates never decode).
    if ((cp < 0x20 && cp != 0x9 && cp != 0xA && cp != 0xD) || cp == 0xFFFE || cp == 0xFFFF) {
      continue;
    }
    out.append(s.substr(start, i - start));
  }
  return out;
}

std::string render_rss(const FeedChannel& channel, const std::vector<FeedItem>& items) {
  std::string out;
  out.reserve(1024 + items.size() * 1024);
  out.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  out.append("<rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\" xmlns:torrent=\"");
  out.append(kTorrentNs).append("\">\n");
  out.append("  <channel>\n");
  constexpr std::string_view in = "    ";
  element(out, in, "title", channel.title);
  element(out, in, "link", channel.link);
  element(out, in, "description", channel.description);
  if (channel.language) element(out, in, "language", *channel.language);
  out.append(in).append("<atom:link href=\"").append(xml_escape(channel.self_url));
  out.append("\" rel=\"self\" type=\"application/rss+xml\"/>\n");
  if (!items.empty()) {
    int64_t newest = items.front().pub_date;
    for (const auto& item : items)
      newest = std::max(newest, item.pub_date);
    element(out, in, "lastBuildDate", rfc822_date(newest));
  }
  element(out, in, "generator", "Evertorrent");
  for (const auto& item : items)
    render_item(out, item);
  out.append("  </channel>\n</rss>\n");
  return out;
}

}  // namespace evert::web
