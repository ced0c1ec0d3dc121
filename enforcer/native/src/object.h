// A loaded BPF object file (struct bpf_object) as a JS object.
#pragma once

#include <napi.h>

struct bpf_object;
struct bpf_program;

namespace sabpf {

// JS: new BpfObject(path, pinMapsDir, mapEntries)
// Opens and loads the ELF at path. Maps the object marks for pinning reuse
// the pins under pinMapsDir when they exist and are pinned there otherwise
// (libbpf pin_root_path). mapEntries ({name: max_entries}) resizes maps
// before load. All methods run on the JS thread.
class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit BpfObject(const Napi::CallbackInfo& info);
  ~BpfObject() override;

 private:
  // programs() and maps() return {name: fd}. The fds belong to the object:
  // they stay valid until close() and must not be closed by the caller.
  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value Maps(const Napi::CallbackInfo& info);
  // attachCgroup(program, cgroupPath): new link fd, owned by the caller.
  Napi::Value AttachCgroup(const Napi::CallbackInfo& info);
  // attachGlobal(program): new link fd of a BPF_LSM_MAC attachment.
  Napi::Value AttachGlobal(const Napi::CallbackInfo& info);
  // close() frees the object. Links created from it keep their programs.
  Napi::Value Close(const Napi::CallbackInfo& info);

  struct bpf_program* Program(Napi::Env env, const std::string& name);

  struct bpf_object* obj_ = nullptr;
  std::string path_;
};

}  // namespace sabpf
