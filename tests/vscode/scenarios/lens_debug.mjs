// "▶ Debug live traffic" above a Flask handler against the testbed, reached in one of two ways:
// - params.walkthrough false: the workspace's settings already map it to the echo Service; the
//   scenario opens app.py and clicks the code lens (tests/vscode/test_vscode_lens.py);
// - params.walkthrough true: a fresh profile with nothing mapped; the first-run walkthrough's
//   three buttons (context → Service → debug live traffic) do it all, timed
//   (tests/vscode/test_vscode_walkthrough.py).
// Then a pod's request stops at the handler's first line (call stack, variables, editor line),
// continue → the host checks the local answer; Shift+F5 → the intercept is left. Last, a click
// on the status bar item starts the mapped Service's intercept, another stops it.
import { log, runScenario, STEP_TIMEOUT } from '../lib/workbench.mjs';
import { hostStep } from './host_sync.mjs';

const ITEM = 'innerloop.innerloop.status';
const WALKTHROUGH = 'Debug live cluster traffic with innerloop';

/** A button of the walkthrough's expanded step (a link alone on its line renders as one). */
async function clickStepButton(wb, stepTitle, label) {
  const page = wb.page;
  const button = page.locator('.gettingStartedContainer .monaco-button', { hasText: label }).first();
  if (!(await button.isVisible().catch(() => false))) {
    await page.locator('.gettingStartedContainer .getting-started-step', { hasText: stepTitle }).first().click();
  }
  await button.click({ timeout: STEP_TIMEOUT });
  log(`walkthrough: clicked "${label}"`);
}

/** Waits for the quick input whose title contains `part`; returns the title. */
async function waitTitle(wb, part) {
  const title = wb.page.locator('.quick-input-widget .quick-input-title');
  const deadline = Date.now() + STEP_TIMEOUT;
  let text = '';
  while (Date.now() < deadline) {
    text = ((await title.innerText({ timeout: 1000 }).catch(() => '')) ?? '').trim();
    if (text.includes(part)) return text;
    await wb.page.waitForTimeout(100);
  }
  throw new Error(`no quick input titled "…${part}…"; saw "${text}"`);
}

/** Accepts the quick pick's active (first) row, from its input (the page may hold the focus). */
async function acceptFirst(wb) {
  await wb.page.locator('.quick-input-widget .quick-input-box input').press('Enter');
}

/** The rows of the open quick pick, whitespace collapsed. */
async function quickRows(wb) {
  const rows = wb.page.locator('.quick-input-widget .monaco-list-row');
  await rows.first().waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  return (await rows.allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
}

async function walkthrough(wb, params, marks) {
  await wb.runCommand('Welcome: Open Walkthrough...');
  await wb.pickQuickItem(WALKTHROUGH);
  await wb.page.locator('.gettingStartedContainer', { hasText: 'Pick the cluster' }).first().waitFor({ timeout: STEP_TIMEOUT });
  await wb.screenshot('walkthrough');

  // 1. The context: the kubeconfig's current one comes first, with its namespace.
  await clickStepButton(wb, 'Pick the cluster', 'Pick the Context');
  log(`dialog: ${await waitTitle(wb, 'context')}`);
  const contexts = await quickRows(wb);
  log(`contexts: ${JSON.stringify(contexts)}`);
  if (!contexts[0].includes(params.context) || !contexts[0].includes(`namespace ${params.namespace}`)) {
    throw new Error(`first context row ${JSON.stringify(contexts[0])}, expected ${params.context} with namespace ${params.namespace}`);
  }
  await acceptFirst(wb);
  marks.context = Date.now();

  // 2. The Service: the namespace pick starts at the context's namespace; the local port
  //    defaults to where the app listens in the pod.
  await clickStepButton(wb, 'Pick the Service', 'Pick the Service');
  log(`dialog: ${await waitTitle(wb, 'namespace')}`);
  const namespaces = await quickRows(wb);
  log(`namespaces (first 3): ${JSON.stringify(namespaces.slice(0, 3))}`);
  if (!namespaces[0].startsWith(params.namespace)) throw new Error(`first namespace row ${JSON.stringify(namespaces[0])}, expected ${params.namespace}`);
  await acceptFirst(wb);
  await wb.pickQuickItem('echo');
  const input = wb.page.locator('.quick-input-widget .quick-input-box input');
  log(`dialog: ${await waitTitle(wb, 'local port')}`);
  const suggested = await input.inputValue();
  log(`local port suggested: ${suggested}`);
  if (suggested !== String(params.localPort)) throw new Error(`local port suggested ${suggested}, expected ${params.localPort}`);
  await input.press('Enter');
  marks.service = Date.now();

  // 3. Debug live traffic: opens the handler's file and runs its lens.
  await clickStepButton(wb, 'Debug live traffic', 'Debug Live Traffic');
}

/** The Run and Debug view, by its key binding first: a starting debug session can take the
 *  focus from the command palette on a loaded machine. */
async function showDebugView(wb) {
  const pane = wb.page.locator('.debug-view-content, .debug-pane').first();
  for (let attempt = 0; attempt < 3; attempt += 1) {
    await wb.page.keyboard.press('Control+Shift+D');
    if (await pane.waitFor({ timeout: 5_000 }).then(() => true, () => false)) return;
  }
  await wb.openDebugView();
}

async function clickLens(wb) {
  await wb.openFile('app.py');
  const lens = wb.page.locator('.monaco-editor .codelens-decoration a', { hasText: 'Debug live traffic' }).first();
  await lens.waitFor({ state: 'visible', timeout: 60_000 });
  await wb.screenshot('code-lens');
  await lens.click();
  log('clicked the code lens');
}

await runScenario(async (wb, params) => {
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', params.activationTimeoutMs);
  const marks = { start: Date.now() };
  if (params.walkthrough) await walkthrough(wb, params, marks);
  else await clickLens(wb);
  marks.debug = Date.now();
  await showDebugView(wb);
  log(`intercepting: ${await wb.waitStatusBarText(ITEM, `echo → :${params.localPort}`, params.interceptTimeoutMs)}`);
  marks.active = Date.now();
  await hostStep(params, 'request', params.interceptTimeoutMs);
  marks.request = Date.now();

  const line = params.breakpointLine;
  log(`stack: ${await wb.waitCallStackRow(new RegExp(`${params.handler}\\s*app\\.py\\s*${line}:1`), 60_000)}`);
  marks.paused = Date.now();
  log(`variable: ${await wb.waitVariableRow(new RegExp(`^order_id = ${params.orderId}$`))}`);
  const paused = await wb.pausedEditorLine();
  if (paused !== line) throw new Error(`editor paused at line ${paused}, expected ${line}`);
  const seconds = (a, b) => Number(((marks[b] - marks[a]) / 1000).toFixed(2));
  const timing = {
    total: seconds('start', 'paused'),
    ...(params.walkthrough ? { context: seconds('start', 'context'), service: seconds('context', 'service') } : {}),
    toActive: seconds('debug', 'active'),
    hostRequest: seconds('active', 'request'),
    requestToPaused: seconds('request', 'paused'),
  };
  log(`TIMING ${JSON.stringify(timing)}`);
  await wb.screenshot('paused-on-pod-request');
  await hostStep(params, 'paused');

  await wb.continueDebugging();
  await hostStep(params, 'answered');
  await wb.screenshot('continued');

  await wb.page.keyboard.press('Shift+F5'); // Debug: Stop
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', 60_000);
  await hostStep(params, 'restored');

  // The status bar's click starts the workspace's mapped Service (no palette choice was made),
  // a second click stops it.
  await wb.statusBarItem(ITEM).click();
  log(`status bar click: ${await wb.waitStatusBarText(ITEM, `echo → :${params.localPort}`, 60_000)}`);
  await wb.statusBarItem(ITEM).click();
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', 60_000);
});
