#include "fds.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "errors.h"

namespace sabpf {

Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0, "path");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(info.Env(), "bpf_obj_get", path, errno);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0, "fd");
  std::string path = StringArg(info, 1, "path");
  if (bpf_obj_pin(fd, path.c_str())) ThrowErrno(info.Env(), "bpf_obj_pin", "fd " + std::to_string(fd) + " at " + path, errno);
  return info.Env().Undefined();
}

Napi::Value AttachCgroupFd(const Napi::CallbackInfo& info) {
  int prog = IntArg(info, 0, "progFd");
  std::string cgroup = StringArg(info, 1, "cgroupPath");
  int cg = open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) ThrowErrno(info.Env(), "open cgroup", cgroup, errno);
  int link = bpf_link_create(prog, cg, BPF_LSM_CGROUP, nullptr);
  int err = errno;
  close(cg);
  if (link < 0) ThrowErrno(info.Env(), "bpf_link_create", "program fd " + std::to_string(prog) + " to " + cgroup, err);
  return Napi::Number::New(info.Env(), link);
}

Napi::Value AttachGlobalFd(const Napi::CallbackInfo& info) {
  int prog = IntArg(info, 0, "progFd");
  // The raw tracepoint open is how LSM programs attach on every kernel from
  // 5.7 on (libbpf's bpf_program__attach_lsm does the same).
  int link = bpf_raw_tracepoint_open(nullptr, prog);
  if (link < 0) ThrowErrno(info.Env(), "bpf_raw_tracepoint_open", "program fd " + std::to_string(prog), errno);
  return Napi::Number::New(info.Env(), link);
}

// Moves a link to another program in one step (BPF_LINK_UPDATE): the hook
// runs the old program or the new one, never neither.
Napi::Value LinkUpdate(const Napi::CallbackInfo& info) {
  int link = IntArg(info, 0, "linkFd");
  int prog = IntArg(info, 1, "progFd");
  if (bpf_link_update(link, prog, nullptr)) {
    ThrowErrno(info.Env(), "bpf_link_update", "link fd " + std::to_string(link) + " to program fd " + std::to_string(prog), errno);
  }
  return info.Env().Undefined();
}

Napi::Value DetachLink(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0, "linkFd");
  if (bpf_link_detach(fd)) ThrowErrno(info.Env(), "bpf_link_detach", "link fd " + std::to_string(fd), errno);
  return info.Env().Undefined();
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0, "fd");
  if (close(fd)) ThrowErrno(info.Env(), "close", "fd " + std::to_string(fd), errno);
  return info.Env().Undefined();
}

Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  struct bpf_map_info mi;
  std::memset(&mi, 0, sizeof(mi));
  __u32 len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len)) ThrowErrno(env, "bpf_obj_get_info_by_fd", "map fd " + std::to_string(fd), errno);
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", mi.id);
  out.Set("name", std::string(mi.name));
  out.Set("type", mi.type);
  out.Set("keySize", mi.key_size);
  out.Set("valueSize", mi.value_size);
  out.Set("maxEntries", mi.max_entries);
  out.Set("flags", mi.map_flags);
  return out;
}

Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  struct bpf_prog_info pi;
  std::memset(&pi, 0, sizeof(pi));
  __u32 len = sizeof(pi);
  if (bpf_obj_get_info_by_fd(fd, &pi, &len)) ThrowErrno(env, "bpf_obj_get_info_by_fd", "program fd " + std::to_string(fd), errno);
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", pi.id);
  out.Set("name", std::string(pi.name));
  out.Set("type", pi.type);
  // Instructions the verifier processed for this program (0 before 5.16),
  // against its limit of 1,000,000.
  out.Set("verifiedInsns", pi.verified_insns);
  return out;
}

Napi::Value ProgExists(const Napi::CallbackInfo& info) {
  int id = IntArg(info, 0, "id");
  int fd = bpf_prog_get_fd_by_id(static_cast<__u32>(id));
  if (fd >= 0) {
    close(fd);
    return Napi::Boolean::New(info.Env(), true);
  }
  if (errno != ENOENT) ThrowErrno(info.Env(), "bpf_prog_get_fd_by_id", "program id " + std::to_string(id), errno);
  return Napi::Boolean::New(info.Env(), false);
}

Napi::Value LinkInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  struct bpf_link_info li;
  std::memset(&li, 0, sizeof(li));
  __u32 len = sizeof(li);
  if (bpf_obj_get_info_by_fd(fd, &li, &len)) ThrowErrno(env, "bpf_obj_get_info_by_fd", "link fd " + std::to_string(fd), errno);
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", li.id);
  out.Set("type", li.type);
  out.Set("progId", li.prog_id);
  if (li.type == BPF_LINK_TYPE_CGROUP) {
    out.Set("cgroupId", Napi::BigInt::New(env, static_cast<uint64_t>(li.cgroup.cgroup_id)));
    out.Set("attachType", li.cgroup.attach_type);
  }
  return out;
}

Napi::Value PossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) ThrowErrno(info.Env(), "libbpf_num_possible_cpus", "/sys/devices/system/cpu/possible", n);
  return Napi::Number::New(info.Env(), n);
}

}  // namespace sabpf
