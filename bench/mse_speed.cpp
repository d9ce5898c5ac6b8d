// MSE costs: RC4 throughput of both backends, the CPU time of a handshake on each side, and
// the memory a connection holds during and after it (heap measured with mallinfo2 over many
// objects, so OpenSSL's allocations count too). Times are this thread's CPU time, so a busy
// machine slows the run but changes the figures less.
#include <malloc.h>
#include <time.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "evert/mse.h"

using namespace evert::mse;
namespace {

double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double seconds_since(double t) {
  return cpu_now() - t;
}

size_t heap_in_use() {
  return mallinfo2().uordblks;
}

const Hash20 kSkey = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};

void rc4_speed(Rc4::Backend backend) {
  std::vector<char> buf(16 * 1024, 'x');
  Rc4 rc4(kSkey, kRc4Drop, backend);
  if (rc4.backend() != backend) {
    std::printf("rc4 %-8s unavailable\n",
                backend == Rc4::Backend::kOpenssl ? "openssl" : "builtin");
    return;
  }
  const size_t total = size_t{512} << 20;
  const auto t = cpu_now();
  for (size_t done = 0; done < total; done += buf.size())
    rc4.apply(buf.data(), buf.size());
  const double s = seconds_since(t);
  std::printf("rc4 %-8s %7.0f MB/s  (%.0f MiB/s)\n",
              backend == Rc4::Backend::kOpenssl ? "openssl" : "builtin", total / s / 1e6,
              total / s / (1 << 20));
}

void rc4_memory(Rc4::Backend backend) {
  constexpr int kN = 2000;
  std::vector<std::unique_ptr<Rc4>> v;
  v.reserve(kN);
  const size_t before = heap_in_use();
  for (int i = 0; i < kN; ++i)
    v.push_back(std::make_unique<Rc4>(kSkey, kRc4Drop, backend));
  std::printf("rc4 %-8s %5zu bytes per cipher (heap, with the object)\n",
              backend == Rc4::Backend::kOpenssl ? "openssl" : "builtin",
              (heap_in_use() - before) / kN);
}

Responder::FindSkey find() {
  return [](const Hash20& req2) -> std::optional<Hash20> {
    if (req2 == req2_hash(kSkey)) return kSkey;
    return std::nullopt;
  };
}

// Handshakes in memory; the time spent inside each side's calls.
void handshake_speed() {
  constexpr int kN = 2000;
  double a_s = 0;
  double b_s = 0;
  for (int i = 0; i < kN; ++i) {
    Initiator a(kSkey, kRc4 | kPlaintext, std::string(68, 'h'));
    Responder b(kRc4 | kPlaintext, true, find());
    std::string s1, s2, s3, s4, rest;
    auto t = cpu_now();
    a.start(s1);
    a_s += seconds_since(t);
    t = cpu_now();
    b.feed(s1, s2);
    b_s += seconds_since(t);
    t = cpu_now();
    a.feed(s2, s3);
    a_s += seconds_since(t);
    t = cpu_now();
    if (b.feed(s3, s4) != Step::kDone) std::printf("responder: %s\n", b.error().c_str());
    b_s += seconds_since(t);
    t = cpu_now();
    if (a.feed(s4, rest) != Step::kDone) std::printf("initiator: %s\n", a.error().c_str());
    a_s += seconds_since(t);
  }
  std::printf("handshake: responder %.0f us, initiator %.0f us of CPU each (%d handshakes)\n",
              b_s / kN * 1e6, a_s / kN * 1e6, kN);
}

// What a Responder holds: waiting for the req1 hash with a full window, and once done with its
// ciphers taken (what the glue keeps for the connection's life).
void responder_memory() {
  constexpr int kN = 1000;
  std::vector<std::unique_ptr<Initiator>> as;
  std::vector<std::unique_ptr<Responder>> bs;
  std::vector<std::string> s3s;
  std::vector<std::string> s1s;
  for (int i = 0; i < kN; ++i) {
    Options o;
    o.dh_pad = 0;
    as.push_back(std::make_unique<Initiator>(kSkey, kRc4, std::string(68, 'h'), o));
    s1s.emplace_back();
    as.back()->start(s1s.back());
  }
  size_t before = heap_in_use();
  std::vector<std::string> s2s(kN);
  for (int i = 0; i < kN; ++i) {
    bs.push_back(std::make_unique<Responder>(kRc4, true, find()));
    // Ya, then 511 bytes of PadA: the sync window nearly full.
    bs.back()->feed(s1s[i] + std::string(511, 'p'), s2s[i]);
  }
  const size_t during = heap_in_use() - before;
  s2s.clear();
  s2s.shrink_to_fit();
  bs.clear();
  std::printf("responder: sizeof %zu, %zu bytes per handshake waiting for HASH('req1', S)\n",
              sizeof(Responder), during / kN);
  as.clear();
  s1s.clear();
  std::vector<std::pair<std::unique_ptr<Rc4>, std::unique_ptr<Rc4>>> kept;
  kept.reserve(kN);
  before = heap_in_use();
  for (int i = 0; i < kN; ++i) {
    Initiator a(kSkey, kRc4, std::string(68, 'h'));
    Responder b(kRc4, true, find());
    std::string s1, s2, s3, s4;
    a.start(s1);
    b.feed(s1, s2);
    a.feed(s2, s3);
    b.feed(s3, s4);
    (void)b.take_payload();
    kept.emplace_back(b.take_encryptor(), b.take_decryptor());
  }
  std::printf("after the handshake: %zu bytes per RC4 connection (both ciphers kept)\n",
              (heap_in_use() - before) / kN);
}

}  // namespace

int main() {
  std::printf("OpenSSL legacy RC4: %s\n", Rc4::openssl_available() ? "loaded" : "absent");
  rc4_speed(Rc4::Backend::kOpenssl);
  rc4_speed(Rc4::Backend::kBuiltin);
  rc4_memory(Rc4::Backend::kOpenssl);
  rc4_memory(Rc4::Backend::kBuiltin);
  handshake_speed();
  responder_memory();
  return 0;
}
