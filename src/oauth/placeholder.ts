/**
 * The network door's placeholder for an end user's OAuth token:
 * `<<OAUTH_provider>>`, written by the agent as the whole value of an
 * `Authorization` header (`Authorization: <<OAUTH_acme>>`). It names a provider,
 * not a value, so it is not secret: the network door swaps it for
 * `Bearer <the request's end user's token>` only where the release rule allows
 * (src/vault/release.ts: the agent holds `agents.X.oauth`, the end user named
 * by the request, the provider's declared `hosts`, https, the whole header).
 */

/** `<<OAUTH_name>>` with a provider name as `oauth.providers` spells it. Linear: no nested quantifiers. */
export const OAUTH_PLACEHOLDER_PATTERN = /<<OAUTH_([a-z0-9][a-z0-9_.-]{0,63})>>/g;

/** The provider names of every OAuth placeholder in `text`, each once, in order of first appearance. */
export function findOAuthPlaceholders(text: string): string[] {
  if (!text.includes('<<OAUTH_')) return [];
  const out = new Set<string>();
  for (const m of text.matchAll(OAUTH_PLACEHOLDER_PATTERN)) out.add(m[1] as string);
  return [...out];
}

/** The placeholder for `provider`. */
export function oauthPlaceholder(provider: string): string {
  return `<<OAUTH_${provider}>>`;
}
