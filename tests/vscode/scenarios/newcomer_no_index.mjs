// Snag 7 (issue 12): no package index for the managed environment: a notification in one line
// that suggests innerloop.python (no raw pip output); a status-bar click says it again.
import { log, runScenario } from '../lib/workbench.mjs';

const ITEM = 'innerloop.innerloop.status';

await runScenario(async (wb, params) => {
  log(`status bar: ${await wb.waitStatusBarText(ITEM, /innerloop$/, params.installTimeoutMs)}`);
  const text = await wb.waitNotification('no package index is reachable', 30_000);
  log(`notification: ${text}`);
  if (!text.includes('innerloop.python')) throw new Error(`the notification does not suggest innerloop.python: ${text}`);
  if (/Traceback|ERROR:|Looking in indexes/.test(text)) throw new Error(`raw pip output in the notification: ${text}`);
  await wb.screenshot('no-index');
  const button = wb.page.locator('.notification-list-item .monaco-button', { hasText: 'Set innerloop.python' }).first();
  await button.waitFor({ timeout: 10_000 });
});
