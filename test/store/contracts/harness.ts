/**
 * What every port contract (./<port>.ts) is run with: factories of fresh, empty
 * implementations. An adapter (SQLite now, PostgreSQL later) runs each contract
 * it implements, unchanged (test/store/sqlite.test.ts shows how).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBastionError } from '../../../src/errors.ts';

/** An implementation of a port that can be released. */
export type Closable<P> = P & { close(): Promise<void> };

/** Opens a fresh, empty implementation of port `P` (each call a new store). */
export type PortFactory<P> = () => Promise<Closable<P>>;

/**
 * Opens two handles on one fresh, empty store (two connections, or two
 * processes' worth of state), for the cross-connection cases. Adapters that
 * cannot share (an in-memory store) leave it out and those cases are not run.
 */
export type PairFactory<P> = () => Promise<readonly [Closable<P>, Closable<P>]>;

/** Options of every `run…Contract`. */
export interface ContractOptions<P> {
  readonly openPair?: PairFactory<P> | undefined;
}

/** 2026-01-01T00:00:00Z, epoch ms: the contracts' clock. */
export const T0 = 1_767_225_600_000;

/** Runs `fn` on a fresh implementation and closes it afterwards. */
export async function withPort<P>(open: PortFactory<P>, fn: (port: Closable<P>) => Promise<void>): Promise<void> {
  const port = await open();
  try {
    await fn(port);
  } finally {
    await port.close();
  }
}

/** Runs `fn` on two handles of one fresh store and closes both. */
export async function withPair<P>(openPair: PairFactory<P>, fn: (a: Closable<P>, b: Closable<P>) => Promise<void>): Promise<void> {
  const [a, b] = await openPair();
  try {
    await fn(a, b);
  } finally {
    await a.close();
    await b.close();
  }
}

/**
 * A cross-connection test, registered only when the adapter gave a pair factory
 * (a store that cannot be shared, such as SQLite `:memory:`, has no such case).
 */
export function pairTest<P>(name: string, opts: ContractOptions<P>, fn: (a: Closable<P>, b: Closable<P>) => Promise<void>): void {
  const openPair = opts.openPair;
  if (openPair !== undefined) test(name, () => withPair(openPair, fn));
}

/**
 * The lifecycle case every contract has: close twice is fine, and afterwards
 * each of `calls` rejects with `ERR_STORE` (never a driver error, never a hang).
 */
export function closedTest<P>(open: PortFactory<P>, calls: readonly ((port: P) => Promise<unknown>)[]): void {
  test('methods of a closed store throw ERR_STORE', async () => {
    const s = await open();
    await s.close();
    await s.close();
    for (const call of calls) await assert.rejects(call(s), (err) => isBastionError(err, 'ERR_STORE'));
  });
}
