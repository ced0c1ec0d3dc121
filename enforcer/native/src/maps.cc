#include "maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "errors.h"

namespace sabpf {

namespace {

struct MapShape {
  std::string name;
  uint32_t type;
  uint32_t key_size;
  uint32_t value_size;
};

MapShape Shape(Napi::Env env, int fd) {
  struct bpf_map_info mi;
  std::memset(&mi, 0, sizeof(mi));
  __u32 len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len)) ThrowErrno(env, "bpf_obj_get_info_by_fd", "map fd " + std::to_string(fd), errno);
  return {std::string(mi.name), mi.type, mi.key_size, mi.value_size};
}

std::string Describe(const MapShape& m) { return "map " + m.name; }

void CheckSize(Napi::Env env, const MapShape& m, const char* what, size_t got, size_t want) {
  if (got != want) {
    ThrowType(env, std::string("failed to use ") + what + " of " + std::to_string(got) + " bytes with " + Describe(m) +
                       ": the map's " + what + " size is " + std::to_string(want) +
                       " bytes; check compiler/layout.ts against enforcer/bpf/sabpf.h");
  }
}

}  // namespace

Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  auto key = BufferArg(info, 1, "key");
  auto value = BufferArg(info, 2, "value");
  uint32_t flags = Uint32Arg(info, 3, "flags");
  MapShape m = Shape(env, fd);
  CheckSize(env, m, "key", key.Length(), m.key_size);
  CheckSize(env, m, "value", value.Length(), m.value_size);
  if (bpf_map_update_elem(fd, key.Data(), value.Data(), flags)) ThrowErrno(env, "bpf_map_update_elem", Describe(m), errno);
  return env.Undefined();
}

Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  auto keys = BufferArg(info, 1, "keys");
  auto values = BufferArg(info, 2, "values");
  uint32_t count = Uint32Arg(info, 3, "count");
  uint32_t flags = Uint32Arg(info, 4, "flags");
  MapShape m = Shape(env, fd);
  CheckSize(env, m, "keys", keys.Length(), size_t(m.key_size) * count);
  CheckSize(env, m, "values", values.Length(), size_t(m.value_size) * count);
  if (count == 0) return Napi::Number::New(env, 0);

  // LPM tries and some kernels lack batch ops: fall back to one call per
  // element on EINVAL/ENOTSUPP so callers need not know which maps batch.
  LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = flags);
  __u32 n = count;
  if (bpf_map_update_batch(fd, keys.Data(), values.Data(), &n, &opts) == 0) return Napi::Number::New(env, n);
  int err = errno;
  if (err != EINVAL && err != ENOTSUP && err != 524 /* ENOTSUPP */) ThrowErrno(env, "bpf_map_update_batch", Describe(m), err);
  for (uint32_t i = 0; i < count; i++) {
    if (bpf_map_update_elem(fd, keys.Data() + size_t(i) * m.key_size, values.Data() + size_t(i) * m.value_size, flags)) {
      ThrowErrno(env, "bpf_map_update_elem", Describe(m) + " (element " + std::to_string(i) + " of a batch)", errno);
    }
  }
  return Napi::Number::New(env, count);
}

Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  auto key = BufferArg(info, 1, "key");
  MapShape m = Shape(env, fd);
  CheckSize(env, m, "key", key.Length(), m.key_size);
  if (bpf_map_delete_elem(fd, key.Data())) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    ThrowErrno(env, "bpf_map_delete_elem", Describe(m), errno);
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  auto key = BufferArg(info, 1, "key");
  MapShape m = Shape(env, fd);
  CheckSize(env, m, "key", key.Length(), m.key_size);
  // The Buffer is allocated by N-API and owned by JS from here on.
  auto value = Napi::Buffer<uint8_t>::New(env, m.value_size);
  if (bpf_map_lookup_elem(fd, key.Data(), value.Data())) {
    if (errno == ENOENT) return env.Null();
    ThrowErrno(env, "bpf_map_lookup_elem", Describe(m), errno);
  }
  return value;
}

Napi::Value MapKeys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  MapShape m = Shape(env, fd);
  std::vector<uint8_t> cur(m.key_size), next(m.key_size);
  Napi::Array out = Napi::Array::New(env);
  const void* prev = nullptr;  // NULL asks for the first key
  while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    out.Set(out.Length(), Napi::Buffer<uint8_t>::Copy(env, next.data(), next.size()));
    cur.swap(next);
    prev = cur.data();
  }
  if (errno != ENOENT) ThrowErrno(env, "bpf_map_get_next_key", Describe(m), errno);
  return out;
}

Napi::Value ReadPercpuU64(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  uint32_t index = Uint32Arg(info, 1, "index");
  MapShape m = Shape(env, fd);
  if (m.type != BPF_MAP_TYPE_PERCPU_ARRAY || m.value_size != sizeof(uint64_t) || m.key_size != sizeof(uint32_t)) {
    ThrowType(env, "failed to read per-CPU counters from " + Describe(m) + ": not a PERCPU_ARRAY of u64");
  }
  int cpus = libbpf_num_possible_cpus();
  if (cpus < 0) ThrowErrno(env, "libbpf_num_possible_cpus", "/sys/devices/system/cpu/possible", cpus);
  // The kernel writes one 8-byte-aligned value per possible CPU.
  std::vector<uint64_t> values(cpus);
  if (bpf_map_lookup_elem(fd, &index, values.data())) ThrowErrno(env, "bpf_map_lookup_elem", Describe(m) + " index " + std::to_string(index), errno);
  Napi::Array out = Napi::Array::New(env, cpus);
  for (int i = 0; i < cpus; i++) out.Set(i, Napi::BigInt::New(env, values[i]));
  return out;
}

}  // namespace sabpf
