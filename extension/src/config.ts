import * as vscode from 'vscode';

/** The extension's settings (package.json `contributes.configuration`), read in one place. */
export interface Settings {
  python: string;
  kubeconfig: string;
  context: string;
  namespace: string;
  agentImage: string;
  agentCpu: string;
  /** The workspace ↔ Service mapping (also `.vscode/innerloop.json`, which the server reads). */
  service: string;
  servicePort: string;
  localPort: number;
  program: string;
}

export const SECTION = 'innerloop';

export function readSettings(): Settings {
  const c = vscode.workspace.getConfiguration(SECTION);
  const get = (key: Exclude<keyof Settings, 'localPort'>): string => (c.get<string>(key) ?? '').trim();
  return {
    python: get('python'),
    kubeconfig: get('kubeconfig'),
    context: get('context'),
    namespace: get('namespace'),
    agentImage: get('agentImage'),
    agentCpu: get('agentCpu'),
    service: get('service'),
    servicePort: String(c.get<string | number>('servicePort') ?? '').trim(),
    localPort: c.get<number>('localPort') ?? 0,
    program: get('program'),
  };
}

/** What the server gets as initializationOptions; the same shape as didChangeConfiguration's. */
export function serverSettings(s: Settings): Record<string, string | number> {
  return {
    kubeconfig: s.kubeconfig,
    context: s.context,
    namespace: s.namespace,
    agentImage: s.agentImage,
    agentCpu: s.agentCpu,
    service: s.service,
    servicePort: s.servicePort,
    localPort: s.localPort,
    program: s.program,
  };
}
