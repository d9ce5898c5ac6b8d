// RSS 2.0 feeds (https://www.rssboard.org/rss-specification) of a site's torrents, for podcast
// apps (the .torrent as the enclosure) and BitTorrent clients' RSS readers (also the ezRSS
// torrent namespace: info-hash, magnet link, size). No I/O.
//
// Thread-safety: pure functions, any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evert::web {

struct FeedChannel {
  std::string title;
  std::string link;  // the site's page the feed is about
  std::string description;
  std::string self_url;                 // where this feed is served (atom:link rel="self")
  std::optional<std::string> language;  // "en", "de-CH"
};

struct FeedItem {
  std::string title;
  std::string description;        // plain text
  std::string link;               // the torrent's page
  std::string guid;               // the v1 info-hash in hex (isPermaLink="false")
  int64_t pub_date = 0;           // unix seconds
  std::string torrent_url;        // the .torrent file: the enclosure
  uint64_t torrent_length = 0;    // bytes of the .torrent file (the enclosure's length)
  std::string torrent_file_name;  // the .torrent's file name (torrent:fileName); empty: none
  std::string magnet;
  uint64_t content_length = 0;  // total bytes of the torrent's files
  std::string info_hash;        // hex, for torrent:infoHash
};

// The RSS 2.0 document, UTF-8 with an XML declaration: a channel with title, link, description,
// language (when set), atom:link rel="self", lastBuildDate (the newest item's pubDate; absent
// without items, so the document only changes when its items do) and generator, then one item
// per entry in the order given (newest first, by convention). Text is XML-escaped; characters
// XML 1.0 does not allow (C0 controls other than tab, LF and CR, U+FFFE, U+FFFF) are removed
// and invalid UTF-8 is replaced by U+FFFD, so any input gives a well-formed document.
std::string render_rss(const FeedChannel& channel, const std::vector<FeedItem>& items);

// An RFC 822 date (as RFC 1123 updates it) for `unix_seconds` in UTC, as RSS wants:
// "Mon, 23 Nov 2026 10:00:00 +0000".
std::string rfc822_date(int64_t unix_seconds);

// `s` escaped for XML text and attribute values, with the characters XML 1.0 does not allow
// removed (see render_rss).
std::string xml_escape(std::string_view s);

}  // namespace evert::web
