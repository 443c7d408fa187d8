// The Innerloop view against the testbed (tests/vscode/test_vscode_view.py): the code lens above
// the Flask handler starts a debug session (a pod's request stops at the handler's first line:
// call stack, variables, editor line, as in lens_debug.mjs); the Intercepts view shows the
// intercept with its holder and a tunnel per replica; a pod's request appears in the Request Log
// with its path and "held at breakpoint" while the program is paused there, then with its status
// once continued; a click on it opens the handler at its code lens; "Show Request Log" renders
// the same record in a table. The Cluster view lists the Service with its replicas and agent.
import { log, runScenario, STEP_TIMEOUT } from '../lib/workbench.mjs';
import { hostStep } from './host_sync.mjs';

const ITEM = 'innerloop.innerloop.status';

/** The rows of one view of the Innerloop container. */
function viewRows(wb, title) {
  const pane = wb.page.locator('.pane', { has: wb.page.locator('.pane-header .title', { hasText: title }) });
  return pane.locator('.monaco-list-row');
}

/** Each row's label and description, whitespace collapsed. */
async function rowTexts(rows) {
  return (await rows.allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
}

/** Waits for a row of the view whose text matches every pattern; returns its text. */
async function waitViewRow(wb, title, patterns, timeout = STEP_TIMEOUT) {
  const rows = viewRows(wb, title);
  const deadline = Date.now() + timeout;
  let seen = [];
  while (Date.now() < deadline) {
    seen = await rowTexts(rows).catch(() => []);
    const hit = seen.find((t) => patterns.every((p) => p.test(t)));
    if (hit !== undefined) return hit;
    await wb.page.waitForTimeout(250);
  }
  throw new Error(`no "${title}" row matching ${patterns.join(' & ')}; rows: ${JSON.stringify(seen)}`);
}

/** Drags the sidebar's edge to the right, so the screenshots show whole rows. */
async function widenSidebar(wb, width) {
  const sidebar = await wb.page.locator('.part.sidebar').boundingBox();
  if (sidebar === null) return;
  const edge = sidebar.x + sidebar.width;
  for (const sash of await wb.page.locator('.monaco-sash.vertical').all()) {
    const box = await sash.boundingBox().catch(() => null);
    if (box === null || Math.abs(box.x + box.width / 2 - edge) > 4 || box.height < 200) continue;
    const y = box.y + box.height / 2;
    await wb.page.mouse.move(box.x + box.width / 2, y);
    await wb.page.mouse.down();
    await wb.page.mouse.move(sidebar.x + width, y, { steps: 5 });
    await wb.page.mouse.up();
    // The sash keeps the keyboard focus (F1 would open nothing): give it back to the editor.
    await wb.page.locator('.part.editor .monaco-editor .view-lines').first().click({ position: { x: 200, y: 10 } });
    return;
  }
  log('no sash at the sidebar edge; screenshots keep its width');
}

/** Waits for a cell of the request-log table (a webview: nested frames) with this text. */
async function waitTableCell(wb, text, timeout = STEP_TIMEOUT) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    for (const frame of wb.page.frames()) {
      const cell = frame.locator('td.request', { hasText: text });
      if ((await cell.count().catch(() => 0)) > 0) {
        return (await cell.first().locator('xpath=..').innerText()).replace(/\s+/g, ' ');
      }
    }
    await wb.page.waitForTimeout(250);
  }
  throw new Error(`the request log table has no row for ${text}`);
}

await runScenario(async (wb, params) => {
  const path = `/orders/${params.orderId}`;
  const request = new RegExp(`GET ${path}`);
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', params.activationTimeoutMs);
  await wb.openFile('app.py');
  const lens = wb.page.locator('.monaco-editor .codelens-decoration a', { hasText: 'Debug live traffic' }).first();
  await lens.waitFor({ state: 'visible', timeout: 60_000 });
  await lens.click();
  log(`intercepting: ${await wb.waitStatusBarText(ITEM, `echo → :${params.localPort}`, params.interceptTimeoutMs)}`);

  await wb.runCommand('View: Show Innerloop');
  await widenSidebar(wb, 640);
  const intercept = await waitViewRow(wb, 'Intercepts', [new RegExp(`echo\\.${params.namespace}`), /2\/2 tunnels/]);
  log(`intercept row: ${intercept}`);
  log(`holder row: ${await waitViewRow(wb, 'Intercepts', [/held by/, /@/])}`);
  log(`tunnel row: ${await waitViewRow(wb, 'Intercepts', [/^echo-/, /tunnel up/])}`);
  log(`service row: ${await waitViewRow(wb, 'Cluster', [/^echo/, /2\/2 ready/, /agent/], 60_000)}`);
  await wb.screenshot('intercept-in-view');
  // Run and Debug open when the request stops, as in lens_debug.mjs: the stopped thread shows
  // its frames.
  await wb.openDebugView();
  await hostStep(params, 'request', params.interceptTimeoutMs);

  // Paused at the handler's breakpoint (VS Code shows Run and Debug then): the request is in
  // the log, held, not answered yet.
  // The call stack row, not the status bar: VS Code reveals Run and Debug and focuses the
  // editor as it pauses, which would close a palette opened meanwhile.
  log(`stack: ${await wb.waitCallStackRow(/PAUSED ON BREAKPOINT/, 60_000)}`);
  // Where the lens put the breakpoint: the handler's first line, with the route's argument.
  const line = params.breakpointLine;
  log(`stack: ${await wb.waitCallStackRow(new RegExp(`${params.handler}\\s*app\\.py\\s*${line}:1`))}`);
  log(`variable: ${await wb.waitVariableRow(new RegExp(`^order_id = ${params.orderId}$`))}`);
  const paused = await wb.pausedEditorLine();
  if (paused !== line) throw new Error(`editor paused at line ${paused}, expected ${line}`);
  log(`status bar: ${await wb.waitStatusBarText(ITEM, '(paused)')}`);
  await wb.runCommand('View: Show Innerloop');
  // The caller's address first; its pod's name once the server has looked it up.
  const held = await waitViewRow(wb, 'Request Log', [request, /held at breakpoint/, new RegExp(` · ${params.clientPod} · `)], 60_000);
  log(`held row: ${held}`);
  if (/^GET \S+ ?200/.test(held)) throw new Error(`the held request shows an answer already: ${held}`);
  await wb.screenshot('held-at-breakpoint');
  await hostStep(params, 'paused');

  await wb.continueDebugging();
  const answered = await waitViewRow(wb, 'Request Log', [new RegExp(`GET ${path} ?200 · held at breakpoint`)]);
  log(`answered row: ${answered}`);
  await hostStep(params, 'answered');
  await wb.screenshot('answered');

  // A click on the request opens its handler at the code lens (the decorator's line).
  const row = viewRows(wb, 'Request Log').filter({ hasText: path }).first();
  await row.click();
  log(`cursor: ${await wb.waitStatusBarText('status.editor.selection', `Ln ${params.lensLine},`)}`);

  await wb.runCommand('Innerloop: Show Request Log');
  log(`table row: ${await waitTableCell(wb, path)}`);
  await wb.screenshot('request-log-table');

  // The keyboard focus back from the webview: the request's row opens (and focuses) app.py.
  await viewRows(wb, 'Request Log').filter({ hasText: path }).first().click();
  await wb.page.locator('.editor-group-container .tab.active', { hasText: 'app.py' }).waitFor({ timeout: STEP_TIMEOUT });
  await wb.page.keyboard.press('Shift+F5'); // Debug: Stop
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', 60_000);
  await hostStep(params, 'restored');
});
