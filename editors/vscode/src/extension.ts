// The Crucible extension for VS Code: runs `crucible serve` as a language server and adds ask, run, check,
// cancel and doctor commands that stream what the server reports into the "Crucible" output channel.
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  DynamicFeature,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  StaticFeature,
  TransportKind,
  WorkDoneProgress,
  WorkDoneProgressBegin,
  WorkDoneProgressEnd,
  WorkDoneProgressReport,
} from 'vscode-languageclient/node';

import {
  AskParams,
  AskResult,
  AttemptParams,
  CheckResult,
  OutputParams,
  PhaseParams,
  RunParams,
  RunResult,
  TextParams,
  crucibleLanguage,
  runSummary,
  settingsFrom,
  solutionText,
} from './protocol';

const LANGUAGES = ['python', 'javascript', 'shellscript'];
const REQUEST_CANCELLED = -32800;

/** The language client minus the generic forwarding of the server's executeCommandProvider commands: the
 * extension registers crucible.ask/run/check/cancel itself (with prompts, progress and output), and two
 * registrations of one command id would fail. */
class CrucibleClient extends LanguageClient {
  public registerFeature(feature: StaticFeature | DynamicFeature<any>): void {
    const method = (feature as DynamicFeature<any>).registrationType?.method;
    if (method === ExecuteCommandRequest.method) return;
    super.registerFeature(feature);
  }
}

let client: CrucibleClient | undefined;
let stream: vscode.OutputChannel;
/** The "Crucible Server" channel: made once and handed to every client, so a restart adds no channel. */
let serverChannel: vscode.OutputChannel;
let atLineStart = true;
let taskCounter = 0;
const running = new Set<string>();

function newTask(): string {
  taskCounter += 1;
  return `vscode-${process.pid}-${taskCounter}`;
}

function write(text: string): void {
  if (!text) return;
  stream.append(text);
  atLineStart = text.endsWith('\n');
}

function writeLine(line: string): void {
  write((atLineStart ? '' : '\n') + line + '\n');
}

/** The crucible.* settings the user set explicitly (workspace folder, workspace or user level). */
function explicitSettings(): Record<string, unknown> {
  const conf = vscode.workspace.getConfiguration('crucible');
  return settingsFrom((key) => {
    const i = conf.inspect(key);
    return i?.workspaceFolderValue ?? i?.workspaceValue ?? i?.globalValue;
  });
}

function createClient(context: vscode.ExtensionContext): CrucibleClient {
  const conf = vscode.workspace.getConfiguration('crucible');
  const command = conf.get<string>('serverPath') || 'crucible';
  // ['connect', 'unix:…' | 'tcp:…'] reaches a `crucible serve --listen` server instead of starting one.
  const configured = conf.get<string[]>('serverArgs');
  const args = Array.isArray(configured) && configured.length ? configured : ['serve'];
  const serverOptions: ServerOptions = { command, args, transport: TransportKind.stdio };
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.flatMap((language) => [
      { scheme: 'file', language },
      { scheme: 'untitled', language },
    ]),
    initializationOptions: explicitSettings(),
    outputChannel: serverChannel,
  };
  const c = new CrucibleClient('crucible', 'Crucible', serverOptions, clientOptions);

  c.onNotification('crucible/phase', (p: PhaseParams) =>
    writeLine(`── ${p.phase}${p.detail ? ': ' + p.detail : ''} (attempt ${p.iteration})`),
  );
  c.onNotification('crucible/token', (p: TextParams) => write(p.text));
  c.onNotification('crucible/output', (p: OutputParams) => write(p.text));
  c.onNotification('crucible/reflection', (p: TextParams) => {
    writeLine('── reflection:');
    write(p.text);
  });
  c.onNotification('crucible/attempt', (p: AttemptParams) =>
    writeLine(`── attempt ${p.iteration} finished: ${p.run ? p.run.outcome : 'not run'}`),
  );
  context.subscriptions.push(c);
  return c;
}

function isCancelled(err: unknown): boolean {
  return (err as { code?: number })?.code === REQUEST_CANCELLED;
}

function reportError(what: string, err: unknown): void {
  if (isCancelled(err)) {
    writeLine(`── ${what} cancelled`);
    return;
  }
  const msg = (err as Error)?.message ?? String(err);
  writeLine(`── ${what} failed: ${msg}`);
  void vscode.window.showErrorMessage(`Crucible: ${what} failed: ${msg}`);
}

function ready(): CrucibleClient | undefined {
  if (!client || !client.isRunning()) {
    void vscode.window.showErrorMessage('Crucible: the server is not running; check crucible.serverPath and the "Crucible Server" output.');
    return undefined;
  }
  return client;
}

/** The document and range a command acts on: the selection, or the whole document when nothing is selected. */
function target(editor: vscode.TextEditor, c: CrucibleClient) {
  const doc = editor.document;
  const synced = LANGUAGES.includes(doc.languageId) && (doc.uri.scheme === 'file' || doc.uri.scheme === 'untitled');
  const range = editor.selection.isEmpty ? undefined : c.code2ProtocolConverter.asRange(editor.selection);
  return { doc, synced, range, language: crucibleLanguage(doc.languageId) };
}

/** crucible.run / crucible.runSelection: runs params (or the active selection or file) in the sandbox
 * through workspace/executeCommand, streaming its output; runtime errors come back as diagnostics. */
async function run(params?: RunParams): Promise<RunResult | undefined> {
  const c = ready();
  if (!c) return undefined;
  if (!params || (!params.code && !params.uri)) {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showWarningMessage('Crucible: open a file to run.');
      return undefined;
    }
    const t = target(editor, c);
    params = t.synced
      ? { uri: t.doc.uri.toString(), range: t.range, language: t.language }
      : { code: editor.selection.isEmpty ? t.doc.getText() : t.doc.getText(editor.selection), language: t.language };
  }
  const task = newTask();
  params = { ...params, task };
  stream.show(true);
  writeLine(`══ run ${params.uri ?? 'code'}${params.range ? ` lines ${params.range.start.line + 1}-${params.range.end.line + 1}` : ''}`);
  running.add(task);
  try {
    const r = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Crucible: running', cancellable: true },
      (_progress, token) =>
        c.sendRequest(ExecuteCommandRequest.type, { command: 'crucible.run', arguments: [params] }, token) as Promise<RunResult>,
    );
    writeLine(`── ${runSummary(r)}`);
    if (r.outcome !== 'ok') void vscode.window.showWarningMessage(`Crucible: ${runSummary(r)}`);
    return r;
  } catch (err) {
    reportError('run', err);
    return undefined;
  } finally {
    running.delete(task);
  }
}

/** crucible.ask: asks for code (a question typed in, or the params of the server's "fix this error" code
 * action), shows progress, streams the answer, then offers to insert the code. */
async function ask(params?: AskParams): Promise<AskResult | undefined> {
  const c = ready();
  if (!c) return undefined;
  const editor = vscode.window.activeTextEditor;
  if (!params || typeof params.question !== 'string') {
    const question = await vscode.window.showInputBox({
      prompt: 'Ask Crucible for code',
      placeHolder: 'read data.csv and plot the monthly totals',
    });
    if (!question) return undefined;
    params = { question, language: 'python' };
    if (editor) {
      const t = target(editor, c);
      params.language = t.language;
      if (t.range) params.context = t.synced ? { uri: t.doc.uri.toString(), range: t.range } : { text: t.doc.getText(editor.selection) };
    }
  }
  const task = newTask();
  const token = `${task}/progress`;
  params = { ...params, task, workDoneToken: token };
  stream.show(true);
  writeLine(`══ ask: ${params.question}`);
  running.add(task);
  let r: AskResult;
  try {
    r = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Crucible', cancellable: true },
      async (progress, cancel) => {
        const sub = c.onProgress(WorkDoneProgress.type, token, (v: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd) => {
          if (v.kind !== 'end' && v.message) progress.report({ message: v.message });
        });
        try {
          return (await c.sendRequest('crucible/ask', params, cancel)) as AskResult;
        } finally {
          sub.dispose();
        }
      },
    );
  } catch (err) {
    reportError('ask', err);
    return undefined;
  } finally {
    running.delete(task);
  }
  const code = solutionText(r.solution);
  writeLine(`══ ${r.outcome} after ${r.iterations} attempt(s)${r.error ? ': ' + r.error : ''}`);
  writeLine(`Description: ${r.solution?.prefix ?? ''}`);
  writeLine('```' + (params.language ?? 'python'));
  writeLine(code);
  writeLine('```');
  if (r.run) writeLine(`── ${runSummary(r.run)}`);
  if (!code) return r;

  const choices = editor ? ['Insert', 'Open in editor'] : ['Open in editor'];
  const pick = await vscode.window.showInformationMessage(
    `Crucible: ${r.outcome} after ${r.iterations} attempt(s). ${r.solution.prefix}`,
    ...choices,
  );
  if (pick === 'Insert' && editor) {
    await editor.edit((b) => (editor.selection.isEmpty ? b.insert(editor.selection.active, code) : b.replace(editor.selection, code)));
  } else if (pick === 'Open in editor') {
    const lang = params.language === 'bash' ? 'shellscript' : params.language ?? 'python';
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument({ language: lang, content: code }));
  }
  return r;
}

/** crucible.check: syntax and import findings of the active document, listed in the output channel. */
async function check(): Promise<CheckResult | undefined> {
  const c = ready();
  const editor = vscode.window.activeTextEditor;
  if (!c || !editor) return undefined;
  const t = target(editor, c);
  const params = t.synced ? { uri: t.doc.uri.toString() } : { code: t.doc.getText(), language: t.language };
  try {
    const r = (await c.sendRequest('crucible/check', params)) as CheckResult;
    writeLine(`══ check ${t.doc.uri.toString()}: ${r.diagnostics.length} problem(s), ${r.imports.length} import(s)`);
    for (const d of r.diagnostics) writeLine(`${d.range.start.line + 1}:${d.range.start.character + 1} ${d.message}`);
    for (const i of r.imports) writeLine(`import ${i.module}: ${i.status}`);
    stream.show(true);
    return r;
  } catch (err) {
    reportError('check', err);
    return undefined;
  }
}

/** crucible.cancel: cancels one task ({task}) or every task the extension started. */
async function cancel(arg?: { task?: string }): Promise<void> {
  const c = ready();
  if (!c) return;
  const tasks = arg?.task ? [arg.task] : [...running];
  await Promise.all(tasks.map((task) => c.sendRequest('crucible/cancel', { task })));
}

/** crucible.doctor: what works on this machine (sandbox, interpreters, LLM endpoint, settings). */
async function doctor(): Promise<void> {
  const c = ready();
  if (!c) return;
  try {
    const r = await c.sendRequest('crucible/doctor', {});
    writeLine('══ doctor');
    writeLine(JSON.stringify(r, null, 2));
    stream.show(true);
  } catch (err) {
    reportError('doctor', err);
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  stream = vscode.window.createOutputChannel('Crucible');
  serverChannel = vscode.window.createOutputChannel('Crucible Server');
  context.subscriptions.push(
    stream,
    serverChannel,
    vscode.commands.registerCommand('crucible.ask', ask),
    vscode.commands.registerCommand('crucible.run', run),
    vscode.commands.registerCommand('crucible.runSelection', () => run()),
    vscode.commands.registerCommand('crucible.check', check),
    vscode.commands.registerCommand('crucible.cancel', cancel),
    vscode.commands.registerCommand('crucible.doctor', doctor),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration('crucible') || !client) return;
      if (e.affectsConfiguration('crucible.serverPath') || e.affectsConfiguration('crucible.serverArgs')) {
        await client.stop();
        client = createClient(context);
        await client.start();
      } else if (client.isRunning()) {
        await client.sendNotification(DidChangeConfigurationNotification.type, { settings: { crucible: explicitSettings() } });
      }
    }),
  );
  client = createClient(context);
  await client.start();
}

export async function deactivate(): Promise<void> {
  if (client) await client.stop();
}
