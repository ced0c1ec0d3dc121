#include "ringbuf.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <vector>

#include "errors.h"

namespace sabpf {

namespace {

// How long one ring_buffer__poll waits: the worst-case delay of stop().
constexpr int kPollTimeoutMs = 100;

// Records waiting for the JS thread, at most. A record is up to about 8 KiB,
// so the queue takes at most about 8 MiB. When it is full, the poll thread
// waits and leaves the rest in the kernel's ring, which then drops and
// counts what does not fit (eventsDropped). A queue without a bound grew
// to 1.7 GB in a VM test that kept the JS thread busy while a container
// was denied in a loop, and the kernel OOM-killed the reader.
constexpr size_t kMaxQueuedRecords = 1024;

// How long the poll thread sleeps before it offers a record to a full queue again.
constexpr auto kQueueFullWait = std::chrono::milliseconds(1);

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
                         InstanceMethod("drained", &RingBufferReader::Drained),
                     });
}

// Runs on the JS thread.
RingBufferReader::RingBufferReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingBufferReader>(info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "mapFd");
  if (info.Length() < 2 || !info[1].IsFunction()) ThrowType(env, "onRecord must be a function");

  rb_ = ring_buffer__new(fd, &RingBufferReader::OnSample, this, nullptr);
  if (!rb_) ThrowErrno(env, "ring_buffer__new", "map fd " + std::to_string(fd), errno);

  // A bounded queue (see kMaxQueuedRecords): the JS thread is never
  // blocked, and a reader slower than the kernel loses records only where
  // the kernel counts them.
  // The finalizer runs once stop() released the function and every queued
  // record was delivered: it settles the promise drained() returns.
  auto* drained = new Napi::Promise::Deferred(env);
  drained_ = Napi::Persistent(drained->Promise());
  tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "sabpf ring buffer", kMaxQueuedRecords, 1,
                                        [](Napi::Env finalize_env, Napi::Promise::Deferred* deferred) {
                                          deferred->Resolve(finalize_env.Undefined());
                                          delete deferred;
                                        },
                                        drained);
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
    // -ECANCELED: OnSample ended the poll because stop() was called.
    if (n < 0 && n != -EINTR && n != -ECANCELED) {
      poll_error_.store(-n);
      break;
    }
  }
}

// Runs on the poll thread, inside ring_buffer__poll. data is valid only
// during this call, so it is copied, and DeliverRecord frees the copy.
// While the queue is full this call waits, so the record and those behind
// it stay in the kernel's ring. It does not use BlockingCall, which would
// never return if stop(), on the JS thread, waited for this thread. Once
// stop() is called it returns an error, which ends the poll with the rest
// left in the ring for the next reader of the pinned map. libbpf consumes
// the record in hand either way: when the queue refuses it, it is counted
// in lost_, which the enforcer reports as dropped.
int RingBufferReader::OnSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingBufferReader*>(ctx);
  auto* record = new Record(static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  napi_status status = self->tsfn_.NonBlockingCall(record, DeliverRecord);
  while (status == napi_queue_full && !self->stopping_.load()) {
    self->queue_full_waits_.fetch_add(1);
    std::this_thread::sleep_for(kQueueFullWait);
    status = self->tsfn_.NonBlockingCall(record, DeliverRecord);
  }
  if (status != napi_ok) {
    delete record;
    self->lost_.fetch_add(1);
  } else {
    self->records_.fetch_add(1);
  }
  return self->stopping_.load() ? -ECANCELED : 0;
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

Napi::Value RingBufferReader::Drained(const Napi::CallbackInfo& info) { return drained_.Value(); }

Napi::Value RingBufferReader::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("records", Napi::BigInt::New(env, records_.load()));
  out.Set("lost", Napi::BigInt::New(env, lost_.load()));
  out.Set("queueFullWaits", Napi::BigInt::New(env, queue_full_waits_.load()));
  out.Set("pollError", poll_error_.load());
  out.Set("running", running_);
  return out;
}

}  // namespace sabpf
