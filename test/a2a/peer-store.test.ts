/**
 * The store's peer table (schema v4) on SQLite in memory: the PeerStore
 * contract (test/store/contracts/peers.ts) — unique names and inbound digests,
 * one key source per peer, outbound tokens replaced in place, removal.
 */
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { runPeerStoreContract } from '../store/contracts/peers.ts';

runPeerStoreContract('sqlite (:memory:)', () => openSqliteStore(':memory:'));
