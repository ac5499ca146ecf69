/**
 * `bastion ca export`: prints the local CA certificate (PEM) the network door
 * signs intercepted connections with, creating the CA on first use, so clients
 * can be told to trust it (NODE_EXTRA_CA_CERTS, curl --cacert, ...).
 *
 * Exit codes: 0 printed; 2 usage; 3 config; 4 store; 1 the vault key could not
 * be loaded or the stored CA is unusable; 70 internal error.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { loadConfig } from '../../config/load.ts';
import type { ResolvedConfig } from '../../config/types.ts';
import { localCaCertificate } from '../../egress/ca-store.ts';
import { isBastionError, toBastionError } from '../../errors.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/store.ts';
import { loadKek, MASTER_KEY_ENV } from '../../vault/kek.ts';
import { parseFlags } from '../args.ts';
import { EXIT, type CliCommand } from '../io.ts';
import { resolveConfigPath } from './config-check.ts';

const USAGE = `Usage: bastion ca export [--out FILE] [--config FILE]

Prints the certificate (PEM) of the local CA that the network door uses to
intercept TLS for hosts with a bound secret, creating the CA on first use.
Trust it in the agent's environment, e.g.
  NODE_EXTRA_CA_CERTS=bastion-ca.pem   (Node)
  curl --cacert bastion-ca.pem         (curl)
  REQUESTS_CA_BUNDLE / SSL_CERT_FILE    (Python; append it to the bundle)
The private key never leaves the store (sealed by the vault key).

Options:
  -o, --out FILE        write the PEM to FILE instead of stdout
  -c, --config FILE     config file (default: $BASTION_CONFIG, else ./bastion.yaml)
  -h, --help            show this help
`;

export const caExport: CliCommand = async (argv, io) => {
  const parsed = parseFlags('ca export', USAGE, argv, { out: { type: 'string', short: 'o' }, config: { type: 'string', short: 'c' } }, io);
  if (typeof parsed === 'number') return parsed;
  const v = parsed.values as { out?: string; config?: string };
  let config: ResolvedConfig;
  try {
    ({ config } = await loadConfig(resolveConfigPath(v.config, io), { env: io.env, secrets: 'lenient' }));
  } catch (err) {
    io.stderr(`bastion ca export: ${toBastionError(err).message}\n`);
    return EXIT.CONFIG;
  }
  let store: Store;
  try {
    store = await openStore(config.store);
  } catch (err) {
    io.stderr(`bastion ca export: ${toBastionError(err).message}\n`);
    return EXIT.STORE;
  }
  try {
    const kek = await loadKek({ env: io.env[MASTER_KEY_ENV], keyFile: config.vault.keyFile }, { create: true });
    const pem = await localCaCertificate(store, kek);
    if (v.out !== undefined) {
      await writeFile(resolve(io.cwd, v.out), pem, { mode: 0o644 });
      io.stderr(`bastion ca export: wrote ${v.out}\n`);
    } else io.stdout(pem.endsWith('\n') ? pem : `${pem}\n`);
    return EXIT.OK;
  } catch (err) {
    const e = toBastionError(err);
    io.stderr(`bastion ca export: ${isBastionError(err) ? e.message : 'internal error'}\n`);
    if (e.code === 'ERR_STORE') return EXIT.STORE;
    return isBastionError(err) ? EXIT.FAILED : EXIT.INTERNAL;
  } finally {
    await store.close();
  }
};
