/**
 * The peer port: agent-to-agent peers registered by an admin (`bastion peers`,
 * ./peers.ts) and looked up by the A2A door (./door.ts) by name (outbound) or
 * by the digest of the bearer token a peer presents (inbound). Never a clear
 * token. Implemented by every store adapter; contract: test/store/contracts/peers.ts.
 *
 * Errors: every method throws `BastionError('ERR_STORE')` on an I/O or driver
 * failure (driver error as `cause`).
 */

/**
 * An agent-to-agent peer: another Bastion (or A2A gateway) registered by an
 * admin with `bastion peers add`. Never a clear token. Times are epoch ms.
 */
export interface StoredPeer {
  /** Local name of the peer (`[A-Za-z0-9_.-]{1,64}`), as `a2a.agents.*.peers` / `receiveFrom` name it. */
  readonly name: string;
  /** The peer's inbound endpoint (`https://peer.example/a2a/inbound`). */
  readonly url: string;
  /** The peer's sender id (its `identity.issuer`): the `sender` its signed messages must carry. */
  readonly sender: string;
  /** Where the peer's JWKS is fetched from, or null when its keys are pinned. */
  readonly jwksUrl: string | null;
  /** Pinned public keys: the JSON of a JWKS (RFC 7517 §5) of Ed25519 keys with `kid`s, or null when fetched from `jwksUrl`. */
  readonly publicJwks: string | null;
  /** SHA-256 hex of the bearer token the peer presents to us (unique). */
  readonly inboundTokenDigest: string;
  /** The bearer token we present to the peer, sealed with the vault KEK (JSON of a `SealedSecret`), or null: not set yet. */
  readonly outboundTokenSealed: string | null;
  readonly createdAt: number;
}

/** Registered peers, unique by name and by inbound token digest. */
export interface PeerStore {
  /**
   * Registers a peer. Returns false (changing nothing) when a peer has the name
   * or the inbound token digest already.
   * @throws TypeError unless exactly one of `jwksUrl` and `publicJwks` is set; BastionError `ERR_STORE`.
   */
  addPeer(peer: StoredPeer): Promise<boolean>;
  /** The peer with this name, or undefined. */
  getPeer(name: string): Promise<StoredPeer | undefined>;
  /** The peer whose inbound token has this SHA-256 hex digest, or undefined. */
  getPeerByInboundDigest(digest: string): Promise<StoredPeer | undefined>;
  /** Every peer, ascending by name. */
  listPeers(): Promise<StoredPeer[]>;
  /** Replaces a peer's sealed outbound token. False when the peer is unknown. */
  setPeerOutboundToken(name: string, sealed: string): Promise<boolean>;
  /** Removes a peer; its name and digest are free again. False when unknown. */
  removePeer(name: string): Promise<boolean>;
}
