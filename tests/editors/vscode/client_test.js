// Drives the real `crucible serve` over stdio with vscode-jsonrpc, making the calls the VS Code extension
// makes (initializationOptions, document sync, executeCommand crucible.run, crucible/ask with a
// workDoneToken, cancellation, shutdown/exit), and checks what comes back.
//
// usage: node client_test.js SCENARIO    (lifecycle | diagnostics | run | runtime-diagnostics | ask | cancel |
//                                         environment)
// env:   CRUCIBLE_BIN (the server), CRUCIBLE_TEST_DIR (scratch), OPENAI_BASE_URL etc. for the ask scenario.
// Prints "ok <what>" lines; on failure prints "FAIL <what>" and exits 1.
'use strict';

const { spawn } = require('child_process');
const path = require('path');
const rpc = require('vscode-jsonrpc/node');

const BIN = process.env.CRUCIBLE_BIN;
const DIR = process.env.CRUCIBLE_TEST_DIR || '/tmp';
const WAIT_MS = 20000;

function fail(msg) {
  console.log('FAIL ' + msg);
  process.exit(1);
}

function ok(msg) {
  console.log('ok ' + msg);
}

function check(cond, msg, detail) {
  if (!cond) fail(msg + (detail === undefined ? '' : ': ' + JSON.stringify(detail)));
}

function within(ms, promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out waiting for ' + what)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A server process with a connection, a log of every notification in arrival order, and waiters on it. */
class Server {
  constructor() {
    this.proc = spawn(BIN, ['serve'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.stderr = '';
    this.proc.stderr.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    this.conn = rpc.createMessageConnection(new rpc.StreamMessageReader(this.proc.stdout), new rpc.StreamMessageWriter(this.proc.stdin));
    this.log = []; // [{method, params}] and [{response: method}] markers, in order
    this.waiters = [];
    this.conn.onNotification((method, params) => this.record({ method, params }));
    this.conn.onError(() => {});
    this.conn.listen();
  }

  record(entry) {
    this.log.push(entry);
    this.waiters = this.waiters.filter((w) => !(w.pred(entry) && (w.resolve(entry), true)));
  }

  /** Resolves with the first notification (already received or to come) that pred accepts. */
  waitFor(pred, what, ms = WAIT_MS) {
    const seen = this.log.find((e) => e.method && pred(e));
    if (seen) return Promise.resolve(seen);
    return within(ms, new Promise((resolve) => this.waiters.push({ pred: (e) => !!e.method && pred(e), resolve })), what);
  }

  /** A request whose response is marked in the log, so ordering against notifications can be checked. */
  async request(method, params, token) {
    try {
      // vscode-jsonrpc sends every extra argument as a positional param: pass only what is there
      const args = [method, ...(params === undefined ? [] : [params]), ...(token ? [token] : [])];
      const r = await within(WAIT_MS, this.conn.sendRequest(...args), method);
      this.log.push({ response: method });
      return r;
    } catch (e) {
      this.log.push({ response: method, error: e });
      throw e;
    }
  }

  async initialize(initializationOptions, folder) {
    const r = await this.request('initialize', {
      processId: process.pid,
      clientInfo: { name: 'crucible-headless-vscode-test' },
      rootUri: folder ? 'file://' + folder : null,
      ...(folder ? { workspaceFolders: [{ uri: 'file://' + folder, name: path.basename(folder) }] } : {}),
      capabilities: {
        general: { positionEncodings: ['utf-16'] },
        window: { workDoneProgress: true },
        workspace: { executeCommand: { dynamicRegistration: true }, configuration: true },
        textDocument: { synchronization: { dynamicRegistration: true, didSave: true } },
      },
      initializationOptions,
    });
    this.conn.sendNotification('initialized', {});
    return r;
  }

  async stop() {
    await this.request('shutdown', undefined);
    this.conn.sendNotification('exit');
    const st = await within(5000, this.exited, 'the server to exit');
    this.conn.dispose();
    return st;
  }

  open(name, languageId, text) {
    const uri = 'file://' + path.join(DIR, name);
    this.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId, version: 1, text } });
    return uri;
  }
}

const lineOf = (d) => (d.range ? d.range.start.line : d.line);
const diagsFor = (uri, version) => (e) =>
  e.method === 'textDocument/publishDiagnostics' && e.params.uri === uri && (version === undefined || e.params.version === version);

const scenarios = {
  async lifecycle() {
    const s = new Server();
    const init = await s.initialize({ crucible: { agent: { maxIterations: 2 }, sandbox: { timeoutMs: 5000 } } });
    const caps = init.capabilities;
    check(init.serverInfo && init.serverInfo.name === 'crucible', 'serverInfo names crucible', init.serverInfo);
    check(caps.textDocumentSync && caps.textDocumentSync.change === 2 && caps.textDocumentSync.openClose, 'incremental sync', caps.textDocumentSync);
    for (const c of ['crucible.ask', 'crucible.run', 'crucible.check', 'crucible.cancel'])
      check(caps.executeCommandProvider.commands.includes(c), 'command ' + c + ' advertised', caps.executeCommandProvider);
    check(caps.positionEncoding === 'utf-16', 'utf-16 positions when only utf-16 is offered', caps.positionEncoding);
    check(!!caps.codeActionProvider, 'code actions advertised');
    ok('initialize: capabilities');

    let doc = await s.request('crucible/doctor', {});
    check(doc.settings.agent.maxIterations === 2 && doc.settings.sandbox.timeoutMs === 5000, 'initializationOptions applied', doc.settings);
    s.conn.sendNotification('workspace/didChangeConfiguration', { settings: { crucible: { agent: { maxIterations: 1 } } } });
    doc = await s.request('crucible/doctor', {});
    check(doc.settings.agent.maxIterations === 1, 'didChangeConfiguration applied', doc.settings.agent);
    ok('settings from initializationOptions and didChangeConfiguration');

    const st = await s.stop();
    check(st.code === 0, 'exit status 0 after shutdown', st);
    ok('shutdown + exit -> status 0');

    const s2 = new Server();
    await s2.initialize({});
    s2.conn.sendNotification('exit');
    const st2 = await within(5000, s2.exited, 'exit without shutdown');
    s2.conn.dispose();
    check(st2.code === 1, 'exit status 1 without shutdown', st2);
    ok('exit without shutdown -> status 1');
  },

  async diagnostics() {
    const s = new Server();
    await s.initialize({});
    const uri = s.open('broken.py', 'python', 'x = 1\ndef f(:\n    pass\n');
    let e = await s.waitFor(diagsFor(uri, 1), 'diagnostics for broken.py');
    check(e.params.diagnostics.length >= 1, 'a syntax error is reported', e.params);
    const d = e.params.diagnostics[0];
    check(d.range.start.line === 1 && d.severity === 1 && d.source === 'crucible', 'error on line 2 from crucible', d);
    ok('didOpen -> syntax error on line 2: ' + d.message);

    s.conn.sendNotification('textDocument/didChange', {
      textDocument: { uri, version: 2 },
      contentChanges: [{ range: { start: { line: 1, character: 6 }, end: { line: 1, character: 6 } }, text: ')' }],
    });
    e = await s.waitFor(diagsFor(uri, 2), 'diagnostics for version 2');
    check(e.params.diagnostics.length === 0, 'the incremental fix clears the diagnostic', e.params);
    ok('incremental didChange clears it');

    const sh = s.open('broken.sh', 'shellscript', 'echo start\nif true; then\n  echo x\n');
    e = await s.waitFor(diagsFor(sh), 'diagnostics for broken.sh');
    check(e.params.diagnostics.length >= 1, 'shellscript (VS Code language id) is checked as bash', e.params);
    const js = s.open('broken.js', 'javascript', 'const a = [1, 2;\n');
    e = await s.waitFor(diagsFor(js), 'diagnostics for broken.js');
    check(e.params.diagnostics.length >= 1 && e.params.diagnostics[0].range.start.line === 0, 'javascript error on line 1', e.params);
    ok('shellscript and javascript documents are checked');

    s.conn.sendNotification('textDocument/didClose', { textDocument: { uri: sh } });
    e = await s.waitFor((x) => diagsFor(sh)(x) && x.params.diagnostics.length === 0, 'cleared diagnostics on close');
    ok('didClose clears diagnostics');
    check((await s.stop()).code === 0, 'clean exit');
  },

  async run() {
    const s = new Server();
    await s.initialize({});
    const text = "print('line 1')\nprint('line 2', flush=True)\nprint('line 3')\nx = 1 / 0\n";
    const uri = s.open('prog.py', 'python', text);
    await s.waitFor(diagsFor(uri, 1), 'first diagnostics');
    // exactly what the extension sends for a selection of lines 2-3
    const range = { start: { line: 1, character: 0 }, end: { line: 3, character: 0 } };
    const r = await s.request('workspace/executeCommand', {
      command: 'crucible.run',
      arguments: [{ uri, range, language: 'python', task: 'sel-1' }],
    });
    check(r.outcome === 'ok' && r.exitCode === 0 && r.stdout === 'line 2\nline 3\n', 'only the selection ran', r);
    const outs = s.log.filter((e) => e.method === 'crucible/output' && e.params.task === 'sel-1');
    const respAt = s.log.findIndex((e) => e.response === 'workspace/executeCommand');
    check(outs.length >= 1 && outs.map((e) => e.params.text).join('') === 'line 2\nline 3\n', 'output streamed', outs);
    check(s.log.indexOf(outs[outs.length - 1]) < respAt, 'output arrives before the result');
    ok('executeCommand crucible.run with a range: output streamed, then ' + r.outcome);

    const r2 = await s.request('workspace/executeCommand', { command: 'crucible.run', arguments: [{ uri, language: 'python', task: 'file-1' }] });
    check(r2.outcome === 'error' && /ZeroDivisionError/.test(r2.stderr), 'the whole file fails', r2);
    const e = await s.waitFor((x) => diagsFor(uri)(x) && x.params.diagnostics.some((d) => d.code === 'runtime'), 'runtime diagnostics');
    const d = e.params.diagnostics.find((x) => x.code === 'runtime');
    check(lineOf(d) === 3 && /ZeroDivisionError/.test(d.message), 'runtime error on line 4', d);
    ok('runtime error published on line 4');

    const actions = await s.request('textDocument/codeAction', {
      textDocument: { uri },
      range: { start: { line: 3, character: 0 }, end: { line: 3, character: 0 } },
      context: { diagnostics: [] },
    });
    const fix = actions.find((a) => a.kind === 'quickfix');
    const runAction = actions.find((a) => a.command && a.command.command === 'crucible.run');
    check(runAction && runAction.command.arguments[0].uri === uri, 'a run code action', actions);
    check(fix && fix.command.command === 'crucible.ask' && /ZeroDivisionError/.test(fix.command.arguments[0].question), 'a fix quickfix', actions);
    ok('code actions: run, and fix after a failing run');
    check((await s.stop()).code === 0, 'clean exit');
  },

  // The crucible.sandbox.environment setting as the extension sends it (initializationOptions, then
  // workspace/didChangeConfiguration after "Crucible: Pick Environment" wrote it) decides where runs go,
  // and each RunResult names that environment (the status bar shows it).
  async environment() {
    const fs = require('fs');
    // the sandbox's user must reach the venv: a folder of its own under /tmp (the test's scratch may be 0700)
    const ws = fs.mkdtempSync('/tmp/crucible-vscode-envws-');
    fs.chmodSync(ws, 0o755);
    process.on('exit', () => fs.rmSync(ws, { recursive: true, force: true }));
    require('child_process').execFileSync('/usr/bin/python3', ['-m', 'venv', '--without-pip', path.join(ws, '.venv')]);
    // a module only the workspace's venv has
    const site = require('child_process')
      .execFileSync(path.join(ws, '.venv', 'bin', 'python'), ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'])
      .toString()
      .trim();
    fs.writeFileSync(path.join(site, 'crucible_ws_only.py'), "WHERE = 'venv'\n");
    const code = "import sys\ntry:\n    import crucible_ws_only\n    print(crucible_ws_only.WHERE)\nexcept ImportError:\n    print('none')\n";

    const s = new Server();
    await s.initialize({ sandbox: { environment: 'workspace' } }, ws);
    const r = await s.request('workspace/executeCommand', { command: 'crucible.run', arguments: [{ code, language: 'python', task: 'env-1', workDoneToken: 'env-1/progress' }] });
    check(r.outcome === 'ok' && r.stdout === 'venv\n', 'the run used the workspace venv', r);
    check(r.environment && r.environment.kind === 'workspace' && (r.environment.path || '') === path.join(ws, '.venv'), 'the result names the workspace venv', r.environment);
    ok('sandbox.environment "workspace" from initializationOptions: ran in ' + r.environment.kind + ' ' + r.environment.path);

    // what the extension sends after the setting changed (settings under `crucible`)
    s.conn.sendNotification('workspace/didChangeConfiguration', { settings: { crucible: { sandbox: { environment: 'system' } } } });
    const r2 = await s.request('workspace/executeCommand', { command: 'crucible.run', arguments: [{ code, language: 'python', task: 'env-2' }] });
    check(r2.outcome === 'ok' && r2.stdout === 'none\n', 'the run used the system environment', r2);
    check(r2.environment && r2.environment.kind === 'system', 'the result names the system environment', r2.environment);
    ok('didChangeConfiguration sandbox.environment "system": ran in ' + r2.environment.kind);

    const cached = await s.request('crucible/environments', {});
    check(Array.isArray(cached), 'crucible/environments lists the cached environments', cached);
    ok('crucible/environments answers a list (' + cached.length + ')');
    check((await s.stop()).code === 0, 'clean exit');
  },

  // The protocol promises LSP Diagnostics in publishDiagnostics, runtime errors included.
  async 'runtime-diagnostics'() {
    const s = new Server();
    await s.initialize({});
    const uri = s.open('fails.py', 'python', 'import sys\nsys.exit(undefined_name)\n');
    await s.request('crucible/run', { uri });
    const e = await s.waitFor((x) => diagsFor(uri)(x) && x.params.diagnostics.length > 0, 'runtime diagnostics');
    for (const d of e.params.diagnostics) {
      check(d.range && d.range.start && d.range.end, 'a runtime diagnostic has an LSP range', d);
      check(typeof d.severity === 'number', 'a runtime diagnostic has a numeric severity', d);
    }
    ok('runtime diagnostics are LSP Diagnostics');
    check((await s.stop()).code === 0, 'clean exit');
  },

  async ask() {
    const s = new Server();
    await s.initialize({});
    const token = 'ask-1/progress';
    const progress = [];
    s.conn.onProgress(new rpc.ProgressType(), token, (v) => progress.push(v));
    const r = await s.request('crucible/ask', { question: 'print the answer', language: 'python', task: 'ask-1', workDoneToken: token });
    check(r.outcome === 'passed' && r.task === 'ask-1', 'the answer passed', r);
    check(r.solution.code === "print('the answer is', 6 * 7)" && r.run.stdout === 'the answer is 42\n', 'the fake model\'s code ran', r);
    ok('crucible/ask answered: ' + r.solution.prefix);

    const kinds = progress.map((v) => v.kind);
    check(kinds[0] === 'begin' && kinds[kinds.length - 1] === 'end' && kinds.includes('report'), 'progress begin/report/end', progress);
    check(progress[0].cancellable === true, 'progress is cancellable', progress[0]);
    ok('$/progress: ' + kinds.length + ' messages, begin ... end');

    const mine = s.log.filter((e) => e.method && e.params && e.params.task === 'ask-1');
    const phases = mine.filter((e) => e.method === 'crucible/phase').map((e) => e.params.phase);
    for (const p of ['generating', 'checking', 'running', 'finished']) check(phases.includes(p), 'phase ' + p, phases);
    const tokens = mine.filter((e) => e.method === 'crucible/token').map((e) => e.params.text).join('');
    check(tokens.includes("print('the answer is', 6 * 7)"), 'tokens stream the answer', tokens);
    check(mine.some((e) => e.method === 'crucible/attempt' && e.params.iteration === 1), 'an attempt notification');
    check(mine.some((e) => e.method === 'crucible/output' && e.params.text.includes('42')), 'the run output streamed');
    ok('phases ' + phases.join(' > ') + '; tokens, output and attempt streamed');
    check((await s.stop()).code === 0, 'clean exit');
  },

  async cancel() {
    const s = new Server();
    await s.initialize({});
    const code = "import time\nprint('started', flush=True)\ntime.sleep(8)\nprint('not reached')\n";
    // $/cancelRequest, which the extension sends when the progress notification is cancelled
    const src = new rpc.CancellationTokenSource();
    const pending = s.request('workspace/executeCommand', { command: 'crucible.run', arguments: [{ code, task: 'long-1' }] }, src.token);
    await s.waitFor((e) => e.method === 'crucible/output' && e.params.task === 'long-1', 'the long run to start');
    const t0 = Date.now();
    src.cancel();
    let err;
    try {
      await pending;
    } catch (e) {
      err = e;
    }
    const ms = Date.now() - t0;
    check(err && err.code === -32800, 'the cancelled request is answered with -32800', err && { code: err.code, message: err.message });
    check(ms < 4000, 'answered before the program would have finished', ms);
    ok('$/cancelRequest -> -32800 after ' + ms + ' ms');

    // crucible/cancel {task}: the extension's Cancel command
    const p2 = s.request('crucible/run', { code, task: 'long-2' });
    await s.waitFor((e) => e.method === 'crucible/output' && e.params.task === 'long-2', 'the second long run to start');
    const c = await s.request('crucible/cancel', { task: 'long-2' });
    check(c.cancelled === 1, 'crucible/cancel found the task', c);
    let err2;
    try {
      await p2;
    } catch (e) {
      err2 = e;
    }
    check(err2 && err2.code === -32800, 'crucible/cancel -> -32800', err2 && err2.message);
    ok('crucible/cancel {task} -> -32800');

    const r = await s.request('crucible/run', { code: "print('after')" });
    check(r.outcome === 'ok' && r.stdout === 'after\n', 'the sandbox still runs', r);
    ok('a run after the cancellations works');
    check((await s.stop()).code === 0, 'clean exit');
  },
};

async function main() {
  const name = process.argv[2];
  if (!BIN) fail('CRUCIBLE_BIN is not set');
  if (!scenarios[name]) fail('unknown scenario ' + name + '; one of ' + Object.keys(scenarios).join(', '));
  await scenarios[name]();
}

main().then(
  () => process.exit(0),
  (e) => fail(e && e.stack ? e.stack : String(e)),
);
