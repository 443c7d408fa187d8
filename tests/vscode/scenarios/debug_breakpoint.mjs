// F5 on an `innerloop` launch configuration: the extension gets an adapter endpoint + token from
// the server, VS Code connects to the innerloop debug adapter proxy, which intercepts (in memory)
// and launches the program under debugpy with the workload's env. A breakpoint in the handler
// stops it: call stack, paused editor line, variables, and the status bar shows "(paused)".
import { log, runScenario } from '../lib/workbench.mjs';

const ITEM = 'innerloop.innerloop.status';

await runScenario(async (wb, params) => {
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', params.activationTimeoutMs);
  await wb.openFile('app.py');
  await wb.toggleBreakpoint(params.breakpointLine);
  await wb.startDebugging('innerloop: orders');
  await wb.openDebugView();
  log(`stack: ${await wb.waitCallStackRow(new RegExp(`handler\\s*app\\.py\\s*${params.breakpointLine}:1`), 60_000)}`);
  log(`variable: ${await wb.waitVariableRow(/^path = '\/hello'$/)}`);
  log(`variable: ${await wb.waitVariableRow(/^greeting = 'hello from the workload'$/)}`);
  const line = await wb.pausedEditorLine();
  if (line !== params.breakpointLine) throw new Error(`editor paused at line ${line}, expected ${params.breakpointLine}`);
  log(`status bar: ${await wb.waitStatusBarText(ITEM, 'orders → :8080 (paused)')}`);
  await wb.screenshot('paused');

  await wb.continueDebugging();
  // The program ends; without keepIntercept the intercept goes with the session.
  await wb.waitStatusBarText(ITEM, 'innerloop: idle');
  await wb.screenshot('finished');
});
