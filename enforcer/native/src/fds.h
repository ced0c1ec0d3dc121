// Functions on raw BPF fds: pins, attachments of already loaded programs,
// links. They let an enforcer that restarts adopt what the previous one
// pinned instead of loading the programs again. All run on the JS thread.
#pragma once

#include <napi.h>

namespace sabpf {

// objGet(path): fd of a pinned program, map or link (bpf_obj_get), owned by the caller.
Napi::Value ObjGet(const Napi::CallbackInfo& info);
// objPin(fd, path): pins fd at path in bpffs (bpf_obj_pin).
Napi::Value ObjPin(const Napi::CallbackInfo& info);
// attachCgroupFd(progFd, cgroupPath): link fd of a BPF_LSM_CGROUP attachment.
Napi::Value AttachCgroupFd(const Napi::CallbackInfo& info);
// attachGlobalFd(progFd): link fd of a BPF_LSM_MAC attachment.
Napi::Value AttachGlobalFd(const Napi::CallbackInfo& info);
// detachLink(linkFd): detaches even while pins hold the link (bpf_link_detach).
Napi::Value DetachLink(const Napi::CallbackInfo& info);
// linkUpdate(linkFd, progFd): moves a link to another program (BPF_LINK_UPDATE).
Napi::Value LinkUpdate(const Napi::CallbackInfo& info);
// closeFd(fd)
Napi::Value CloseFd(const Napi::CallbackInfo& info);
// mapInfo(fd): {id, name, type, keySize, valueSize, maxEntries, flags}
Napi::Value MapInfo(const Napi::CallbackInfo& info);
// progInfo(fd): {id, name, type}
Napi::Value ProgInfo(const Napi::CallbackInfo& info);
// progExists(id): whether a program with this id is still loaded (bpf_prog_get_fd_by_id).
Napi::Value ProgExists(const Napi::CallbackInfo& info);
// linkInfo(fd): {id, type, progId, cgroupId (cgroup links), attachType}
Napi::Value LinkInfo(const Napi::CallbackInfo& info);
// possibleCpus(): number of possible CPUs (the length of per-CPU values).
Napi::Value PossibleCpus(const Napi::CallbackInfo& info);

}  // namespace sabpf
