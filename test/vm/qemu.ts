// The QEMU command line of a test VM. The guest side of this contract is
// init.sh: the 9p tags "run" and "share" and the sabpf.share= parameter.
import type { VmImages } from './images.js';

export interface QemuConfig {
  images: VmImages;
  /** Host directory shared read-write as tag "run" (script, exit code, out/). */
  runDir: string;
  /** Host directory shared read-only as tag "share" and mounted at the same path. */
  shareDir: string;
  memoryMb: number;
  cpus: number;
}

// The LSM list is pinned rather than left to the kernel's default so that
// AppArmor or another major LSM never decides an access a test attributes to
// the BPF programs, and so that "bpf" is enabled whatever the build defaults.
// panic=-1 turns a guest panic into a reboot, and -no-reboot turns that into
// a QEMU exit, so a crashed guest ends the run instead of waiting for the
// timeout.
const kernelParams = ['console=ttyS0', 'lsm=lockdown,capability,bpf', 'panic=-1', 'loglevel=4'];

export function qemuArgs(config: QemuConfig): string[] {
  const append = [...kernelParams, `sabpf.share=${config.shareDir}`].join(' ');
  return [
    // Guest kernels hang under KVM on this kind of host, so TCG it is. In one
    // measurement q35 booted about half a second faster than the default i440fx.
    '-machine',
    'q35',
    '-accel',
    'tcg',
    '-cpu',
    'max',
    '-m',
    String(config.memoryMb),
    '-smp',
    String(config.cpus),
    '-nographic',
    '-no-reboot',
    // Loopback only: the guest gets no network device at all.
    '-nic',
    'none',
    '-kernel',
    config.images.kernel,
    '-initrd',
    config.images.initramfs,
    '-append',
    append,
    '-virtfs',
    `local,path=${config.runDir},mount_tag=run,security_model=none,id=run`,
    '-virtfs',
    `local,path=${config.shareDir},mount_tag=share,security_model=none,readonly=on,id=share`,
  ];
}
