/**
 * Cost of one `PolicyEngine.authorize()` call (median and p99 over many calls).
 * Usage: node bench/policy-authorize.ts [calls]
 *
 * Two policy sets: the config lists only (no policy reads `context`, so no
 * context is built), and the same plus a hand-written policy over `context.args`.
 */
import type { ResolvedAgent, ResolvedConfig } from '../src/config/types.ts';
import { PolicyEngine, type PolicyRequest } from '../src/policy/engine.ts';

const calls = Number(process.argv[2] ?? 20_000);

function agent(name: string, lists: Partial<ResolvedAgent>): [string, ResolvedAgent] {
  return [name, { name, keys: [], unresolvedKeyRefs: [], tools: [], skillsets: [], deny: [], approve: [], resources: [], prompts: [], secrets: [], oauth: [], labels: [], guards: [], limits: [], trustedValues: [], network: [], scope: 'external', isolateUsers: true, ...lists }];
}

const agents = new Map([
  agent('demo', { tools: ['files__*', 'git__status', 'git__log'], deny: ['files__write*', 'files__move*'], approve: ['git__push'], resources: ['file:///work/*'], prompts: ['files__*'] }),
  ...Array.from({ length: 20 }, (_, i) => agent(`agent${i}`, { tools: [`up${i}__*`], deny: [`up${i}__rm*`] })),
]);
const guard = { path: 'guard.cedar', text: 'forbid(principal, action == Bastion::Action::"tools/call", resource) when { context.args has path && context.args.path like "*secret*" };' };

const req: PolicyRequest = {
  agent: 'demo',
  action: 'tools/call',
  resource: { kind: 'tool', id: 'files__read_text_file', upstream: 'files' },
  args: { path: '/work/project/src/index.ts', head: 50 },
  argsDigest: 'a'.repeat(64),
  session: '6f1c1a52-8e57-4d0c-9d8e-0c3a3b1f2e11',
};

function measure(label: string, engine: PolicyEngine): void {
  for (let i = 0; i < 2_000; i++) engine.authorize(req);
  const times = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const t0 = process.hrtime.bigint();
    engine.authorize(req);
    times[i] = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  times.sort();
  const at = (q: number) => (times[Math.min(calls - 1, Math.floor(calls * q))] as number).toFixed(4);
  process.stdout.write(`${label}: ${engine.policies.length} policies, median ${at(0.5)} ms, p90 ${at(0.9)} ms, p99 ${at(0.99)} ms (${calls} calls)\n`);
}

measure('config lists only', PolicyEngine.compile({ agents, policies: [] } as unknown as ResolvedConfig));
measure('config lists + context policy', PolicyEngine.compile({ agents, policies: [guard] } as unknown as ResolvedConfig));
