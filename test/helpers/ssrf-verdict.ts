/**
 * The SSRF classifier's verdict on one input, as the vectors and the corpus state
 * it: `allow`, `block`, or `resolve` (decided after DNS). A bare IPv6 address goes
 * to classifyAddress (classifyTarget would read `a:b` as host and port).
 */
import { classifyAddress, classifyTarget } from '../../src/egress/ssrf-classify.ts';

export function verdictOf(r: { input: string; input_kind: string }): 'allow' | 'block' | 'resolve' {
  const bareV6 = r.input_kind === 'ip' && r.input.includes(':') && !r.input.includes('://');
  if (bareV6) return classifyAddress(r.input).allowed ? 'allow' : 'block';
  const t = classifyTarget(r.input);
  return t.verdict === 'allow' ? 'allow' : t.verdict === 'deny' ? 'block' : 'resolve';
}
