import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  isProtectedVariable,
  parseShellLine,
  SHELL_WRAPPERS,
  type ShellCommand,
  type ShellParse,
  type ShellWord,
} from '../../src/sandbox/shell.ts';

function commands(line: string): readonly ShellCommand[] {
  const r = parseShellLine(line);
  assert.equal(r.ok, true, `expected ${JSON.stringify(line)} to parse: ${JSON.stringify(r)}`);
  return r.ok ? r.commands : [];
}

function refused(line: string, reason: RegExp, code: 'ERR_SHELL_UNSUPPORTED' | 'ERR_SHELL_PARSE' = 'ERR_SHELL_UNSUPPORTED'): void {
  const r = parseShellLine(line);
  assert.equal(r.ok, false, `expected ${JSON.stringify(line)} to be refused: ${JSON.stringify(r)}`);
  if (!r.ok) {
    assert.equal(r.code, code, r.reason);
    assert.match(r.reason, reason);
  }
}

/** `ls` for static words, `<text>` for dynamic ones: compact for assertions. */
function show(word: ShellWord): string {
  return word.kind === 'static' ? word.value : `<${word.text}>`;
}

function argvs(line: string): string[][] {
  return commands(line).map((c) => c.argv.map(show));
}

function find(cmds: readonly ShellCommand[], name: string): ShellCommand {
  const c = cmds.find((x) => show(x.argv[0] as ShellWord) === name);
  assert.ok(c, `no command ${name} in ${JSON.stringify(cmds)}`);
  return c;
}

test('lists, pipelines, subshells and groups list every command with where it sits', () => {
  const cmds = commands('a 1 && b || c; d | e |& f & (g; { h; }) ');
  assert.deepEqual(
    cmds.map((c) => [show(c.argv[0] as ShellWord), c.within.join('/')]),
    [
      ['a', ''],
      ['b', ''],
      ['c', ''],
      ['d', 'background/pipeline'],
      ['e', 'background/pipeline'],
      ['f', 'background/pipeline'],
      ['g', 'subshell'],
      ['h', 'subshell/group'],
    ],
  );
});

test('compound commands: if, while, until, for, select, case, [[ ]], (( ))', () => {
  const line =
    'if a; then b; elif c; then d; else e; fi; while f; do g; done; until h; do i; done; ' +
    'for x in 1 2; do j; done; for ((1; 0; 1)); do k; done; select s in a; do l; done; ' +
    'case $v in a) m;; *) n;; esac; [[ -f $(o) ]]; (( 1 + 2 )) && p';
  const names = commands(line).map((c) => show(c.argv[0] as ShellWord));
  assert.deepEqual(names, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p']);
  assert.deepEqual(find(commands('case x in *) m;; esac'), 'm').within, ['case']);
  assert.deepEqual(find(commands('until h; do i; done'), 'i').within, ['until']);
});

test('command and process substitution, nested, in every position', () => {
  const cmds = commands('echo "$(a "$(b `c`)")" <(d) >(e) > "$(f)" x=$(g) ${y:-$(h)} ${z/$(i)/x}');
  const by = Object.fromEntries(cmds.map((c) => [show(c.argv[0] as ShellWord), c.within.join('/')]));
  assert.deepEqual(by, {
    a: 'substitution',
    b: 'substitution/substitution',
    c: 'substitution/substitution/substitution',
    d: 'process-substitution',
    e: 'process-substitution',
    f: 'substitution',
    g: 'substitution',
    h: 'substitution',
    i: 'substitution',
    echo: '',
  });
  // Substitutions in prefix assignments and in assignment-only statements are listed too.
  assert.deepEqual(argvs('A=$(j) k; B=$(l)'), [['j'], ['k'], ['l']]);
  assert.deepEqual(argvs('arr=(1 $(m)); n'), [['m'], ['n']]);
});

test('process substitution inside a parameter expansion word is refused: bash runs it, the parser reads text', () => {
  // Checked against bash 5.2: `bash -c 'echo ${x:-<(touch f)}'` creates f. Found by the property below.
  for (const line of ['echo ${x:-<(touch y)}', 'echo ${x:->(touch y)}', 'echo ${x/a/<(touch y)}', 'echo "${x:-<(touch y)}"', 'echo ${x#<(touch y)}', "echo ${x:-<(bash -c 'echo $(a)')}"]) {
    refused(line, /process substitution inside a parameter expansion/);
  }
  // Elsewhere it is process substitution to the parser too, and listed.
  assert.deepEqual(argvs('echo a=<(touch y)'), [['touch', 'y'], ['echo', '<a=<(touch y)>']]);
});

test('here-documents: unquoted bodies list their substitutions, quoted bodies are data', () => {
  const unquoted = commands('cat <<EOF\nhello $(id) `whoami` ${x:-$(date)}\nEOF\n');
  assert.deepEqual(unquoted.map((c) => show(c.argv[0] as ShellWord)), ['id', 'whoami', 'date', 'cat']);
  assert.deepEqual(find(unquoted, 'id').within, ['heredoc', 'substitution']);
  assert.deepEqual(find(unquoted, 'cat').redirects, [{ op: '<<', fd: null, target: null }]);
  for (const quoted of ["cat <<'EOF'\n$(id)\nEOF\n", 'cat <<"EOF"\n$(id)\nEOF\n', 'cat <<\\EOF\n$(id)\nEOF\n']) {
    assert.deepEqual(argvs(quoted), [['cat']], quoted);
  }
  assert.deepEqual(argvs('cat <<-EOF\n\t$(id)\n\tEOF\n'), [['id'], ['cat']]);
  assert.deepEqual(argvs('cat <<A <<B\n$(x)\nA\n$(y)\nB\n'), [['x'], ['y'], ['cat']]);
  assert.deepEqual(find(commands('cat <<< "$(z)"'), 'cat').redirects, [{ op: '<<<', fd: null, target: null }]);
});

test('redirections: targets are listed, descriptor duplication has none', () => {
  const [c] = commands('cmd >out 2>>err <in 3<>rw >|clob &>all &>>all2 2>&1 <&- >&2 4>&-');
  assert.ok(c);
  assert.deepEqual(
    c.redirects.map((r) => [r.op, r.fd, r.target === null ? null : show(r.target)]),
    [
      ['>', null, 'out'],
      ['>>', 2, 'err'],
      ['<', null, 'in'],
      ['<>', 3, 'rw'],
      ['>|', null, 'clob'],
      ['&>', null, 'all'],
      ['&>>', null, 'all2'],
      ['>&', 2, null],
      ['<&', null, null],
      ['>&', null, null],
      ['>&', 4, null],
    ],
  );
  // `>&word` with a non-number is a file (stdout and stderr to it).
  assert.deepEqual(commands('cmd >&file')[0]?.redirects[0]?.target, { kind: 'static', value: 'file' });
  assert.equal(commands('cmd > "$HOME/x"')[0]?.redirects[0]?.target?.kind, 'dynamic');
  refused('{fd}>x cmd', /named file descriptor/);
  refused('> file', /redirection without a command/);
  refused('{ a; b; } > out', /redirection of a compound command/);
  assert.deepEqual(argvs('exec 3>&1'), [['exec']]);
});

test('quoting and escapes: static words after quote removal', () => {
  assert.deepEqual(argvs(`c\\url 'a b' "l"s "x\\"y\\$z\\\\w" a\\ b '' ""`), [['curl', 'a b', 'ls', 'x"y$z\\w', 'a b', '', '']]);
  assert.deepEqual(argvs('"l"s -la'), [['ls', '-la']]);
  assert.deepEqual(argvs("'ec'ho\\ x"), [['echo x']]);
  assert.deepEqual(argvs('ls \\*.c "*.c" \'?\''), [['ls', '*.c', '*.c', '?']]);
  assert.deepEqual(argvs('echo a\\\nb'), [['echo', 'ab']]);
  assert.deepEqual(argvs('echo "é ü 日本"'), [['echo', 'é ü 日本']]);
  // Source text is cut on UTF-8 byte offsets (the parser's), not on UTF-16 indices.
  assert.deepEqual(argvs('echo "日本" "é$y" $z'), [['echo', '日本', '<"é$y">', '<$z>']]);
});

test('dynamic words: parameters, ANSI-C and locale strings, globs, braces, tilde', () => {
  const [c] = commands('echo "$HOME" pre$x *.c a?b [ab] ~ ~/d x=~/y {a,b} {1..3} @(a|b) $\'\\x41\' $"t" $((1+2))');
  assert.ok(c);
  const words = c.argv.slice(1);
  assert.ok(words.every((w) => w.kind === 'dynamic'), JSON.stringify(words));
  const [home, pre, star, quest, bracket] = words;
  assert.deepEqual(home, { kind: 'dynamic', text: '"$HOME"', prefix: '', glob: false });
  assert.deepEqual(pre, { kind: 'dynamic', text: 'pre$x', prefix: 'pre', glob: false });
  assert.deepEqual(star, { kind: 'dynamic', text: '*.c', prefix: '', glob: true });
  assert.equal(quest?.kind === 'dynamic' && quest.glob, true);
  assert.equal(bracket?.kind === 'dynamic' && bracket.glob, true);
  // Not expansions: quoted braces and tildes, a lone brace, `[` without `]`, `~` inside a word.
  assert.deepEqual(argvs('echo "{a,b}" \'~\' a{b x~y [ HEAD~1 l{s}'), [['echo', '{a,b}', '~', 'a{b', 'x~y', '[', 'HEAD~1', 'l{s}']]);
  assert.deepEqual(argvs('[ -f x ]'), [['[', '-f', 'x', ']']]);
  // Tilde after `=` expands in an assignment value.
  const a = commands('A=~/x cmd')[0]?.assignments[0];
  assert.equal(a?.value.kind, 'dynamic');
});

test('a dynamic command name is refused; `"l"s` and `c\\url` are static', () => {
  refused('$cmd -x', /command name is dynamic/);
  refused('"$cmd"', /command name is dynamic/);
  refused('$(echo ls) /', /command name is dynamic/);
  refused('`echo ls`', /command name is dynamic/);
  refused('{ls,-l}', /command name is dynamic/);
  refused('*', /command name is dynamic/);
  refused('~/bin/tool', /command name is dynamic/);
  refused("$'\\x63url' x", /command name is dynamic/);
  assert.deepEqual(argvs('"l"s'), [['ls']]);
  assert.deepEqual(argvs('c\\url -s'), [['curl', '-s']]);
  const r = parseShellLine('ok; $x');
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.line, 1);
    assert.equal(r.column, 5);
    assert.match(r.reason, /at 1:5/);
  }
});

test('builtins that re-execute text or redefine names are refused', () => {
  refused('eval ls', /eval/);
  refused('source ./x', /source/);
  refused('. ./x', /\. runs a file/);
  refused('alias ls=rm', /alias/);
  refused('enable -f x.so y', /enable/);
  refused('hash -p /tmp/evil ls', /hash -p/);
  refused('trap "rm -rf ~" EXIT', /trap with an action/);
  refused('trap -- "x" INT', /trap with an action/);
  refused('f() { ls; }', /function definition/);
  refused('function f { ls; }', /function definition/);
  refused('coproc ls', /coproc/);
  refused('coproc name { ls; }', /coproc/);
  refused('mapfile -C cb arr', /mapfile -C/);
  refused('set -k', /set -k/);
  refused('set -o keyword', /set -o keyword/);
  refused('declare -n ref=x', /name reference/);
  refused('fc -s', /fc/);
  refused('echo ok; builtin eval ls', /eval/);
  refused('command source x', /source/);
  for (const ok of ['trap', "trap '' INT", 'trap - INT', 'trap -p', 'trap -l', 'hash', 'hash -r', 'set -e', 'set -o pipefail', 'declare -r n=1', 'command -v ls']) {
    assert.equal(parseShellLine(ok).ok, true, ok);
  }
});

test('assignments to protected variables, or to dynamic names, are refused', () => {
  for (const name of ['PATH', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'BASH_ENV', 'ENV', 'IFS', 'CDPATH', 'GLOBIGNORE', 'SHELLOPTS', 'BASHOPTS', 'PS4', 'PROMPT_COMMAND', 'BASH_LOADABLES_PATH', 'EXECIGNORE', 'HOSTALIASES', 'HISTFILE']) {
    assert.equal(isProtectedVariable(name), true, name);
    refused(`${name}=/tmp/x ls`, new RegExp(`protected variable ${name}`));
    refused(`export ${name}=/tmp/x`, new RegExp(`protected variable ${name}`));
    refused(`declare ${name}`, new RegExp(`protected variable ${name}`));
    refused(`read ${name}`, new RegExp(`protected variable ${name}`));
    refused(`printf -v ${name} %s x`, new RegExp(`protected variable ${name}`));
    refused(`env ${name}=x ls`, new RegExp(`protected variable ${name}`));
  }
  refused('typeset PATH=x', /PATH/);
  refused('local IFS=x', /IFS/);
  refused('readonly PATH', /PATH/);
  refused('PATH+=:/tmp ls', /PATH/);
  refused('mapfile PATH', /PATH/);
  refused('readarray -t LD_X', /LD_X/);
  refused('getopts ab PATH', /PATH/);
  refused('for PATH in /tmp; do ls; done', /for loop variable assigns protected variable PATH/);
  refused('unset PATH', /unset assigns protected variable PATH/);
  refused('env -u PATH ls', /PATH/);
  refused('echo ${PATH:=/tmp}', /parameter assignment assigns protected variable PATH/);
  refused('(( PATH = 1 ))', /arithmetic on variable PATH/);
  refused('let IFS=1', /IFS/);
  refused('command export PATH=/x', /PATH/);
  refused('declare "$n=1"', /dynamic/);
  refused('read "$n"', /dynamic/);
  refused('printf -v "$n" x', /dynamic/);
  assert.equal(isProtectedVariable('HOME'), false);
  assert.deepEqual(commands('FOO=1 BAR="$x" ls')[0]?.assignments, [
    { name: 'FOO', value: { kind: 'static', value: '1' } },
    { name: 'BAR', value: { kind: 'dynamic', text: '"$x"', prefix: '', glob: false } },
  ]);
  assert.equal(parseShellLine('export FOO=1; read -r line; printf -v out %s x').ok, true);
});

test('text that bash would evaluate again is refused (arithmetic, prompt expansion, indirection)', () => {
  // Each of these runs `cmd` hidden in a value in bash 5.2, e.g. x='a[$(cmd)]'; echo $((x)).
  refused('echo $((x))', /arithmetic on variable x/);
  refused('(( x ))', /arithmetic on variable x/);
  refused('let x+1', /arithmetic on variable/);
  refused('[[ $x -eq 0 ]]', /arithmetic on variable x/);
  refused('echo ${arr[i]}', /arithmetic on variable i/);
  refused('echo ${s:off:1}', /arithmetic on variable off/);
  refused('a[i]=1', /arithmetic on variable i/);
  refused('for ((i=0; i<3; i++)); do :; done', /arithmetic on variable i/);
  refused('echo $(( $(cat n) + 1 ))', /command substitution inside arithmetic/);
  refused('echo $(( $1 ))', /arithmetic on variable 1/);
  refused('declare -i n; n=x', /declare -i \(integer attribute\)/);
  refused('echo ${y@P}', /parameter transformation @P/);
  refused('echo ${!name}', /indirect parameter expansion/);
  refused("[[ -v 'a[$(cmd)]' ]]", /-v/);
  refused("test -v 'a[$(cmd)]'", /test -v/);
  refused("printf -v 'a[$(cmd)]' x", /subscript that is evaluated as arithmetic/);
  refused("unset 'a[$(cmd)]'", /subscript/);
  refused("declare 'a[$(cmd)]=1'", /declare/);
  for (const ok of ['echo $(( 1 + 0x1F + 2#101 ))', 'echo ${#x} $(( ${#x} + $# ))', 'echo ${!a[@]} ${!pre*} ${y@Q}', '[[ $x == 0 && -v name ]]', 'echo ${a[1]}', 'printf -v out %s x']) {
    assert.equal(parseShellLine(ok).ok, true, ok);
  }
});

test('wrappers: both the wrapper and the wrapped command are listed', () => {
  assert.deepEqual(
    commands('env -i -u FOO A=1 nice -n 5 nohup timeout -s KILL 10 stdbuf -oL setsid -w ls -l').map((c) => [
      show(c.argv[0] as ShellWord),
      c.within.join('/'),
    ]),
    [
      ['env', ''],
      ['nice', 'env'],
      ['nohup', 'env/nice'],
      ['timeout', 'env/nice/nohup'],
      ['stdbuf', 'env/nice/nohup/timeout'],
      ['setsid', 'env/nice/nohup/timeout/stdbuf'],
      ['ls', 'env/nice/nohup/timeout/stdbuf/setsid'],
    ],
  );
  assert.deepEqual(find(commands('env A=1 ls'), 'ls').assignments, [{ name: 'A', value: { kind: 'static', value: '1' } }]);
  assert.deepEqual(argvs('/usr/bin/env ls'), [['/usr/bin/env', 'ls'], ['ls']]);
  assert.deepEqual(argvs('exec ls -l'), [['exec', 'ls', '-l'], ['ls', '-l']]);
  assert.deepEqual(argvs('exec -a name ls'), [['exec', '-a', 'name', 'ls'], ['ls']]);
  assert.deepEqual(argvs('command -p ls'), [['command', '-p', 'ls'], ['ls']]);
  assert.deepEqual(argvs('command -v ls'), [['command', '-v', 'ls']]);
  assert.deepEqual(argvs('builtin cd /'), [['builtin', 'cd', '/'], ['cd', '/']]);
  assert.deepEqual(argvs('nice -10 ls'), [['nice', '-10', 'ls'], ['ls']]);
  assert.deepEqual(argvs('timeout --kill-after=5 10s ls'), [['timeout', '--kill-after=5', '10s', 'ls'], ['ls']]);
  assert.deepEqual(argvs('time -p ls'), [['time', '-p'], ['ls']]);
  assert.deepEqual(find(commands('time ls'), 'ls').within, ['time']);
  assert.deepEqual(argvs('xargs -0 -n 1 rm -f'), [['xargs', '-0', '-n', '1', 'rm', '-f'], ['rm', '-f', '<{xargs input}>']]);
  assert.deepEqual(argvs('xargs'), [['xargs'], ['echo', '<{xargs input}>']]);
  assert.deepEqual(argvs('xargs -I{} cp {} /dst'), [['xargs', '-I{}', 'cp', '{}', '/dst'], ['cp', '<{}>', '/dst']]);
  assert.ok(Object.isFrozen(SHELL_WRAPPERS) || Object.keys(SHELL_WRAPPERS).length >= 10);
});

test('wrappers: what cannot be read with certainty is refused', () => {
  refused('env -S "rm -rf /" ls', /env option -S not understood/);
  refused('env $opts ls', /env with a dynamic option/);
  refused('env A=$x ls', /env assignment with a dynamic value/);
  refused('env "$a"=1 ls', /env with a dynamic option/);
  assert.deepEqual(argvs('env A=1'), [['env', 'A=1']]);
  refused('timeout $t ls', /timeout with a dynamic option/);
  refused('timeout -s "$sig" 5 ls', /dynamic value/);
  refused('timeout 5', /timeout without a command/);
  refused('timeout', /timeout without its operands/);
  refused('nohup', /nohup without a command/);
  refused('nice --bogus ls', /nice option --bogus not understood/);
  refused('xargs --process-slot-var=PATH ls', /xargs option --process-slot-var=PATH not understood/);
  refused('xargs -I{} sh -c "echo {}"', /dynamic command string/);
  refused('xargs eval', /eval/);
  refused('nice $cmd', /nice with a dynamic option/);
  refused('env A=1 "$cmd"', /dynamic/);
  refused('env PATH=/tmp ls', /PATH/);
  refused('exec eval x', /eval/);
});

test('find -exec, -execdir, -ok, -okdir', () => {
  const cmds = commands('find . -name "*.c" -exec grep -l foo {} + -o -execdir rm -- {} \\; -ok cat {} ";" -okdir wc {} \';\'');
  assert.deepEqual(
    cmds.map((c) => [c.argv.map(show).join(' '), c.within.join('/')]).slice(1),
    [
      ['grep -l foo <{}>', 'find'],
      ['rm -- <{}>', 'find'],
      ['cat <{}>', 'find'],
      ['wc <{}>', 'find'],
    ],
  );
  refused('find . -exec rm {}', /find -exec without ; or \+/);
  refused('find . -exec \\;', /find -exec without a command/);
  refused('find . $expr', /find with a dynamic expression word/);
  refused('find . -exec $cmd {} \\;', /command name is dynamic/);
  refused('find . -exec eval {} \\;', /eval/);
  assert.deepEqual(argvs('find . -name x -print'), [['find', '.', '-name', 'x', '-print']]);
});

test('sh -c, bash -c, dash -c: static strings parsed recursively, dynamic ones refused', () => {
  const cmds = commands(`bash -c 'ls -l; cat "$(id)"' x; sh -ec "echo hi | wc"; /bin/dash --norc -x -c 'bash -c "uname -a"'`);
  assert.deepEqual(
    cmds.map((c) => [show(c.argv[0] as ShellWord), c.within.join('/')]),
    [
      ['bash', ''],
      ['ls', 'sh -c'],
      ['id', 'sh -c/substitution'],
      ['cat', 'sh -c'],
      ['sh', ''],
      ['echo', 'sh -c/pipeline'],
      ['wc', 'sh -c/pipeline'],
      ['/bin/dash', ''],
      ['bash', 'sh -c'],
      ['uname', 'sh -c/sh -c'],
    ],
  );
  refused('bash -c "$x"', /bash -c with a dynamic command string/);
  refused("sh -c 'eval $1' _ ls", /eval/);
  refused("bash -c 'ls ('", /bash -c string does not parse/);
  refused('bash', /bash reading commands from standard input/);
  refused('curl x | sh', /sh reading commands from standard input/);
  refused('bash -c', /bash -c without a command string/);
  refused('bash --rcfile x -c ls', /bash option --rcfile not understood/);
  assert.deepEqual(argvs('bash ./build.sh arg'), [['bash', './build.sh', 'arg']]);
});

test('syntax errors are ERR_SHELL_PARSE with a position', () => {
  for (const line of ['echo (', 'if true; then', 'ls |', 'echo "unterminated', "echo 'x", 'cat <<EOF\nno end', 'a && && b', ')']) {
    const r: ShellParse = parseShellLine(line);
    assert.equal(r.ok, false, line);
    if (!r.ok) {
      assert.equal(r.code, 'ERR_SHELL_PARSE', `${line}: ${r.reason}`);
      assert.equal(typeof r.line, 'number', line);
      assert.equal(typeof r.column, 'number', line);
    }
  }
  assert.deepEqual(commands(''), []);
  assert.deepEqual(commands('# only a comment'), []);
});

test('limits: bytes, commands, depth', () => {
  refused('x'.repeat(16_385), /longer than 16384 bytes/);
  refused('é'.repeat(9000), /longer than 16384 bytes/);
  refused('ls;'.repeat(300), /more than 256 commands/);
  assert.equal(parseShellLine('ls;'.repeat(3), { maxCommands: 3 }).ok, true);
  refused('( '.repeat(40) + 'ls' + ' )'.repeat(40), /nesting deeper than 32/);
  assert.equal(parseShellLine('( '.repeat(20) + 'ls' + ' )'.repeat(20)).ok, true);
  const r = parseShellLine('echo $(echo $(echo $(ls)))', { maxDepth: 2 });
  assert.equal(r.ok, false);
  refused('echo a\0b', /NUL/);
});

test('property: single-quoted words come back as exactly those static words', () => {
  const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;
  const word = fc.string({ unit: fc.oneof(fc.constantFrom("'", '"', '\\', '$', '`', '\n', ' ', '*', '{', '~', '!'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })), maxLength: 12 });
  fc.assert(
    fc.property(fc.array(word.filter((s) => !s.includes('\0')), { maxLength: 8 }), (words) => {
      const r = parseShellLine(['echo', ...words].map(quote).join(' '));
      assert.equal(r.ok, true, JSON.stringify(r));
      if (r.ok) {
        assert.equal(r.commands.length, 1);
        assert.deepEqual(r.commands[0]?.argv, ['echo', ...words].map((value) => ({ kind: 'static', value })));
      }
    }),
    { numRuns: 300 },
  );
});

test('property: the parser never throws, it answers ok or a refusal', () => {
  const shellish = fc.string({
    unit: fc.constantFrom(...'abc $(){}[]<>|&;\'"`\\\n\t*?~=#!-+0123456789'.split(''), '<<', '$((', '${', 'EOF', 'eval ', 'sh -c '),
    maxLength: 80,
  });
  fc.assert(
    fc.property(fc.oneof(shellish, fc.string({ maxLength: 120 }), fc.string({ unit: 'binary', maxLength: 60 })), (line) => {
      const r = parseShellLine(line);
      if (!r.ok) assert.ok(r.code === 'ERR_SHELL_PARSE' || r.code === 'ERR_SHELL_UNSUPPORTED');
      else for (const c of r.commands) assert.equal(c.argv[0]?.kind, 'static');
    }),
    { numRuns: 200 },
  );
});

test('property: a command in $(X) is listed or the line is refused', () => {
  // Steps turn a word into a command line, a line into a line, or a line back into a word.
  type Step = readonly ['word->line' | 'line->line' | 'line->word', string, string];
  const steps: readonly Step[] = [
    ['word->line', 'echo ', ''],
    ['word->line', 'echo "', '"'],
    ['word->line', 'x=', ''],
    ['word->line', 'A=1 ls ', ' >/dev/null'],
    ['word->line', '(( 1 + ', ' ))'],
    ['word->line', '[[ -n ', ' ]]'],
    ['word->line', 'cat <<E\n', '\nE\n'],
    ['word->line', 'for i in ', '; do :; done'],
    ['word->line', 'case ', ' in *) ;; esac'],
    ['word->line', 'echo ${x:-', '}'],
    ['word->line', 'cat < ', ''],
    ['word->line', 'env A=1 nice ls ', ''],
    ['line->line', '( ', ' )'],
    ['line->line', '{ ', '; }'],
    ['line->line', 'if ', '; then :; fi'],
    ['line->line', 'ls | ', ' && true'],
    ['line->line', 'while false; do ', '; done'],
    ['line->line', "bash -c '", "'"],
    ['line->line', 'xargs sh -c "', '"'],
    ['line->word', '$(', ')'],
    ['line->word', '"$(', ')"'],
    ['line->word', '<(', ')'],
  ];
  const name = fc.stringMatching(/^[a-z][a-z0-9_-]{0,7}$/);
  fc.assert(
    fc.property(name, fc.array(fc.constantFrom(...steps), { maxLength: 6 }), (x, path) => {
      let text = `$(${x})`;
      let kind: 'word' | 'line' = 'word';
      for (const [step, pre, post] of path) {
        const [from, to] = step.split('->') as ['word' | 'line', 'word' | 'line'];
        if (from !== kind) continue;
        if ((pre.includes("'") && text.includes("'")) || (pre.includes('"') && text.includes('"'))) continue;
        text = `${pre}${text}${post}`;
        kind = to;
      }
      const r = parseShellLine(text);
      if (r.ok) assert.ok(r.commands.some((c) => c.argv[0]?.kind === 'static' && c.argv[0].value === x), `${text}: ${JSON.stringify(r)}`);
    }),
    { numRuns: 2000 },
  );
});

test('property: words the parser calls static are exactly what bash passes (differential, bash 5)', (t) => {
  if (!existsSync('/bin/bash')) {
    t.skip('no /bin/bash');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'bastion-shell-'));
  try {
    const unquoted = fc.constantFrom(...'abcxyz019._/-=,:@%+{}~*?[]^'.split(''));
    const escaped = fc.constantFrom(...' \'"\\$`|&;<>(){}*?[]~#!\n'.split('')).map((c) => `\\${c}`);
    const single = fc.string({ unit: fc.constantFrom(...'ab $`"\\*{},~\n'.split('')), maxLength: 5 }).map((s) => `'${s}'`);
    const double = fc
      .array(fc.oneof(fc.constantFrom(...'ab *{},~\'#'.split('')), fc.constantFrom('\\"', '\\\\', '\\$', '\\`', '\\a', '\\\n')), { maxLength: 5 })
      .map((parts) => `"${parts.join('')}"`);
    const word = fc.array(fc.oneof(unquoted, escaped, single, double), { minLength: 1, maxLength: 5 }).map((p) => p.join(''));
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 4 }), (words) => {
        const line = `printf '%s\\0' ${words.join(' ')}`;
        const r = parseShellLine(line);
        if (!r.ok) return;
        const cmd = r.commands[0];
        if (r.commands.length !== 1 || cmd === undefined || cmd.argv.some((w) => w.kind !== 'static')) return;
        const out = execFileSync('/bin/bash', ['--noprofile', '--norc', '-c', line], { cwd: dir, env: {}, encoding: 'utf8' });
        const expected = out.split('\0').slice(0, -1);
        assert.deepEqual(cmd.argv.slice(2).map(show), expected, line);
      }),
      { numRuns: 150 },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
