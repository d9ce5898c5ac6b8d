#include "multipart.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace evert::web {
namespace {

using namespace std::string_literals;

// What the callbacks saw, for comparing a parse with another.
struct SeenPart {
  std::string name;
  std::optional<std::string> filename;
  std::string content_type;
  std::string data;
  size_t data_calls = 0;
  bool ended = false;
  friend bool operator==(const SeenPart&, const SeenPart&) = default;
};

struct Outcome {
  std::vector<SeenPart> parts;
  std::string error;  // empty: the feeds and finish() succeeded
};

bool same_parts(const std::vector<SeenPart>& a, const std::vector<SeenPart>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].filename != b[i].filename ||
        a[i].content_type != b[i].content_type || a[i].data != b[i].data ||
        a[i].ended != b[i].ended) {
      return false;
    }
  }
  return true;
}

MultipartCallbacks recorder(std::vector<SeenPart>& parts) {
  MultipartCallbacks cb;
  cb.on_part_begin = [&parts](const MultipartPart& p) -> Status {
    parts.push_back({p.name, p.filename, p.content_type, {}, 0, false});
    return Ok{};
  };
  cb.on_part_data = [&parts](std::string_view d) -> Status {
    EXPECT_FALSE(d.empty());
    EXPECT_FALSE(parts.empty());
    EXPECT_FALSE(parts.back().ended);
    parts.back().data.append(d);
    ++parts.back().data_calls;
    return Ok{};
  };
  cb.on_part_end = [&parts]() -> Status {
    EXPECT_FALSE(parts.back().ended);
    parts.back().ended = true;
    return Ok{};
  };
  return cb;
}

// Parses `body` fed in chunks of the sizes `chunk(i)` returns for the i-th chunk.
template <class ChunkSize>
Outcome parse_chunked(std::string_view body, const std::string& boundary, ChunkSize chunk,
                      MultipartLimits limits = {}) {
  Outcome out;
  MultipartParser parser(boundary, limits, recorder(out.parts));
  size_t i = 0;
  while (!body.empty()) {
    const size_t n = std::min(body.size(), std::max<size_t>(1, chunk(i++)));
    Status s = parser.feed(body.substr(0, n));
    body.remove_prefix(n);
    if (!s.ok()) {
      out.error = s.error().message;
      return out;
    }
  }
  Status s = parser.finish();
  if (!s.ok()) out.error = s.error().message;
  return out;
}

Outcome parse(std::string_view body, const std::string& boundary = "XyZ",
              MultipartLimits limits = {}) {
  return parse_chunked(
      body, boundary, [&](size_t) { return body.size(); }, limits);
}

// Checks that every way of cutting `body` gives the same parse as the whole body: 1-byte
// chunks, every two-way cut, and fixed chunk sizes.
void expect_chunking_invariant(std::string_view body, const std::string& boundary = "XyZ") {
  const Outcome whole = parse(body, boundary);
  const Outcome bytes = parse_chunked(body, boundary, [](size_t) { return 1; });
  EXPECT_TRUE(same_parts(whole.parts, bytes.parts));
  EXPECT_EQ(whole.error, bytes.error);
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    const Outcome two =
        parse_chunked(body, boundary, [cut](size_t i) { return i == 0 ? cut : SIZE_MAX; });
    EXPECT_TRUE(same_parts(whole.parts, two.parts)) << "cut at " << cut;
    EXPECT_EQ(whole.error, two.error) << "cut at " << cut;
  }
  for (size_t size : {2, 3, 5, 7, 13, 64}) {
    const Outcome o = parse_chunked(body, boundary, [size](size_t) { return size; });
    EXPECT_TRUE(same_parts(whole.parts, o.parts)) << "chunks of " << size;
    EXPECT_EQ(whole.error, o.error) << "chunks of " << size;
  }
}

// A body as Firefox sends it for a text field and a file, whose data holds near-delimiters.
const std::string kBrowserBoundary = std::string(27, '-') + "XyZ";
const std::string kFileData = "\r\n--\r\n"s + std::string(29, '-') + "Xy\r\r\n\r\n\0\xff"s;
const std::string kBrowserBody = "--" + kBrowserBoundary +
                                 "\r\n"
                                 "Content-Disposition: form-data; name=\"title\"\r\n"
                                 "\r\n"
                                 "My upload\r\n"
                                 "--" +
                                 kBrowserBoundary +
                                 "\r\n"
                                 "Content-Disposition: form-data; name=\"file\"; "
                                 "filename=\"a.bin\"\r\n"
                                 "Content-Type: application/octet-stream\r\n"
                                 "\r\n" +
                                 kFileData + "\r\n--" + kBrowserBoundary + "--\r\n";

TEST(MultipartBoundary, FromContentType) {
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(multipart_boundary("Multipart/Form-Data;BOUNDARY=abc"), "abc");
  EXPECT_EQ(multipart_boundary("multipart/form-data; charset=utf-8; boundary=\"a b:c\""), "a b:c");
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=\"abc\" ; x=y"), "abc");
  EXPECT_EQ(multipart_boundary("multipart/form-data ; boundary = abc "), "abc");
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk"),
            "----WebKitFormBoundary7MA4YWxk");
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary='()+_,-./:=?"), "'()+_,-./:=?");
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=" + std::string(70, 'a')),
            std::string(70, 'a'));
}

TEST(MultipartBoundary, Rejected) {
  for (const std::string& ct : std::vector<std::string>{
           "", "multipart/form-data",
           "multipart/form-data; boundary=", "multipart/form-data; boundary=\"\"",
           "multipart/mixed; boundary=abc", "application/x-www-form-urlencoded",
           "multipart/form-data; boundary=\"abc", "multipart/form-data; boundary=\"abc \"",
           "multipart/form-data; boundary=a@b", "multipart/form-data; boundary=\"a\\\"b\"",
           "multipart/form-data; boundary", "multipart/form-data; boundary=\"a\" junk",
           "multipart/form-data; boundary=" + std::string(71, 'a')}) {
    EXPECT_FALSE(multipart_boundary(ct)) << ct;
  }
}

TEST(MultipartParser, BrowserBody) {
  const Outcome o = parse(kBrowserBody, kBrowserBoundary);
  EXPECT_EQ(o.error, "");
  ASSERT_EQ(o.parts.size(), 2u);
  EXPECT_EQ(o.parts[0].name, "title");
  EXPECT_FALSE(o.parts[0].filename);
  EXPECT_EQ(o.parts[0].content_type, "");
  EXPECT_EQ(o.parts[0].data, "My upload");
  EXPECT_TRUE(o.parts[0].ended);
  EXPECT_EQ(o.parts[1].name, "file");
  EXPECT_EQ(o.parts[1].filename, "a.bin");
  EXPECT_EQ(o.parts[1].content_type, "application/octet-stream");
  EXPECT_EQ(o.parts[1].data, kFileData);
  EXPECT_TRUE(o.parts[1].ended);
  expect_chunking_invariant(kBrowserBody, kBrowserBoundary);
}

TEST(MultipartParser, PreambleEpilogueAndPadding) {
  const std::string body =
      "This is the preamble.\r\n-XyZ\r\n"
      "--XyZ \t\r\n"
      "content-disposition: FORM-DATA; NAME=a\r\n\r\n"
      "1\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=b\r\n\r\n"
      "\r\n"
      "--XyZ--  and the epilogue\r\n--XyZ\r\nignored";
  const Outcome o = parse(body);
  EXPECT_EQ(o.error, "");
  ASSERT_EQ(o.parts.size(), 2u);
  EXPECT_EQ(o.parts[0].name, "a");
  EXPECT_EQ(o.parts[0].data, "1");
  EXPECT_EQ(o.parts[1].name, "b");
  EXPECT_EQ(o.parts[1].data, "");  // an empty part gets no data call
  EXPECT_EQ(o.parts[1].data_calls, 0u);
  EXPECT_TRUE(o.parts[1].ended);
  expect_chunking_invariant(body);
}

TEST(MultipartParser, NoParts) {
  const Outcome o = parse("--XyZ--");
  EXPECT_EQ(o.error, "");
  EXPECT_TRUE(o.parts.empty());
}

TEST(MultipartParser, BoundaryLookalikesAreData) {
  const std::string body = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n" +
                           std::string("a--XyZ\rb\n--XyZ") + "\r\n--XyZ--";
  const Outcome o = parse(body);
  EXPECT_EQ(o.error, "");
  ASSERT_EQ(o.parts.size(), 1u);
  EXPECT_EQ(o.parts[0].data, "a--XyZ\rb\n--XyZ");
  expect_chunking_invariant(body);
  // A CR just before the delimiter belongs to the data.
  const Outcome cr =
      parse("--XyZ\r\nContent-Disposition: form-data; name=f\r\n\r\nab\r\r\n--XyZ--");
  ASSERT_EQ(cr.parts.size(), 1u);
  EXPECT_EQ(cr.parts[0].data, "ab\r");
}

TEST(MultipartParser, DispositionParameters) {
  auto one = [](std::string_view disposition) {
    const Outcome o =
        parse("--XyZ\r\nContent-Disposition: " + std::string(disposition) + "\r\n\r\nx\r\n--XyZ--");
    EXPECT_EQ(o.error, "") << disposition;
    return o.parts.empty() ? SeenPart{} : o.parts[0];
  };
  EXPECT_EQ(one("form-data; name=\"a\\\"b\"; filename=\"c\\\"d.txt\"").name, "a\"b");
  EXPECT_EQ(one("form-data; name=\"a\\\"b\"; filename=\"c\\\"d.txt\"").filename, "c\"d.txt");
  EXPECT_EQ(one("form-data; name=f; filename=\"back\\slash.txt\"").filename, "back\\slash.txt");
  EXPECT_EQ(one("form-data; name=f; filename=\"two\\\\.txt\"").filename, "two\\.txt");
  // The HTML standard's escapes of '"', CR and LF.
  EXPECT_EQ(one("form-data; name=\"q%22\"; filename=\"say %22hi%22%0A%0d.txt\"").filename,
            "say \"hi\"\n\r.txt");
  EXPECT_EQ(one("form-data; name=\"q%22\"").name, "q\"");
  EXPECT_EQ(one("form-data; name=f; filename=\"100%25.txt\"").filename, "100%25.txt");
  EXPECT_EQ(one("form-data; name=f; filename=\"\"").filename, "");
  EXPECT_EQ(one("form-data; name=f; filename=\"a;b=c.txt\"").filename, "a;b=c.txt");
  EXPECT_EQ(one("form-data; name=f; filename=plain.txt").filename, "plain.txt");
  EXPECT_EQ(one("form-data; name=f;; filename=x;").filename, "x");
  // RFC 8187 filename* wins over filename, when it is well formed.
  EXPECT_EQ(one("form-data; name=f; filename=\"EUR rates.txt\"; "
                "filename*=UTF-8''%e2%82%ac%20rates.txt")
                .filename,
            "\xe2\x82\xac rates.txt");
  EXPECT_EQ(one("form-data; name=f; filename*=utf-8'en'%C3%A9t%C3%A9").filename,
            "\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(one("form-data; name=f; filename*=iso-8859-1''%e9t%e9").filename, "\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(one("form-data; name=f; filename=\"fb\"; filename*=UTF-8''%ff").filename, "fb");
  EXPECT_EQ(one("form-data; name=f; filename=\"fb\"; filename*=UTF-8''%e2%8").filename, "fb");
  EXPECT_EQ(one("form-data; name=f; filename=\"fb\"; filename*=UTF-8''%zz").filename, "fb");
  EXPECT_EQ(one("form-data; name=f; filename=\"fb\"; filename*=koi8-r''abc").filename, "fb");
  EXPECT_EQ(one("form-data; name=f; filename=\"fb\"; filename*=nocharset").filename, "fb");
  EXPECT_EQ(one("form-data; name=f; filename=\"fb\"; filename*=UTF-8'x").filename, "fb");
  EXPECT_FALSE(one("form-data; name=f; filename*=UTF-8''%ff").filename);
  // Of repeated parameters the first counts.
  EXPECT_EQ(one("form-data; name=a; name=b").name, "a");
}

TEST(MultipartParser, HeadLines) {
  const Outcome o = parse(
      "--XyZ\r\n"
      "X-Other: 1\r\n"
      "Content-Type: text/plain;\r\n"
      "  charset=utf-8\r\n"
      "CONTENT-DISPOSITION:form-data;\r\n\tname=\"folded\"\r\n"
      "Content-Type: ignored/second\r\n"
      "\r\n"
      "v\r\n--XyZ--");
  EXPECT_EQ(o.error, "");
  ASSERT_EQ(o.parts.size(), 1u);
  EXPECT_EQ(o.parts[0].name, "folded");
  EXPECT_EQ(o.parts[0].content_type, "text/plain; charset=utf-8");
}

TEST(MultipartParser, MalformedHeads) {
  auto error = [](std::string_view head) {
    return parse("--XyZ\r\n" + std::string(head) + "\r\nv\r\n--XyZ--").error;
  };
  EXPECT_EQ(error(""), "multipart: part without a Content-Disposition");
  EXPECT_EQ(error("Content-Type: text/plain\r\n"), "multipart: part without a Content-Disposition");
  EXPECT_EQ(error("Content-Disposition: attachment; name=a\r\n"),
            "multipart: Content-Disposition is not form-data");
  EXPECT_EQ(error("Content-Disposition: form-data; filename=a\r\n"),
            "multipart: part without a name");
  EXPECT_EQ(error("Content-Disposition: form-data; name=\"a\r\n"),
            "multipart: malformed Content-Disposition");
  EXPECT_EQ(error("Content-Disposition: form-data; name\r\n"),
            "multipart: malformed Content-Disposition");
  EXPECT_EQ(error("Content-Disposition: form-data; =a\r\n"),
            "multipart: malformed Content-Disposition");
  EXPECT_EQ(error("Content-Disposition: form-data; name=\"a\"b\r\n"),
            "multipart: malformed Content-Disposition");
  EXPECT_EQ(error("no colon\r\n"), "multipart: malformed header line in a part head");
  EXPECT_EQ(error(": empty name\r\n"), "multipart: malformed header line in a part head");
  EXPECT_EQ(error("Bad Name: x\r\n"), "multipart: malformed header line in a part head");
  EXPECT_EQ(error(" folded first\r\n"), "multipart: malformed header line in a part head");
}

TEST(MultipartParser, PartsCountsOnlyBegunParts) {
  MultipartParser p("XyZ", {}, {});
  EXPECT_TRUE(p.feed("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--XyZ\r\n").ok());
  EXPECT_EQ(p.parts(), 1u);
  EXPECT_FALSE(p.feed("Content-Type: text/plain\r\n\r\n").ok());
  EXPECT_EQ(p.parts(), 1u);
}

TEST(MultipartParser, GarbageAfterBoundary) {
  const std::string head = "Content-Disposition: form-data; name=a\r\n\r\n";
  for (const std::string& body : std::vector<std::string>{
           "--XyZx\r\n", "--XyZ-x", "--XyZ \rx", "--XyZ\r\r\n", "--XyZ\r\n" + head + "\r\n--XyZz",
           "--XyZ\r\n" + head + "\r\n--XyZ- -"}) {
    const Outcome o = parse(body);
    EXPECT_EQ(o.error, "multipart: boundary not followed by CRLF or \"--\"") << body;
    expect_chunking_invariant(body);
  }
}

TEST(MultipartParser, EndsEarly) {
  const std::string head = "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n";
  EXPECT_EQ(parse("").error, "multipart: body ended before the first boundary");
  EXPECT_EQ(parse("preamble only\r\n--Xy").error,
            "multipart: body ended before the first boundary");
  for (const std::string& body :
       {std::string("--XyZ"), std::string("--XyZ-"), std::string("--XyZ\r\nContent-Disp"), head,
        head + "data", head + "data\r\n--XyZ", head + "data\r\n--XyZ\r\n"}) {
    EXPECT_EQ(parse(body).error, "multipart: body ended before the closing boundary") << body;
  }
  // The part cut short gets no on_part_end.
  const Outcome o = parse(head + "data\r\n--X");
  ASSERT_EQ(o.parts.size(), 1u);
  EXPECT_EQ(o.parts[0].data, "data");
  EXPECT_FALSE(o.parts[0].ended);
}

TEST(MultipartParser, HeadLimit) {
  const std::string start = "--XyZ\r\nContent-Disposition: form-data; name=a\r\nX: ";
  // The head, blank line included, may be 8 KiB, not a byte more.
  const size_t pad = 8192 - (start.size() - 7) - 4;
  const std::string fits = start + std::string(pad, 'p') + "\r\n\r\nv\r\n--XyZ--";
  EXPECT_EQ(parse(fits).error, "");
  const std::string over = start + std::string(pad + 1, 'p') + "\r\n\r\nv\r\n--XyZ--";
  EXPECT_EQ(parse(over).error, "multipart: part head longer than 8 KiB");
  EXPECT_EQ(parse_chunked(over, "XyZ", [](size_t) { return 1; }).error,
            "multipart: part head longer than 8 KiB");
  // A head that never ends fails as soon as it passes the limit.
  MultipartParser p("XyZ", {}, {});
  EXPECT_TRUE(p.feed("--XyZ\r\n").ok());
  EXPECT_TRUE(p.feed(std::string(8191, 'h')).ok());
  Status s = p.feed("hh");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "multipart: part head longer than 8 KiB");
  EXPECT_EQ(s.error().offset, 7u + 8192u);
  MultipartLimits small;
  small.max_head_bytes = 100;
  EXPECT_EQ(parse(over, "XyZ", small).error, "multipart: part head longer than 100 bytes");
}

TEST(MultipartParser, PartAndTotalHeadLimits) {
  std::string body;
  for (int i = 0; i < 3; ++i)
    body += "--XyZ\r\nContent-Disposition: form-data; name=n\r\n\r\nv\r\n";
  body += "--XyZ--";
  MultipartLimits two;
  two.max_parts = 2;
  const Outcome o = parse(body, "XyZ", two);
  EXPECT_EQ(o.error, "multipart: more than 2 parts");
  EXPECT_EQ(o.parts.size(), 2u);
  MultipartLimits three;
  three.max_parts = 3;
  EXPECT_EQ(parse(body, "XyZ", three).error, "");
  MultipartLimits heads;
  heads.max_total_head_bytes = 2 * 42;  // each head is 42 bytes
  EXPECT_EQ(parse(body, "XyZ", heads).error, "multipart: part heads longer than 84 bytes in total");
  heads.max_total_head_bytes = 3 * 42;
  EXPECT_EQ(parse(body, "XyZ", heads).error, "");
  MultipartLimits mib;
  mib.max_total_head_bytes = 1 << 20;
  mib.max_parts = 0;
  EXPECT_EQ(parse(body, "XyZ", mib).error, "multipart: more than 0 parts");
}

TEST(MultipartParser, StaysFailed) {
  int begins = 0;
  MultipartCallbacks cb;
  cb.on_part_begin = [&](const MultipartPart&) -> Status {
    ++begins;
    return Ok{};
  };
  MultipartParser p("XyZ", {}, cb);
  Status s = p.feed("--XyZ?");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().offset, 5u);
  Status again = p.feed("\r\nContent-Disposition: form-data; name=a\r\n\r\n");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message, s.error().message);
  EXPECT_EQ(begins, 0);
  ASSERT_FALSE(p.finish().ok());
  EXPECT_EQ(p.finish().error().message, s.error().message);
}

TEST(MultipartParser, CallbackErrorsStopTheParse) {
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=b\r\n\r\nvalue\r\n--XyZ--";
  for (int which = 0; which < 3; ++which) {
    int calls = 0;
    MultipartCallbacks cb;
    auto maybe_fail = [&](int me) -> Status {
      ++calls;
      if (me == which) return Error("receiver says no");
      return Ok{};
    };
    cb.on_part_begin = [&](const MultipartPart&) { return maybe_fail(0); };
    cb.on_part_data = [&](std::string_view) { return maybe_fail(1); };
    cb.on_part_end = [&]() { return maybe_fail(2); };
    MultipartParser p("XyZ", {}, cb);
    Status s = p.feed(body);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "receiver says no");
    EXPECT_EQ(calls, which + 1);
    EXPECT_EQ(p.feed("more").error().message, "receiver says no");
    EXPECT_EQ(calls, which + 1);
    EXPECT_FALSE(p.finish().ok());
  }
}

TEST(MultipartParser, EmptyCallbacksCarryOn) {
  MultipartParser p("XyZ", {}, {});
  EXPECT_TRUE(p.feed(kBrowserBody.substr(0, 0)).ok());
  MultipartParser q(kBrowserBoundary, {}, {});
  EXPECT_TRUE(q.feed(kBrowserBody).ok());
  EXPECT_TRUE(q.finish().ok());
  EXPECT_EQ(q.parts(), 2u);
}

TEST(MultipartParser, BigChunksAreNotCopied) {
  const std::string payload(1 << 20, 'x');
  const std::string head = "--XyZ\r\nContent-Disposition: form-data; name=f; filename=big\r\n\r\n";
  std::vector<std::string_view> views;
  MultipartCallbacks cb;
  cb.on_part_data = [&](std::string_view d) -> Status {
    views.push_back(d);
    return Ok{};
  };
  MultipartParser p("XyZ", {}, cb);
  ASSERT_TRUE(p.feed(head).ok());
  ASSERT_TRUE(p.feed(payload).ok());
  ASSERT_EQ(views.size(), 1u);
  EXPECT_EQ(views[0].data(), payload.data());
  EXPECT_EQ(views[0].size(), payload.size());
  // A chunk that ends in a possible delimiter start holds back only those bytes.
  views.clear();
  const std::string tail = payload + "\r\n--Xy";
  ASSERT_TRUE(p.feed(tail).ok());
  ASSERT_EQ(views.size(), 1u);
  EXPECT_EQ(views[0].data(), tail.data());
  EXPECT_EQ(views[0].size(), payload.size());
  views.clear();
  ASSERT_TRUE(p.feed("!" + payload).ok());  // not a delimiter after all
  ASSERT_EQ(views.size(), 2u);
  EXPECT_EQ(views[0], "\r\n--Xy");
  EXPECT_EQ(views[1].size(), payload.size() + 1);
  ASSERT_TRUE(p.feed("\r\n--XyZ--").ok());
  EXPECT_TRUE(p.finish().ok());
}

TEST(MultipartParser, RandomBodiesAndChunkings) {
  std::mt19937 rng(7);
  // Data drawn from an alphabet rich in delimiter pieces.
  const std::vector<std::string> pieces = {
      "\r",  "\n", "-", "--", "X", "Xy", "XyZ", "a", "\r\n--", "\r\n--Xy", std::string(1, '\0'),
      "\xff"};
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> datas;
    std::string body = round % 2 ? "preamble\r\n" : "";
    const int parts = static_cast<int>(rng() % 4);
    for (int i = 0; i < parts; ++i) {
      std::string d;
      const int n = static_cast<int>(rng() % 40);
      for (int k = 0; k < n; ++k)
        d += pieces[rng() % pieces.size()];
      // The data must not contain the delimiter itself.
      while (d.find("\r\n--XyZ") != std::string::npos)
        d.erase(d.find("\r\n--XyZ"), 1);
      if (!d.empty() && d.back() == '\r') d += 'a';
      datas.push_back(d);
      body += "--XyZ\r\nContent-Disposition: form-data; name=p" + std::to_string(i) + "\r\n\r\n" +
              d + "\r\n";
    }
    body += "--XyZ--\r\nepilogue";
    const Outcome whole = parse(body);
    ASSERT_EQ(whole.error, "") << round;
    ASSERT_EQ(whole.parts.size(), datas.size());
    for (size_t i = 0; i < datas.size(); ++i)
      EXPECT_EQ(whole.parts[i].data, datas[i]) << round;
    const Outcome random = parse_chunked(body, "XyZ", [&](size_t) { return rng() % 9; });
    EXPECT_TRUE(same_parts(whole.parts, random.parts)) << round;
    const Outcome bytes = parse_chunked(body, "XyZ", [](size_t) { return 1; });
    EXPECT_TRUE(same_parts(whole.parts, bytes.parts)) << round;
  }
}

}  // namespace
}  // namespace evert::web
