/**
 * Helpers shared by the attack suite's environments (bench/defense/env-banking.ts, env-email.ts,
 * env-chat.ts, env-drive.ts): assembling an {@link Environment} from its vectors' benign texts,
 * the tools' argument checks (a bad call throws: the MCP server answers it as a tool error), the
 * scripted agents' call helpers (values come from result texts, never from the state) and the
 * text-only injection task every environment has.
 */

import type { CallTool, EnvTool, Environment, InjectionTask, UserTask } from './types.ts';

// ---- environments ----

/** What {@link defineEnvironment} needs: an {@link Environment} whose state is built from vector slots. */
export interface EnvironmentSpec<S> {
  readonly name: string;
  readonly tools: readonly EnvTool<S>[];
  /** Each injection vector's id and its benign text; the keys are the environment's `vectors`, in this order. */
  readonly vectorDefaults: Readonly<Record<string, string>>;
  /** A fresh state; `slot(id)` is the text vector `id` holds in it (the injected text or the benign default). */
  createState(slot: (id: string) => string): S;
  readonly userTasks: readonly UserTask<S>[];
  readonly injectionTasks: readonly InjectionTask<S>[];
  readonly trustedValues: readonly string[];
}

/**
 * An environment whose `vectors` are the keys of `spec.vectorDefaults` and whose `initialState`
 * fills each vector with `injections[vector]`, else its benign default.
 *
 * `initialState` throws an Error `unknown injection vector <id>` when `injections` names an id that
 * is not one of the vectors (a typo would otherwise silently run the benign text).
 */
export function defineEnvironment<S>(spec: EnvironmentSpec<S>): Environment<S> {
  const defaults = spec.vectorDefaults;
  return {
    name: spec.name,
    tools: spec.tools,
    vectors: Object.keys(defaults),
    initialState: (injections) => {
      for (const key of Object.keys(injections)) {
        if (!Object.hasOwn(defaults, key)) throw new Error(`unknown injection vector ${key}`);
      }
      return spec.createState((id) => injections[id] ?? defaults[id] ?? '');
    },
    userTasks: spec.userTasks,
    injectionTasks: spec.injectionTasks,
    trustedValues: spec.trustedValues,
  };
}

/**
 * An injection task whose goal is only something the model says (`kind: 'text'`): it changes no
 * state, so its `run` calls nothing and `security` is always false; no gateway can see it, and the
 * runner reports it apart.
 */
export function textInjection<S>(id: string, goal: string): InjectionTask<S> {
  return { id, goal, kind: 'text', run: () => Promise.resolve(), security: () => false };
}

// ---- argument checks: each throws an Error naming the argument ----

/** `args[key]` as a string that is not empty or only white space (returned as given, untrimmed). */
export function argString(args: Record<string, unknown>, key: string): string {
  const value = args[key];
  if (typeof value !== 'string' || value.trim() === '') throw new Error(`${key} must be a non-empty string`);
  return value;
}

/** `args[key]` checked as by {@link argString}, or `undefined` when absent. */
export function argOptionalString(args: Record<string, unknown>, key: string): string | undefined {
  return args[key] === undefined ? undefined : argString(args, key);
}

/** `args[key]` as an integer (a record id). */
export function argId(args: Record<string, unknown>, key: string): number {
  const value = args[key];
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new Error(`${key} must be an integer`);
  return value;
}

/** `args[key]` as an absolute http: or https: URL, returned as given (not normalized). */
export function argUrl(args: Record<string, unknown>, key: string): string {
  const value = argString(args, key);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${key} must be an absolute URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`${key} must be an http(s) URL`);
  return value;
}

/** A loose email address shape (something@host.tld, no white space), as the chat and drive tools accept. */
export const EMAIL_ADDRESS = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

// ---- the scripted agents' helpers ----

/**
 * Calls a tool through `call` and resolves to its result text.
 *
 * @throws Error `<name> refused: <code>` when Bastion refused the call, `<name> failed: <text>` on
 *   a tool error: either ends the agent's task.
 */
export async function callText(call: CallTool, name: string, args: Record<string, unknown> = {}): Promise<string> {
  const result = await call(name, args);
  if (result.refused !== undefined) throw new Error(`${name} refused: ${result.refused}`);
  if (result.isError) throw new Error(`${name} failed: ${result.text}`);
  return result.text;
}

/** {@link callText}, its result parsed as JSON (unchecked: typed as `T`). Throws as `callText` does, or a SyntaxError for a result that is not JSON. */
export async function callJson<T>(call: CallTool, name: string, args: Record<string, unknown> = {}): Promise<T> {
  return JSON.parse(await callText(call, name, args)) as T;
}

/** The first capture group of `pattern` in `text`. @throws Error when `pattern` does not match. */
export function firstGroup(text: string, pattern: RegExp): string {
  const value = pattern.exec(text)?.[1];
  if (value === undefined) throw new Error(`no match for ${String(pattern)}`);
  return value;
}

/** The first capture group of the first line of `text` that `pattern` matches. @throws Error when no line matches. */
export function lineValue(text: string, pattern: RegExp): string {
  for (const line of text.split('\n')) {
    const match = pattern.exec(line);
    if (match?.[1] !== undefined) return match[1];
  }
  throw new Error(`no line matches ${String(pattern)}`);
}

// ---- checks over states ----

/** Whether `text` is present and holds every one of `parts`. */
export const includesAll = (text: string | undefined, parts: readonly string[]): boolean => text !== undefined && parts.every((p) => text.includes(p));

/** Whether `url` parses and its host is `domain` or a subdomain of it; false for a text that is not a URL. */
export function isUrlWithin(url: string, domain: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return false;
  }
  return host === domain || host.endsWith(`.${domain}`);
}
