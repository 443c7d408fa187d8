// Intercept Service… with the step 4/4 "Only requests with header…" against the testbed: the
// header input comes prefilled with the personal header x-innerloop-user=<OS user>, accepted as
// is; the status bar shows the filter; "Innerloop: Copy curl Command" shows a request that
// matches it. The host then sends a pod's requests with and without the header (the first are
// answered by the local app, the others by the cluster). Stop → the intercept is left. Used by
// tests/vscode/test_vscode_filter.py.
import { quickInputTitle } from '../lib/dialogs.mjs';
import { log, runScenario } from '../lib/workbench.mjs';
import { hostStep } from './host_sync.mjs';

const ITEM = 'innerloop.innerloop.status';

await runScenario(async (wb, params) => {
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', params.activationTimeoutMs);

  await wb.runCommand('Innerloop: Intercept Service');
  await wb.answerInput(params.namespace);
  await wb.pickQuickItem('echo');
  const portTitle = await quickInputTitle(wb, 'Intercept Service (2/4): Service in');
  await wb.answerInput(params.localPort);
  const scopeTitle = await quickInputTitle(wb, portTitle);
  await wb.screenshot('which-requests');
  await wb.pickQuickItem('Only requests with header');
  const headerTitle = await quickInputTitle(wb, scopeTitle);
  log(`titles: ${JSON.stringify([portTitle, scopeTitle, headerTitle])}`);
  const expected = ['Intercept Service (3/4): local port', 'Intercept Service (4/4): which requests', 'Intercept Service (4/4): header'];
  if (JSON.stringify([portTitle, scopeTitle, headerTitle]) !== JSON.stringify(expected)) {
    throw new Error(`step titles ${JSON.stringify([portTitle, scopeTitle, headerTitle])}, expected ${JSON.stringify(expected)}`);
  }
  const input = wb.page.locator('.quick-input-widget .quick-input-box input');
  const prefilled = await input.inputValue();
  log(`header prefilled: ${prefilled}`);
  if (prefilled !== params.personalHeader) throw new Error(`header prefilled "${prefilled}", expected "${params.personalHeader}"`);
  await input.press('Enter');

  const text = `echo → :${params.localPort} · ${params.personalHeader}`;
  log(`intercepting: ${await wb.waitStatusBarText(ITEM, text, params.interceptTimeoutMs)}`);
  await wb.statusBarItem(ITEM).hover();
  const tooltip = wb.page.locator('.workbench-hover, .monaco-hover').filter({ hasText: 'requests: only' }).first();
  await tooltip.waitFor({ state: 'visible', timeout: 30_000 });
  log(`tooltip: ${(await tooltip.innerText()).replace(/\s+/g, ' ')}`);
  await wb.screenshot('filtered-intercept');
  await wb.page.mouse.move(700, 400);

  await wb.runCommand('Innerloop: Copy curl Command');
  log(`notification: ${await wb.waitNotification(params.curl)}`);
  await wb.screenshot('curl-command');
  await hostStep(params, 'filtered', 180_000);

  await wb.runCommand('Innerloop: Stop Intercept');
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', 60_000);
  await hostStep(params, 'restored');
});
