/**
 * The NonceStore contract (src/store/nonces.ts): a nonce is accepted once
 * while its record lives, again after it expired; racing callers accept it
 * once between them; a closed store refuses (the caller then fails closed).
 * The factory takes the clock (epoch ms) the store must use for expiry.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NonceStore } from '../../../src/store/nonces.ts';
import { T0 } from './harness.ts';

/** Opens a fresh, empty nonce store whose expiry reads `now`; `openPair` two on one shared backing store. */
export interface NonceStoreFactories {
  readonly open: (now: () => number) => Promise<NonceStore>;
  readonly openPair?: ((now: () => number) => Promise<readonly [NonceStore, NonceStore]>) | undefined;
}

/** Runs the NonceStore contract against stores made by `f`. */
export function runNonceStoreContract(name: string, f: NonceStoreFactories): void {
  describe(`NonceStore contract: ${name}`, () => {
    test('a nonce is accepted once while remembered, again after its ttl; keys are independent', async () => {
      let now = T0;
      const s = await f.open(() => now);
      try {
        assert.equal(await s.remember('n1', 1000), true);
        assert.equal(await s.remember('n1', 1000), false, 'replay');
        assert.equal(await s.remember('n2', 1000), true);
        now = T0 + 999;
        assert.equal(await s.remember('n1', 1000), false, 'still remembered 1 ms before its ttl');
        now = T0 + 1001;
        assert.equal(await s.remember('n1', 1000), true, 'expired: accepted again');
        assert.equal(await s.remember('n1', 1000), false);
      } finally {
        await s.close();
      }
    });

    test('concurrent remembers of one nonce: exactly one is accepted', async () => {
      const s = await f.open(() => T0);
      try {
        const results = await Promise.all(Array.from({ length: 10 }, () => s.remember('race', 60_000)));
        assert.equal(results.filter(Boolean).length, 1);
      } finally {
        await s.close();
      }
    });

    const openPair = f.openPair;
    if (openPair !== undefined) {
      test('two stores on one backing store: a nonce is accepted once between them', async () => {
        const [a, b] = await openPair(() => T0);
        try {
          const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).remember('shared', 60_000)));
          assert.equal(results.filter(Boolean).length, 1);
          assert.equal(await a.remember('other', 60_000), true);
          assert.equal(await b.remember('other', 60_000), false);
        } finally {
          await a.close();
          await b.close();
        }
      });
    }

    test('a closed store rejects (never accepts); close is idempotent', async () => {
      const s = await f.open(() => T0);
      await s.close();
      await s.close();
      await assert.rejects(s.remember('n', 1000));
    });
  });
}
