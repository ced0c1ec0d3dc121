#include "object.h"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "errors.h"

namespace sabpf {

Napi::Function BpfObject::Define(Napi::Env env) {
  return DefineClass(env, "BpfObject",
                     {
                         InstanceMethod("programs", &BpfObject::Programs),
                         InstanceMethod("maps", &BpfObject::Maps),
                         InstanceMethod("attachCgroup", &BpfObject::AttachCgroup),
                         InstanceMethod("attachGlobal", &BpfObject::AttachGlobal),
                         InstanceMethod("close", &BpfObject::Close),
                     });
}

BpfObject::BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
  Napi::Env env = info.Env();
  path_ = StringArg(info, 0, "path");
  std::string pin_dir = StringArg(info, 1, "pinMapsDir");
  if (info.Length() < 3 || !info[2].IsObject()) ThrowType(env, "mapEntries must be an object");
  Napi::Object entries = info[2].As<Napi::Object>();

  // Open: parse the ELF and BTF. Maps marked LIBBPF_PIN_BY_NAME resolve under pin_dir.
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir.c_str());
  struct bpf_object* obj = bpf_object__open_file(path_.c_str(), &opts);
  if (!obj) ThrowErrno(env, "bpf_object__open_file", path_, errno);

  // Resize maps before load, because max_entries is fixed once a map exists.
  Napi::Array names = entries.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); i++) {
    std::string name = names.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value value = entries.Get(name);
    if (!value.IsNumber()) {
      bpf_object__close(obj);
      ThrowType(env, "mapEntries." + name + " must be a number");
    }
    struct bpf_map* map = bpf_object__find_map_by_name(obj, name.c_str());
    if (!map) {
      bpf_object__close(obj);
      ThrowErrno(env, "bpf_object__find_map_by_name", name + " in " + path_, ENOENT);
    }
    int err = bpf_map__set_max_entries(map, value.As<Napi::Number>().Uint32Value());
    if (err) {
      bpf_object__close(obj);
      ThrowErrno(env, "bpf_map__set_max_entries", name, err);
    }
  }

  // Load: create or reuse maps, relocate (CO-RE) and verify every program.
  int err = bpf_object__load(obj);
  if (err) {
    bpf_object__close(obj);
    ThrowErrno(env, "bpf_object__load", path_, err);
  }
  obj_ = obj;
}

BpfObject::~BpfObject() {
  // Runs on the JS thread when the wrapper is garbage collected.
  if (obj_) bpf_object__close(obj_);
}

static void CheckOpen(Napi::Env env, struct bpf_object* obj, const std::string& path) {
  if (!obj) ThrowErrno(env, "use closed bpf_object", path, EBADF);
}

Napi::Value BpfObject::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, obj_, path_);
  Napi::Object out = Napi::Object::New(env);
  struct bpf_program* prog;
  bpf_object__for_each_program(prog, obj_) {
    out.Set(bpf_program__name(prog), Napi::Number::New(env, bpf_program__fd(prog)));
  }
  return out;
}

Napi::Value BpfObject::Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, obj_, path_);
  Napi::Object out = Napi::Object::New(env);
  struct bpf_map* map;
  bpf_object__for_each_map(map, obj_) {
    out.Set(bpf_map__name(map), Napi::Number::New(env, bpf_map__fd(map)));
  }
  return out;
}

struct bpf_program* BpfObject::Program(Napi::Env env, const std::string& name) {
  CheckOpen(env, obj_, path_);
  struct bpf_program* prog = bpf_object__find_program_by_name(obj_, name.c_str());
  if (!prog) ThrowErrno(env, "bpf_object__find_program_by_name", name + " in " + path_, ENOENT);
  return prog;
}

// A struct bpf_link owns its fd and detaches on destroy. Disconnecting it
// first makes destroy free only the struct and leave the fd open, so the
// caller takes over the fd: the attachment lives exactly as long as that fd
// (or a pin of the link).
static int TakeLinkFd(struct bpf_link* link) {
  int fd = bpf_link__fd(link);
  bpf_link__disconnect(link);
  bpf_link__destroy(link);
  return fd;
}

Napi::Value BpfObject::AttachCgroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, 0, "program");
  std::string cgroup = StringArg(info, 1, "cgroupPath");
  struct bpf_program* prog = Program(env, name);

  int cg = open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) ThrowErrno(env, "open cgroup", cgroup, errno);
  struct bpf_link* link = bpf_program__attach_cgroup(prog, cg);
  int err = errno;
  close(cg);
  if (!link) ThrowErrno(env, "bpf_program__attach_cgroup", name + " to " + cgroup, err);
  return Napi::Number::New(env, TakeLinkFd(link));
}

Napi::Value BpfObject::AttachGlobal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, 0, "program");
  struct bpf_program* prog = Program(env, name);
  struct bpf_link* link = bpf_program__attach_lsm(prog);
  if (!link) ThrowErrno(env, "bpf_program__attach_lsm", name, errno);
  return Napi::Number::New(env, TakeLinkFd(link));
}

Napi::Value BpfObject::Close(const Napi::CallbackInfo& info) {
  if (obj_) bpf_object__close(obj_);
  obj_ = nullptr;
  return info.Env().Undefined();
}

}  // namespace sabpf
