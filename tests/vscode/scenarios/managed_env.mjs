// Managed environment: with innerloop.python unset, the extension builds its own venv from the
// Python on PATH, installs the wheel shipped in the VSIX, and the server runs from it; a restart
// reuses that environment.
import { log, runScenario } from '../lib/workbench.mjs';

const ITEM = 'innerloop.innerloop.status';

await runScenario(async (wb, params) => {
  // The progress notification names the step while pip works.
  await wb.waitNotification('preparing its Python environment', params.activationTimeoutMs);
  await wb.screenshot('preparing');
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', params.installTimeoutMs);
  await wb.screenshot('installed');

  await wb.runCommand('Innerloop: Show Status');
  const first = await wb.waitNotification(/innerloop \S+ \(.*\/python-env\/bin\/python\): no intercept/);
  log(`notification: ${first}`);
  if (!first.includes(params.globalStorage)) throw new Error(`server does not run from ${params.globalStorage}`);

  await wb.runCommand('Innerloop: Restart Server');
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', 60_000);
  await wb.screenshot('restarted');
});
