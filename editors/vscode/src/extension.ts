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
  CachedEnvironment,
  CheckResult,
  EnvSpec,
  OutputParams,
  PhaseParams,
  RunParams,
  RunResult,
  TextParams,
  crucibleLanguage,
  environmentLabel,
  parseRequirements,
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
/** "Crucible: <environment>", or "Crucible: installing …" while a task's environment is being built. */
let statusItem: vscode.StatusBarItem;
/** The environment the last run or ask reported, shown until the setting changes. */
let lastEnvironment: string | undefined;
/** The tasks in phase installing; the status bar shows the last line of their installer. */
const installing = new Set<string>();
/** Per task, the progress notification of the command that started it (for the installer's lines). */
const taskProgress = new Map<string, vscode.Progress<{ message?: string }>>();
/** Per installing task, the last percentage $/progress reported. */
const installPercent = new Map<string, number>();

/** The environment the crucible.sandbox.environment setting names (the server's default: system). */
function settingEnvironment(): string {
  return environmentLabel(vscode.workspace.getConfiguration('crucible').get<EnvSpec>('sandbox.environment'));
}

/** Shows the environment in use: the last run's, else the setting's. */
function showEnvironment(): void {
  if (installing.size) return;
  const env = lastEnvironment ?? settingEnvironment();
  statusItem.text = `Crucible: ${env}`;
  statusItem.tooltip = `Crucible runs programs in the ${env} environment. Click to pick another.`;
}

/** Shows one line of an installer's progress. */
function showInstalling(task: string, detail?: string, percent?: number): void {
  installing.add(task);
  // the installer's lines come without a percentage, $/progress reports with one: keep the last
  if (percent !== undefined) installPercent.set(task, percent);
  else percent = installPercent.get(task);
  const pct = percent !== undefined ? ` ${percent}%` : '';
  const line = detail ? `: ${detail}` : '';
  statusItem.text = `Crucible: installing …${pct}${line.length > 60 ? line.slice(0, 59) + '…' : line}`;
  statusItem.tooltip = `Crucible is building the environment${detail ? ': ' + detail : ''}`;
  if (detail) taskProgress.get(task)?.report({ message: `installing: ${detail}` });
}

/** The end of a task's installing phase (any other phase, or the task's end). */
function doneInstalling(task: string): void {
  installPercent.delete(task);
  if (installing.delete(task)) showEnvironment();
}

/** Records the environment a result names and shows it. */
function sawEnvironment(e: unknown): void {
  if (e && typeof e === 'object') {
    lastEnvironment = environmentLabel(e as EnvSpec);
    showEnvironment();
  }
}

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

  c.onNotification('crucible/phase', (p: PhaseParams) => {
    if (p.phase === 'installing') {
      // one notification per installer line: to the channel without the attempt banner each time
      writeLine(`── installing${p.detail ? ': ' + p.detail : ''}`);
      showInstalling(p.task, p.detail);
      return;
    }
    doneInstalling(p.task);
    writeLine(`── ${p.phase}${p.detail ? ': ' + p.detail : ''} (attempt ${p.iteration})`);
  });
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
  const token = `${task}/progress`;
  params = { ...params, task, workDoneToken: token };
  stream.show(true);
  writeLine(`══ run ${params.uri ?? 'code'}${params.range ? ` lines ${params.range.start.line + 1}-${params.range.end.line + 1}` : ''}`);
  running.add(task);
  try {
    const r = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Crucible: running', cancellable: true },
      async (progress, cancel) => {
        taskProgress.set(task, progress);
        const sub = progressOf(c, task, token, progress);
        try {
          return (await c.sendRequest(ExecuteCommandRequest.type, { command: 'crucible.run', arguments: [params] }, cancel)) as RunResult;
        } finally {
          sub.dispose();
        }
      },
    );
    sawEnvironment(r.environment);
    writeLine(`── ${runSummary(r)}`);
    if (r.outcome !== 'ok') void vscode.window.showWarningMessage(`Crucible: ${runSummary(r)}`);
    return r;
  } catch (err) {
    reportError('run', err);
    return undefined;
  } finally {
    running.delete(task);
    taskProgress.delete(task);
    doneInstalling(task);
  }
}

/** $/progress on a task's workDoneToken: the message into the notification, and while the task is
 * installing, the percentage and message into the status bar. */
function progressOf(c: CrucibleClient, task: string, token: string, progress: vscode.Progress<{ message?: string }>): vscode.Disposable {
  return c.onProgress(WorkDoneProgress.type, token, (v: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd) => {
    if (v.kind === 'end') return;
    if (installing.has(task)) showInstalling(task, v.message, v.percentage);
    else if (v.message) progress.report({ message: v.message });
  });
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
        taskProgress.set(task, progress);
        const sub = progressOf(c, task, token, progress);
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
    taskProgress.delete(task);
    doneInstalling(task);
  }
  sawEnvironment(r.environment ?? r.run?.environment);
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

/** The doctor report in one line, written last (the report is long: its end is what the panel shows). */
function doctorSummary(r: unknown): string {
  const o = (r ?? {}) as { ok?: boolean; llm?: { reachable?: boolean; error?: string }; docs?: { ranking?: string } };
  const parts = [
    o.ok === false ? 'the sandbox does NOT work here' : 'the sandbox works',
    o.llm?.reachable ? 'the LLM endpoint is reachable' : `the LLM endpoint is NOT reachable${o.llm?.error ? ` (${o.llm.error})` : ''}`,
  ];
  if (o.docs?.ranking) parts.push(`documentation ranking: ${o.docs.ranking}`);
  return '══ doctor: ' + parts.join('; ');
}

/** crucible.doctor: what works on this machine (sandbox, interpreters, LLM endpoint, settings). */
async function doctor(): Promise<void> {
  const c = ready();
  if (!c) return;
  try {
    const r = await c.sendRequest('crucible/doctor', {});
    writeLine('══ doctor');
    writeLine(JSON.stringify(r, null, 2));
    writeLine(doctorSummary(r));
    stream.show(true);
  } catch (err) {
    reportError('doctor', err);
  }
}

/** crucible.pickEnvironment: System, Workspace virtualenv, Packages… (requirements typed in) or one of the
 * server's cached environments; written to crucible.sandbox.environment at workspace scope, which reaches
 * the server as any settings change. */
async function pickEnvironment(): Promise<EnvSpec | undefined> {
  type Item = vscode.QuickPickItem & { spec?: EnvSpec; ask?: boolean };
  const items: Item[] = [
    { label: 'System', description: 'the interpreter and its standard library', spec: 'system' },
    { label: 'Workspace virtualenv', description: ".venv or venv (node_modules) of the workspace", spec: 'workspace' },
    { label: 'Packages…', description: 'type requirements; built once and cached', ask: true },
  ];
  if (client?.isRunning()) {
    try {
      const cached = (await client.sendRequest('crucible/environments', {})) as CachedEnvironment[];
      if (Array.isArray(cached) && cached.length) {
        items.push({ label: 'Cached', kind: vscode.QuickPickItemKind.Separator });
        for (const e of cached) {
          if (e.kind !== 'packages' || !Array.isArray(e.requirements)) continue;
          items.push({
            label: `packages: ${e.requirements.join(', ')}`,
            description: e.language,
            spec: { kind: 'packages', language: e.language, requirements: e.requirements },
          });
        }
      }
    } catch {
      // an older server without crucible/environments: the three choices above
    }
  }
  const pick = await vscode.window.showQuickPick(items, { title: 'Crucible: environment of sandboxed programs', placeHolder: `now: ${settingEnvironment()}` });
  if (!pick) return undefined;
  let spec = pick.spec;
  if (pick.ask) {
    const text = await vscode.window.showInputBox({
      prompt: 'Requirements, separated by spaces or commas',
      placeHolder: 'requests numpy>=1.26',
    });
    const requirements = text ? parseRequirements(text) : [];
    if (!requirements.length) return undefined;
    spec = { kind: 'packages', requirements };
  }
  if (spec === undefined) return undefined;
  lastEnvironment = undefined;
  await vscode.workspace.getConfiguration('crucible').update('sandbox.environment', spec, vscode.ConfigurationTarget.Workspace);
  showEnvironment();
  return spec;
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  stream = vscode.window.createOutputChannel('Crucible');
  serverChannel = vscode.window.createOutputChannel('Crucible Server');
  statusItem = vscode.window.createStatusBarItem('crucible.environment', vscode.StatusBarAlignment.Left, 0);
  statusItem.name = 'Crucible Environment';
  statusItem.command = 'crucible.pickEnvironment';
  showEnvironment();
  statusItem.show();
  context.subscriptions.push(
    statusItem,
    stream,
    serverChannel,
    vscode.commands.registerCommand('crucible.ask', ask),
    vscode.commands.registerCommand('crucible.run', run),
    vscode.commands.registerCommand('crucible.runSelection', () => run()),
    vscode.commands.registerCommand('crucible.check', check),
    vscode.commands.registerCommand('crucible.cancel', cancel),
    vscode.commands.registerCommand('crucible.doctor', doctor),
    vscode.commands.registerCommand('crucible.pickEnvironment', pickEnvironment),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration('crucible.sandbox.environment')) {
        lastEnvironment = undefined;
        showEnvironment();
      }
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
