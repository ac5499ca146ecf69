/**
 * Preload (`node --import ./test/helpers/exit-on-stdin-eof.ts ...`) for servers that tests spawn:
 * the server exits when its stdin reaches end-of-file, which happens when the test process dies,
 * however it dies (a SIGKILL on timeout runs no exit handlers). The spawning side keeps a pipe on
 * the child's stdin and never writes to it.
 */
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
