#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <thread>

#include "pxe/event_loop.h"

using namespace kiln;
using namespace kiln::pxe;
using namespace std::chrono_literals;

TEST_CASE("timers fire in deadline order and cancelled ones never fire") {
  auto loop = *EventLoop::Create();
  std::vector<int> order;
  auto now = EventLoop::Clock::now();
  loop->AddTimer(now + 30ms, [&] { order.push_back(3); loop->Stop(); });
  loop->AddTimer(now + 10ms, [&] { order.push_back(1); });
  auto id = loop->AddTimer(now + 20ms, [&] { order.push_back(99); });
  loop->AddTimer(now + 20ms, [&] { order.push_back(2); });
  loop->CancelTimer(id);
  loop->Run();
  CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("fd callbacks run on readiness and may unwatch themselves, Post wakes the loop") {
  auto loop = *EventLoop::Create();
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv) == 0);
  UniqueFd a(sv[0]), b(sv[1]);
  int calls = 0;
  REQUIRE(loop->Watch(b.get(), EPOLLIN, [&](uint32_t) {
    char buf[8];
    while (::recv(b.get(), buf, sizeof buf, 0) > 0) ++calls;
    loop->Unwatch(b.get());
    loop->Stop();
  }).ok());
  std::thread t([&] { loop->Run(); });
  loop->Post([&] { REQUIRE(::send(a.get(), "x", 1, 0) == 1); });
  t.join();
  CHECK(calls == 1);
}

TEST_CASE("Stop before Run returns at once") {
  auto loop = *EventLoop::Create();
  loop->Stop();
  loop->Run();
  SUCCEED();
}
