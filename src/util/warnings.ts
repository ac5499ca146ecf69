/**
 * node:sqlite works as documented but is still flagged experimental in Node 24;
 * its one-time ExperimentalWarning on every command (and from the audit worker
 * thread) would read to users as a problem. Installs a `warning` handler that
 * drops exactly that warning and prints every other one as Node would, through
 * the one log-line redactor (a library's warning can quote a URL or a header
 * with a credential in it). The redactor (and the detector's rules) load on
 * the first warning printed, so an entry point that never warns (the audit
 * worker) does not pay for them.
 */

/** Call at the top of an entry point (the CLI, a worker), before node:sqlite loads. */
export function quietSqliteExperimentalWarning(): void {
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (w.name === 'ExperimentalWarning' && /SQLite/.test(w.message)) return;
    void formatWarning(w).then(
      (line) => process.stderr.write(line),
      () => process.stderr.write(`(node:${process.pid}) ${w.name}: [warning withheld: the redactor failed]\n`),
    );
  });
}

/** The line written for warning `w`, as Node writes it (`(node:PID) Name: message`), redacted by `redactLogLine` (src/redact/log.ts). */
export async function formatWarning(w: Error): Promise<string> {
  const { redactLogLine } = await import('../redact/log.ts');
  return redactLogLine(`(node:${process.pid}) ${w.name}: ${w.message}`) + '\n';
}
