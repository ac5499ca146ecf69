/**
 * node:sqlite works as documented but is still flagged experimental in Node 24;
 * its one-time ExperimentalWarning on every command (and from the audit worker
 * thread) would read to users as a problem. Installs a `warning` handler that
 * drops exactly that warning and prints every other one as Node would. Call it
 * at the top of an entry point (the CLI, a worker), before node:sqlite loads.
 */
export function quietSqliteExperimentalWarning(): void {
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (w.name === 'ExperimentalWarning' && /SQLite/.test(w.message)) return;
    process.stderr.write(`(node:${process.pid}) ${w.name}: ${w.message}\n`);
  });
}
