// Snag 1 (issue 12): F5 while a palette intercept holds the Service offers to hand it over; a
// status-bar click during the debug session does not end the debugger's intercept but says
// that the session owns it. In-memory server.
import { log, runScenario } from '../lib/workbench.mjs';
import { clickDialogButton, waitDialog } from '../lib/dialogs.mjs';

const ITEM = 'innerloop.innerloop.status';

await runScenario(async (wb, params) => {
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', params.activationTimeoutMs);
  await wb.runCommand('Innerloop: Intercept Service');
  await wb.pickQuickItem('shop');
  await wb.pickQuickItem('orders');
  await wb.answerInput(9000);
  await wb.pickQuickItem('All traffic');
  await wb.waitStatusBarText(ITEM, 'orders → :9000');

  await wb.openFile('app.py');
  await wb.toggleBreakpoint(params.breakpointLine);
  await wb.startDebugging('innerloop: orders');
  log(`dialog: ${await waitDialog(wb, 'Hand it over to the debug session')}`);
  await wb.screenshot('hand-over');
  await clickDialogButton(wb, 'Hand Over');

  await wb.openDebugView();
  log(`stack: ${await wb.waitCallStackRow(new RegExp(`handler\\s*app\\.py\\s*${params.breakpointLine}:1`), 60_000)}`);
  log(`status bar: ${await wb.waitStatusBarText(ITEM, 'orders → :8080 (paused)')}`);

  // A click on the item while debugging: asked, not ended.
  await wb.statusBarItem(ITEM).click();
  log(`dialog: ${await waitDialog(wb, 'is intercepted by the debug session "innerloop: orders"')}`);
  await wb.screenshot('owned-by-debug-session');
  await wb.page.keyboard.press('Escape');
  await wb.page.waitForTimeout(2000);
  log(`status bar still: ${await wb.waitStatusBarText(ITEM, 'orders → :8080')}`);

  await wb.continueDebugging();
  await wb.waitStatusBarText(ITEM, 'innerloop: idle');
});
