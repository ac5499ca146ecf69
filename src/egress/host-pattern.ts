/**
 * Moved to src/net/host-pattern.ts: the host matcher belongs to no door (the
 * vault, the config loader and every door compare hosts with it). This path
 * re-exports it for importers not yet moved.
 */
export { hostMatches, hostMatchesAny, normalizeHost, splitHostPort } from '../net/host-pattern.ts';
