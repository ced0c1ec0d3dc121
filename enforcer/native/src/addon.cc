// Entry point of the sabpf native addon: thin bindings over libbpf. The
// TypeScript module enforcer/kernel/ is the only caller, and it applies defaults
// and gives the functions their types (enforcer/kernel/addon.d.ts).
#include <bpf/libbpf.h>
#include <napi.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include "fds.h"
#include "lock.h"
#include "maps.h"
#include "object.h"
#include "ringbuf.h"
#include "sabpf.h"

namespace sabpf {

namespace {

// libbpf's messages (verifier logs on a failed load among them) go to
// stderr, debug lines only with SABPF_LIBBPF_DEBUG=1. May run on any thread
// that calls libbpf.
int PrintLibbpf(enum libbpf_print_level level, const char* format, va_list args) {
  static const bool debug = std::getenv("SABPF_LIBBPF_DEBUG") != nullptr;
  if (level == LIBBPF_DEBUG && !debug) return 0;
  return std::vfprintf(stderr, format, args);
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(PrintLibbpf);

  exports.Set("BpfObject", BpfObject::Define(env));
  exports.Set("RingBufferReader", RingBufferReader::Define(env));

  exports.Set("objGet", Napi::Function::New(env, ObjGet));
  exports.Set("objPin", Napi::Function::New(env, ObjPin));
  exports.Set("attachCgroupFd", Napi::Function::New(env, AttachCgroupFd));
  exports.Set("attachGlobalFd", Napi::Function::New(env, AttachGlobalFd));
  exports.Set("detachLink", Napi::Function::New(env, DetachLink));
  exports.Set("linkUpdate", Napi::Function::New(env, LinkUpdate));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("mapInfo", Napi::Function::New(env, MapInfo));
  exports.Set("progInfo", Napi::Function::New(env, ProgInfo));
  exports.Set("progExists", Napi::Function::New(env, ProgExists));
  exports.Set("linkInfo", Napi::Function::New(env, LinkInfo));
  exports.Set("possibleCpus", Napi::Function::New(env, PossibleCpus));
  exports.Set("lockFolder", Napi::Function::New(env, LockFolder));

  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate));
  exports.Set("mapUpdateBatch", Napi::Function::New(env, MapUpdateBatch));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete));
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup));
  exports.Set("mapKeys", Napi::Function::New(env, MapKeys));
  exports.Set("readPercpuU64", Napi::Function::New(env, ReadPercpuU64));

  // Sizes the TypeScript mirrors must match, straight from sabpf.h.
  Napi::Object sizes = Napi::Object::New(env);
  sizes.Set("config", sizeof(struct sabpf_config));
  sizes.Set("nodeKey", sizeof(struct sabpf_node_key));
  sizes.Set("node", sizeof(struct sabpf_node));
  sizes.Set("netKey", sizeof(struct sabpf_net_key));
  sizes.Set("portKey", sizeof(struct sabpf_port_key));
  sizes.Set("event", sizeof(struct sabpf_event));
  exports.Set("sizes", sizes);
  return exports;
}

}  // namespace sabpf

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return sabpf::Init(env, exports); }

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitAddon)
