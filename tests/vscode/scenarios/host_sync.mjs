// Steps the pytest side does while a scenario waits (cluster requests, checks against the
// cluster): the scenario logs "HOST <step>" and waits for the file <syncDir>/<step>, which holds
// "ok" or the reason the host side failed. Used by tests/vscode/test_vscode_cluster.py.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { log } from '../lib/workbench.mjs';

export async function hostStep(params, step, timeout = 120_000) {
  const file = path.join(params.syncDir, step);
  log(`HOST ${step}`);
  const deadline = Date.now() + timeout;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`the host did not finish step "${step}" within ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const answer = readFileSync(file, 'utf8').trim();
  if (answer !== 'ok') throw new Error(`host step "${step}" failed: ${answer}`);
  log(`host step ${step}: ok`);
}
