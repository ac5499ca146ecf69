// The nonce port's contract (test/store/contracts/nonces.ts) on its embedded implementations:
// a table in the SQLite store file (two connections on one file for the shared case) and memory.
// Redis is covered by test/a2a/redis-replay.test.ts.
import { join } from 'node:path';
import { after } from 'node:test';
import { openNonceStore } from '../../src/store/nonces.ts';
import { tempDir } from '../audit/fixtures.ts';
import { runNonceStoreContract } from './contracts/nonces.ts';

const tmp = tempDir();
after(tmp.cleanup);
let n = 0;
const base = { namespace: 'a2a', storePath: '' } as const;

runNonceStoreContract('store (SQLite file)', {
  open: (now) => openNonceStore({ ...base, kind: 'store', storePath: join(tmp.dir, `n${n++}.db`) }, { redisTimeoutMs: 1000, now }),
  openPair: async (now) => {
    const storePath = join(tmp.dir, `n${n++}.db`);
    const open = () => openNonceStore({ ...base, kind: 'store', storePath }, { redisTimeoutMs: 1000, now });
    return [await open(), await open()] as const;
  },
});
runNonceStoreContract('memory', {
  open: (now) => openNonceStore({ ...base, kind: 'memory' }, { redisTimeoutMs: 1000, now }),
});
