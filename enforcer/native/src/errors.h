// JS errors for failed libbpf and bpf(2) calls. Every message reads
// "failed to <call> <what>: <strerror> (errno N)" so a log line names the
// call, the object it acted on and the kernel's reason.
#pragma once

#include <napi.h>

#include <string>

namespace sabpf {

// Throws a JS Error for a call that failed with errno err (positive or
// negative, as libbpf returns). Never returns.
[[noreturn]] void ThrowErrno(Napi::Env env, const std::string& call, const std::string& what, int err);

// Throws a JS TypeError for an argument of the wrong shape.
[[noreturn]] void ThrowType(Napi::Env env, const std::string& message);

// Argument readers: each throws a TypeError naming the argument on mismatch.
std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* name);
int IntArg(const Napi::CallbackInfo& info, size_t i, const char* name);
uint32_t Uint32Arg(const Napi::CallbackInfo& info, size_t i, const char* name);
Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t i, const char* name);

}  // namespace sabpf
