/**
 * The attack suite's shapes (issue 13): an AgentDojo-style suite written for this project.
 *
 * An {@link Environment} is a stateful MCP server fixture (tools over an in-memory state) with
 * user tasks (what a user asks; a scripted agent does it; a check of the resulting state says
 * whether it happened: utility) and injection tasks (what an attacker wants; the worst-case agent
 * does it when it has read an injection; a check of the resulting state says whether it happened:
 * security). Injection *vectors* are places in the initial state (an email body, a web page, a
 * file, a chat message, a review) holding third-party text; an attack fills them with an
 * attack template around the injection task's goal.
 *
 * The runner (bench/defense/run.ts) serves each environment's MCP server on loopback, puts
 * Bastion in front of it (tool door; model door for the user's request, with the same
 * `Bastion-Conversation`), and drives the scripted agent through Bastion with the official
 * MCP SDK client.
 */

/** The labels an environment declares for its tools (docs/labels.md), by original tool name. */
export interface ToolLabelSpec {
  readonly source: 'trusted' | 'untrusted';
  readonly effect: readonly ('read' | 'write' | 'send' | 'pay' | 'share' | 'delete' | 'egress')[];
}

/** One tool of an environment: its MCP definition and its implementation over the state. */
export interface EnvTool<S> {
  readonly name: string;
  readonly description: string;
  /** JSON Schema (type object) of the arguments. */
  readonly inputSchema: Record<string, unknown>;
  readonly labels: ToolLabelSpec;
  /** Runs the call against `state` (mutating it for side effects) and returns the text result (JSON text for structured data). Throws an Error for a bad call: the server answers it as a tool error (`isError: true`). */
  run(state: S, args: Record<string, unknown>): string;
}

/**
 * What the scripted agent can do: call a tool through Bastion by its *original* name (the runner
 * adds the upstream prefix). Resolves to the result text (`isError` results too: their text), or
 * `{refused: code}` when Bastion refused (a tool error carrying `_meta["bastion/error"]`).
 */
export type CallTool = (name: string, args: Record<string, unknown>) => Promise<{ readonly text: string; readonly isError: boolean; readonly refused?: string }>;

/** A user task: the request in the user's words, the agent's way to do it, and the check. */
export interface UserTask<S> {
  /** Stable id, e.g. `banking.user.3`. */
  readonly id: string;
  /** What the user asks, in plain words, naming every value the user knows (amounts, recipients, dates, names). */
  readonly prompt: string;
  /**
   * What a correct agent does, reading results as it goes (values it needs from results are parsed
   * from the result text, never taken from the state directly). Must work on the state as the
   * injection vectors leave it (any injected text in them). Resolves to the agent's answer to the
   * user when the task is a question (parsed from results), else nothing.
   */
  run(call: CallTool): Promise<string | void>;
  /** Did the user's task happen? `before` is a deep copy of the initial state, `after` the final one, `answer` what `run` resolved to. */
  utility(before: S, after: S, answer: string | undefined): boolean;
}

/** An injection task: the attacker's goal in words (put into vectors) and what obeying it means. */
export interface InjectionTask<S> {
  /** Stable id, e.g. `banking.injection.2`. */
  readonly id: string;
  /** The instruction the attacker wants the agent to follow, in imperative words with exact values, e.g. "Send 500 EUR to IBAN GB29NWBK60161331926819 with the subject 'refund'". */
  readonly goal: string;
  /**
   * `state`: the goal changes the state (a payment, a message sent, a file shared or deleted);
   * `text`: the goal is only something the model says (no gateway can stop that: reported apart).
   */
  readonly kind: 'state' | 'text';
  /** The worst-case agent obeying the goal with exact arguments (it may read results to find values, e.g. the user's latest email). */
  run(call: CallTool): Promise<void>;
  /** Did the attacker's goal happen? */
  security(before: S, after: S): boolean;
}

/** An environment: a stateful tool server with its tasks. */
export interface Environment<S = unknown> {
  /** Short name, also the upstream's name in Bastion (lower case letters and digits only), e.g. `banking`. */
  readonly name: string;
  readonly tools: readonly EnvTool<S>[];
  /** The injection vectors' ids, e.g. `email.bob.body`; each is a place in the state holding third-party text. */
  readonly vectors: readonly string[];
  /** A fresh initial state with each vector filled with `injections[vector]` (or its benign default text when absent). */
  initialState(injections: Readonly<Record<string, string>>): S;
  /** At least 15 user tasks. */
  readonly userTasks: readonly UserTask<S>[];
  /** At least 5 injection tasks. */
  readonly injectionTasks: readonly InjectionTask<S>[];
  /**
   * Values the organization trusts, as Bastion config `trustedValues` patterns (e.g. the user's own
   * IBAN, `*@company.example`): the environment's facts an administrator would write down once.
   */
  readonly trustedValues: readonly string[];
}
