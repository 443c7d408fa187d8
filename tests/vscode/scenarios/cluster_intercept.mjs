// Innerloop: Intercept Service… against the testbed: a typed namespace → the echo Service → its
// port 80 (of two) → the local port. The status bar turns to the active intercept; the host then
// checks that a pod's request reaches the local echo app. The tooltip names the namespace, the
// replicas and the env file. Stop Intercept → idle, and the host checks that the cluster serves
// again.
import { log, runScenario } from '../lib/workbench.mjs';
import { hostStep } from './host_sync.mjs';

const ITEM = 'innerloop.innerloop.status';

await runScenario(async (wb, params) => {
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', params.activationTimeoutMs);

  await wb.runCommand('Innerloop: Intercept Service');
  // The server lists only the kubeconfig's namespace; the test's namespace is typed.
  await wb.answerInput(params.namespace);
  await wb.pickQuickItem('echo');
  const port80 = wb.page
    .locator('.quick-input-widget .monaco-list-row')
    .filter({ has: wb.page.locator('.label-name', { hasText: /^80$/ }) });
  await port80.waitFor({ state: 'visible', timeout: 30_000 });
  log(`port row: ${(await port80.innerText()).replace(/\s+/g, ' ')}`);
  await port80.click();
  await wb.answerInput(params.localPort);
  await wb.pickQuickItem('All traffic');

  // A cold start: the agent is injected (one rollout) while the item says so.
  log(`starting: ${await wb.waitStatusBarText(ITEM, 'echo: connecting')}`);
  log(`intercepting: ${await wb.waitStatusBarText(ITEM, `echo → :${params.localPort}`, params.interceptTimeoutMs)}`);
  // The tooltip tells where the traffic comes from.
  await wb.statusBarItem(ITEM).hover();
  const tooltip = wb.page.locator('.workbench-hover, .monaco-hover').filter({ hasText: 'replicas: 2' }).first();
  await tooltip.waitFor({ state: 'visible', timeout: 30_000 });
  const tip = (await tooltip.innerText()).replace(/\s+/g, ' ');
  log(`tooltip: ${tip}`);
  for (const part of [`namespace: ${params.namespace}`, `env file: ${params.envFile}`]) {
    if (!tip.includes(part)) throw new Error(`tooltip without "${part}": ${tip}`);
  }
  await wb.screenshot('intercepting');
  await wb.page.mouse.move(700, 400);
  await hostStep(params, 'routed');

  await wb.runCommand('Innerloop: Stop Intercept');
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', 60_000);
  await wb.screenshot('stopped');
  await hostStep(params, 'restored');
});
