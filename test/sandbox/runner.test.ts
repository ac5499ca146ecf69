/**
 * The sandbox runner's contract: argument checks, results (exit codes,
 * signals, stdin, env), the rlimit fallback without cgroups, abort, the
 * workspace helpers, and the seccomp filter program (checked by a small
 * classic-BPF interpreter over random syscall numbers).
 */
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { isBastionError } from '../../src/errors.ts';
import { sandboxSeccompFilter } from '../../src/sandbox/seccomp.ts';
import {
  createWorkspace,
  DEFAULT_SANDBOX_LIMITS,
  probeSandbox,
  removeWorkspace,
  runSandboxed,
  stripSetidBits,
  type SandboxProbe,
} from '../../src/sandbox/runner.ts';

let probe: SandboxProbe;
let root: string;

before(async () => {
  probe = await probeSandbox();
  assert.ok(probe.available, `the sandbox is unavailable here (${probe.reason ?? '?'}); .ci/run installs bubblewrap and socat`);
  root = await mkdtemp(join(tmpdir(), 'bastion-runner-'));
  await chmod(root, 0o711);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('probeSandbox', () => {
  it('reports bubblewrap, the forwarder and an unprivileged sandbox user', () => {
    assert.equal(probe.bwrap, '/usr/bin/bwrap');
    assert.match(probe.version ?? '', /^\d+\.\d+\.\d+$/);
    assert.equal(probe.forwarder, '/usr/bin/socat');
    assert.notEqual(probe.user.uid, 0);
    assert.notEqual(probe.user.gid, 0);
    if (process.getuid?.() === 0) assert.deepEqual(probe.user, { uid: 65534, gid: 65534 });
  });

  it('refuses root and unknown users as the sandbox user', async () => {
    if (process.getuid?.() !== 0) return;
    const r = await probeSandbox({ user: 'root' });
    assert.equal(r.available, false);
    assert.match(r.reason ?? '', /must not be root/);
    const u = await probeSandbox({ user: 'no-such-user-xyz' });
    assert.equal(u.available, false);
    assert.match(u.reason ?? '', /does not exist/);
  });
});

describe('runSandboxed', () => {
  it('throws ERR_SANDBOX_UNAVAILABLE for an unavailable probe', async () => {
    await assert.rejects(
      runSandboxed({ argv: ['/bin/true'] }, { available: false, reason: 'bwrap missing', cgroup: 'none', user: { uid: 1, gid: 1 } }),
      (e: unknown) => isBastionError(e, 'ERR_SANDBOX_UNAVAILABLE'),
    );
  });

  it('throws ERR_SANDBOX_START when bwrap or prlimit cannot start', async () => {
    await assert.rejects(runSandboxed({ argv: ['/bin/true'] }, { ...probe, bwrap: '/nonexistent/bwrap' }), (e: unknown) => isBastionError(e, 'ERR_SANDBOX_START'));
    await assert.rejects(runSandboxed({ argv: ['/bin/true'] }, { ...probe, prlimit: '/nonexistent/prlimit' }), (e: unknown) => isBastionError(e, 'ERR_SANDBOX_START'));
  });

  it('rejects an empty argv, NUL bytes, bad env names and non-positive limits', async () => {
    await assert.rejects(runSandboxed({ argv: [] }, probe), RangeError);
    await assert.rejects(runSandboxed({ argv: ['/bin/echo', 'a\0b'] }, probe), RangeError);
    await assert.rejects(runSandboxed({ argv: ['/bin/true'], env: { 'A=B': 'x' } }, probe), RangeError);
    await assert.rejects(runSandboxed({ argv: ['/bin/true'], limits: { wallMs: 0 } }, probe), RangeError);
    await assert.rejects(runSandboxed({ argv: ['/bin/true'], limits: { memoryBytes: 1.5 } }, probe), RangeError);
  });

  it('passes argv verbatim (no shell), stdin, and the minimal environment plus env', async () => {
    const r = await runSandboxed(
      { argv: ['/usr/bin/python3', '-c', 'import os,sys; print(sys.argv[1:]); print(sys.stdin.read()); print(sorted(os.environ.items()))', '$HOME', '; rm -rf /', "'q'"], stdin: 'from stdin', env: { EXTRA: 'v', LANG: 'C' } },
      probe,
    );
    assert.equal(r.exitCode, 0, r.stderr.toString());
    const [args, input, env] = r.stdout.toString('utf8').trim().split('\n');
    assert.equal(args, `['$HOME', '; rm -rf /', "'q'"]`);
    assert.equal(input, 'from stdin');
    // PWD comes from bwrap's --chdir; LC_CTYPE from Python's own locale coercion.
    const keys = [...(env ?? '').matchAll(/\('([A-Z_]+)', '([^']*)'\)/g)].map((m) => `${m[1] ?? ''}=${m[2] ?? ''}`).filter((kv) => !kv.startsWith('LC_CTYPE='));
    assert.deepEqual(keys, ['EXTRA=v', 'HOME=/tmp', 'LANG=C', 'PATH=/usr/local/bin:/usr/bin:/bin', 'PWD=/tmp', 'TMPDIR=/tmp']);
  });

  it('sets the proxy and CA variables and binds the CA file read-only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bastion-ca-'));
    await chmod(dir, 0o711);
    const ca = join(dir, 'ca.pem');
    await writeFile(ca, '-----BEGIN CERTIFICATE-----\nnot-real\n-----END CERTIFICATE-----\n', { mode: 0o644 });
    try {
      const r = await runSandboxed({ argv: ['/bin/sh', '-c', 'for v in SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO PIP_CERT; do eval echo \\$$v; done; head -1 /etc/bastion/ca.pem; echo x >> /etc/bastion/ca.pem || echo ro'], caFile: ca, env: { HTTP_PROXY: 'http://evil:1' } }, probe);
      const lines = r.stdout.toString('utf8').trim().split('\n');
      assert.deepEqual(lines.slice(0, 6), Array(6).fill('/etc/bastion/ca.pem'));
      assert.equal(lines[6], '-----BEGIN CERTIFICATE-----');
      assert.equal(lines[7], 'ro');
      // Without an egress socket, no proxy variable survives (not even the caller's).
      const p = await runSandboxed({ argv: ['/bin/sh', '-c', 'echo "${HTTP_PROXY-unset}"'], env: { HTTP_PROXY: 'http://evil:1' } }, probe);
      assert.equal(p.stdout.toString('utf8'), 'unset\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports exit codes and the signal that ended the command', async () => {
    const e = await runSandboxed({ argv: ['/bin/sh', '-c', 'exit 7'] }, probe);
    assert.equal(e.exitCode, 7);
    assert.equal(e.signal, null);
    assert.equal(e.limit, null);
    const s = await runSandboxed({ argv: ['/bin/sh', '-c', 'kill -TERM $$'] }, probe);
    assert.equal(s.exitCode, 143);
    assert.equal(s.signal, 'SIGTERM');
    const n = await runSandboxed({ argv: ['/no/such/program'] }, probe);
    assert.notEqual(n.exitCode, 0);
  });

  it('reports the file-size limit (RLIMIT_FSIZE → SIGXFSZ) as files', async () => {
    const ws = await createWorkspace(root, 'fsize', probe);
    const r = await runSandboxed({ argv: ['/bin/sh', '-c', 'exec head -c 2000000 /dev/zero > /workspace/big'], workspace: ws, limits: { fileBytes: 1024 * 1024 } }, probe);
    assert.equal(r.limit, 'files');
    assert.equal(r.signal, 'SIGXFSZ');
    assert.equal((await stat(join(ws, 'big'))).size, 1024 * 1024);
  });

  it('stops on abort and says so', async () => {
    const ac = new AbortController();
    const p = runSandboxed({ argv: ['sleep', '50'], signal: ac.signal }, probe);
    setImmediate(() => ac.abort());
    const r = await p;
    assert.equal(r.aborted, true);
    assert.equal(r.exitCode, null);
    assert.equal(r.limit, null);
  });

  it('an abort at any moment of the start leaves no process behind', { timeout: 120_000 }, async () => {
    const marker = `${Math.floor(Math.random() * 1e6)}`;
    for (let i = 0; i < 15; i++) {
      const ac = new AbortController();
      const p = runSandboxed({ argv: ['sleep', `50.${marker}`], signal: ac.signal }, probe);
      const t = setTimeout(() => ac.abort(), i * 3);
      const r = await p;
      clearTimeout(t);
      assert.equal(r.aborted, true);
    }
    const { readdir, readFile } = await import('node:fs/promises');
    const left: string[] = [];
    for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmd.includes(`50.${marker}`) && Number(pid) !== process.pid) left.push(pid);
    }
    assert.deepEqual(left, []);
  });

  it('reports CPU time and peak memory from the cgroup', async () => {
    if (probe.cgroup === 'none') return;
    const r = await runSandboxed({ argv: ['/usr/bin/python3', '-c', 'b = bytearray(32 * 1024 * 1024)'] }, probe);
    assert.equal(r.exitCode, 0);
    assert.ok((r.peakMemoryBytes ?? 0) >= 32 * 1024 * 1024, `peak ${String(r.peakMemoryBytes)}`);
    assert.ok((r.cpuMs ?? 0) > 0);
  });

  it('refuses a workspace not owned by the sandbox user, or a symlink to one (ERR_SANDBOX_START)', async () => {
    if (process.getuid?.() !== 0) return;
    const foreign = join(root, 'root-owned');
    await mkdir(foreign);
    await assert.rejects(runSandboxed({ argv: ['/bin/true'], workspace: foreign }, probe), (e: unknown) => isBastionError(e, 'ERR_SANDBOX_START'));
    const ws = await createWorkspace(root, 'linked', probe);
    await symlink(ws, join(root, 'link'));
    await assert.rejects(runSandboxed({ argv: ['/bin/true'], workspace: join(root, 'link') }, probe), (e: unknown) => isBastionError(e, 'ERR_SANDBOX_START'));
    await assert.rejects(runSandboxed({ argv: ['/bin/true'], egressSocket: join(root, 'nope.sock') }, probe), (e: unknown) => isBastionError(e, 'ERR_SANDBOX_START'));
  });

  it('without cgroups falls back to rlimits (RLIMIT_DATA lets node start, stops a big allocation)', async () => {
    const { cgroups: _cg, ...rest } = probe;
    const bare: SandboxProbe = { ...rest, cgroup: 'none' };
    const n = await runSandboxed({ argv: ['/usr/bin/node', '-e', 'console.log(1)'], limits: { memoryBytes: 512 * 1024 * 1024 } }, bare);
    assert.equal(n.exitCode, 0, n.stderr.toString());
    assert.equal(n.stdout.toString(), '1\n');
    const big = await runSandboxed({ argv: ['/usr/bin/python3', '-c', 'b = bytearray(256 * 1024 * 1024)'], limits: { memoryBytes: 64 * 1024 * 1024 } }, bare);
    assert.notEqual(big.exitCode, 0);
    assert.match(big.stderr.toString(), /MemoryError/);
    assert.equal(big.peakMemoryBytes, null);
  });

  it('has the documented defaults', () => {
    assert.deepEqual({ ...DEFAULT_SANDBOX_LIMITS }, { wallMs: 30_000, cpuMs: 10_000, memoryBytes: 536870912, processes: 64, openFiles: 256, outputBytes: 1048576, fileBytes: 67108864 });
  });
});

describe('workspaces', () => {
  it('refuses unsafe names and a symlinked root (ERR_SANDBOX_WORKSPACE)', async () => {
    for (const name of ['', '.', '..', 'a/b', '../x', 'a\0b', 'x'.repeat(129)]) {
      await assert.rejects(createWorkspace(root, name, probe), (e: unknown) => isBastionError(e, 'ERR_SANDBOX_WORKSPACE'), name);
    }
    const real = join(root, 'real-root');
    await mkdir(real);
    await symlink(real, join(root, 'root-link'));
    await assert.rejects(createWorkspace(join(root, 'root-link'), 'w', probe), (e: unknown) => isBastionError(e, 'ERR_SANDBOX_WORKSPACE'));
    await assert.rejects(createWorkspace('relative', 'w', probe), (e: unknown) => isBastionError(e, 'ERR_SANDBOX_WORKSPACE'));
    await createWorkspace(real, 'w', probe);
    await assert.rejects(createWorkspace(real, 'w', probe), (e: unknown) => isBastionError(e, 'ERR_SANDBOX_WORKSPACE'));
  });

  it('removeWorkspace deletes through symlinks, never following them', async () => {
    const outside = join(root, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'keep'), 'x');
    const ws = await createWorkspace(root, 'rm-me', probe);
    await symlink(outside, join(ws, 'escape'));
    await removeWorkspace(ws);
    await assert.rejects(lstat(ws));
    assert.equal((await stat(join(outside, 'keep'))).size, 1);
    await assert.rejects(removeWorkspace(join(root, 'outside-link-does-not-matter', '..', 'outside', 'keep')), (e: unknown) => isBastionError(e, 'ERR_SANDBOX_WORKSPACE'));
  });

  it('stripSetidBits does not follow a symlink out of the workspace', async () => {
    const host = join(root, 'host-suid');
    await writeFile(host, '#!/bin/sh\n', { mode: 0o755 });
    await chmod(host, 0o4755);
    const ws = await createWorkspace(root, 'strip', probe);
    await symlink(host, join(ws, 'link'));
    await writeFile(join(ws, 'own'), 'x');
    await chmod(join(ws, 'own'), 0o6755);
    const r = await stripSetidBits(ws);
    assert.deepEqual(r, { changed: 1, complete: true });
    assert.equal((await stat(host)).mode & 0o7777, 0o4755);
    assert.equal((await stat(join(ws, 'own'))).mode & 0o7777, 0o755);
  });
});

/** Runs a classic BPF seccomp program on one syscall; returns the action word. */
function runBpf(prog: Buffer, nr: number, arch: number): number {
  let acc = 0;
  for (let pc = 0; pc * 8 < prog.length; ) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog.readUInt8(pc * 8 + 2);
    const jf = prog.readUInt8(pc * 8 + 3);
    const k = prog.readUInt32LE(pc * 8 + 4);
    if (code === 0x20) acc = k === 0 ? nr >>> 0 : k === 4 ? arch >>> 0 : assert.fail(`load of offset ${k}`);
    else if (code === 0x15) pc += acc === k ? jt : jf;
    else if (code === 0x35) pc += acc >= k ? jt : jf;
    else if (code === 0x06) return k;
    else assert.fail(`unknown opcode ${code}`);
    pc++;
  }
  return assert.fail('fell off the end');
}

describe('seccomp filter', () => {
  const blocked = new Set([101, 310, 311, 248, 249, 250, 321, 298, 323, 246, 320, 425, 426, 427]);
  const prog = sandboxSeccompFilter('x64');
  it('denies the listed syscalls with EPERM and allows the rest (x86_64)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x3fffffff }), (nr) => {
        assert.equal(runBpf(prog, nr, 0xc000003e), blocked.has(nr) ? 0x00050001 : 0x7fff0000);
      }),
    );
    for (const nr of blocked) assert.equal(runBpf(prog, nr, 0xc000003e), 0x00050001);
    for (const nr of [0, 1, 56, 57, 59, 231]) assert.equal(runBpf(prog, nr, 0xc000003e), 0x7fff0000);
  });

  it('refuses x32 syscalls and kills other ABIs (i386)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0x40000000, max: 0xffffffff }), (nr) => {
        assert.equal(runBpf(prog, nr, 0xc000003e), 0x00050001);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), (nr) => {
        assert.equal(runBpf(prog, nr, 0x40000003), 0x80000000);
      }),
    );
  });

  it('has an arm64 program and none for unknown architectures', () => {
    const arm = sandboxSeccompFilter('arm64');
    assert.equal(runBpf(arm, 117, 0xc00000b7), 0x00050001);
    assert.equal(runBpf(arm, 63, 0xc00000b7), 0x7fff0000);
    assert.throws(() => sandboxSeccompFilter('mips'), RangeError);
  });
});
