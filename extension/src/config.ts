import * as vscode from 'vscode';

/** The extension's settings (package.json `contributes.configuration`), read in one place. */
export interface Settings {
  python: string;
  kubeconfig: string;
  context: string;
  namespace: string;
  agentImage: string;
}

export const SECTION = 'innerloop';

export function readSettings(): Settings {
  const c = vscode.workspace.getConfiguration(SECTION);
  const get = (key: keyof Settings): string => (c.get<string>(key) ?? '').trim();
  return {
    python: get('python'),
    kubeconfig: get('kubeconfig'),
    context: get('context'),
    namespace: get('namespace'),
    agentImage: get('agentImage'),
  };
}

/** What the server gets as initializationOptions; the same shape as didChangeConfiguration's. */
export function serverSettings(s: Settings): Record<string, string> {
  return {
    kubeconfig: s.kubeconfig,
    context: s.context,
    namespace: s.namespace,
    agentImage: s.agentImage,
  };
}
