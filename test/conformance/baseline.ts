/**
 * Measured conformance baselines: server scenarios of @modelcontextprotocol/conformance
 * 0.2.0-alpha.12, per protocol revision (requirement set), used to judge runs through the gateway
 * against runs without it. Node 24.9; 1.x fixture on @modelcontextprotocol/sdk 1.32.2; 2026 fixture
 * on @modelcontextprotocol/server 2.4.0 + @modelcontextprotocol/node 2.1.2; server-everything
 * 2026.8.31.
 *
 * How they were produced (2026-12-06), with runConformanceDetailed(url, { requirements: REV }) from
 * test/helpers/conformance.ts, i.e.
 *   `node node_modules/@modelcontextprotocol/conformance/dist/index.js server --url URL --requirements REV -o DIR`
 * against
 *   fixture (2025-11-25):      node test/fixtures/conformance-server/server.ts --http 0
 *   fixture-2026 (2026-07-28): node test/fixtures/conformance-server-2026/server.ts --http 0
 *   everything (2025-11-25):   PORT=<free> node --import ./test/helpers/loopback-listen.ts \
 *                                node_modules/@modelcontextprotocol/server-everything/dist/index.js streamableHttp
 * Verdict as in test/helpers/conformance.ts: pass = at least one SUCCESS check, no FAILURE and no
 * WARNING check (SKIPPED and INFO are neutral). Repeated runs (3 each) gave identical verdicts.
 *
 * `--requirements REV` runs the revision's scored server scenarios plus its `not_scored` ones
 * (added-after-release, pending, extension), each at that revision's wire. The lists below are
 * copied from `conformance list --server --requirements REV` of 0.2.0-alpha.12; the tests assert
 * that the CLI ran exactly these, so a new CLI version that changes them fails loudly.
 */

export const conformanceVersion = '0.2.0-alpha.12';

// ---------------------------------------------------------------- 2025-11-25 (stateful wire)

/** Scored server scenarios of requirement set 2025-11-25. */
export const scored2025 = [
  'server-initialize',
  'logging-set-level',
  'ping',
  'completion-complete',
  'tools-list',
  'tools-call-simple-text',
  'tools-call-image',
  'tools-call-audio',
  'tools-call-embedded-resource',
  'tools-call-mixed-content',
  'tools-call-with-logging',
  'tools-call-error',
  'tools-call-with-progress',
  'tools-call-sampling',
  'tools-call-elicitation',
  'elicitation-sep1034-defaults',
  'server-sse-multiple-streams',
  'elicitation-sep1330-enums',
  'resources-list',
  'resources-read-text',
  'resources-read-binary',
  'resources-templates-read',
  'resources-subscribe',
  'resources-unsubscribe',
  'prompts-list',
  'prompts-get-simple',
  'prompts-get-with-args',
  'prompts-get-embedded-resource',
  'prompts-get-with-image',
  'dns-rebinding-protection',
] as const;

/** Run but not scored at 2025-11-25: server-session-lifecycle (added-after-release), json-schema-2020-12 and server-sse-polling (pending). */
export const notScored2025 = ['server-session-lifecycle', 'json-schema-2020-12', 'server-sse-polling'] as const;

/** Every server scenario `--requirements 2025-11-25` runs (33). */
export const scenarios2025: readonly string[] = [...scored2025, ...notScored2025];

/**
 * 1.x fixture, direct: all 33 pass, no WARNING. 0.2.0 also checks json-schema-2020-12's tool for
 * the SEP-2106 keywords ($anchor, allOf/anyOf, if/then/else): SKIPPED when absent at this wire, a
 * FAILURE at 2026-07-28. The fixture's tool now carries them, so those checks are SUCCESS.
 */
export const fixtureDirectPass2025: readonly string[] = scenarios2025;

/**
 * server-everything 2026.8.31 (streamableHttp), direct. It does not implement the conformance
 * tools, resources or prompts. tools-call-simple-text and tools-call-error "pass" only because the
 * unknown tool comes back as an isError result with text, which is all those two checks look at.
 */
export const everythingDirectPass2025: readonly string[] = [
  'server-initialize',
  'logging-set-level',
  'ping',
  'tools-list',
  'tools-call-simple-text',
  'tools-call-error',
  'server-sse-multiple-streams',
  'resources-list',
  'resources-subscribe',
  'resources-unsubscribe',
  'prompts-list',
];

/**
 * Why each fails: completion/prompts/resources/tools under test not found; dns-rebinding-protection
 * answers 200 to `Host: evil.example.com`; server-session-lifecycle: a terminated session id gets
 * 400 instead of 404; server-sse-polling: test_reconnection unknown (FAILURE) and no retry field
 * (WARNING).
 */
export const everythingDirectFail2025: readonly string[] = scenarios2025.filter((s) => !everythingDirectPass2025.includes(s));

/** Scenarios whose server-side behaviour needs a server→client request (sampling, elicitation) to cross the gateway. */
export const serverToClientRequestScenarios = [
  'tools-call-sampling',
  'tools-call-elicitation',
  'elicitation-sep1034-defaults',
  'elicitation-sep1330-enums',
] as const;

// ---------------------------------------------------------------- 2026-07-28 (stateless wire)

/** Scored server scenarios of requirement set 2026-07-28 (frozen at its release). */
export const scored2026 = [
  'server-stateless',
  'completion-complete',
  'tools-list',
  'tools-call-simple-text',
  'tools-call-image',
  'tools-call-audio',
  'tools-call-embedded-resource',
  'tools-call-mixed-content',
  'tools-call-error',
  'tools-call-with-progress',
  'server-sse-multiple-streams',
  'resources-list',
  'resources-read-text',
  'resources-read-binary',
  'resources-templates-read',
  'sep-2164-resource-not-found',
  'prompts-list',
  'prompts-get-simple',
  'prompts-get-with-args',
  'prompts-get-embedded-resource',
  'prompts-get-with-image',
  'dns-rebinding-protection',
  'caching',
  'input-required-result-basic-elicitation',
  'input-required-result-basic-sampling',
  'input-required-result-basic-list-roots',
  'input-required-result-request-state',
  'input-required-result-multiple-input-requests',
  'input-required-result-multi-round',
  'input-required-result-missing-input-response',
  'input-required-result-non-tool-request',
  'input-required-result-result-type',
  'input-required-result-unsupported-methods',
  'input-required-result-tampered-state',
  'input-required-result-capability-check',
  'input-required-result-ignore-extra-params',
  'input-required-result-validate-input',
] as const;

/** The io.modelcontextprotocol/tasks extension (SEP-2663): run, never scored at 2026-07-28. */
export const tasksExtension2026 = [
  'tasks-lifecycle',
  'tasks-capability-negotiation',
  'tasks-wire-fields',
  'tasks-request-state-removal',
  'tasks-mrtr-input',
  'tasks-request-headers',
  'tasks-dispatch-and-envelope',
  'tasks-status-notifications',
  'tasks-required-task-error',
  'tasks-mrtr-composition',
] as const;

/** Pending at 2026-07-28 (run, never scored): json-schema-2020-12 and the SEP-2243 header scenarios. */
export const pending2026 = ['json-schema-2020-12', 'http-header-validation', 'http-custom-header-server-validation'] as const;

/** Every server scenario `--requirements 2026-07-28` runs (50). */
export const scenarios2026: readonly string[] = [...scored2026, ...tasksExtension2026, ...pending2026];

/**
 * 2026 fixture, direct: every scored scenario and every pending one passes (40), with no WARNING.
 */
export const fixture2026DirectPass: readonly string[] = [...scored2026, ...pending2026];

/**
 * 2026 fixture, direct, failing: the tasks extension only. @modelcontextprotocol/server 2.4.0 has
 * no server-side support for io.modelcontextprotocol/tasks (no tasks/get, tasks/result,
 * tasks/cancel, tasks/update handlers, no task-augmented dispatch), and the requirement set itself
 * lists these as "pending against the reference fixture". tasks-status-notifications writes a
 * single SKIPPED check (nothing to observe without tasks), which the helper counts as a failure.
 */
export const fixture2026DirectFail: readonly string[] = tasksExtension2026;

/**
 * Direct passes Bastion deliberately does not pass through (measured 2026-12-06): the upstream asks the
 * client for its roots, which Bastion never offers upstream (test/conformance/through-bastion-2026.test.ts).
 */
export const rootsScenarios2026: readonly string[] = ['input-required-result-basic-list-roots', 'input-required-result-multiple-input-requests'];
