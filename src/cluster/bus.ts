/**
 * The cluster bus: how the instances of one deployment tell each other what
 * changed (an approval decided, a pinned definition changed, a new config
 * generation, later the kill switch). Messages are small JSON objects, never
 * secrets; delivery is at most once and best effort, so every consumer also
 * reads the store (the source of truth) and treats a message only as a wake-up.
 *
 * {@link LocalBus} serves one process (the embedded store); the Redis bus
 * (./redis-bus.ts) serves many instances.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';

/** The channels of the bus. `broadcast` is for features that address every instance (kill switch). */
export type ClusterChannel = 'approvals' | 'pins' | 'config' | 'broadcast';

/** Every channel, for subscribers and tests. */
export const CLUSTER_CHANNELS: readonly ClusterChannel[] = ['approvals', 'pins', 'config', 'broadcast'];

/** A message on the bus: a JSON object of non-secret fields. */
export type ClusterMessage = Readonly<Record<string, unknown>>;

/** Receives a message and the id of the instance that sent it (its own id for its own messages). */
export type ClusterHandler = (message: ClusterMessage, from: string) => void;

/** The bus every instance of a deployment shares. */
export interface ClusterBus {
  /** This instance's id (random per process). */
  readonly instanceId: string;
  /**
   * Sends `message` to every instance subscribed to `channel`, this one included.
   * @throws BastionError `ERR_STORE` when the shared transport is unreachable (the caller decides whether that refuses a request).
   */
  publish(channel: ClusterChannel, message: ClusterMessage): Promise<void>;
  /** Calls `handler` for every later message on `channel`; returns the unsubscribe function. A handler that throws is ignored. */
  subscribe(channel: ClusterChannel, handler: ClusterHandler): () => void;
  /** Stops delivery and releases connections; idempotent. */
  close(): Promise<void>;
}

/** The bus of a single process: an in-memory event emitter. */
export class LocalBus implements ClusterBus {
  readonly instanceId: string;
  readonly #events = new EventEmitter();
  #closed = false;

  constructor(instanceId: string = randomUUID()) {
    this.instanceId = instanceId;
    this.#events.setMaxListeners(0);
  }

  publish(channel: ClusterChannel, message: ClusterMessage): Promise<void> {
    if (!this.#closed) this.#events.emit(channel, message, this.instanceId);
    return Promise.resolve();
  }

  subscribe(channel: ClusterChannel, handler: ClusterHandler): () => void {
    const safe = (message: ClusterMessage, from: string): void => {
      try {
        handler(message, from);
      } catch {
        // A subscriber's failure is its own; the bus keeps delivering.
      }
    };
    this.#events.on(channel, safe);
    return () => void this.#events.off(channel, safe);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#events.removeAllListeners();
    return Promise.resolve();
  }
}
