// Smoke: the installed VSIX activates, its status bar item appears and shows the Python server's
// state, and "Innerloop: Show Status" from the palette brings back the server's own answer.
import { log, runScenario } from '../lib/workbench.mjs';

const ITEM = 'innerloop.innerloop.status';

await runScenario(async (wb, params) => {
  const idle = await wb.waitStatusBarText(ITEM, 'innerloop: idle', params.activationTimeoutMs);
  log(`status bar: ${idle}`);
  await wb.screenshot('activated');

  await wb.runCommand('Innerloop: Show Status');
  const expected = `innerloop ${params.version} (${params.serverPython}): no intercept`;
  const toast = await wb.waitNotification(expected);
  log(`notification: ${toast}`);
  await wb.waitStatusBarText(ITEM, 'innerloop: idle');
  await wb.screenshot('show-status');
});
