// Bundles the extension into one CommonJS file; `vscode` is provided by the editor at run time.
import { build } from 'esbuild';

const production = process.argv.includes('--production');

await build({
  entryPoints: ['extension/src/extension.ts'],
  outfile: 'extension/out/extension.js',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['vscode'],
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: 'warning',
});
