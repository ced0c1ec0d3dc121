#include "lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "errors.h"

namespace sabpf {

Napi::Value LockFolder(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0, "path");
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) ThrowErrno(info.Env(), "open folder", path, errno);

  // Non-blocking: a start that waits for a running enforcer would look hung.
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return Napi::Number::New(info.Env(), fd);
  int err = errno;
  close(fd);
  if (err == EWOULDBLOCK) return info.Env().Null();
  ThrowErrno(info.Env(), "flock", path, err);
}

}  // namespace sabpf
