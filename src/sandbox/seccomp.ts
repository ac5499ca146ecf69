/**
 * The seccomp filter every sandboxed command runs under, as classic BPF bytes
 * for bubblewrap's `--seccomp FD` (struct sock_filter[], Linux
 * include/uapi/linux/filter.h and seccomp.h).
 *
 * Namespaces already take the host away; the filter closes what stays open
 * *inside* the sandbox, where every process has the same uid: `ptrace` and
 * `process_vm_*` (one sandboxed process, or bubblewrap's own init as pid 1,
 * read or steered by another), the kernel keyring, BPF, perf events,
 * userfaultfd, io_uring and kexec. A blocked call fails with EPERM; a syscall
 * of another ABI (i386 `int 0x80`, x32) kills the process, so no alternate
 * syscall table bypasses the list.
 */

/** The architectures with a filter: Node's `process.arch` → AUDIT_ARCH_* and syscall numbers. */
const ARCHES: Readonly<Record<string, { audit: number; x32: boolean; calls: readonly number[] }>> = {
  // arch/x86/entry/syscalls/syscall_64.tbl
  x64: {
    audit: 0xc000003e,
    x32: true,
    // ptrace, process_vm_readv, process_vm_writev, add_key, request_key, keyctl, bpf, perf_event_open,
    // userfaultfd, kexec_load, kexec_file_load, io_uring_setup, io_uring_enter, io_uring_register
    calls: [101, 310, 311, 248, 249, 250, 321, 298, 323, 246, 320, 425, 426, 427],
  },
  // include/uapi/asm-generic/unistd.h
  arm64: {
    audit: 0xc00000b7,
    x32: false,
    calls: [117, 270, 271, 217, 218, 219, 280, 241, 282, 104, 294, 425, 426, 427],
  },
};

const BPF_LD_W_ABS = 0x20;
const BPF_JMP_JEQ_K = 0x15;
const BPF_JMP_JGE_K = 0x35;
const BPF_RET_K = 0x06;
const SECCOMP_RET_KILL_PROCESS = 0x80000000;
const SECCOMP_RET_ERRNO = 0x00050000;
const SECCOMP_RET_ALLOW = 0x7fff0000;
const EPERM = 1;
/** struct seccomp_data: nr at offset 0, arch at offset 4. */
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;

/** True when a filter exists for this machine's architecture (x64, arm64). */
export function seccompSupported(arch: string = process.arch): boolean {
  return Object.hasOwn(ARCHES, arch);
}

/**
 * The filter program for `arch` (default: this process's), as the bytes of
 * struct sock_filter[] in host byte order (little-endian on both supported
 * architectures).
 *
 * @throws RangeError when the architecture has no filter (see {@link seccompSupported}).
 */
export function sandboxSeccompFilter(arch: string = process.arch): Buffer {
  const spec = ARCHES[arch];
  if (spec === undefined) throw new RangeError(`sandboxSeccompFilter: no filter for architecture ${arch}`);
  const prog: [number, number, number, number][] = [];
  prog.push([BPF_LD_W_ABS, 0, 0, OFFSET_ARCH]);
  prog.push([BPF_JMP_JEQ_K, 1, 0, spec.audit]);
  prog.push([BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS]);
  prog.push([BPF_LD_W_ABS, 0, 0, OFFSET_NR]);
  // Jumps go forward to the two returns placed after the checks: ALLOW, then ERRNO.
  const checks: [number, number][] = [];
  if (spec.x32) checks.push([BPF_JMP_JGE_K, 0x40000000]);
  for (const nr of spec.calls) checks.push([BPF_JMP_JEQ_K, nr]);
  const first = prog.length;
  const errnoAt = first + checks.length + 1;
  checks.forEach(([code, k], i) => {
    prog.push([code, errnoAt - (first + i + 1), 0, k]);
  });
  prog.push([BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW]);
  prog.push([BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM]);
  const out = Buffer.alloc(prog.length * 8);
  prog.forEach(([code, jt, jf, k], i) => {
    out.writeUInt16LE(code, i * 8);
    out.writeUInt8(jt, i * 8 + 2);
    out.writeUInt8(jf, i * 8 + 3);
    out.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return out;
}
