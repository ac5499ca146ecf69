/**
 * Every port contract, for an adapter that implements the whole `Store`
 * (src/store/store.ts). A partial adapter runs the contracts of the ports it
 * implements instead, each from its own file.
 */
import type { Store } from '../../../src/store/store.ts';
import { runAgentKeyStoreContract } from './agent-keys.ts';
import { runApprovalStoreContract } from './approvals.ts';
import { runAuditStoreContract } from './audit.ts';
import { runBanStoreContract } from './bans.ts';
import { runCaStoreContract } from './ca.ts';
import type { ContractOptions, PortFactory } from './harness.ts';
import { runKeyStoreContract } from './keys.ts';
import { runOAuthStoreContract } from './oauth.ts';
import { runPastedSecretStoreContract } from './pasted-secrets.ts';
import { runPeerStoreContract } from './peers.ts';
import { runPinStoreContract } from './pins.ts';
import { runIsolationStoreContract } from './isolations.ts';
import { runVaultStoreContract } from './vault.ts';

/** Runs every port's contract against stores made by `open` (each call a fresh, empty store). */
export function runStoreContracts(name: string, open: PortFactory<Store>, opts: ContractOptions<Store> = {}): void {
  runAuditStoreContract(name, open, opts);
  runKeyStoreContract(name, open, opts);
  runAgentKeyStoreContract(name, open, opts);
  runApprovalStoreContract(name, open, opts);
  runVaultStoreContract(name, open, opts);
  runPastedSecretStoreContract(name, open, opts);
  runCaStoreContract(name, open, opts);
  runBanStoreContract(name, open, opts);
  runPeerStoreContract(name, open, opts);
  runOAuthStoreContract(name, open, opts);
  runPinStoreContract(name, open, opts);
  runIsolationStoreContract(name, open, opts);
}
