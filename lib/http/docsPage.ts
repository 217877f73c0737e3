import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Swagger UI's own files, served from the swagger-ui-dist package: no CDN is needed. */
const ASSETS = {
  'swagger-ui.css': 'text/css',
  'swagger-ui-bundle.js': 'application/javascript',
} as const;

export type DocsAsset = keyof typeof ASSETS;
export const DOCS_ASSET_NAMES = Object.keys(ASSETS) as [DocsAsset, ...DocsAsset[]];

const assetDir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const cache = new Map<DocsAsset, string>();

export function isDocsAsset(name: string): name is DocsAsset {
  return Object.hasOwn(ASSETS, name);
}

export function docsAsset(name: DocsAsset): { contentType: string; body: string } {
  let body = cache.get(name);
  if (body === undefined) {
    body = readFileSync(join(assetDir, name), 'utf8');
    cache.set(name, body);
  }
  return { contentType: ASSETS[name], body };
}

export const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Matrx sandbox orchestrator: API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' });
  </script>
</body>
</html>`;
