// F5 on an `innerloop` launch configuration (default clusterNetwork) against the testbed: the
// echo Service is intercepted and the workspace's app runs locally under debugpy. Its handler
// calls the second Service `whoami` by its short name (urllib, no proxy: only innerloop's
// resolver hook can resolve it). A pod's request (sent by the host) stops at the breakpoint
// after that call: the call stack, the paused editor line and the Variables view's
// `downstream` (whoami's answer: its pod name, the peer it saw, the path) are read from the DOM.
// Continue → the host checks the pod got the local answer with whoami's in it. Stop → the
// intercept is left. Used by tests/vscode/test_vscode_network.py.
import { log, runScenario } from '../lib/workbench.mjs';
import { hostStep } from './host_sync.mjs';

const ITEM = 'innerloop.innerloop.status';

/** Hovers the variable's value, so that the screenshot shows it whole (the narrow side bar cuts
 * it); the hover is for the eye only: the check is the row's text. */
async function showWholeValue(wb, name, text) {
  const value = wb.page.locator('.debug-variables .monaco-list-row', { hasText: `${name} =` })
    .locator('.value').first();
  try {
    await value.hover({ timeout: 5_000 });
    await wb.page.locator('.monaco-hover:visible, .workbench-hover:visible', { hasText: text }).first()
      .waitFor({ timeout: 5_000 });
    log(`hover over ${name} shown`);
  } catch (err) {
    log(`no hover over ${name} (screenshot without it): ${err instanceof Error ? err.message.split('\n')[0] : err}`);
  }
}

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
  log(`stack: ${await wb.waitCallStackRow(new RegExp(`handle_request\\s*app\\.py\\s*${line}:1`), 60_000)}`);
  log(`variable: ${await wb.waitVariableRow(new RegExp(`^path = '${params.requestPath}'$`))}`);
  const downstream = new RegExp(
    `^downstream = 'whoami pod=${params.whoamiPod} peer=[0-9a-f.:]+ path=${params.requestPath}'$`,
  );
  log(`variable: ${await wb.waitVariableRow(downstream)}`);
  const paused = await wb.pausedEditorLine();
  if (paused !== line) throw new Error(`editor paused at line ${paused}, expected ${line}`);
  log(`status bar: ${await wb.waitStatusBarText(ITEM, `echo → :${params.localPort} (paused)`)}`);
  await showWholeValue(wb, 'downstream', params.whoamiPod);
  await wb.screenshot('paused-with-downstream-answer');
  await hostStep(params, 'paused');

  await wb.continueDebugging();
  log(`status bar: ${await wb.waitStatusBarText(ITEM, new RegExp(`echo → :${params.localPort}$`))}`);
  await hostStep(params, 'answered');
  await wb.screenshot('continued');

  await wb.page.keyboard.press('Shift+F5'); // Debug: Stop
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', 60_000);
  await hostStep(params, 'restored');
});
