// Intercept Service… quick picks → startIntercept → status bar; toggle by command and by click;
// the last choice is remembered; a namespace can be typed; Show Status lists the intercept; a
// broken launch configuration is refused with one message. The server runs an in-memory
// session manager.
import { log, runScenario } from '../lib/workbench.mjs';

const ITEM = 'innerloop.innerloop.status';

await runScenario(async (wb, params) => {
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', params.activationTimeoutMs);

  await wb.runCommand('Innerloop: Intercept Service');
  await wb.pickQuickItem('shop');
  await wb.pickQuickItem('orders');
  await wb.answerInput(9000);
  await wb.pickQuickItem('All traffic');
  log(`intercepting: ${await wb.waitStatusBarText(ITEM, 'orders → :9000')}`);
  await wb.screenshot('intercepted');

  await wb.runCommand('Innerloop: Toggle Intercept');
  await wb.waitStatusBarText(ITEM, 'innerloop: idle');

  // A click on the item toggles too; with nothing running it restarts the remembered choice.
  await wb.statusBarItem(ITEM).click();
  await wb.waitStatusBarText(ITEM, 'orders → :9000');

  await wb.runCommand('Innerloop: Show Status');
  log(`notification: ${await wb.waitNotification('shop/orders:80 → 127.0.0.1:9000 (active)')}`);
  await wb.screenshot('status');

  await wb.runCommand('Innerloop: Stop Intercept');
  await wb.waitStatusBarText(ITEM, 'innerloop: idle');

  // A namespace the server did not list can be typed; the local port suggestion is then the
  // Service's targetPort again.
  await wb.runCommand('Innerloop: Intercept Service');
  await wb.answerInput('billing');
  await wb.pickQuickItem('orders');
  await wb.answerInput(8080);
  await wb.pickQuickItem('All traffic');
  await wb.waitStatusBarText(ITEM, 'orders → :8080');
  await wb.runCommand('Innerloop: Show Status');
  log(`notification: ${await wb.waitNotification('billing/orders:80 → 127.0.0.1:8080 (active)')}`);
  await wb.runCommand('Innerloop: Stop Intercept');
  await wb.waitStatusBarText(ITEM, 'innerloop: idle');

  await wb.startDebugging('innerloop: broken');
  log(`refused: ${await wb.waitNotification('set exactly one of "program" or "module"')}`);
  await wb.screenshot('broken-launch-config');
});
