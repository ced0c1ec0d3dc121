// Advisory locks on folders. An enforcer holds one on its pin root and one on
// its audit folder for as long as it runs, so a second enforcer on the node
// cannot adopt the same links or interleave records into the same chain.
// flock(2) rather than a pid file: the kernel drops the lock when the holder
// dies, and it works across the pid namespaces of pods that mount one
// hostPath, where a pid in a file names nothing.
#pragma once

#include <napi.h>

namespace sabpf {

// lockFolder(path): fd of the folder with an exclusive flock held on it, or
// null when another open file holds one. Closing the fd (closeFd) releases
// it. Throws for any other failure, naming the folder.
Napi::Value LockFolder(const Napi::CallbackInfo& info);

}  // namespace sabpf
