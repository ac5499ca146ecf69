/**
 * The network door walkthrough's stand-in for the internet: one HTTPS server on
 * 127.0.0.1 that answers for api.github.com and evil.example.com, with its own
 * CA (written to .bastion/echo-ca.pem for Bastion to trust via
 * NODE_EXTRA_CA_CERTS). It prints the Authorization header each request
 * carried, so you can see what left Bastion, and echoes it back (Bastion
 * redacts the real value before the agent sees the echo).
 *
 * Run from the repository root: npm run demo:echo   (PORT=8443, ECHO_CA_FILE=examples/network-door/.bastion/echo-ca.pem by default)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { dirname, join } from 'node:path';
import { createLocalCa, LeafIssuer } from '../../src/egress/local-ca.ts';

const caFile = process.env.ECHO_CA_FILE ?? join(import.meta.dirname, '.bastion', 'echo-ca.pem');
mkdirSync(dirname(caFile), { recursive: true, mode: 0o700 });
const ca = await createLocalCa({ commonName: 'Echo server demo CA' });
writeFileSync(caFile, ca.certPem);
const issuer = await LeafIssuer.open(ca);
const contexts = new Map([
  ['api.github.com', await issuer.secureContext('api.github.com')],
  ['evil.example.com', await issuer.secureContext('evil.example.com')],
]);

const server = createServer({ SNICallback: (name, cb) => cb(null, contexts.get(name) ?? contexts.get('api.github.com')) }, (req, res) => {
  const auth = req.headers.authorization ?? '(none)';
  process.stdout.write(`echo server: ${req.method} https://${req.headers.host}${req.url} received Authorization: ${auth}\n`);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify({ host: req.headers.host, path: req.url, authorization: auth })}\n`);
});
server.listen(Number(process.env.PORT ?? 8443), '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`echo server listening on 127.0.0.1:${typeof a === 'object' && a ? a.port : ''} (CA: ${caFile})\n`);
});
