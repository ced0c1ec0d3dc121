// Consumer of a BPF ring buffer that never blocks the event loop.
//
// JS: new RingBufferReader(mapFd, onRecord)
//   A thread of its own calls ring_buffer__poll. Every record is copied and
//   handed to the JS thread through a thread-safe function, where onRecord
//   receives it as a Buffer. The queue is bounded: while it is full, the
//   thread leaves records in the kernel's ring, which counts those it has to
//   drop. stop() ends the thread and waits for it. Records already queued
//   are still delivered, on later turns of the event loop, and drained()
//   returns a promise that settles once they all were. ref()/unref() decide
//   whether a running reader keeps the process alive.
#pragma once

#include <napi.h>

#include <atomic>
#include <thread>

struct ring_buffer;

namespace sabpf {

class RingBufferReader : public Napi::ObjectWrap<RingBufferReader> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit RingBufferReader(const Napi::CallbackInfo& info);
  ~RingBufferReader() override;

 private:
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Drained(const Napi::CallbackInfo& info);

  // Poll thread: the only thread that touches rb_ while it runs.
  void Run();
  static int OnSample(void* ctx, void* data, size_t size);

  void StopThread();

  struct ring_buffer* rb_ = nullptr;
  Napi::ThreadSafeFunction tsfn_;
  Napi::Reference<Napi::Promise> drained_;  // settles once every queued record was delivered after stop()
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> records_{0};
  std::atomic<uint64_t> lost_{0};  // records the JS queue refused (full at stop, or closing)
  std::atomic<uint64_t> queue_full_waits_{0};  // waits of the poll thread for a full queue
  std::atomic<int> poll_error_{0};
  bool running_ = false;
};

}  // namespace sabpf
