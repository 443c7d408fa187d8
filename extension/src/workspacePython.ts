import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

/** The interpreter a launch runs the program with, and where that choice came from. */
export interface ChosenPython {
  path: string;
  source: string;
}

interface PythonExtensionApi {
  environments?: { getActiveEnvironmentPath?(resource?: vscode.Uri): { path?: string } | undefined };
}

function venvPython(dir: string): string {
  return process.platform === 'win32' ? path.join(dir, 'Scripts', 'python.exe') : path.join(dir, 'bin', 'python');
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

async function fromPythonExtension(folder: vscode.WorkspaceFolder | undefined): Promise<string | undefined> {
  const ext = vscode.extensions.getExtension<PythonExtensionApi>('ms-python.python');
  if (ext === undefined) return undefined;
  try {
    const api = ext.isActive ? ext.exports : await ext.activate();
    const found = api?.environments?.getActiveEnvironmentPath?.(folder?.uri)?.path;
    return found === undefined || found === '' || found === 'python' ? undefined : found;
  } catch {
    return undefined;
  }
}

/**
 * The workspace's interpreter, as a Python developer has chosen it: the Python extension's
 * selection when it is installed, else `python.defaultInterpreterPath`, else a `.venv` (or
 * `venv`) in the folder. Undefined when there is none: innerloop's own interpreter runs it.
 */
export async function workspacePython(folder: vscode.WorkspaceFolder | undefined): Promise<ChosenPython | undefined> {
  const selected = await fromPythonExtension(folder);
  if (selected !== undefined) return { path: selected, source: "the Python extension's selected interpreter" };
  const configured = (vscode.workspace.getConfiguration('python', folder?.uri).get<string>('defaultInterpreterPath') ?? '').trim();
  if (configured !== '' && configured !== 'python') {
    const expanded = folder === undefined ? configured : configured.replace(/\$\{workspaceFolder\}/g, folder.uri.fsPath);
    return { path: expanded, source: 'the "python.defaultInterpreterPath" setting' };
  }
  if (folder !== undefined) {
    for (const dir of ['.venv', 'venv']) {
      const candidate = venvPython(path.join(folder.uri.fsPath, dir));
      if (await exists(candidate)) return { path: candidate, source: `the workspace's ${dir}` };
    }
  }
  return undefined;
}

/** What the Debug Console says when the program's `import` fails. */
export function importHint(python: unknown, source: unknown): string {
  const which = typeof python === 'string' && python !== '' ? python : "innerloop's own Python";
  const why = typeof source === 'string' && source !== '' ? source : 'no workspace interpreter was found';
  return (
    `innerloop: an import failed; the program ran with ${which} (${why}), which may lack your project's packages. ` +
    'Choose another: "python" in the launch configuration, the Python extension\'s interpreter, ' +
    'the "python.defaultInterpreterPath" setting, or a .venv in the workspace.'
  );
}
