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
import { findSecrets, secretRuleHosts } from '../detect/secrets.ts';
import { PASTED_PLACEHOLDER_ENCODED, PASTED_PLACEHOLDER_PATTERN } from '../vault/pasted.ts';
import { PLACEHOLDER_PATTERN } from '../vault/placeholder.ts';
import type { DlpFinding } from './proxy.ts';

/** Credentials in `text` with their hosts (empty: no known host). */
export function dlpScan(text: string): DlpFinding[] {
  return findSecrets(text).map((f) => ({ rule: f.rule, start: f.start, end: f.end, hosts: secretRuleHosts(f.rule) }));
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
