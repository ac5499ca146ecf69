/**
 * Worker thread that chains audit events (./chain.ts, `chainRecords` over
 * `jsonSnapshot` events) for {@link OffThreadChainer} in ./chainer.ts: hashing
 * the chain is the costliest part of recording an event, and here it runs
 * beside the doors instead of between their requests. The same code as on the
 * main thread, so the records are the same.
 *
 * Protocol (util/worker-client.ts): in `{id, tip, events}` (`events`: JSON text
 * of an array of events; `tip`: `{seq, hash}` or null); out `{id, value}` (JSON
 * text of the records) or `{id, error: {code, message}}`.
 */
import { parentPort } from 'node:worker_threads';
import { chainRecords } from './chain.ts';
import type { AuditEvent } from './types.ts';

const port = parentPort;
if (!port) throw new Error('chain-worker must run as a worker thread');

port.on('message', (msg: { id: number; tip: { seq: number; hash: string } | null; events: string } | { close: true }) => {
  if ('close' in msg) {
    port.close();
    return;
  }
  try {
    // Parsed from JSON text: every event is what `jsonSnapshot` returns, so the snapshot path applies.
    const events = JSON.parse(msg.events) as AuditEvent[];
    const records = chainRecords(msg.tip ?? undefined, events, { snapshots: true });
    port.postMessage({ id: msg.id, value: JSON.stringify(records) });
  } catch (err) {
    port.postMessage({ id: msg.id, error: { code: err instanceof TypeError ? 'TypeError' : err instanceof RangeError ? 'RangeError' : 'Error', message: err instanceof Error ? err.message : 'chain failed' } });
  }
});
