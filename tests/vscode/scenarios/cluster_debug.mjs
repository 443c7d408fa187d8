// F5 on an `innerloop` launch configuration against the testbed: the echo Service is
// intercepted and tools/sample/echo.py runs locally under debugpy. A pod's request (sent by the
// host) stops at the breakpoint in handle(): call stack, paused editor line and the variables
// (the request's path, the workload's env) are read from the DOM. Continue → the host checks
// the answer came from the local process. Stop → the intercept is left.
import { log, runScenario } from '../lib/workbench.mjs';
import { hostStep } from './host_sync.mjs';

const ITEM = 'innerloop.innerloop.status';

await runScenario(async (wb, params) => {
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', params.activationTimeoutMs);
  await wb.openFile('app.py');
  await wb.toggleBreakpoint(params.breakpointLine);
  // The editor has the focus; launch.json has one configuration: F5 starts it.
  await wb.page.keyboard.press('F5');
  await wb.openDebugView();
  log(`intercepting: ${await wb.waitStatusBarText(ITEM, `echo → :${params.localPort}`, params.interceptTimeoutMs)}`);
  await hostStep(params, 'request', params.interceptTimeoutMs);

  const line = params.breakpointLine;
  log(`stack: ${await wb.waitCallStackRow(new RegExp(`handle\\s*app\\.py\\s*${line}:1`), 60_000)}`);
  log(`variable: ${await wb.waitVariableRow(new RegExp(`^path = '${params.requestPath}'$`))}`);
  log(`variable: ${await wb.waitVariableRow(new RegExp(`^config = '${params.configValue}'$`))}`);
  const paused = await wb.pausedEditorLine();
  if (paused !== line) throw new Error(`editor paused at line ${paused}, expected ${line}`);
  log(`status bar: ${await wb.waitStatusBarText(ITEM, `echo → :${params.localPort} (paused)`)}`);
  await wb.screenshot('paused-on-pod-request');
  await hostStep(params, 'paused');

  await wb.continueDebugging();
  log(`status bar: ${await wb.waitStatusBarText(ITEM, new RegExp(`echo → :${params.localPort}$`))}`);
  await hostStep(params, 'answered');
  await wb.screenshot('continued');

  await wb.page.keyboard.press('Shift+F5'); // Debug: Stop
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', 60_000);
  await hostStep(params, 'restored');
});
