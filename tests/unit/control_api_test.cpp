#include "evert/daemon/control_api.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "evert/control_client.h"
#include "evert/daemon/event_loop.h"
#include "test_util.h"

namespace evert::daemon {
namespace {

ApiRequest request(std::string method, std::string path, std::string body = {}) {
  ApiRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.body = std::move(body);
  return r;
}

class ControlApiTest : public ::testing::Test {
 protected:
  ControlApiTest() {
    api_.route("GET", "/v1/echo", [](const ApiRequest&) {
      ApiResponse r;
      r.body = {{"ok", true}};
      return r;
    });
    api_.route("POST", "/v1/echo", [](const ApiRequest& r) {
      ApiResponse out;
      out.body = r.json;
      return out;
    });
    api_.route("POST", "/v1/boom",
               [](const ApiRequest&) -> ApiResponse { throw std::runtime_error("kaboom"); });
  }
  EventLoop loop_;
  ControlApi api_{loop_};
};

TEST_F(ControlApiTest, Routing) {
  auto ok = request("GET", "/v1/echo");
  EXPECT_EQ(api_.dispatch(ok).status, 200);
  auto missing = request("GET", "/v1/nothing");
  const ApiResponse nf = api_.dispatch(missing);
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(nf.body["error"]["code"], "not_found");
  auto wrong = request("DELETE", "/v1/echo");
  const ApiResponse na = api_.dispatch(wrong);
  EXPECT_EQ(na.status, 405);
  EXPECT_EQ(na.body["error"]["message"], "DELETE /v1/echo (allowed: GET, POST)");
}

TEST_F(ControlApiTest, JsonBodies) {
  auto good = request("POST", "/v1/echo", R"({"a":[1,2]})");
  EXPECT_EQ(api_.dispatch(good).body["a"][1], 2);
  auto bad = request("POST", "/v1/echo", "{nope");
  const ApiResponse r = api_.dispatch(bad);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["code"], "bad_json");
}

TEST_F(ControlApiTest, HandlerExceptionsBecome500) {
  auto boom = request("POST", "/v1/boom");
  const ApiResponse r = api_.dispatch(boom);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body["error"]["message"], "kaboom");
}

TEST_F(ControlApiTest, MutationsAreReported) {
  std::vector<std::string> seen;
  api_.on_mutation = [&](const ApiRequest& r) { seen.push_back(r.method + " " + r.path); };
  auto get = request("GET", "/v1/echo");
  auto post = request("POST", "/v1/echo", "{}");
  (void)api_.dispatch(get);
  (void)api_.dispatch(post);
  EXPECT_EQ(seen, std::vector<std::string>{"POST /v1/echo"});
}

// Over a real socket, with the blocking client evertctl uses, the loop on another thread.
TEST_F(ControlApiTest, OverARealUnixSocket) {
  test::TempDir d;
  ControlApi::Options o;
  o.socket_path = d / "run/api.sock";
  o.socket_mode = 0600;
  o.max_body = 1024;
  ASSERT_TRUE(api_.start(o).ok());
  std::thread loop([this] { loop_.run(); });

  auto status = control_request(o.socket_path, "GET", "/v1/echo");
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(status->status, 200);
  EXPECT_EQ(nlohmann::json::parse(status->body)["ok"], true);

  auto big = control_request(o.socket_path, "POST", "/v1/echo", std::string(2000, ' '));
  ASSERT_TRUE(big.ok()) << big.error().message;
  EXPECT_EQ(big->status, 413);

  auto within = control_request(o.socket_path, "POST", "/v1/echo", R"({"x":1})");
  ASSERT_TRUE(within.ok());
  EXPECT_EQ(nlohmann::json::parse(within->body)["x"], 1);

  loop_.post([this] {
    api_.stop();
    loop_.stop();
  });
  loop.join();
  EXPECT_FALSE(std::filesystem::exists(o.socket_path));  // removed at stop
  auto gone = control_request(o.socket_path, "GET", "/v1/echo");
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.error().message.find("evertd is not running"), std::string::npos);
}

TEST_F(ControlApiTest, RefusesALiveSocketAndReplacesAStaleOne) {
  test::TempDir d;
  ControlApi::Options o;
  o.socket_path = d / "api.sock";
  o.socket_group = "";
  ASSERT_TRUE(api_.start(o).ok());
  EventLoop other_loop;
  ControlApi other(other_loop);
  auto r = other.start(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("another evertd is already listening"), std::string::npos);
  api_.stop();
  test::write_file(d / "plain", "x");
  o.socket_path = d / "plain";
  EXPECT_NE(other.start(o).error().message.find("is not a socket"), std::string::npos);
}

}  // namespace
}  // namespace evert::daemon
