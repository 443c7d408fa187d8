// Helpers for what the newcomer scenarios read beyond lib/workbench.mjs: modal dialogs, the
// Debug Console, the quick input's title.
import { log, STEP_TIMEOUT } from './workbench.mjs';

const matches = (expected, text) => (typeof expected === 'string' ? text.includes(expected) : expected.test(text));

/** Waits for a modal dialog whose message matches; returns its text. */
export async function waitDialog(wb, expected, timeout = STEP_TIMEOUT) {
  const box = wb.page.locator('.monaco-dialog-box');
  const deadline = Date.now() + timeout;
  let text = '';
  while (Date.now() < deadline) {
    text = ((await box.first().innerText({ timeout: 1000 }).catch(() => '')) ?? '').replace(/\s+/g, ' ');
    if (matches(expected, text)) return text;
    await wb.page.waitForTimeout(200);
  }
  throw new Error(`no dialog matching ${expected}; saw: ${JSON.stringify(text)}`);
}

/** Clicks the dialog's button labelled `label`. */
export async function clickDialogButton(wb, label) {
  const button = wb.page.locator('.monaco-dialog-box .monaco-button', { hasText: label }).first();
  await button.click({ timeout: STEP_TIMEOUT });
  log(`dialog: clicked ${label}`);
}

/** Waits for a Debug Console line matching `expected` (opens the console). */
export async function waitDebugConsole(wb, expected, timeout = STEP_TIMEOUT) {
  const deadline = Date.now() + timeout;
  let seen = [];
  let opened = false;
  while (Date.now() < deadline) {
    const rows = wb.page.locator('.repl .monaco-list-row');
    seen = (await rows.allInnerTexts().catch(() => [])).map((t) => t.replace(/\s+/g, ' '));
    const hit = seen.find((t) => matches(expected, t));
    if (hit !== undefined) return hit;
    if (!opened) {
      opened = true;
      await wb.runCommand('Debug Console: Focus on Debug Console View').catch(() => undefined);
    }
    await wb.page.waitForTimeout(250);
  }
  throw new Error(`no Debug Console line matching ${expected}; lines: ${JSON.stringify(seen.slice(-15))}`);
}

/** The open quick input's title (e.g. "Intercept Service (1/3): namespace"), once it does not
 *  start with `previous` (a whole title, or the start of one whose end varies). */
export async function quickInputTitle(wb, previous = '') {
  const title = wb.page.locator('.quick-input-widget .quick-input-title');
  await title.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  const deadline = Date.now() + STEP_TIMEOUT;
  let text = '';
  while (Date.now() < deadline) {
    text = ((await title.innerText().catch(() => '')) ?? '').trim();
    if (text !== '' && (previous === '' || !text.startsWith(previous))) return text;
    await wb.page.waitForTimeout(100);
  }
  return text;
}

/** The labels of the open quick pick's rows. */
export async function quickPickRows(wb) {
  await wb.page.locator('.quick-input-widget .monaco-list-row').first().waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  await wb.page.waitForTimeout(500);
  return (await wb.page.locator('.quick-input-widget .monaco-list-row').allInnerTexts()).map((t) => t.replace(/\s+/g, ' '));
}
