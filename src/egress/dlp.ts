/**
 * Outbound DLP for the network door: the secret detector's findings in a
 * request, each with the hosts its credential belongs to (`secretRuleHosts`),
 * so the proxy can block a credential headed anywhere else.
 */
import { findSecrets, secretRuleHosts } from '../detect/secrets.ts';
import type { DlpFinding } from './proxy.ts';

/** Credentials in `text` with their hosts (empty: no known host). */
export function dlpScan(text: string): DlpFinding[] {
  return findSecrets(text).map((f) => ({ rule: f.rule, start: f.start, end: f.end, hosts: secretRuleHosts(f.rule) }));
}
