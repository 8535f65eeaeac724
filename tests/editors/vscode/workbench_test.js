// Drives the real extension in the real VS Code workbench: code-server serves VS Code to Debian's
// chromium, run headless by playwright-core. test_editors.py starts code-server with the packaged
// extension installed and a workspace holding the files below, then runs this script.
//
// usage: node workbench_test.js
// env:   WORKBENCH_URL (code-server's page, with ?folder=), WORKSPACE (that folder), SHOTS (screenshot
//        folder), CRUCIBLE_WRAPPER (a server program that creates the file RESTARTED when started),
//        CHROMIUM (the browser).
// Prints "ok <what>" lines; on failure prints "FAIL <what>", saves a screenshot and exits 1.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const URL = process.env.WORKBENCH_URL;
const WS = process.env.WORKSPACE;
const SHOTS = process.env.SHOTS;
const WAIT = 60000; // generous: the machine running the tests may be busy

let page;
let browser;

function ok(msg) {
  console.log('ok ' + msg);
}

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, name + '.png') });
}

async function fail(msg) {
  console.log('FAIL ' + msg);
  try {
    await shot('failure');
  } catch (e) {
    console.log('(no screenshot: ' + e.message + ')');
  }
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

/** Waits until pred() is truthy (polling), or fails with what. */
async function until(what, pred, ms = WAIT) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) await fail('timed out waiting for ' + what);
    await page.waitForTimeout(200);
  }
}

/** Runs a command from the command palette by its title. */
async function palette(title) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill('>' + title);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor();
  await page.waitForTimeout(300);
  await page.keyboard.press('Enter');
}

/** Opens a workspace file from the Explorer and waits for its editor tab. */
async function open(name) {
  await page.keyboard.press('Control+Shift+E');
  const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: name }).first();
  await row.waitFor({ timeout: WAIT });
  // the tree may re-render under the pointer (a file appearing): try again until the tab is there
  const tab = page.locator('.tab.active', { hasText: name });
  for (let i = 0; i < 5 && !(await tab.isVisible()); i++) {
    await row.dblclick();
    await tab.waitFor({ timeout: 5000 }).catch(() => {});
  }
  await tab.waitFor();
  await page.locator('.editor-instance .monaco-editor').first().click({ position: { x: 200, y: 10 } });
}

/** Rendered text, with the editor's non-breaking spaces as spaces. */
async function textOf(locator) {
  return (await locator.innerText().catch(() => '')).replace(/\u00a0/g, ' ');
}

/** The text of the panel (Output, Problems) as rendered. */
async function panelText() {
  return textOf(page.locator('.part.panel'));
}

async function outputHas(text) {
  return (await panelText()).includes(text);
}

/** Visible notification toasts' text. */
async function toasts() {
  return page.locator('.notification-toast').allInnerTexts();
}

/** Sets a setting through the Settings UI (the settings editor's search and its text box). */
async function setSetting(id, value, tab = 'User') {
  await palette('Preferences: Open User Settings');
  const search = page.locator('.settings-editor .settings-header .suggest-input-container');
  await search.waitFor();
  // machine-scoped settings (crucible.serverPath) are the server machine's: the Remote tab
  await page.locator('.settings-editor .settings-tabs-widget .action-label', { hasText: tab }).first().click();
  await search.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.type(id);
  const box = page.locator(`.settings-editor .setting-item-contents input[aria-label="${id}"]`).first();
  await until('the setting ' + id + ' in the Settings UI', () => box.isVisible());
  await box.click();
  await box.fill(String(value));
  await page.keyboard.press('Tab');
  await page.waitForTimeout(1500); // the Settings UI writes after a short debounce
  await shot('settings-' + id);
  await page.keyboard.press('Control+W');
}

async function main() {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  // the workbench is some megabytes of script: slow to load on a busy machine
  await page.goto(URL, { waitUntil: 'domcontentloaded', timeout: 120000 });
  await page.locator('.monaco-workbench').waitFor({ timeout: 120000 });
  ok('workbench loaded');

  // Activation and live diagnostics: a syntax error shows in the Problems panel.
  await open('broken.py');
  await page.keyboard.press('Control+Shift+M');
  await until('the syntax error in the Problems panel', async () => {
    const t = await panelText();
    return /crucible/i.test(t) && /broken\.py/.test(t) ? t : '';
  });
  ok('extension active; diagnostics in the Problems panel');
  await shot('problems');

  // Check from the palette: the findings go to the Crucible channel.
  await palette('Crucible: Check syntax and imports');
  await until('the check report', () => outputHas('══ check'));
  ok('check');

  // Run selection from the palette: only the selected line runs.
  await open('prog.py');
  await page.keyboard.press('Control+Home');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Home');
  await page.keyboard.press('Shift+End');
  await palette('Crucible: Run selection (or file) in the sandbox');
  await until('the selection run', async () => {
    const t = await panelText();
    return t.includes('selected line runs') && /── ok \(exit 0\)/.test(t);
  });
  if (await outputHas('first line runs')) await fail('the run took lines outside the selection');
  ok('run selection');
  await shot('run-selection');

  // The status bar names the environment the run reported; Pick Environment writes the workspace setting.
  const envItem = page.locator('.statusbar-item', { hasText: 'Crucible:' }).first();
  await until('the environment in the status bar', async () => /Crucible: system/.test(await textOf(envItem)));
  await palette('Crucible: Pick Environment');
  const pickInput = page.locator('.quick-input-widget input');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Workspace virtualenv' }).first().waitFor();
  await pickInput.fill('System');
  await page.waitForTimeout(300);
  await page.keyboard.press('Enter');
  const settingsFile = path.join(WS, '.vscode', 'settings.json');
  await until('the picked environment in the workspace settings', () =>
    fs.existsSync(settingsFile) && /"crucible\.sandbox\.environment":\s*"system"/.test(fs.readFileSync(settingsFile, 'utf8')));
  await until('the status bar after the pick', async () => /Crucible: system/.test(await textOf(envItem)));
  ok('environment in the status bar; Pick Environment wrote crucible.sandbox.environment');

  // Cancel on the progress notification: a long run (started with the Ctrl+Alt+N keybinding) stops.
  await open('slow.py');
  await page.keyboard.press('Control+Alt+N');
  await until('the slow program\'s first output', () => outputHas('slow program started'));
  const toast = page.locator('.notification-toast', { hasText: 'Crucible: running' });
  await toast.waitFor({ timeout: WAIT });
  await shot('run-progress');
  const started = Date.now();
  await toast.locator('a.monaco-button, .monaco-button', { hasText: 'Cancel' }).first().click();
  await until('the run to be cancelled', () => outputHas('── run cancelled'), 10000);
  ok('cancel from the progress notification (' + (Date.now() - started) + ' ms)');

  // Ask from the palette, then Insert the answer into the file.
  await open('ask.py');
  await page.keyboard.press('Control+End');
  await palette('Crucible: Ask for code');
  const question = page.locator('.quick-input-widget input');
  await question.waitFor({ state: 'visible' });
  await question.fill('print the answer');
  await page.keyboard.press('Enter');
  const answer = page.locator('.notification-toast', { hasText: 'after 1 attempt' });
  await answer.waitFor({ timeout: 60000 });
  await shot('ask');
  await answer.locator('.monaco-button', { hasText: 'Insert' }).first().click();
  await until('the answer in the editor', async () => (await textOf(page.locator('.editor-instance .view-lines').first())).includes('the answer is'));
  await page.keyboard.press('Control+S');
  await until('ask.py saved with the answer', () => fs.readFileSync(path.join(WS, 'ask.py'), 'utf8').includes("print('the answer is', 6 * 7)"));
  ok('ask + insert');

  // Settings UI: a tighter sandbox time limit reaches the running server: the slow program now stops
  // at the limit instead of sleeping a minute...
  await palette('Crucible: Doctor');
  // the report's last line sums it up (the JSON is longer than the panel shows)
  await until('the doctor report', () => outputHas('the sandbox works; the LLM endpoint is reachable'));
  await shot('doctor');
  ok('doctor');
  await setSetting('crucible.sandbox.timeoutMs', 1500);
  await open('slow.py');
  await page.keyboard.press('Control+Alt+N');
  await until('the run to stop at the new time limit', () => outputHas('limit hit'), 20000);
  ok('settings UI reconfigures the server');
  // ...and a new server path restarts it, with one "Crucible Server" channel still.
  await setSetting('crucible.serverPath', process.env.CRUCIBLE_WRAPPER, 'Remote');
  await until('the server restarted through the new path', () => fs.existsSync(process.env.RESTARTED));
  await open('broken.py');
  await page.keyboard.press('Control+Shift+M');
  await until('diagnostics from the restarted server', async () => /invalid syntax/.test(await panelText()));
  await palette('Output: Show Output Channels...');
  const pick = page.locator('.quick-input-widget');
  await pick.locator('input').fill('Crucible');
  await page.waitForTimeout(500);
  const names = await pick.locator('.quick-input-list .monaco-list-row').allInnerTexts();
  const servers = names.filter((n) => n.includes('Crucible Server')).length;
  if (servers !== 1) await fail('"Crucible Server" output channels after a restart: ' + servers + ' (' + JSON.stringify(names) + ')');
  await page.keyboard.press('Escape');
  ok('server path change restarts the server; one "Crucible Server" channel');

  await open('prog.py');
  await shot('workbench');
  await browser.close();
  console.log('done');
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
