// Snags 9 and 4 (issue 12): a Python workspace without launch.json. The status-bar item shows
// without any command; "Select and Start Debugging" offers innerloop configurations; the quick
// pick numbers its steps the same way throughout; an intercept to a local port where nothing
// listens turns the item to a warning and says so once. In-memory server.
import { log, runScenario } from '../lib/workbench.mjs';
import { quickInputTitle, quickPickRows } from '../lib/dialogs.mjs';

const ITEM = 'innerloop.innerloop.status';

await runScenario(async (wb, params) => {
  // No command run: activation by the workspace's Python files shows the item.
  log(`status bar: ${await wb.waitStatusBarText(ITEM, 'innerloop: idle', params.activationTimeoutMs)}`);
  await wb.screenshot('activated-without-command');

  // VS Code lists each debugger with dynamic configurations as one entry ("innerloop: debug a
  // Kubernetes Service locally..."), whose list came up empty before.
  await wb.runCommand('Debug: Select and Start Debugging');
  log(`debuggers: ${JSON.stringify(await quickPickRows(wb))}`);
  await wb.pickQuickItem('innerloop: debug a Kubernetes Service locally');
  await wb.page.locator('.quick-input-widget .monaco-list-row', { hasText: 'innerloop: orders' }).first()
    .waitFor({ state: 'visible', timeout: 30_000 }).catch(() => undefined);
  const rows = await quickPickRows(wb);
  log(`launch choices: ${JSON.stringify(rows)}`);
  if (!rows.some((r) => r.includes('innerloop: orders'))) throw new Error(`no innerloop configuration offered: ${JSON.stringify(rows)}`);
  await wb.screenshot('launch-choices');
  await wb.dismissQuickInput();

  const titles = [];
  await wb.runCommand('Innerloop: Intercept Service');
  titles.push(await quickInputTitle(wb));
  await wb.pickQuickItem('shop');
  titles.push(await quickInputTitle(wb, titles.at(-1)));
  await wb.pickQuickItem('orders');
  titles.push(await quickInputTitle(wb, titles.at(-1)));
  await wb.answerInput(params.freePort);
  titles.push(await quickInputTitle(wb, titles.at(-1)));
  log(`titles: ${JSON.stringify(titles)}`);
  const expected = [
    'Intercept Service (1/4): namespace',
    'Intercept Service (2/4): Service in shop',
    'Intercept Service (3/4): local port',
    'Intercept Service (4/4): which requests',
  ];
  if (JSON.stringify(titles) !== JSON.stringify(expected)) throw new Error(`step titles ${JSON.stringify(titles)}, expected ${JSON.stringify(expected)}`);
  await wb.pickQuickItem('All traffic');

  log(`status bar: ${await wb.waitStatusBarText(ITEM, `orders → :${params.freePort} (nothing listening)`, 30_000)}`);
  log(`notification: ${await wb.waitNotification(`nothing listens on 127.0.0.1:${params.freePort}`)}`);
  await wb.screenshot('nothing-listening');
  const count = await wb.page.locator('.notification-list-item-message', { hasText: 'nothing listens' }).count();
  if (count !== 1) throw new Error(`expected the warning once, saw it ${count} times`);
  await wb.runCommand('Innerloop: Stop Intercept');
  await wb.waitStatusBarText(ITEM, 'innerloop: idle');
});
