/**
 * SSRF guard, the pure part: is an address one the network door may connect to?
 * Only global unicast is allowed; everything else is refused with the name of the
 * range it fell in. Groundwork for the egress proxy (issue 3): the proxy resolves
 * a name, classifies **every** address (see {@link resolveAndClassify}), and
 * connects to exactly the address that was checked.
 *
 * Ranges (IANA special-purpose registries, RFC 6890 and successors), most specific first:
 * - IPv4: 0/8 "this network", 10/8, 172.16/12, 192.168/16 private (RFC 1918),
 *   100.64/10 CGNAT (RFC 6598), 127/8 loopback, 169.254.169.254 cloud metadata,
 *   169.254/16 link-local, 192.0.0/24 IETF protocol assignments, 192.0.2/24,
 *   198.51.100/24, 203.0.113/24 documentation (RFC 5737), 192.88.99/24 6to4 relay,
 *   198.18/15 benchmarking (RFC 2544), 224/4 multicast, 255.255.255.255 broadcast,
 *   240/4 reserved.
 * - IPv6: `::` unspecified, `::1` loopback, `::ffff:0:0/96` IPv4-mapped, `::/96`
 *   IPv4-compatible, `::ffff:0:0:0/96` IPv4-translated, `64:ff9b::/96` and
 *   `64:ff9b:1::/48` NAT64 (RFC 6052, 8215), `100::/64` discard, `2001::/32` Teredo,
 *   `2001::/23` IETF protocol assignments, `2001:db8::/32` and `3fff::/20`
 *   documentation, `2002::/16` 6to4, `5f00::/16` SRv6 SIDs, `fd00:ec2::254` cloud
 *   metadata, `fc00::/7` unique local, `fe80::/10` link-local, `fec0::/10`
 *   site-local, `ff00::/8` multicast, and anything outside `2000::/3` (not global
 *   unicast).
 *
 * IPv6 forms that embed an IPv4 address (mapped, compatible, translated, NAT64,
 * 6to4, Teredo) are refused whatever they embed: an egress proxy can always reach
 * an IPv4 host directly, so these forms only serve to disguise a target.
 *
 * Only canonical literals are accepted here (four-part decimal IPv4, standard
 * IPv6): shorthand such as `0x7f.1` must come through the WHATWG URL parser
 * ({@link classifyTarget}), which canonicalizes hosts the way Node connects to
 * them, so no second parser can disagree with the one that decided.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** Why an address is not allowed (or `global` when it is). */
export type AddressClass =
  | 'global'
  | 'invalid'
  | 'unspecified'
  | 'this-network'
  | 'loopback'
  | 'private'
  | 'cgnat'
  | 'metadata'
  | 'link-local'
  | 'ietf-protocol'
  | 'documentation'
  | '6to4-relay'
  | 'benchmarking'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'ipv4-mapped'
  | 'ipv4-compatible'
  | 'ipv4-translated'
  | 'nat64'
  | 'discard'
  | 'teredo'
  | '6to4'
  | 'srv6'
  | 'unique-local'
  | 'site-local'
  | 'zone';

/** The verdict on one address. `address` is its canonical text when it parsed. */
export interface AddressVerdict {
  readonly address: string;
  readonly allowed: boolean;
  readonly class: AddressClass;
  /** The range that matched, in CIDR notation, or a short explanation. */
  readonly range: string;
}

type Range = readonly [ipaddr.IPv4 | ipaddr.IPv6, number, AddressClass, string];

function ranges(list: readonly (readonly [string, AddressClass])[]): Range[] {
  return list.map(([cidr, cls]) => {
    const [addr, bits] = ipaddr.parseCIDR(cidr);
    return [addr, bits, cls, cidr] as const;
  });
}

// Most specific first: the first match names the class.
const V4: readonly Range[] = ranges([
  ['169.254.169.254/32', 'metadata'],
  ['255.255.255.255/32', 'broadcast'],
  ['0.0.0.0/32', 'unspecified'],
  ['0.0.0.0/8', 'this-network'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'cgnat'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'ietf-protocol'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', '6to4-relay'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
]);

const V6: readonly Range[] = ranges([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::ffff:0:0/96', 'ipv4-mapped'],
  ['::ffff:0:0:0/96', 'ipv4-translated'],
  ['::/96', 'ipv4-compatible'],
  ['64:ff9b::/96', 'nat64'],
  ['64:ff9b:1::/48', 'nat64'],
  ['100::/64', 'discard'],
  ['2001::/32', 'teredo'],
  ['2001:db8::/32', 'documentation'],
  ['2001::/23', 'ietf-protocol'],
  ['2002::/16', '6to4'],
  ['3fff::/20', 'documentation'],
  ['5f00::/16', 'srv6'],
  ['fd00:ec2::254/128', 'metadata'],
  ['fc00::/7', 'unique-local'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'],
  ['ff00::/8', 'multicast'],
]);

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

/**
 * Classifies one IP address given as a canonical literal (`192.0.2.1`, `2001:db8::1`,
 * optionally in brackets). Never throws: anything that is not such a literal is
 * `invalid`, and only `global` is allowed.
 */
export function classifyAddress(input: string): AddressVerdict {
  let text = typeof input === 'string' ? input : '';
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  if (text.includes('%')) return { address: text, allowed: false, class: 'zone', range: 'scoped address (zone id)' };
  // Node's isIP takes IPv4 only as four-part decimal (no octal, hex or short forms), IPv6 only in standard text.
  if (isIP(text) === 0) {
    return { address: text, allowed: false, class: 'invalid', range: 'not a canonical IP literal' };
  }
  const addr = ipaddr.parse(text);
  const table = addr.kind() === 'ipv4' ? V4 : V6;
  for (const [base, bits, cls, cidr] of table) {
    if (addr.match(base, bits)) return { address: addr.toString(), allowed: false, class: cls, range: cidr };
  }
  if (addr.kind() === 'ipv6' && !addr.match(GLOBAL_UNICAST_V6)) {
    return { address: addr.toString(), allowed: false, class: 'reserved', range: 'outside 2000::/3' };
  }
  return { address: addr.toString(), allowed: true, class: 'global', range: addr.kind() === 'ipv4' ? '0.0.0.0/0' : '2000::/3' };
}

/** Host names that always mean this machine or a cloud metadata service. */
const SPECIAL_NAMES = new Set([
  'localhost',
  'ip6-localhost',
  'ip6-loopback',
  'metadata',
  'metadata.google.internal',
  'instance-data',
  'rancher-metadata',
  'metadata.tencentyun.com',
  'metadata.packet.net',
]);

const SCHEMES = new Set(['http:', 'https:']);

/**
 * The verdict on a URL (or bare host) before any DNS lookup:
 * - `deny`: refused as written (unparsable, wrong scheme, special or single-label
 *   name, or a literal address that is not global);
 * - `allow`: a literal global address (`address` is what to connect to);
 * - `resolve`: a DNS name; its addresses must each pass {@link classifyAddress}.
 */
export type TargetVerdict =
  | { readonly verdict: 'deny'; readonly reason: string; readonly host?: string; readonly address?: AddressVerdict }
  | { readonly verdict: 'allow'; readonly host: string; readonly port: number; readonly address: AddressVerdict }
  | { readonly verdict: 'resolve'; readonly host: string; readonly port: number };

/**
 * Parses `input` with the WHATWG URL parser (a bare host gets `http://` and `/`
 * around it) and classifies its host. Never throws.
 */
export function classifyTarget(input: string): TargetVerdict {
  // An empty input fails the URL parser below (a special scheme needs a host).
  if (typeof input !== 'string' || input.length > 8192) return { verdict: 'deny', reason: 'url.invalid' };
  let url: URL;
  try {
    url = new URL(toTargetUrl(input));
  } catch {
    return { verdict: 'deny', reason: 'url.invalid' };
  }
  if (!SCHEMES.has(url.protocol)) return { verdict: 'deny', reason: 'url.scheme' };
  // Never empty: the WHATWG parser refuses an http(s) URL without a host.
  const host = url.hostname.toLowerCase();
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  if (host.startsWith('[') || isIP(host) !== 0) {
    const address = classifyAddress(host);
    return address.allowed ? { verdict: 'allow', host, port, address } : { verdict: 'deny', reason: `address.${address.class}`, host, address };
  }
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (SPECIAL_NAMES.has(name) || name.endsWith('.localhost')) return { verdict: 'deny', reason: 'host.special', host };
  if (!name.includes('.')) return { verdict: 'deny', reason: 'host.single_label', host };
  return { verdict: 'resolve', host: name, port };
}

/**
 * The URL text for a target given as a URL, a bare host or `host:port`, or a
 * bare IP literal (IPv6 gets brackets): what {@link classifyTarget} parses.
 */
export function toTargetUrl(input: string): string {
  if (isIP(input) === 6) return `http://[${input}]/`;
  return /^[A-Za-z][A-Za-z0-9+.-]*:/.test(input) && !/^[^/]*:\d+(\/|$)/.test(input) ? input : `http://${input}/`;
}

/** A resolver: every address of a name (as `dns.promises.lookup(name, {all: true})` returns). */
export type Lookup = (host: string) => Promise<readonly { address: string; family: number }[]>;

/** The outcome of resolving and classifying a name. */
export type ResolvedVerdict =
  | { readonly allowed: true; readonly host: string; readonly address: AddressVerdict; readonly all: readonly AddressVerdict[] }
  | { readonly allowed: false; readonly host: string; readonly reason: string; readonly all: readonly AddressVerdict[] };

/**
 * Resolves `host` and classifies **every** address: one address that is not global
 * refuses the name (a DNS answer mixing a public and a private address is an
 * attack, not a fallback). No address, or a resolver error, refuses too. When
 * allowed, `address` is the one to connect to — the caller must dial exactly it
 * (no second lookup), so a changing DNS answer cannot move the connection.
 */
export async function resolveAndClassify(host: string, lookup: Lookup): Promise<ResolvedVerdict> {
  let answers: readonly { address: string; family: number }[];
  try {
    answers = await lookup(host);
  } catch {
    return { allowed: false, host, reason: 'dns.unresolvable', all: [] };
  }
  if (!Array.isArray(answers) || answers.length === 0) return { allowed: false, host, reason: 'dns.no_address', all: [] };
  const all = answers.map((a) => classifyAddress(a.address));
  const bad = all.find((v) => !v.allowed);
  if (bad) return { allowed: false, host, reason: `address.${bad.class}`, all };
  return { allowed: true, host, address: all[0] as AddressVerdict, all };
}
