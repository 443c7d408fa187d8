// UI helpers for driving VS Code (code-server) in Chromium with playwright-core.
// Selectors and waits follow shared/VSCODE-E2E.md: status bar items by id, the palette via F1,
// the Run and Debug view's call stack rows rather than the "Paused on breakpoint" label.
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { hostStep } from '../scenarios/host_sync.mjs';

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE ?? 'playwright-core');

export const WORKBENCH_TIMEOUT = 90_000;
export const STEP_TIMEOUT = 30_000;

/** Reads the scenario's JSON parameters (argv[2]) written by tests/vscode/codeserver.py. */
export function scenarioParams() {
  return JSON.parse(process.argv[2]);
}

/** Escapes an element id that contains dots for use in a CSS selector. */
export function byId(id) {
  return `[id="${id}"]`;
}

export class Workbench {
  constructor(browser, page, params) {
    this.browser = browser;
    this.page = page;
    this.params = params;
    this.shots = 0;
  }

  /** Starts Chromium, opens the workbench and waits until it is rendered. */
  static async open(params) {
    mkdirSync(params.chromiumHome, { recursive: true });
    const browser = await chromium.launch({
      executablePath: params.chromium,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      env: { ...process.env, HOME: params.chromiumHome },
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('pageerror', (err) => log(`page error: ${err.message}`));
    await page.goto(params.url);
    await page.waitForSelector('.monaco-workbench', { timeout: WORKBENCH_TIMEOUT });
    return new Workbench(browser, page, params);
  }

  async close() {
    await this.browser.close().catch(() => undefined);
  }

  /** Saves test-artifacts/vscode/<test>/NN-name.png. */
  async screenshot(name) {
    this.shots += 1;
    const file = path.join(this.params.artifacts, `${String(this.shots).padStart(2, '0')}-${name}.png`);
    await this.page.screenshot({ path: file });
    log(`screenshot ${file}`);
    return file;
  }

  /** F1, type the command's label, wait for its row, Enter. `label` as shown, e.g. "Innerloop: Show Status". */
  async runCommand(label) {
    const page = this.page;
    await this.dismissQuickInput();
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    await input.fill(`>${label}`);
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: label }).first();
    await row.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    await input.press('Enter');
  }

  async dismissQuickInput() {
    const widget = this.page.locator('.quick-input-widget');
    if (await widget.isVisible().catch(() => false)) await this.page.keyboard.press('Escape');
  }

  /** Picks `text` in an open quick pick (waits for the list to contain it). */
  async pickQuickItem(text) {
    const row = this.page.locator('.quick-input-widget .monaco-list-row', { hasText: text }).first();
    await row.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    await row.click();
  }

  /** Types into an open input box (quick input) and accepts it. */
  async answerInput(value) {
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    await input.fill(String(value));
    await input.press('Enter');
  }

  /** The status bar item contributed by an extension: id `<publisher>.<name>.<itemId>`. */
  statusBarItem(id) {
    return this.page.locator(`#workbench\\.parts\\.statusbar ${byId(id)}`);
  }

  /** Waits until the item's visible text matches `expected` (string: contains; RegExp: test). */
  async waitStatusBarText(id, expected, timeout = STEP_TIMEOUT) {
    const item = this.statusBarItem(id);
    const matches = (t) => (typeof expected === 'string' ? t.includes(expected) : expected.test(t));
    const deadline = Date.now() + timeout;
    let text = '';
    while (Date.now() < deadline) {
      text = ((await item.innerText({ timeout: 1000 }).catch(() => '')) ?? '').trim();
      if (matches(text)) return text;
      await this.page.waitForTimeout(200);
    }
    throw new Error(`status bar item ${id} shows "${text}", expected ${expected}`);
  }

  /**
   * Waits for a notification whose message matches; returns its text. Looks at the toasts, and
   * after a few seconds also in the notification center (toasts are not shown in every state).
   */
  async waitNotification(expected, timeout = STEP_TIMEOUT) {
    const messages = this.page.locator('.notification-list-item-message');
    const matches = (t) => (typeof expected === 'string' ? t.includes(expected) : expected.test(t));
    const started = Date.now();
    let centerOpened = false;
    let seen = [];
    while (Date.now() - started < timeout) {
      seen = await messages.allInnerTexts().catch(() => []);
      const hit = seen.find(matches);
      if (hit !== undefined) return hit;
      if (!centerOpened && Date.now() - started > 5_000) {
        centerOpened = true;
        await this.runCommand('Notifications: Show Notifications');
      }
      await this.page.waitForTimeout(200);
    }
    throw new Error(`no notification matching ${expected}; visible: ${JSON.stringify(seen)}`);
  }

  /** Opens a workspace file by its path relative to the folder (Quick Open). */
  async openFile(relativePath) {
    await this.dismissQuickInput();
    await this.page.keyboard.press('Control+P');
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    await input.fill(relativePath);
    await this.page.locator('.quick-input-widget .monaco-list-row', { hasText: path.basename(relativePath) }).first()
      .waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    await input.press('Enter');
    await this.page.locator('.editor-group-container .tab.active', { hasText: path.basename(relativePath) })
      .waitFor({ timeout: STEP_TIMEOUT });
  }

  /** Puts the cursor on `line` (1-based) of the active editor and toggles a breakpoint (F9). */
  async toggleBreakpoint(line) {
    await this.runCommand('Go to Line/Column...').catch(async () => {
      await this.page.keyboard.press('Control+G');
    });
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.fill(`:${line}`);
    await input.press('Enter');
    await this.page.keyboard.press('F9');
    await this.page.locator('.monaco-editor .codicon-debug-breakpoint').first()
      .waitFor({ timeout: STEP_TIMEOUT });
  }

  /** Starts the named launch configuration ("Debug: Select and Start Debugging" opens with "debug " typed). */
  async startDebugging(configName) {
    await this.runCommand('Debug: Select and Start Debugging');
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    await input.press('End');
    await input.type(configName);
    await this.pickQuickItem(configName);
  }

  async openDebugView() {
    await this.runCommand('View: Show Run and Debug');
    await this.page.locator('.debug-view-content, .debug-pane').first().waitFor({ timeout: STEP_TIMEOUT });
  }

  /** Waits for a call stack row such as /handler\s*app\.py\s*12:1/ (the reliable "paused" signal). */
  async waitCallStackRow(pattern, timeout = STEP_TIMEOUT) {
    return this.waitListRow('.debug-call-stack', 'call stack', pattern, timeout);
  }

  /** Waits for a Variables view row such as /^path = '\/hello'$/ (whitespace collapsed). */
  async waitVariableRow(pattern, timeout = STEP_TIMEOUT) {
    return this.waitListRow('.debug-variables', 'variable', pattern, timeout);
  }

  /** Waits for a row of the list in `view` whose text (whitespace collapsed) matches `pattern`. */
  async waitListRow(view, what, pattern, timeout) {
    const rows = this.page.locator(`${view} .monaco-list-row`);
    const deadline = Date.now() + timeout;
    let seen = [];
    while (Date.now() < deadline) {
      seen = (await rows.allInnerTexts().catch(() => [])).map((t) => t.replace(/\s+/g, ' '));
      const hit = seen.find((t) => pattern.test(t));
      if (hit !== undefined) return hit;
      await this.page.waitForTimeout(250);
    }
    throw new Error(`no ${what} row matching ${pattern}; rows: ${JSON.stringify(seen)}`);
  }

  /** The line the editor shows as paused (the top stack frame decoration), 1-based. */
  async pausedEditorLine(timeout = STEP_TIMEOUT) {
    const marker = this.page.locator('.monaco-editor .debug-top-stack-frame-line').first();
    await marker.waitFor({ timeout });
    const top = await marker.evaluate((el) => el.closest('.view-overlays > div, .view-line')?.style.top ?? el.parentElement?.style.top);
    const lineNumbers = this.page.locator('.monaco-editor .margin-view-overlays .line-numbers');
    for (const n of await lineNumbers.all()) {
      const parentTop = await n.evaluate((el) => el.parentElement?.style.top);
      if (parentTop === top) return Number((await n.innerText()).trim());
    }
    throw new Error('the paused line is not visible in the editor');
  }

  /** Clicks Continue on the debug toolbar, retrying while the toolbar re-renders. */
  async continueDebugging() {
    const button = this.page.locator('.debug-toolbar .codicon-debug-continue');
    for (let attempt = 0; attempt < 5; attempt += 1) {
      try {
        await button.click({ timeout: 5_000 });
        return;
      } catch {
        await this.page.waitForTimeout(500);
      }
    }
    throw new Error('could not click Continue on the debug toolbar');
  }
}

export function log(message) {
  console.log(`[${new Date().toISOString().slice(11, 23)}] ${message}`);
}

/** Runs a scenario body with a workbench; screenshots on failure; exit code 0 only on success. */
export async function runScenario(body) {
  const params = scenarioParams();
  let wb;
  let failed = false;
  try {
    wb = await Workbench.open(params);
    log('workbench ready');
    // The host deploys the test's workloads while the workbench loads (cluster_ui.py, `setup`).
    if (params.hostSetup) await hostStep(params, 'setup', params.interceptTimeoutMs);
    await body(wb, params);
    log('PASS');
  } catch (err) {
    failed = true;
    log(`FAIL: ${err instanceof Error ? err.stack : String(err)}`);
    if (wb !== undefined) await wb.screenshot('failure').catch(() => undefined);
  } finally {
    await wb?.close();
  }
  process.exit(failed ? 1 : 0);
}
