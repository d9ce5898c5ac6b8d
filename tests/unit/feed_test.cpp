#include "feed.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace evert::web {
namespace {

FeedChannel channel() {
  return {"Evert & Co's <torrents>", "https://example.org/", "Everything we publish",
          "https://example.org/feed.xml", "en"};
}

FeedItem item() {
  FeedItem i;
  i.title = "Concert \"live\" 2026";
  i.description = "Two CDs\nin FLAC";
  i.link = "https://example.org/t/0123456789abcdef0123456789abcdef01234567";
  i.guid = "0123456789abcdef0123456789abcdef01234567";
  i.pub_date = 1795428000;  // Mon, 23 Nov 2026 10:00:00 UTC
  i.torrent_url = "https://example.org/t/0123456789abcdef0123456789abcdef01234567.torrent";
  i.torrent_length = 12345;
  i.torrent_file_name = "Concert live 2026.torrent";
  i.magnet = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=Concert";
  i.content_length = 734003200;
  i.info_hash = "0123456789abcdef0123456789abcdef01234567";
  return i;
}

TEST(Feed, Rfc822Date) {
  EXPECT_EQ(rfc822_date(1795428000), "Mon, 23 Nov 2026 10:00:00 +0000");
  EXPECT_EQ(rfc822_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(rfc822_date(784111777), "Sun, 06 Nov 1994 08:49:37 +0000");
  EXPECT_EQ(rfc822_date(951782400), "Tue, 29 Feb 2000 00:00:00 +0000");
}

TEST(Feed, XmlEscape) {
  EXPECT_EQ(xml_escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  // Tab, LF and CR stay; other C0 controls go; DEL and C1 are valid XML 1.0 characters.
  EXPECT_EQ(xml_escape(std::string("a\tb\nc\rd\0e\x01\x1f\x7f", 12)), "a\tb\nc\rde\x7f");
  EXPECT_EQ(xml_escape("\xef\xbf\xbe\xef\xbf\xbf\xef\xbf\xbd"), "\xef\xbf\xbd");  // no FFFE/FFFF
  EXPECT_EQ(xml_escape("bad\xff utf8 \xed\xa0\x80"),
            "bad\xef\xbf\xbd utf8 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(xml_escape("\xe2\x82\xac \xf0\x9f\x8e\xb5"), "\xe2\x82\xac \xf0\x9f\x8e\xb5");
}

TEST(Feed, Document) {
  const std::string xml = render_rss(channel(), {item()});
  EXPECT_EQ(xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\" "
            "xmlns:torrent=\"http://xmlns.ezrss.it/0.1/\">\n"
            "  <channel>\n"
            "    <title>Evert &amp; Co&apos;s &lt;torrents&gt;</title>\n"
            "    <link>https://example.org/</link>\n"
            "    <description>Everything we publish</description>\n"
            "    <language>en</language>\n"
            "    <atom:link href=\"https://example.org/feed.xml\" rel=\"self\" "
            "type=\"application/rss+xml\"/>\n"
            "    <lastBuildDate>Mon, 23 Nov 2026 10:00:00 +0000</lastBuildDate>\n"
            "    <generator>Evertorrent</generator>\n"
            "    <item>\n"
            "      <title>Concert &quot;live&quot; 2026</title>\n"
            "      <link>https://example.org/t/0123456789abcdef0123456789abcdef01234567</link>\n"
            "      <description>Two CDs\nin FLAC</description>\n"
            "      <guid isPermaLink=\"false\">0123456789abcdef0123456789abcdef01234567</guid>\n"
            "      <pubDate>Mon, 23 Nov 2026 10:00:00 +0000</pubDate>\n"
            "      <enclosure url=\"https://example.org/t/"
            "0123456789abcdef0123456789abcdef01234567.torrent\" length=\"12345\" "
            "type=\"application/x-bittorrent\"/>\n"
            "      <torrent:infoHash>0123456789abcdef0123456789abcdef01234567</torrent:infoHash>\n"
            "      <torrent:magnetURI>magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"
            "&amp;dn=Concert</torrent:magnetURI>\n"
            "      <torrent:contentLength>734003200</torrent:contentLength>\n"
            "      <torrent:fileName>Concert live 2026.torrent</torrent:fileName>\n"
            "    </item>\n"
            "  </channel>\n"
            "</rss>\n");
}

TEST(Feed, OptionalParts) {
  FeedChannel c = channel();
  c.language.reset();
  const std::string empty = render_rss(c, {});
  EXPECT_EQ(empty.find("<language>"), std::string::npos);
  EXPECT_EQ(empty.find("<lastBuildDate>"), std::string::npos);
  EXPECT_EQ(empty.find("<item>"), std::string::npos);
  FeedItem old = item();
  old.pub_date = 0;
  old.torrent_file_name.clear();
  FeedItem newer = item();
  newer.pub_date = 1795428000 + 86400;
  const std::string two = render_rss(c, {old, newer});
  EXPECT_NE(two.find("<lastBuildDate>Tue, 24 Nov 2026 10:00:00 +0000</lastBuildDate>"),
            std::string::npos);
  EXPECT_LT(two.find("Thu, 01 Jan 1970"), two.find("Tue, 24 Nov 2026 10:00:00 +0000</pubDate>"));
  EXPECT_EQ(two.find("<torrent:fileName>"), two.rfind("<torrent:fileName>"));  // only the newer
}

// The checks run by python3-feedparser over the rendered document: well formed (bozo 0), RSS
// 2.0, and every field where a feed reader looks for it.
constexpr const char* kFeedparserCheck = R"PY(
import sys
try:
    import feedparser
except ImportError:
    sys.exit(77)
d = feedparser.parse(sys.argv[1])
assert d.bozo == 0, d.get('bozo_exception')
assert d.version == 'rss20', d.version
f = d.feed
assert f.title == "Evert & Co's <torrents>", f.title
assert f.link == 'https://example.org/', f.link
assert f.language == 'en', f.language
assert f.generator == 'Evertorrent', f.generator
assert {'href': 'https://example.org/feed.xml', 'rel': 'self',
        'type': 'application/rss+xml'} in f.links, f.links
assert tuple(f.updated_parsed)[:6] == (2026, 11, 23, 10, 0, 0), f.updated
assert len(d.entries) == 2, len(d.entries)
e = d.entries[0]
assert e.title == 'Concert "live" 2026', e.title
assert e.link == 'https://example.org/t/0123456789abcdef0123456789abcdef01234567', e.link
assert e.id == '0123456789abcdef0123456789abcdef01234567', e.id
assert e.guidislink is False
assert tuple(e.published_parsed)[:6] == (2026, 11, 23, 10, 0, 0), e.published
assert e.enclosures == [{'href': 'https://example.org/t/0123456789abcdef0123456789abcdef01234567.torrent',
                         'length': '12345', 'type': 'application/x-bittorrent'}], e.enclosures
assert e.torrent_infohash == '0123456789abcdef0123456789abcdef01234567'
assert e.torrent_magneturi == 'magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=Concert'
assert e.torrent_contentlength == '734003200'
assert e.torrent_filename == 'Concert live 2026.torrent'
hostile = d.entries[1]
assert hostile.title == 'ctrl & <tags> \ufffd', repr(hostile.title)
print('feedparser: ok')
)PY";

TEST(Feed, FeedparserReadsIt) {
  if (std::system("test -x /usr/bin/python3") != 0) GTEST_SKIP() << "no /usr/bin/python3";
  FeedItem hostile = item();
  hostile.title = std::string("ctrl\x01\x02 & <tags>\x0b \xff", 19);
  hostile.pub_date = 0;
  const std::string xml = render_rss(channel(), {item(), hostile});
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("evert_feed_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "feed.xml", std::ios::binary) << xml;
  std::ofstream(dir / "check.py") << kFeedparserCheck;
  const std::string cmd = "/usr/bin/python3 '" + (dir / "check.py").string() + "' '" +
                          (dir / "feed.xml").string() + "'";
  const int status = std::system(cmd.c_str());
  fs::remove_all(dir);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "python3-feedparser is not installed";
  EXPECT_EQ(WEXITSTATUS(status), 0) << xml;
}

}  // namespace
}  // namespace evert::web
