/**
 * The network door's decision on one destination, before any connection: the
 * SSRF guard and the agent's egress policy, composed in a fixed order so that
 * every refusal names the check that made it.
 *
 * 1. The target is parsed (WHATWG URL) and classified as written
 *    ({@link classifyTarget}): unparsable, another scheme, a special name
 *    (`localhost`, metadata names), a single-label name, or a literal address
 *    that is not global unicast → deny `ssrf.*` (unless the agent's
 *    `unsafeAllowPrivate` covers that literal address).
 * 2. When an agent is given, the Cedar engine decides the action
 *    (`network/connect` for CONNECT, `network/request` otherwise) → a policy
 *    deny stops here, before any DNS query (a refused name is never looked up,
 *    so DNS cannot carry data out either).
 * 3. A name is resolved (`egress.staticHosts` first, else DNS, cached for
 *    `egress.dnsCacheMs`) and **every** address is classified; one address that
 *    is not global refuses the name unless the agent's `unsafeAllowPrivate`
 *    covers it. No answer, or a resolver error → deny `ssrf.dns.*`.
 * 4. Allow, naming the one address to dial (the first of the answer). The
 *    caller connects to exactly that address, never resolving again.
 *
 * `unsafeAllowPrivate` never covers cloud-metadata addresses, unparsable or
 * scoped (zone id) addresses, or the unspecified address; when both its `hosts`
 * and `ranges` are set, the host must match and the address be in a range.
 * A verdict that used it says so (`exception: true`), for the audit record.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import type { ResolvedAgent, ResolvedConfig } from '../config/types.ts';
import { allow, deny, type Decision } from '../decision.ts';
import type { PolicyEngine } from '../policy/engine.ts';
import { hostMatchesAny } from '../net/host-pattern.ts';
import type { EgressTarget } from '../net/target.ts';
import { classifyTarget, resolveAndClassify, type AddressVerdict, type Lookup, type ResolvedVerdict } from './ssrf-classify.ts';

/** One destination as the proxy sees it. `host` normalized; `path` the URL's pathname (`""` for CONNECT). */
export type { EgressTarget } from '../net/target.ts';

/** The guard's answer. `address` (an IP literal) is set when allowed: dial exactly it. */
export interface EgressVerdict {
  readonly decision: Decision;
  /** Ids of the Cedar policies that decided (empty for SSRF and parse refusals). */
  readonly policies: readonly string[];
  /** An allowed `network/connect` may only proceed with TLS interception. */
  readonly intercept: boolean;
  readonly address?: string;
  /** Every address the name resolved to, canonical. */
  readonly addresses: readonly string[];
  /** True when `unsafeAllowPrivate` let a non-global address through. */
  readonly exception: boolean;
}

/** Step 1's outcome: refused as written, a literal address to dial, or a name to resolve. */
type LiteralOutcome =
  | { readonly kind: 'deny'; readonly verdict: EgressVerdict }
  | { readonly kind: 'address'; readonly address: string; readonly exception: boolean }
  | { readonly kind: 'resolve'; readonly host: string };

/** Step 3's outcome. */
type ResolvedOutcome =
  | { readonly kind: 'deny'; readonly decision: Decision; readonly addresses: readonly string[] }
  | { readonly kind: 'allow'; readonly address: string; readonly addresses: readonly string[]; readonly exception: boolean };

/** Classes `unsafeAllowPrivate` can never open. */
const NEVER: ReadonlySet<string> = new Set(['metadata', 'invalid', 'zone', 'unspecified']);
/** Most cached DNS answers; the oldest is dropped beyond this. */
const MAX_DNS_CACHE = 10_000;

const systemLookup: Lookup = (host) => dnsLookup(host, { all: true, verbatim: true });

/** Options of {@link EgressGuard}. */
export interface EgressGuardOptions {
  /** The resolver (default: the system's, `dns.lookup` with all addresses). Tests inject one. */
  readonly lookup?: Lookup;
  /** Clock in epoch ms (default `Date.now`). */
  readonly now?: () => number;
}

/** Decides destinations for the egress proxy and `bastion egress check`. Immutable config; a small DNS cache. */
export class EgressGuard {
  readonly #config: Pick<ResolvedConfig, 'agents' | 'egress'>;
  readonly #policy: PolicyEngine;
  readonly #lookup: Lookup;
  readonly #now: () => number;
  readonly #literals = new Map<string, LiteralOutcome>();
  readonly #ranges = new Map<string, (readonly [ipaddr.IPv4 | ipaddr.IPv6, number])[]>();
  /** Per name: its classified answer and until when it may be reused (epoch ms). */
  readonly #dns = new Map<string, { readonly until: number; readonly verdict: Promise<ResolvedVerdict> }>();

  constructor(config: Pick<ResolvedConfig, 'agents' | 'egress'>, policy: PolicyEngine, opts: EgressGuardOptions = {}) {
    this.#config = config;
    this.#policy = policy;
    this.#lookup = opts.lookup ?? systemLookup;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Decides `target` for `agent` (`undefined`: the SSRF guard alone, as
   * `bastion egress check` without `--agent` does). `action` is
   * `network/connect` for a CONNECT tunnel, else `network/request`.
   * Never throws: a resolver or policy failure is a deny.
   */
  async check(agent: string | undefined, action: 'network/connect' | 'network/request', target: EgressTarget): Promise<EgressVerdict> {
    try {
      return await this.#check(agent, action, target);
    } catch {
      return refused(deny('egress.error', 'guard'));
    }
  }

  /**
   * Decides `target` for an ability call of `agent`: the ability grants its own
   * origin to the agents that hold it, so the agent's network policy (step 2) is
   * not asked; every other step of {@link check} applies (SSRF as written,
   * `egress.staticHosts`, every address classified, the agent's
   * `unsafeAllowPrivate`). `rule` names the grant (`abilities.NAME`) in the
   * decision. Never throws.
   */
  async checkGranted(agent: string, target: EgressTarget, rule: string): Promise<EgressVerdict> {
    try {
      return await this.#check(agent, 'network/request', target, rule);
    } catch {
      return refused(deny('egress.error', 'guard'));
    }
  }

  async #check(agentName: string | undefined, action: 'network/connect' | 'network/request', target: EgressTarget, granted?: string): Promise<EgressVerdict> {
    const agent = agentName === undefined ? undefined : this.#config.agents.get(agentName);
    if (agentName !== undefined && agent === undefined) return refused(deny('policy.unknown_agent', 'agents'));
    const literal = this.#literalStage(agent, target);
    if (literal.kind === 'deny') return literal.verdict;

    let policies: readonly string[] = [];
    let intercept = false;
    let decision: Decision = granted === undefined ? allow('egress.allowed', 'ssrf-guard') : allow('egress.granted', granted);
    if (agent !== undefined && granted === undefined) {
      const p = this.#policy.authorize({
        agent: agent.name,
        action,
        resource: { kind: 'host', id: target.host, upstream: '' },
        egress: { port: target.port, scheme: target.scheme, method: action === 'network/connect' ? 'CONNECT' : target.method, path: action === 'network/connect' ? '' : target.path },
      });
      if (p.effect !== 'allow') {
        // An @approval permit has no meaning for egress: nobody can be asked mid-connection.
        return refused(p.effect === 'approve' ? deny('policy.approval_unsupported', p.rule) : { effect: 'deny', reason: p.reason, rule: p.rule }, [], p.policies);
      }
      policies = p.policies;
      intercept = p.intercept === true;
      decision = allow('policy.permit', p.rule);
    }

    const at = literal.kind === 'address' ? { kind: 'allow' as const, address: literal.address, addresses: [literal.address], exception: literal.exception } : await this.#resolveStage(agent, literal.host);
    if (at.kind === 'deny') return refused(at.decision, at.addresses, policies);
    return { decision: at.exception ? allow('egress.unsafe_allow_private', decision.rule) : decision, policies, intercept, address: at.address, addresses: at.addresses, exception: at.exception };
  }

  /** Step 1, the target as written (memoized: it depends only on the agent and the target). */
  #literalStage(agent: ResolvedAgent | undefined, target: EgressTarget): LiteralOutcome {
    const key = `${agent?.name ?? ''}\u0000${target.scheme}\u0000${target.host}\u0000${target.port}`;
    const hit = this.#literals.get(key);
    if (hit) return hit;
    const hostForUrl = target.host.includes(':') ? `[${target.host}]` : target.host;
    const literal = classifyTarget(`${target.scheme}://${hostForUrl}:${target.port}/`);
    let outcome: LiteralOutcome;
    if (literal.verdict === 'deny') {
      const a = literal.address;
      outcome =
        a !== undefined && this.#covered(agent, target.host, a)
          ? { kind: 'address', address: a.address, exception: true }
          : { kind: 'deny', verdict: refused(deny(`ssrf.${literal.reason}`, a?.range ?? 'ssrf-guard'), a ? [a.address] : []) };
    } else if (literal.verdict === 'allow') outcome = { kind: 'address', address: literal.address.address, exception: false };
    else outcome = { kind: 'resolve', host: literal.host };
    if (this.#literals.size >= MAX_DNS_CACHE) this.#literals.delete(this.#literals.keys().next().value as string);
    this.#literals.set(key, outcome);
    return outcome;
  }

  /**
   * Step 3, a name resolved and every address classified. Only the classified
   * answer is cached (`#classify`, for as long as the answer), never a verdict
   * per agent: one would outlive the answer it was made from.
   */
  async #resolveStage(agent: ResolvedAgent | undefined, host: string): Promise<ResolvedOutcome> {
    const resolved = await this.#classify(host);
    const addresses = resolved.all.map((v) => v.address);
    if (resolved.allowed) return { kind: 'allow', address: resolved.address.address, addresses, exception: false };
    // No address at all: the resolver failed or answered nothing.
    const first = resolved.all[0];
    if (first === undefined) return { kind: 'deny', decision: deny(`ssrf.${resolved.reason}`, 'dns'), addresses };
    // One address the agent may not reach refuses the name; the refusal names that one, not a covered one beside it.
    const uncovered = resolved.all.find((v) => !v.allowed && !this.#covered(agent, host, v));
    if (uncovered !== undefined) return { kind: 'deny', decision: deny(`ssrf.address.${uncovered.class}`, uncovered.range), addresses };
    // Every address that is not global is one the agent's unsafeAllowPrivate covers.
    return { kind: 'allow', address: first.address, addresses, exception: true };
  }

  /** Whether the agent's `unsafeAllowPrivate` covers a refused address (see the module docs). */
  #covered(agent: ResolvedAgent | undefined, host: string, verdict: AddressVerdict): boolean {
    const ex = agent?.unsafeAllowPrivate;
    if (agent === undefined || ex === undefined || NEVER.has(verdict.class)) return false;
    if (ex.hosts.length > 0 && !hostMatchesAny(ex.hosts, host)) return false;
    if (ex.ranges.length > 0) {
      let ranges = this.#ranges.get(agent.name);
      if (ranges === undefined) {
        ranges = ex.ranges.map((r) => ipaddr.parseCIDR(r));
        this.#ranges.set(agent.name, ranges);
      }
      if (!inRanges(ranges, verdict.address)) return false;
    }
    return true;
  }

  /**
   * The name's addresses, each classified (agent-independent): for a static
   * host once (the config is immutable), for a resolver answer for
   * `egress.dnsCacheMs` from its lookup (the classification lives exactly as
   * long as the answer it was made from). A failed or empty answer is never
   * kept: the next request asks again.
   */
  #classify(host: string): Promise<ResolvedVerdict> {
    const now = this.#now();
    const hit = this.#dns.get(host);
    if (hit && hit.until > now) return hit.verdict;
    const fixed = this.#config.egress.staticHosts[host];
    const verdict =
      fixed !== undefined
        ? resolveAndClassify(host, async () => fixed.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })))
        : resolveAndClassify(host, (h) => this.#lookup(h));
    const ttl = fixed !== undefined ? Number.POSITIVE_INFINITY : this.#config.egress.dnsCacheMs;
    if (ttl > 0) {
      if (this.#dns.size >= MAX_DNS_CACHE) this.#dns.delete(this.#dns.keys().next().value as string);
      this.#dns.set(host, { until: now + ttl, verdict });
      void verdict.then((v) => {
        if (v.all.length === 0 && this.#dns.get(host)?.verdict === verdict) this.#dns.delete(host);
      });
    }
    return verdict;
  }
}

function refused(decision: Decision, addresses: readonly string[] = [], policies: readonly string[] = []): EgressVerdict {
  return { decision, policies, intercept: false, addresses, exception: false };
}

/**
 * Whether `address` is in one of `ranges`. `address` is classifyAddress's
 * canonical text of a parsed address (the classes whose text did not parse are
 * in NEVER); should that change, the parse throws and the guard denies.
 */
function inRanges(ranges: readonly (readonly [ipaddr.IPv4 | ipaddr.IPv6, number])[], address: string): boolean {
  const addr = parsedAddress(address);
  return ranges.some(([net, bits]) => addr.kind() === net.kind() && addr.match(net, bits));
}

/** Parsed addresses by their text (parsing is pure; the guard asks for the same few on every request), at most {@link MAX_DNS_CACHE}. */
const PARSED = new Map<string, ipaddr.IPv4 | ipaddr.IPv6>();

/** `ipaddr.parse(address)`, kept. @throws like `ipaddr.parse` for text that is no address (nothing is kept then). */
function parsedAddress(address: string): ipaddr.IPv4 | ipaddr.IPv6 {
  let addr = PARSED.get(address);
  if (addr === undefined) {
    addr = ipaddr.parse(address);
    if (PARSED.size >= MAX_DNS_CACHE) PARSED.delete(PARSED.keys().next().value as string);
    PARSED.set(address, addr);
  }
  return addr;
}
