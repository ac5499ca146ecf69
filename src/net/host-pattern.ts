/**
 * Host patterns of the network door's allowlists and secret host bindings, and
 * the one way a destination host is normalized before it is compared with them.
 *
 * A pattern is an exact host (`api.github.com`, `203.0.113.7`, `2001:db8::1`)
 * or `*.` + a domain, matching any name *below* that domain at any depth
 * (`*.slack.com` matches `hooks.slack.com` and `a.b.slack.com`, not `slack.com`).
 * Comparison is on normalized hosts: lower case, one trailing dot removed, IPv6
 * without brackets. Destinations come from the WHATWG URL parser, which already
 * lower-cases names, applies IDNA (punycode) and canonicalizes IP literals, so a
 * pattern written in Unicode would never match: patterns are ASCII by schema.
 */

/** The normalized form of a host: lower case, no trailing dot, IPv6 without brackets. */
export function normalizeHost(host: string): string {
  let h = host.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.') && h.length > 1) h = h.slice(0, -1);
  return h;
}

/** Whether normalized `host` matches `pattern` (see the module docs). */
export function hostMatches(pattern: string, host: string): boolean {
  const p = normalizeHost(pattern);
  const h = normalizeHost(host);
  if (p.startsWith('*.')) {
    const suffix = p.slice(1);
    return h.length > suffix.length && h.endsWith(suffix);
  }
  return p === h;
}

/** Whether `host` matches any of `patterns`. */
export function hostMatchesAny(patterns: readonly string[], host: string): boolean {
  for (const p of patterns) if (hostMatches(p, host)) return true;
  return false;
}

/**
 * Splits an allowlist shorthand, `host`, `host:port` or `[v6]:port`, into its
 * host and optional port. Returns undefined when it is not of that shape (the
 * host itself is checked by the schema's host pattern afterwards).
 */
export function splitHostPort(text: string): { host: string; port?: number } | undefined {
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/.exec(text);
  if (bracketed) return withPort(bracketed[1] as string, bracketed[2]);
  const colons = text.split(':').length - 1;
  if (colons === 0) return { host: text };
  if (colons > 1) return { host: text }; // a bare IPv6 literal, no port
  const [host, port] = text.split(':') as [string, string];
  if (!/^\d{1,5}$/.test(port)) return undefined;
  return withPort(host, port);
}

function withPort(host: string, port: string | undefined): { host: string; port?: number } | undefined {
  if (port === undefined) return { host };
  const n = Number(port);
  if (!Number.isInteger(n) || n < 1 || n > 65535) return undefined;
  return { host, port: n };
}
