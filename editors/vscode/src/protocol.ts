// The shapes of Crucible's protocol extensions and small pure helpers over them (no VS Code API here).

export interface Position {
  line: number;
  character: number;
}
export interface Range {
  start: Position;
  end: Position;
}

export interface RunParams {
  code?: string;
  uri?: string;
  range?: Range;
  language?: string;
  stdin?: string;
  limits?: Record<string, number>;
  task?: string;
  workDoneToken?: string | number;
}

export interface RunResult {
  task?: string;
  outcome: 'ok' | 'error' | 'timeout' | 'oom' | 'rejected' | 'cancelled';
  exitCode: number | null;
  signal: number | string | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  durationMs: number;
  cpuMs: number;
  maxRssKb: number;
  limit?: string | null;
  diagnostics: unknown[];
  environment?: EnvironmentInfo;
}

/** What an EnvSpec resolved to, as results report it. */
export interface EnvironmentInfo {
  id: string;
  kind: string;
  language?: string;
  path?: string;
  requirements?: string[];
  image?: string;
}

/** An EnvSpec: "system", "workspace" or an object ({kind: "venv"|"packages"|"image", ...}). */
export type EnvSpec = string | { kind?: string; path?: string; requirements?: string[]; image?: string; language?: string };

/** One entry of crucible/environments. */
export interface CachedEnvironment {
  id: string;
  kind: string;
  language: string;
  requirements: string[];
  sizeBytes?: number;
  lastUsed?: number;
}

export interface AskParams {
  question: string;
  language?: string;
  docs?: string[];
  context?: { uri?: string; range?: Range; text?: string };
  maxIterations?: number;
  task?: string;
  workDoneToken?: string | number;
}

export interface Solution {
  prefix: string;
  imports: string;
  code: string;
}

export interface AskResult {
  task: string;
  outcome: 'passed' | 'failed' | 'cancelled' | 'error';
  iterations: number;
  solution: Solution;
  run?: RunResult | null;
  attempts: unknown[];
  sources: { title: string; url: string }[];
  usage: { promptTokens: number; completionTokens: number };
  error?: string;
  environment?: EnvironmentInfo;
}

export interface CheckResult {
  diagnostics: LspDiagnostic[];
  imports: { module: string; range: Range; status: string }[];
}

export interface LspDiagnostic {
  range: Range;
  message: string;
  severity?: 1 | 2 | 3 | 4;
  source?: string;
  code?: string | number;
}

export interface PhaseParams {
  task: string;
  iteration: number;
  phase: string;
  detail?: string;
}
export interface TextParams {
  task: string;
  iteration: number;
  text: string;
}
export interface OutputParams extends TextParams {
  stream: 'stdout' | 'stderr';
}
export interface AttemptParams {
  task: string;
  iteration: number;
  solution: Solution;
  run?: RunResult | null;
}

/** The settings the extension forwards, as dotted keys under `crucible.`. The LLM endpoint (llm.baseUrl,
 * llm.apiKeyEnv) and interpreters are left out: the server takes them only from the user's config file. */
export const SETTING_KEYS = [
  'llm.model',
  'llm.temperature',
  'llm.timeoutMs',
  'llm.maxRetries',
  'llm.structuredOutput',
  'agent.maxIterations',
  'agent.reflect',
  'agent.importCheck',
  'sandbox.timeoutMs',
  'sandbox.memoryMb',
  'sandbox.cpuSeconds',
  'sandbox.pids',
  'sandbox.outputBytes',
  'sandbox.diskMb',
  'sandbox.environment',
  'docs.sources',
  'docs.mode',
  'docs.maxDepth',
  'docs.maxPages',
  'docs.budgetTokens',
  'docs.embeddingModel',
] as const;

/** Builds the nested settings object ({llm:{...}, sandbox:{...}}) from the values the user set; `valueOf`
 * returns undefined for a key left at its default, so the server's own defaults and the user's config file
 * stay in force for it. */
export function settingsFrom(valueOf: (key: string) => unknown): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const key of SETTING_KEYS) {
    const v = valueOf(key);
    if (v === undefined) continue;
    const [group, name] = key.split('.');
    (out[group] ??= {})[name] = v;
  }
  return out;
}

/** One line describing how a run ended, e.g. "error (exit 1) in 43 ms, cpu 34 ms, 3556 KiB". */
export function runSummary(r: RunResult): string {
  let s = r.outcome;
  if (r.exitCode !== null && r.exitCode !== undefined) s += ` (exit ${r.exitCode})`;
  if (r.signal !== null && r.signal !== undefined) s += ` signal ${r.signal}`;
  if (r.limit) s += `, limit hit: ${r.limit}`;
  s += ` in ${r.durationMs ?? 0} ms, cpu ${r.cpuMs ?? 0} ms, ${r.maxRssKb ?? 0} KiB`;
  if (r.truncated) s += ', output truncated';
  return s;
}

/** The program an answer stands for: its imports, a blank line, its code. */
export function solutionText(s: Solution | undefined | null): string {
  if (!s) return '';
  return s.imports ? `${s.imports}\n\n${s.code}` : s.code;
}

/** The Crucible language of a VS Code language id. */
export function crucibleLanguage(languageId: string): string {
  if (languageId === 'shellscript') return 'bash';
  if (languageId === 'javascript' || languageId === 'python') return languageId;
  return 'python';
}

/** The status bar's name of an environment, from a setting's EnvSpec or a result's environment:
 * "system", "workspace", "venv: /p/.venv", "packages: a, b", "image: X". */
export function environmentLabel(e: EnvSpec | EnvironmentInfo | undefined | null): string {
  if (e === undefined || e === null || e === '') return 'system';
  if (typeof e === 'string') return e;
  const kind = e.kind ?? 'system';
  if (kind === 'packages') return `packages: ${(e.requirements ?? []).join(', ')}`;
  if (kind === 'image') return `image: ${e.image ?? '?'}`;
  if (kind === 'venv' && e.path) return `venv: ${e.path}`;
  return kind;
}

/** The requirements typed into the Packages… box: separated by spaces or commas, empty ones dropped. */
export function parseRequirements(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((r) => r.trim())
    .filter((r) => r.length > 0);
}
