// Snags 3 and 6 (issue 12): F5 with a kubeconfig setting that points nowhere: the error names
// the innerloop.kubeconfig setting, never a CLI flag or `innerloop list`. Real server.
import { log, runScenario } from '../lib/workbench.mjs';

const ITEM = 'innerloop.innerloop.status';

async function errorText(wb, expected, timeout) {
  const deadline = Date.now() + timeout;
  let seen = [];
  while (Date.now() < deadline) {
    seen = [
      ...(await wb.page.locator('.monaco-dialog-box').allInnerTexts().catch(() => [])),
      ...(await wb.page.locator('.notification-list-item-message').allInnerTexts().catch(() => [])),
      ...(await wb.page.locator('.repl .monaco-list-row').allInnerTexts().catch(() => [])),
    ].map((t) => t.replace(/\s+/g, ' '));
    const hit = seen.find((t) => t.includes(expected));
    if (hit !== undefined) return hit;
    await wb.page.waitForTimeout(250);
  }
  throw new Error(`nothing shows ${expected}; seen: ${JSON.stringify(seen)}`);
}

await runScenario(async (wb, params) => {
  await wb.waitStatusBarText(ITEM, 'innerloop: idle', params.activationTimeoutMs);
  await wb.startDebugging('innerloop: orders');
  const text = await errorText(wb, 'no kubeconfig at', 60_000);
  log(`error: ${text}`);
  await wb.screenshot('error');
  if (!text.includes('"innerloop.kubeconfig" setting')) throw new Error(`the error does not name the setting: ${text}`);
  if (/--kubeconfig|innerloop list/.test(text)) throw new Error(`CLI advice in the editor: ${text}`);
});
