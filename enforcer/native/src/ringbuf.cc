#include "ringbuf.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "errors.h"

namespace sabpf {

namespace {

// How long one ring_buffer__poll waits: the worst-case delay of stop().
constexpr int kPollTimeoutMs = 100;

using Record = std::vector<uint8_t>;

// Runs on the JS thread. Takes ownership of record (allocated by OnSample)
// and frees it whether or not JS still exists.
void DeliverRecord(Napi::Env env, Napi::Function on_record, Record* record) {
  if (env != nullptr && on_record != nullptr) {
    // Copy into a JS-owned Buffer so the record's lifetime ends here.
    auto buffer = Napi::Buffer<uint8_t>::Copy(env, record->data(), record->size());
    delete record;
    on_record.Call({buffer});
    return;
  }
  delete record;
}

}  // namespace

Napi::Function RingBufferReader::Define(Napi::Env env) {
  return DefineClass(env, "RingBufferReader",
                     {
                         InstanceMethod("stop", &RingBufferReader::Stop),
                         InstanceMethod("ref", &RingBufferReader::Ref),
                         InstanceMethod("unref", &RingBufferReader::Unref),
                         InstanceMethod("stats", &RingBufferReader::Stats),
                     });
}

// Runs on the JS thread.
RingBufferReader::RingBufferReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingBufferReader>(info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "mapFd");
  if (info.Length() < 2 || !info[1].IsFunction()) ThrowType(env, "onRecord must be a function");

  rb_ = ring_buffer__new(fd, &RingBufferReader::OnSample, this, nullptr);
  if (!rb_) ThrowErrno(env, "ring_buffer__new", "map fd " + std::to_string(fd), errno);

  // Unbounded queue: the poll thread never waits for JS. Memory grows only
  // while JS is slower than the kernel, and the kernel side drops (and
  // counts) records once the ring itself is full.
  tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "sabpf ring buffer", 0, 1);
  running_ = true;
  thread_ = std::thread(&RingBufferReader::Run, this);
}

RingBufferReader::~RingBufferReader() {
  // Runs on the JS thread when the wrapper is collected.
  StopThread();
}

// Runs on the poll thread.
void RingBufferReader::Run() {
  while (!stopping_.load()) {
    int n = ring_buffer__poll(rb_, kPollTimeoutMs);
    if (n < 0 && n != -EINTR) {
      poll_error_.store(-n);
      break;
    }
  }
}

// Runs on the poll thread, inside ring_buffer__poll. data is valid only
// during this call, so it is copied, and DeliverRecord frees the copy.
int RingBufferReader::OnSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingBufferReader*>(ctx);
  auto* record = new Record(static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  napi_status status = self->tsfn_.NonBlockingCall(record, DeliverRecord);
  if (status != napi_ok) {
    delete record;
    self->lost_.fetch_add(1);
  } else {
    self->records_.fetch_add(1);
  }
  return 0;
}

// Runs on the JS thread.
void RingBufferReader::StopThread() {
  if (!running_) return;
  running_ = false;
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
  ring_buffer__free(rb_);
  rb_ = nullptr;
  // Queued records are still delivered before the function is finalized.
  tsfn_.Release();
}

Napi::Value RingBufferReader::Stop(const Napi::CallbackInfo& info) {
  StopThread();
  int err = poll_error_.load();
  if (err) ThrowErrno(info.Env(), "ring_buffer__poll", "sabpf ring buffer", err);
  return info.Env().Undefined();
}

Napi::Value RingBufferReader::Ref(const Napi::CallbackInfo& info) {
  if (running_) tsfn_.Ref(info.Env());
  return info.Env().Undefined();
}

Napi::Value RingBufferReader::Unref(const Napi::CallbackInfo& info) {
  if (running_) tsfn_.Unref(info.Env());
  return info.Env().Undefined();
}

Napi::Value RingBufferReader::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("records", Napi::BigInt::New(env, records_.load()));
  out.Set("lost", Napi::BigInt::New(env, lost_.load()));
  out.Set("pollError", poll_error_.load());
  out.Set("running", running_);
  return out;
}

}  // namespace sabpf
