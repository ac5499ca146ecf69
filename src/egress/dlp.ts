/**
 * Outbound DLP for the network door: the secret detector's findings in a
 * request, each with the hosts its credential belongs to (`secretRuleHosts`),
 * so the proxy can block a credential headed anywhere else.
 *
 * Placeholders are not credentials, but some detector rules would flag one
 * (`token=bst_ph_…`). They are masked before the scan ({@link maskPlaceholders})
 * instead of findings being skipped afterwards: a finding is never dropped
 * because a placeholder prefix appears inside it or next to it, so a real
 * credential cannot be smuggled out by writing `bst_ph_` or `<<SECRET_` into it.
 */
import { findSecrets, findSecretsInLatin1, secretRuleHosts, type SecretFinding } from '../detect/secrets.ts';
import { hostMatchesAny } from '../net/host-pattern.ts';
import { bindableHosts } from '../vault/host-binding.ts';
import { PASTED_PLACEHOLDER_ENCODED, PASTED_PLACEHOLDER_PATTERN } from '../vault/pasted.ts';
import { PLACEHOLDER_PATTERN } from '../vault/placeholder.ts';
import type { DlpFinding } from './proxy.ts';

/** Per detector rule: the hosts its credential may go to on its own, and whether the rule named hosts none of which may be bound. */
const HOMES = new Map<string, { readonly hosts: readonly string[]; readonly unbound: boolean }>();

/**
 * A rule's hosts filtered by the host-binding check (src/vault/host-binding.ts,
 * the Public Suffix List with its private section): `*.myshopify.com` is no home
 * of a Shopify token, since anyone can open a store there.
 */
function homeOf(rule: string): { readonly hosts: readonly string[]; readonly unbound: boolean } {
  let home = HOMES.get(rule);
  if (home === undefined) {
    const proposed = secretRuleHosts(rule);
    const hosts = bindableHosts(proposed);
    home = { hosts, unbound: proposed.length > 0 && hosts.length === 0 };
    HOMES.set(rule, home);
  }
  return home;
}

/**
 * Credentials in `text` with the hosts each may go to (empty: no known host).
 * A credential whose provider's hosts are all multi-tenant gets `unbound: true`
 * and no hosts: it may go nowhere on its own.
 */
export function dlpScan(text: string): DlpFinding[] {
  return findSecrets(text).map(withHome);
}

/**
 * {@link dlpScan} of bytes read as latin1 (a request body): the same findings
 * as `dlpScan(latin1 text)`, without making the text unless a detector keyword
 * occurs (src/detect/secrets.ts `findSecretsInLatin1`; `text`, when given,
 * returns that string, e.g. cached by the caller). The DLP stage uses it when
 * the scan function carries it.
 */
dlpScan.latin1 = (bytes: Uint8Array, text?: () => string): DlpFinding[] => findSecretsInLatin1(bytes, text).map(withHome);

function withHome(f: SecretFinding): DlpFinding {
  const home = homeOf(f.rule);
  return { rule: f.rule, start: f.start, end: f.end, hosts: home.hosts, ...(home.unbound ? { unbound: true } : {}) };
}

/**
 * Whether outbound DLP blocks `finding` on its way to `host`: any private key;
 * a credential whose provider hosts are all multi-tenant (`unbound`); a
 * credential with known hosts headed for another one. A credential with no
 * known home (a JWT, a generic `password=`) is not blocked.
 */
export function dlpBlocks(finding: DlpFinding, host: string): boolean {
  if (finding.rule === 'private-key' || finding.unbound === true) return true;
  return finding.hosts.length > 0 && !hostMatchesAny(finding.hosts, host);
}

/** The openings of a percent-encoded pasted placeholder, in each case {@link PASTED_PLACEHOLDER_ENCODED} accepts (`%3C%3C`, `%3c%3c`, ...). */
const ENCODED_OPENINGS = ['%3C%3C', '%3c%3c', '%3C%3c', '%3c%3C'];

/**
 * Whether {@link maskPlaceholders} could change the latin1 text of `bytes`:
 * false only when none of the literals its patterns begin with (`bst_ph_`,
 * `<<SECRET_`, `%3C%3C` in any case) occurs, so the masked text is the text
 * itself. Native substring searches over the bytes; no text is made.
 */
export function mayMaskBytes(bytes: Buffer): boolean {
  return bytes.includes('bst_ph_') || bytes.includes('<<SECRET_') || ENCODED_OPENINGS.some((o) => bytes.includes(o));
}

/**
 * `text` with every whole placeholder (`bst_ph_…` standing as a token of its
 * own, `<<SECRET_…>>` raw or percent-encoded) replaced by as many spaces:
 * offsets are kept, and the rest of the text is scanned as it is. Text that
 * only looks like part of a placeholder is not touched. Linear time.
 */
export function maskPlaceholders(text: string): string {
  const blank = (m: string): string => ' '.repeat(m.length);
  let out = text.includes('bst_ph_') ? text.replace(PLACEHOLDER_PATTERN, blank) : text;
  if (out.includes('<<SECRET_')) out = out.replace(PASTED_PLACEHOLDER_PATTERN, blank);
  if (/%3C%3CSECRET_/i.test(out)) out = out.replace(PASTED_PLACEHOLDER_ENCODED, blank);
  return out;
}
