/**
 * The pin port: pinned tool definitions (rug-pull protection, ./pins.ts) and the
 * definitions withheld since, per agent and exposed tool name. The gateway pins
 * on first use and records what it withholds; `bastion tools list|diff|approve`
 * (src/cli/commands/tools.ts) reads both and approves from the store directly,
 * so a running gateway and the CLI meet here. Implemented by every store
 * adapter; contract: test/store/contracts/pins.ts.
 *
 * Errors: every method throws `BastionError('ERR_STORE')` on an I/O or driver
 * failure (driver error as `cause`), `TypeError` / `RangeError` on malformed input.
 */

/** Why a tool is withheld: its pinned definition changed, it is a pinned tool under a new name, it was never approved (mode `manual`), or its description was flagged before first pinning. */
export type PendingPinKind = 'changed' | 'renamed' | 'unapproved' | 'flagged';

/** Every {@link PendingPinKind}, for validation. */
export const PENDING_PIN_KINDS: readonly PendingPinKind[] = Object.freeze(['changed', 'renamed', 'unapproved', 'flagged']);

/** A pinned tool definition. Times are epoch ms. */
export interface StoredPin {
  readonly agent: string;
  /** The exposed tool name (`<upstream>__<name>`). */
  readonly tool: string;
  /** SHA-256 hex of the definition's RFC 8785 canonical JSON. */
  readonly hash: string;
  /** SHA-256 hex of the definition without its name: equal for a renamed tool (./pins.ts). */
  readonly shape: string;
  /** The definition as pinned (canonical JSON): what `bastion tools diff` compares against. */
  readonly definition: string;
  readonly pinnedAt: number;
  /** `first-use`, or who approved it (`cli:<user>`). */
  readonly pinnedBy: string;
}

/** A definition the gateway withholds until an admin approves it (one per agent and tool: the latest seen). */
export interface StoredPendingPin {
  readonly agent: string;
  readonly tool: string;
  readonly kind: PendingPinKind;
  /** SHA-256 hex of the withheld definition: the value `bastion tools approve --hash` must name. */
  readonly hash: string;
  readonly shape: string;
  /** The withheld definition (canonical JSON). */
  readonly definition: string;
  /** JSON object of non-secret facts: `upstream`, `pinnedHash`, `renamedFrom`, `flags`. */
  readonly detail: string;
  /** When this definition was first withheld. */
  readonly detectedAt: number;
}

/** Pins and withheld definitions, unique by (agent, tool) each. */
export interface PinStore {
  /** The agent's pins, ascending by tool. */
  listPins(agent: string): Promise<StoredPin[]>;
  /**
   * Pins `pin` unless the agent has a pin for the tool already; returns the pin
   * stored afterwards (the given one, or the one that was there: the caller
   * compares hashes, so of racing first uses exactly one definition wins).
   */
  pinIfAbsent(pin: StoredPin): Promise<StoredPin>;
  /** The agent's withheld definitions, ascending by tool. */
  listPendingPins(agent: string): Promise<StoredPendingPin[]>;
  /**
   * Records a withheld definition, replacing the tool's earlier one when its
   * hash or kind differs. True when something was recorded (a new detection);
   * false when the same definition was already withheld for the same reason.
   */
  putPendingPin(pending: StoredPendingPin): Promise<boolean>;
  /** Forgets the tool's withheld definition (the upstream went back to the pinned one). False when there was none. */
  removePendingPin(agent: string, tool: string): Promise<boolean>;
  /**
   * Approves the tool's withheld definition, atomically: only when it still has
   * hash `hash`, the definition becomes the tool's pin (replacing an older one)
   * and the withheld record goes. Returns the new pin, or undefined (nothing
   * changed) when no definition with that hash is withheld for the tool.
   */
  approvePendingPin(agent: string, tool: string, hash: string, at: number, by: string): Promise<StoredPin | undefined>;
}
