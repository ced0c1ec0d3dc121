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
  /** Opt-in network; without it the guest has no network device. */
  network?: VmNetwork;
  /** Opt-in instruction counting: guest time advances one nanosecond per guest instruction. */
  icount?: boolean;
  /** Opt-in single host thread for all vCPUs (-accel tcg,thread=single), see tcgAccel. */
  singleThread?: boolean;
  /** Kernel parameters added after the fixed ones, such as preempt=full. */
  kernelParams?: string[];
}

/**
 * The one path out of the guest: TCP to 10.0.2.100:6443 inside the guest
 * reaches 127.0.0.1:apiServerPort on the host, and nothing else does.
 */
export interface VmNetwork {
  apiServerPort: number;
}

/** Guest-side address and port of the API server forward; the serving certificate needs this IP as a SAN. */
export const GUEST_API_SERVER_ADDRESS = '10.0.2.100';
export const GUEST_API_SERVER_PORT = 6443;

// The LSM list is pinned rather than left to the kernel's default so that
// AppArmor or another major LSM never decides an access a test attributes to
// the BPF programs, and so that "bpf" is enabled whatever the build defaults.
// panic=-1 turns a guest panic into a reboot, and -no-reboot turns that into
// a QEMU exit, so a crashed guest ends the run instead of waiting for the
// timeout. softlockup_panic=1 makes a soft lockup such a panic: the run ends
// within a minute of the lockup, and the panic prints the stuck CPU's stack,
// which loglevel=4 would otherwise hide.
const kernelParams = ['console=ttyS0', 'lsm=lockdown,capability,bpf', 'panic=-1', 'softlockup_panic=1', 'loglevel=4'];

export function qemuArgs(config: QemuConfig): string[] {
  if (config.icount === true && config.cpus !== 1) {
    // Seen with Debian's 6.1 kernel and QEMU 7.2: the boot stops at
    // "Booting SMP configuration" under -icount with two vCPUs.
    throw new Error(`failed to configure the VM: icount needs 1 vCPU, got ${config.cpus}; drop --cpus or pass --cpus 1`);
  }
  for (const param of config.kernelParams ?? []) {
    if (!/^[A-Za-z0-9._,=-]+$/u.test(param)) {
      throw new Error(
        `failed to configure the VM: kernel parameter ${JSON.stringify(param)} has characters the command line cannot carry; use only letters, digits and . _ , = -`,
      );
    }
  }
  const append = [...kernelParams, ...(config.kernelParams ?? []), `sabpf.share=${config.shareDir}`].join(' ');
  return [
    // KVM on this kind of host does not run guests natively (test/vm/README.md
    // has what was tried), so TCG it is. In one measurement q35 booted about
    // half a second faster than the default i440fx.
    '-machine',
    'q35',
    '-accel',
    tcgAccel(config.singleThread === true),
    ...icountArgs(config.icount === true),
    '-cpu',
    'max',
    '-m',
    String(config.memoryMb),
    '-smp',
    String(config.cpus),
    '-nographic',
    '-no-reboot',
    ...networkArgs(config.network),
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

// QEMU user networking with restrict=on drops every packet the guest sends
// except to a guestfwd address, so the forward below is the guest's only
// destination. Each guest connection to the forward runs the cmd: program on
// the host with the connection as its stdin and stdout. A chardev target
// (guestfwd=...-tcp:HOST:PORT) would not do: with QEMU 7.2 it opened one host
// connection, and the guest's second connection hung, while an API client
// opens several (watches and requests). busybox nc relays one connection and exits when either side
// closes; QEMU splits the command on spaces and runs it without a shell.
function networkArgs(network: VmNetwork | undefined): string[] {
  if (network === undefined) {
    // Loopback only: the guest gets no network device at all.
    return ['-nic', 'none'];
  }
  const port = network.apiServerPort;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`failed to configure the VM network: apiServerPort ${port} is not a TCP port; pass the API server's loopback port`);
  }
  const forward = `tcp:${GUEST_API_SERVER_ADDRESS}:${GUEST_API_SERVER_PORT}-cmd:/bin/busybox nc 127.0.0.1 ${port}`;
  return ['-netdev', `user,id=n0,restrict=on,guestfwd=${forward}`, '-device', 'virtio-net-pci,netdev=n0'];
}

// By default QEMU gives each vCPU a host thread of its own (MTTCG). Under it,
// a guest CPU was seen to run code that another CPU had already patched. A
// task was stuck for minutes at bpf_lsm_file_open+0x0, where memory held the
// finished call to the BPF trampoline. It kept trapping on the int3 that the
// kernel puts in place while it rewrites a call site. Runs that
// attach node-wide LSM programs while a task loops through that hook take
// the single host thread, under which no such run failed (test/vm/README.md
// has the runs).
function tcgAccel(singleThread: boolean): string {
  return singleThread ? 'tcg,thread=single' : 'tcg';
}

// With -icount shift=0 the guest's clocks advance by exactly one nanosecond
// per emulated instruction (sleep=off: an idle guest skips ahead instead of
// waiting), so a time measured inside the guest counts instructions and does
// not depend on how busy the host is. QEMU then runs all vCPUs in one host
// thread, in turn. Benchmarks use it to compare work done. It does not count
// cache misses, which hardware pays and the emulator does not model.
function icountArgs(enabled: boolean): string[] {
  return enabled ? ['-icount', 'shift=0,sleep=off,align=off'] : [];
}
