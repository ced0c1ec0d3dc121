// Loader for the harness smoke-test program (secret.bpf.c).
//
//   probe-loader attach OBJECT CGROUP_DIR PIN_DIR
//       load OBJECT, attach its lsm_cgroup/file_open program to CGROUP_DIR and
//       pin the link (PIN_DIR/link) and the counter map (PIN_DIR/denials).
//       The pinned link keeps the program attached after this process exits,
//       and rm PIN_DIR/link detaches it.
//   probe-loader count PIN_DIR
//       print how many opens the program has denied.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *action, const char *subject, int err)
{
  fprintf(stderr, "failed to %s %s: %s\n", action, subject, strerror(err < 0 ? -err : err));
  return 1;
}

static int attach(const char *object_path, const char *cgroup_dir, const char *pin_dir)
{
  char path[4096];
  struct bpf_object *obj = bpf_object__open_file(object_path, NULL);
  if (!obj) {
    return fail("open BPF object", object_path, errno);
  }

  int err = bpf_object__load(obj);
  if (err) {
    return fail("load BPF object (see the verifier log above)", object_path, err);
  }

  struct bpf_program *prog = bpf_object__find_program_by_name(obj, "deny_secret_open");
  if (!prog) {
    return fail("find program deny_secret_open in", object_path, ENOENT);
  }

  int cgroup_fd = open(cgroup_dir, O_RDONLY | O_DIRECTORY);
  if (cgroup_fd < 0) {
    return fail("open cgroup directory", cgroup_dir, errno);
  }

  struct bpf_link *link = bpf_program__attach_cgroup(prog, cgroup_fd);
  if (!link) {
    return fail("attach lsm_cgroup/file_open to", cgroup_dir, errno);
  }

  snprintf(path, sizeof(path), "%s/link", pin_dir);
  err = bpf_link__pin(link, path);
  if (err) {
    return fail("pin BPF link at", path, err);
  }

  struct bpf_map *map = bpf_object__find_map_by_name(obj, "denials");
  snprintf(path, sizeof(path), "%s/denials", pin_dir);
  err = map ? bpf_map__pin(map, path) : -ENOENT;
  if (err) {
    return fail("pin map denials at", path, err);
  }

  printf("attached deny_secret_open to %s\n", cgroup_dir);
  return 0;
}

static int count(const char *pin_dir)
{
  char path[4096];
  snprintf(path, sizeof(path), "%s/denials", pin_dir);

  int fd = bpf_obj_get(path);
  if (fd < 0) {
    return fail("open pinned map", path, errno);
  }

  __u32 key = 0;
  __u64 value = 0;
  if (bpf_map_lookup_elem(fd, &key, &value)) {
    return fail("read map", path, errno);
  }
  printf("%llu\n", (unsigned long long)value);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc == 5 && strcmp(argv[1], "attach") == 0) {
    return attach(argv[2], argv[3], argv[4]);
  }
  if (argc == 3 && strcmp(argv[1], "count") == 0) {
    return count(argv[2]);
  }
  fprintf(stderr, "usage: %s attach OBJECT CGROUP_DIR PIN_DIR | count PIN_DIR\n", argv[0]);
  return 2;
}
