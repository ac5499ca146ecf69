/**
 * The SQLite store implements every store port, and the ports cover the whole
 * `Store`: a type-level check (a method added to `Store` outside a port, or a
 * port method missing from a method table below, fails `tsc`) and, per port, a
 * runtime round trip through a value typed as only that port.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PeerStore } from '../../src/a2a/peer-store.ts';
import type { ApprovalStore } from '../../src/approvals/store.ts';
import type { AuditStore } from '../../src/audit/store.ts';
import type { AuditPrunePort } from '../../src/audit/retention-store.ts';
import type { CaStore } from '../../src/egress/ca-store.ts';
import type { KeyStore } from '../../src/identity/key-store.ts';
import type { BanStore } from '../../src/model/ban-store.ts';
import type { OAuthStore } from '../../src/oauth/store.ts';
import type { PinStore } from '../../src/mcp/pin-store.ts';
import type { IsolationStore } from '../../src/incidents/isolation-store.ts';
import type { AgentKeyStore } from '../../src/server/agent-key-store.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';
import type { PastedSecretStore } from '../../src/vault/pasted-store.ts';
import type { VaultStore } from '../../src/vault/store.ts';
import { sampleEvent } from '../audit/fixtures.ts';

/** Every method of a port, exactly (an extra or a missing name fails `satisfies`). */
type MethodTable<P> = { readonly [K in keyof P]-?: true };

const PORTS = {
  AuditStore: { appendAudit: true, appendAuditRecords: true, readAudit: true, lastAudit: true, appendCheckpoint: true, listCheckpoints: true } satisfies MethodTable<AuditStore>,
  AuditPrunePort: { pruneAudit: true } satisfies MethodTable<AuditPrunePort>,
  KeyStore: { getKey: true, listKeys: true, putKey: true } satisfies MethodTable<KeyStore>,
  AgentKeyStore: { agentKeyDigests: true, addAgentKeyDigest: true } satisfies MethodTable<AgentKeyStore>,
  ApprovalStore: {
    createApproval: true, getApproval: true, listApprovals: true, findPendingApproval: true, decideApproval: true, consumeApproval: true, claimApproval: true, expireApproval: true,
  } satisfies MethodTable<ApprovalStore>,
  VaultStore: {
    vaultGeneration: true, createSecret: true, rotateSecret: true, revokeSecret: true, getSecretByName: true, listSecrets: true, listValidSecretVersions: true, touchSecret: true,
    getVaultItem: true, putVaultItemIfAbsent: true,
  } satisfies MethodTable<VaultStore>,
  PastedSecretStore: { putPastedSecret: true, getPastedSecretByToken: true, listPastedSecrets: true, touchPastedSecret: true, setPastedSecretHosts: true } satisfies MethodTable<PastedSecretStore>,
  CaStore: { getVaultItem: true, putVaultItemIfAbsent: true } satisfies MethodTable<CaStore>,
  BanStore: { addBan: true, activeBan: true, listBans: true, liftBans: true } satisfies MethodTable<BanStore>,
  PeerStore: { addPeer: true, getPeer: true, getPeerByInboundDigest: true, listPeers: true, setPeerOutboundToken: true, removePeer: true } satisfies MethodTable<PeerStore>,
  OAuthStore: {
    putPendingAuthorization: true, takePendingAuthorization: true, getUserTokenSet: true, putUserTokenSet: true, deleteUserTokenSet: true, listUserTokenSets: true,
  } satisfies MethodTable<OAuthStore>,
  PinStore: { listPins: true, pinIfAbsent: true, listPendingPins: true, putPendingPin: true, removePendingPin: true, approvePendingPin: true } satisfies MethodTable<PinStore>,
  IsolationStore: { isolateAgent: true, restoreAgent: true, listIsolations: true, markSecretForRotation: true, listRotationMarks: true, endSecretGrace: true } satisfies MethodTable<IsolationStore>,
};

type PortMethod = keyof AuditStore | keyof AuditPrunePort | keyof KeyStore | keyof AgentKeyStore | keyof ApprovalStore | keyof VaultStore | keyof PastedSecretStore | keyof CaStore | keyof BanStore | keyof PeerStore | keyof OAuthStore | keyof PinStore | keyof IsolationStore;
/** `Store` is the ports plus `close`, nothing else: true only when the two sets are equal. */
type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const storeIsThePorts: Equal<Exclude<keyof Store, PortMethod>, 'close'> = true;

test('the ports cover every Store method but close, and the SQLite store has every port method', async () => {
  assert.equal(storeIsThePorts, true);
  const store = await openSqliteStore(':memory:');
  try {
    // Type level: the adapter is each port.
    store satisfies AuditStore & AuditPrunePort & KeyStore & AgentKeyStore & ApprovalStore & VaultStore & PastedSecretStore & CaStore & BanStore & PeerStore & OAuthStore & PinStore & IsolationStore;
    const instance = store as unknown as Record<string, unknown>;
    for (const [port, methods] of Object.entries(PORTS)) {
      for (const m of Object.keys(methods)) assert.equal(typeof instance[m], 'function', `${port}.${m}`);
    }
  } finally {
    await store.close();
  }
});

/** One round trip through a value typed as only the port. */
const SMOKE: Record<keyof typeof PORTS, (store: Store) => Promise<void>> = {
  AuditStore: async (store) => {
    const p: AuditStore = store;
    const [r] = await p.appendAudit([sampleEvent(1)]);
    assert.deepEqual(await p.lastAudit(), r);
  },
  AuditPrunePort: async (store) => {
    const p: AuditPrunePort = store;
    // An empty store: nothing to extend, nothing to delete.
    const out = await p.pruneAudit(() => ({ records: [], checkpoints: [], firstSeq: 0, through: 0, tombstones: [], scannedTip: 0 }));
    assert.equal(out.through, 0);
    assert.equal(await store.lastAudit(), undefined);
  },
  KeyStore: async (store) => {
    const p: KeyStore = store;
    await p.putKey({ id: 'k', purpose: 'identity', alg: 'Ed25519', publicKeyPem: 'pub', privateKeyPem: 'priv', createdAt: 1 });
    assert.equal((await p.getKey('identity'))?.id, 'k');
  },
  AgentKeyStore: async (store) => {
    const p: AgentKeyStore = store;
    await p.addAgentKeyDigest('demo', 'a'.repeat(64), 1);
    assert.deepEqual(await p.agentKeyDigests('demo'), ['a'.repeat(64)]);
  },
  ApprovalStore: async (store) => {
    const p: ApprovalStore = store;
    await p.createApproval({ id: 'x', agent: 'demo', user: null, tool: 't', argsDigest: 'd', argsPreview: '{}', status: 'pending', createdAt: 1, expiresAt: 10, decidedAt: null, decidedBy: null, reason: null });
    assert.equal((await p.getApproval('x'))?.status, 'pending');
  },
  VaultStore: async (store) => {
    const p: VaultStore = store;
    await p.createSecret({ id: 'i', name: 'n', hosts: ['h.example'], header: null, format: null, createdAt: 1, sealed: '{}' });
    assert.equal(await p.vaultGeneration(), 1);
  },
  PastedSecretStore: async (store) => {
    const p: PastedSecretStore = store;
    const row = { id: 'p', token: 'aaaaaaaaaaaa', agent: 'a', user: 'u', fingerprint: 'f', rule: 'r', hosts: [], sealed: '{}', createdAt: 1, lastUsedAt: null };
    assert.deepEqual(await p.putPastedSecret(row), row);
  },
  CaStore: async (store) => {
    const p: CaStore = store;
    assert.equal(await p.putVaultItemIfAbsent('local-ca', 'x'), 'x');
    assert.equal(await p.getVaultItem('local-ca'), 'x');
  },
  BanStore: async (store) => {
    const p: BanStore = store;
    await p.addBan({ agent: 'a', user: 'u', at: 1, rule: 'r', reason: 'x' }, [10], 100);
    assert.equal((await p.activeBan('a', 'u', 2))?.level, 1);
  },
  PeerStore: async (store) => {
    const p: PeerStore = store;
    await p.addPeer({ name: 'b', url: 'https://b.example/a2a/inbound', sender: 'https://b.example', jwksUrl: null, publicJwks: '{"keys":[]}', inboundTokenDigest: 'a'.repeat(64), outboundTokenSealed: null, createdAt: 1 });
    assert.deepEqual((await p.listPeers()).map((x) => x.name), ['b']);
  },
  OAuthStore: async (store) => {
    const p: OAuthStore = store;
    await p.putUserTokenSet('alice', 'gh', '{"sealed":1}', 1);
    assert.equal(await p.getUserTokenSet('alice', 'gh'), '{"sealed":1}');
  },
  PinStore: async (store) => {
    const p: PinStore = store;
    await p.pinIfAbsent({ agent: 'demo', tool: 't', hash: 'h', shape: 's', definition: '{}', pinnedAt: 1, pinnedBy: 'first-use' });
    assert.deepEqual((await p.listPins('demo')).map((x) => x.tool), ['t']);
  },
  IsolationStore: async (store) => {
    const p: IsolationStore = store;
    await p.isolateAgent({ id: 'i', agent: 'demo', reason: 'r', by: 'admin', at: 1 });
    assert.deepEqual((await p.listIsolations({ current: true })).map((x) => x.agent), ['demo']);
  },
};

for (const [port, smoke] of Object.entries(SMOKE)) {
  test(`runtime smoke: the SQLite store used as a ${port}`, async () => {
    const store = await openSqliteStore(':memory:');
    try {
      await smoke(store);
    } finally {
      await store.close();
    }
  });
}
