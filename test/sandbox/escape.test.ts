/**
 * Escape tests for the sandbox runner (issue 16), against the real bubblewrap:
 * every test tries one way out and asserts the specific way it fails. Nothing
 * is skipped: without bubblewrap the suite fails and says `.ci/run` installs it.
 */
import assert from 'node:assert/strict';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createWorkspace, probeSandbox, runSandboxed, type SandboxProbe, type SandboxResult } from '../../src/sandbox/runner.ts';

const REPO = resolve(import.meta.dirname, '../..');
let probe: SandboxProbe;
let root: string;
let wsA: string;
let wsB: string;

const text = (r: SandboxResult): string => `${r.stdout.toString('utf8')}${r.stderr.toString('utf8')}`;
const sh = (script: string, extra: Partial<Parameters<typeof runSandboxed>[0]> = {}): Promise<SandboxResult> =>
  runSandboxed({ argv: ['/bin/sh', '-c', script], ...extra }, probe);
const py = (code: string, extra: Partial<Parameters<typeof runSandboxed>[0]> = {}): Promise<SandboxResult> =>
  runSandboxed({ argv: ['/usr/bin/python3', '-c', code], ...extra }, probe);

/** Host processes whose command line contains `marker`. */
async function hostProcessesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) found.push(Number(name));
  }
  return found;
}

before(async () => {
  probe = await probeSandbox();
  assert.ok(probe.available, `the sandbox is unavailable here (${probe.reason ?? '?'}); .ci/run installs bubblewrap and socat`);
  root = await mkdtemp(join(tmpdir(), 'bastion-escape-'));
  await chmod(root, 0o711);
  wsA = await createWorkspace(root, 'a', probe);
  wsB = await createWorkspace(root, 'b', probe);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('sandbox escape: host files', () => {
  it('cannot read /etc/shadow, and /etc/passwd is the generated one', async () => {
    const r = await sh('cat /etc/shadow');
    assert.notEqual(r.exitCode, 0);
    assert.match(text(r), /No such file or directory/);
    const passwd = await sh('cat /etc/passwd');
    assert.equal(passwd.exitCode, 0);
    const names = passwd.stdout.toString('utf8').trim().split('\n').map((l) => l.split(':')[0]);
    assert.deepEqual([...new Set(names)].sort(), names.includes('sandbox') ? ['nobody', 'root', 'sandbox'] : ['nobody', 'root']);
  });

  it('cannot read a file of the repository by its host path', async () => {
    const path = join(REPO, 'package.json');
    await stat(path); // exists on the host
    const r = await sh(`cat '${path}'`);
    assert.notEqual(r.exitCode, 0);
    assert.match(text(r), /No such file or directory/);
  });

  it("cannot read Bastion's data dir or key file", async () => {
    const data = await mkdtemp(join(tmpdir(), 'bastion-data-'));
    try {
      await writeFile(join(data, 'vault.key'), 'not-a-real-key', { mode: 0o644 });
      await chmod(data, 0o755);
      const r = await sh(`cat '${join(data, 'vault.key')}'; ls '${data}'`);
      assert.notEqual(r.exitCode, 0);
      assert.doesNotMatch(text(r), /not-a-real-key|vault\.key\n/);
      assert.match(text(r), /No such file or directory/);
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  });

  it('has no /root, /home, /var, /work, /srv or /opt', async () => {
    const r = await sh('for d in /root /home /var /work /srv /opt /root/.ssh; do [ -e "$d" ] && echo "present $d"; done; echo done');
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout.toString('utf8'), 'done\n');
  });

  it('cannot write outside /workspace and /tmp (/usr, /etc and / are read-only)', async () => {
    const r = await sh('for p in /usr/x /usr/bin/x /etc/x /etc/passwd /x /proc/sys/kernel/hostname; do (echo x > "$p") 2>/dev/null && echo "wrote $p"; done; echo x > /tmp/ok && echo x > /workspace/ok && echo ok', { workspace: wsA });
    assert.equal(r.stdout.toString('utf8'), 'ok\n');
  });
});

describe('sandbox escape: environment and processes', () => {
  it("sees neither Bastion's environment nor another process's environ", async () => {
    const canary = `canary${Date.now()}x${Math.random().toString(36).slice(2)}`;
    process.env.BASTION_ESCAPE_CANARY = canary;
    try {
      const r = await sh('env; cat /proc/*/environ 2>/dev/null | tr "\\0" "\\n"; ls /proc | grep -E "^[0-9]+$"');
      assert.equal(r.exitCode, 0);
      assert.ok(!text(r).includes(canary), 'the canary leaked into the sandbox');
      assert.doesNotMatch(text(r), /BASTION_ESCAPE_CANARY/);
      // Only the sandbox's own few processes are visible (a new PID namespace and its own /proc).
      const pids = r.stdout.toString('utf8').split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
      assert.ok(pids.length > 0 && pids.length <= 6, `saw pids ${pids.join(',')}`);
      assert.ok(pids.every((p) => p < 50));
    } finally {
      delete process.env.BASTION_ESCAPE_CANARY;
    }
  });

  it("inherits no descriptor of Bastion's beyond stdio (bind fds closed, inherited ones covered by /dev/null)", async () => {
    const r = await py('import os\nfor fd in sorted(int(x) for x in os.listdir("/proc/self/fd")):\n    try: print(fd, os.readlink(f"/proc/self/fd/{fd}"))\n    except OSError: pass\n');
    assert.equal(r.exitCode, 0, text(r));
    for (const line of r.stdout.toString('utf8').trim().split('\n')) {
      const [fd, target] = line.split(' ');
      if (Number(fd) <= 2) continue;
      assert.ok(target === '/dev/null' || target?.startsWith('/proc/'), `fd ${line} reached the sandbox`);
    }
  });

  it('runs as a non-root uid with no capabilities and no_new_privs', async () => {
    const r = await sh('grep -E "^(Uid|Gid|CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status');
    assert.equal(r.exitCode, 0);
    const s = r.stdout.toString('utf8');
    for (const f of s.match(/^(Uid|Gid):.*$/gm) ?? []) assert.doesNotMatch(f, /\s0(\s|$)/, f);
    assert.match(s, /^CapEff:\s+0000000000000000$/m);
    assert.match(s, /^CapPrm:\s+0000000000000000$/m);
    assert.match(s, /^CapBnd:\s+0000000000000000$/m);
    assert.match(s, /^NoNewPrivs:\s+1$/m);
    assert.match(s, /^Seccomp:\s+2$/m);
  });

  it('cannot ptrace pid 1 or its parent (EPERM from the seccomp filter)', async () => {
    const r = await py(
      'import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nfor pid in (1, os.getppid()):\n    r = libc.ptrace(16, pid, 0, 0)\n    print(pid, r, ctypes.get_errno())\n',
    );
    assert.equal(r.exitCode, 0, text(r));
    const lines = r.stdout.toString('utf8').trim().split('\n');
    assert.equal(lines.length, 2);
    for (const l of lines) assert.match(l, /^\d+ -1 (1|3)$/, `ptrace did not fail with EPERM/ESRCH: ${l}`);
  });

  it('cannot create a user namespace (unshare -U, nested bwrap)', async () => {
    const u = await sh('unshare -U -r true');
    assert.notEqual(u.exitCode, 0);
    assert.match(text(u), /unshare failed/);
    const b = await sh('bwrap --ro-bind / / true');
    assert.notEqual(b.exitCode, 0);
    assert.match(text(b), /bwrap: /);
  });

  it('keeps no background process alive after the call (&, setsid, nohup, double fork)', async () => {
    const marker = `${Math.floor(Math.random() * 1e6)}`;
    const script = [
      `(sleep 61.${marker} &)`,
      `setsid sleep 62.${marker} &`,
      `nohup sleep 63.${marker} >/dev/null 2>&1 &`,
      `sh -c 'sh -c "sleep 64.${marker}" & exit 0' &`,
      `setsid python3 -c 'import os,time\nif os.fork(): os._exit(0)\nos.setsid()\nif os.fork(): os._exit(0)\ntime.sleep(65)' ${marker} &`,
      'sleep 0.3',
      'echo started',
    ].join('\n');
    const r = await sh(script);
    assert.equal(r.stdout.toString('utf8'), 'started\n');
    assert.deepEqual(await hostProcessesWith(marker), []);
  });

  it("does not show one workspace's files to a run on another", async () => {
    const w = await sh('echo secret-of-a > /workspace/a.txt', { workspace: wsA });
    assert.equal(w.exitCode, 0);
    const r = await sh('ls -A /workspace; cat /workspace/a.txt', { workspace: wsB });
    assert.notEqual(r.exitCode, 0);
    assert.doesNotMatch(text(r), /secret-of-a/);
    assert.match(text(r), /No such file or directory/);
  });

  it('leaves no setuid/setgid file in the workspace', async () => {
    const r = await sh('cp /bin/true /workspace/suid && chmod u+s,g+s /workspace/suid && mkdir -p /workspace/d && cp /bin/true /workspace/d/s2 && chmod 6755 /workspace/d/s2 && ls -l /workspace/suid', { workspace: wsA });
    assert.equal(r.exitCode, 0, text(r));
    assert.match(r.stdout.toString('utf8'), /^-rwsr-s/); // it was set inside
    for (const p of [join(wsA, 'suid'), join(wsA, 'd', 's2')]) {
      const st = await stat(p);
      assert.equal(st.mode & 0o6000, 0, `${p} kept a setid bit`);
    }
  });
});

describe('sandbox escape: network', () => {
  it('cannot reach 127.0.0.1:5432 or 169.254.169.254:80 directly', async () => {
    const r = await py(
      'import socket\nfor host, port in (("127.0.0.1", 5432), ("169.254.169.254", 80), ("10.0.0.1", 80)):\n    s = socket.socket(); s.settimeout(3)\n    try:\n        s.connect((host, port)); print("connected", host)\n    except OSError as e:\n        print("failed", host, e.errno)\n',
    );
    assert.equal(r.exitCode, 0, text(r));
    const out = r.stdout.toString('utf8');
    assert.doesNotMatch(out, /connected/);
    assert.match(out, /^failed 127\.0\.0\.1 111$/m); // ECONNREFUSED: the namespace's own empty loopback
    assert.match(out, /^failed 169\.254\.169\.254 101$/m); // ENETUNREACH: no route at all
    assert.match(out, /^failed 10\.0\.0\.1 101$/m);
  });

  it('reaches the egress proxy only through the bound socket (HTTP_PROXY)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bastion-egress-'));
    await chmod(dir, 0o711);
    const socket = join(dir, 'egress.sock');
    const seen: string[] = [];
    const server: Server = createServer((req, res) => {
      seen.push(`${req.method ?? ''} ${req.url ?? ''} ${req.headers.host ?? ''}`);
      res.end('through-the-proxy\n');
    });
    await new Promise<void>((ok) => server.listen(socket, ok));
    if (process.getuid?.() === 0) await chown(socket, probe.user.uid, probe.user.gid);
    await chmod(socket, 0o600);
    try {
      const r = await py('import urllib.request\nprint(urllib.request.urlopen("http://example.test/py", timeout=10).read().decode(), end="")', { egressSocket: socket });
      assert.equal(r.exitCode, 0, text(r));
      assert.equal(r.stdout.toString('utf8'), 'through-the-proxy\n');
      const c = await runSandboxed({ argv: ['curl', '-sS', 'http://example.test/curl'], egressSocket: socket }, probe);
      assert.equal(c.exitCode, 0, text(c));
      assert.equal(c.stdout.toString('utf8'), 'through-the-proxy\n');
      const env = await sh('echo "$HTTP_PROXY|$HTTPS_PROXY|$http_proxy|$https_proxy|$ALL_PROXY|$NO_PROXY|${NO_PROXY+set}"', { egressSocket: socket });
      assert.equal(env.stdout.toString('utf8'), 'http://127.0.0.1:3128|http://127.0.0.1:3128|http://127.0.0.1:3128|http://127.0.0.1:3128|http://127.0.0.1:3128||set\n');
      assert.deepEqual(seen, ['GET http://example.test/py example.test', 'GET http://example.test/curl example.test']);
      // Still no direct way out next to the proxy.
      const direct = await py('import socket\ntry:\n    socket.create_connection(("169.254.169.254", 80), 3); print("connected")\nexcept OSError as e:\n    print("failed", e.errno)', { egressSocket: socket });
      assert.equal(direct.stdout.toString('utf8'), 'failed 101\n');
    } finally {
      await new Promise<void>((ok) => server.close(() => ok()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('sandbox escape: limits', () => {
  it('stops a fork bomb at the process limit, and the host is fine', async () => {
    const r = await runSandboxed({ argv: ['/bin/bash', '-c', ':(){ :|:& };:; wait; sleep 2'], limits: { processes: 32, wallMs: 5000 } }, probe);
    assert.ok(r.limit === 'processes' || (r.exitCode !== null && r.exitCode !== 0), `limit ${String(r.limit)} exit ${String(r.exitCode)}`);
    assert.equal(r.limit, 'processes');
    const after = await sh('echo fine');
    assert.equal(after.stdout.toString('utf8'), 'fine\n');
  });

  it('kills an allocation past the memory limit', async () => {
    const r = await py('b = bytearray(128 * 1024 * 1024)\nprint("allocated")', { limits: { memoryBytes: 64 * 1024 * 1024 } });
    assert.equal(r.limit, 'memory');
    assert.doesNotMatch(r.stdout.toString('utf8'), /allocated/);
  });

  it('kills a run past its wall time', async () => {
    const r = await runSandboxed({ argv: ['sleep', '100'], limits: { wallMs: 500 } }, probe);
    assert.equal(r.limit, 'wall');
    assert.equal(r.exitCode, null);
    assert.equal(r.signal, 'SIGKILL');
  });

  it('kills a run past its CPU time', async () => {
    const r = await py('while True: pass', { limits: { cpuMs: 300, wallMs: 20_000 } });
    assert.equal(r.limit, 'cpu');
    assert.notEqual(r.exitCode, 0);
  });

  it('cuts output at the cap and kills the writer', async () => {
    const r = await runSandboxed({ argv: ['yes'], limits: { outputBytes: 4096 } }, probe);
    assert.equal(r.limit, 'output');
    assert.equal(r.truncated, true);
    assert.ok(r.stdout.length + r.stderr.length <= 4096);
    assert.equal(r.stdout.length, 4096);
  });
});

describe('sandbox escape: no leftovers on the host', () => {
  it('removes the run cgroups', async () => {
    await sh('true');
    for (const dir of [probe.cgroups?.memory, probe.cgroups?.pids, probe.cgroups?.cpuacct]) {
      if (dir === undefined) continue;
      const left = (await readdir(dir)).filter((n) => n.startsWith('bastion-run-'));
      assert.deepEqual(left, []);
    }
  });

  it('makes workspaces owned by the sandbox user, mode 0700', async () => {
    const ws = await createWorkspace(root, 'owned', probe);
    const st = await stat(ws);
    assert.equal(st.uid, probe.user.uid);
    assert.equal(st.mode & 0o777, 0o700);
    await mkdir(join(root, 'plain'));
  });
});
