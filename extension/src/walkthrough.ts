import * as vscode from 'vscode';
import { LensCommand } from './codeLens';
import { readSettings } from './config';
import { InnerloopServer } from './server';
import { chooseMapping, mappingInProgress, pickContext } from './walkthroughMapping';

/**
 * The first-run walkthrough (package.json `contributes.walkthroughs`, media in
 * extension/walkthrough/): pick the context → pick the Service → debug live traffic. Its
 * buttons run these commands; each is also in the palette.
 */
export const WalkthroughCommand = {
  pickContext: 'innerloop.pickContext',
  debugLiveTraffic: 'innerloop.debugLiveTraffic',
} as const;

const PYTHON_FILES = '**/*.py';
const NOT_USER_CODE = '{**/.venv/**,**/venv/**,**/node_modules/**,**/site-packages/**,**/.git/**}';
const MAX_FILES = 50;
const LENS_WAIT_MS = 15_000;

/** The "▶ Debug live traffic" lenses of a file (the server's code lens, through VS Code). */
async function debugLenses(uri: vscode.Uri): Promise<vscode.CodeLens[]> {
  await vscode.workspace.openTextDocument(uri); // the lens providers run on a loaded document only
  const lenses = (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri)) ?? [];
  return lenses.filter((l) => l.command?.command === LensCommand.debugHandler);
}

/** The active editor's file first, then the workspace's Python files. */
async function candidates(): Promise<vscode.Uri[]> {
  const active = vscode.window.activeTextEditor?.document;
  const found = await vscode.workspace.findFiles(PYTHON_FILES, NOT_USER_CODE, MAX_FILES);
  found.sort((a, b) => a.fsPath.localeCompare(b.fsPath));
  const first = active?.languageId === 'python' ? [active.uri] : [];
  return [...first, ...found.filter((u) => u.fsPath !== active?.uri.fsPath)];
}

/** The first handler lens; the server may still be taking the new mapping: retry a while. */
async function firstHandlerLens(log: vscode.LogOutputChannel): Promise<{ uri: vscode.Uri; lens: vscode.CodeLens } | undefined> {
  const files = await candidates();
  log.info(`Debug Live Traffic: looking for an HTTP handler in ${files.length} Python file(s)`);
  const deadline = Date.now() + LENS_WAIT_MS;
  for (;;) {
    for (const uri of files) {
      const [lens] = await debugLenses(uri);
      if (lens !== undefined) return { uri, lens };
    }
    if (Date.now() > deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Step 3: open the first HTTP handler and run its "▶ Debug live traffic" lens. */
async function debugLiveTraffic(server: InnerloopServer, log: vscode.LogOutputChannel): Promise<void> {
  // Clicked while the previous step still saves the mapping: that answer, not a second pick.
  const pending = mappingInProgress();
  if (pending !== undefined && !(await pending)) return;
  if (readSettings().service === '' && !(await chooseMapping(server))) return;
  const found = await firstHandlerLens(log);
  if (found === undefined) {
    const message = 'no HTTP handler found in this workspace (Flask, FastAPI, Starlette or Django routes). Open one: "▶ Debug live traffic" appears above it.';
    log.info(`Debug Live Traffic: ${message}`);
    void vscode.window.showInformationMessage(`innerloop: ${message}`);
    return;
  }
  log.info(`Debug Live Traffic: ${found.uri.fsPath}:${found.lens.range.start.line + 1}`);
  const editor = await vscode.window.showTextDocument(found.uri, { preview: false });
  editor.revealRange(found.lens.range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  editor.selection = new vscode.Selection(found.lens.range.start, found.lens.range.start);
  const command = found.lens.command as vscode.Command;
  await vscode.commands.executeCommand(command.command, ...(command.arguments ?? []));
}

export function registerWalkthrough(server: InnerloopServer, log: vscode.LogOutputChannel): vscode.Disposable[] {
  const guarded = (name: string, body: () => Promise<unknown>) =>
    vscode.commands.registerCommand(name, async () => {
      try {
        await body();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        log.error(`${name}: ${message}`);
        void vscode.window.showErrorMessage(`innerloop: ${message}`);
      }
    });
  return [
    guarded(WalkthroughCommand.pickContext, () => pickContext(server)),
    guarded(WalkthroughCommand.debugLiveTraffic, () => debugLiveTraffic(server, log)),
  ];
}
