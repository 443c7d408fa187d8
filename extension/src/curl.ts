import * as vscode from 'vscode';
import { InterceptStatus, RequestMatch } from './protocol';

/** `'it'\''s'`: one shell word, whatever it holds. */
function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A value a header regex matches when it is a plain literal (`^acme-` → `acme-`); else undefined. */
function literalOf(regex: string): string | undefined {
  const body = regex.replace(/^\^/, '').replace(/\$$/, '');
  return /^[A-Za-z0-9 _.,:;@\/=+-]*$/.test(body) && body !== '' ? body : undefined;
}

/** The port a request to the Service uses: `80`, `'80/http'` → 80; null when unknown. */
function servicePortNumber(port: number | string | null): number | null {
  if (typeof port === 'number') return port;
  const digits = port === null ? null : /^(\d+)/.exec(port);
  return digits?.[1] === undefined ? null : Number(digits[1]);
}

export interface Curl {
  command: string;
  /** What the command could not fill in for you (a regex, a path regex). */
  caveats: string[];
}

/** `curl -H 'x-innerloop-user: me' http://orders.shop:80/`: a request, sent from inside the
 * cluster, that the intercept's filter matches. */
export function curlCommand(i: InterceptStatus): Curl {
  const m: RequestMatch = i.match;
  const words = ['curl'];
  const caveats: string[] = [];
  if (m.method !== undefined && m.method !== 'GET') words.push('-X', m.method);
  for (const [name, raw] of Object.entries(m.headers ?? {})) {
    let value = raw;
    if (raw.startsWith('~')) {
      const literal = literalOf(raw.slice(1));
      value = literal ?? 'VALUE';
      if (literal === undefined) caveats.push(`${name} must match the regex ${raw.slice(1) || '(any value)'}: replace VALUE`);
    }
    words.push('-H', shellQuote(`${name}: ${value}`));
  }
  let path = m.path ?? m.pathPrefix ?? '/';
  if (m.path === undefined && m.pathRegex !== undefined) {
    path = literalOf(m.pathRegex) ?? '/';
    if (!path.startsWith('/')) path = '/';
    caveats.push(`the path must match the regex ${m.pathRegex}`);
  }
  const port = servicePortNumber(i.servicePort);
  words.push(shellQuote(`http://${i.service}.${i.namespace}${port === null ? '' : `:${port}`}${path}`));
  return { command: words.join(' '), caveats };
}

/** Copies the command to the clipboard and shows it (also when the clipboard refuses). */
export async function copyCurl(i: InterceptStatus, log: vscode.LogOutputChannel): Promise<void> {
  const { command, caveats } = curlCommand(i);
  log.info(`curl for ${i.namespace}/${i.service}: ${command}`);
  let copied = true;
  try {
    await vscode.env.clipboard.writeText(command);
  } catch (err) {
    copied = false;
    log.warn(`clipboard: ${err instanceof Error ? err.message : String(err)}`);
  }
  const mirror = i.mode === 'mirror' ? ' (mirror: your program gets a copy; the cluster answers)' : '';
  const note = caveats.length === 0 ? '' : ` Note: ${caveats.join('; ')}.`;
  const where = `Run it from a pod in the cluster${mirror}.`;
  void vscode.window.showInformationMessage(`innerloop: ${copied ? 'copied' : 'copy this'}: ${command} — ${where}${note}`);
}
