/**
 * Opens the sandbox for `bastion serve` (and tests that serve the same way):
 * probes bubblewrap on this machine, and when it runs, builds the service over
 * the gateway (policy, paths, placeholders, isolations) and the network door
 * (principal sockets, the local CA) and attaches it to the gateway.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BastionError } from '../errors.ts';
import type { Gateway } from '../server/gateway.ts';
import type { NetworkDoor } from '../egress/door.ts';
import { probeSandbox } from './runner.ts';
import { SandboxService } from './service.ts';
import { loadShellParser } from './shell.ts';

/**
 * Opens the sandbox when `sandbox.enabled`; returns undefined when it is off.
 * @throws BastionError `ERR_SANDBOX_UNAVAILABLE` naming why bubblewrap cannot run here
 *   (the caller refuses to start: a gateway that offered the tools could not keep their promise).
 */
export async function openSandbox(gateway: Gateway, door: Pick<NetworkDoor, 'proxy' | 'issuer'> | undefined): Promise<SandboxService | undefined> {
  const config = gateway.config;
  if (!config.sandbox.enabled) return undefined;
  const probe = await probeSandbox({ user: config.sandbox.user });
  if (!probe.available) throw new BastionError('ERR_SANDBOX_UNAVAILABLE', `sandbox.enabled is true but the sandbox cannot run here: ${probe.reason ?? 'unknown reason'}`);
  const unreachable = await unreachableFolder(config.sandbox.workspaces, probe.user);
  if (unreachable !== undefined) {
    throw new BastionError('ERR_SANDBOX_UNAVAILABLE', `the sandbox user (uid ${probe.user.uid}) cannot reach sandbox.workspaces (${config.sandbox.workspaces}): ${unreachable} is not searchable by it; choose a folder it can reach, or make ${unreachable} searchable (mode o+x)`);
  }
  // The shell parser loads once (about 0.2-0.3 s): here, not on the first call.
  loadShellParser();
  const placeholder = gateway.deps.placeholder;
  const service = new SandboxService({
    config: config.sandbox,
    paths: config.paths,
    // Read per call: a reload swaps the policy engine.
    authorize: (req) => gateway.deps.policy.authorize(req),
    probe,
    ...(placeholder !== undefined ? { placeholder } : {}),
    ...(door !== undefined && config.sandbox.network ? { attachSocket: (path, principal) => door.proxy.attachPrincipalSocket(path, principal), caPem: door.issuer.caCertPem } : {}),
    isIsolated: (agent) => gateway.isolations.isIsolated(agent),
  });
  // An isolated agent's runs stop at once (their workspaces are kept for the investigation).
  gateway.isolations.onChange(({ agent, isolated }) => {
    if (isolated) service.stopAgent(agent);
  });
  gateway.attachSandbox(service);
  return service;
}

/**
 * The first folder on the way to `folder` (created, mode 0711, when missing) that `user` may
 * not search, or undefined. bubblewrap, running as that user, binds each workspace by its path,
 * so every folder above it must be searchable by it (permission bits: owner, group or other
 * execute; supplementary groups and ACLs are not read, so a folder reachable only through them
 * is reported). Always undefined when the sandbox runs as Bastion's own user.
 */
export async function unreachableFolder(folder: string, user: { readonly uid: number; readonly gid: number }): Promise<string | undefined> {
  await mkdir(folder, { recursive: true, mode: 0o711 });
  if (user.uid === process.getuid?.()) return undefined;
  for (let dir = folder; ; dir = dirname(dir)) {
    const st = await stat(dir);
    const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}
