// Snag 2 (issue 12): F5 runs the program with the workspace's interpreter (here its .venv, the
// only one that has `only_in_venv`); with an interpreter that lacks it, the Debug Console says
// which one ran the program and how to choose another. In-memory server.
import { log, runScenario } from '../lib/workbench.mjs';
import { waitDebugConsole } from '../lib/dialogs.mjs';

const ITEM = 'innerloop.innerloop.status';

await runScenario(async (wb, params) => {
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', params.activationTimeoutMs);
  await wb.openFile('app.py');
  await wb.toggleBreakpoint(params.breakpointLine);
  await wb.startDebugging('innerloop: orders');
  await wb.openDebugView();
  log(`stack: ${await wb.waitCallStackRow(new RegExp(`handler\\s*app\\.py\\s*${params.breakpointLine}:1`), 60_000)}`);
  log(`variable: ${await wb.waitVariableRow(/^where = '.*\.venv.*'$/)}`);
  await wb.screenshot('paused-with-venv');
  await wb.continueDebugging();
  await wb.waitStatusBarText(ITEM, 'innerloop: idle');

  await wb.startDebugging('innerloop: other python');
  log(`console: ${await waitDebugConsole(wb, `the program ran with ${params.otherPython}`, 60_000)}`);
  await wb.screenshot('import-hint');
});
