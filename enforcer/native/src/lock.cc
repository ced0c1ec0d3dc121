#include "lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "errors.h"

namespace sabpf {

namespace {

// A few tries are enough: each retry needs another process to remove and
// recreate the folder between this one's open and its flock.
constexpr int kAttempts = 3;

}  // namespace

Napi::Value LockFolder(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0, "path");
  for (int attempt = 0; attempt < kAttempts; attempt++) {
    int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) ThrowErrno(info.Env(), "open folder", path, errno);

    // Non-blocking: a start that waits for a running enforcer would look hung.
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      close(fd);
      if (err == EWOULDBLOCK) return info.Env().Null();
      ThrowErrno(info.Env(), "flock", path, err);
    }

    // The holder may have removed the folder (sabpf enforce --unload does)
    // after this open: a lock on the removed inode guards nothing, so lock
    // whatever the path names now.
    struct stat locked, named;
    if (fstat(fd, &locked) == 0 && stat(path.c_str(), &named) == 0 && locked.st_dev == named.st_dev &&
        locked.st_ino == named.st_ino) {
      return Napi::Number::New(info.Env(), fd);
    }
    close(fd);
  }
  ThrowErrno(info.Env(), "flock", path + " (the folder was replaced while it was locked)", EAGAIN);
}

}  // namespace sabpf
