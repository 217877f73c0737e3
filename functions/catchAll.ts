import createAPIUntyped, { type API, type Options, type Request, type Response } from 'lambda-api';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { DOCS_HTML, docsAsset, isDocsAsset } from '../lib/http/docsPage.js';
import { openApiDocument } from '../lib/http/openapi.js';
import type { HttpResponse } from '../lib/http/responses.js';
import { baseStack, served, stackDependencies } from '../lib/http/stack.js';
import { processApp } from '../lib/processApp.js';
import { VERSION } from '../lib/projectRoot.js';

// lambda-api's typings resolve to a namespace under NodeNext; the runtime default is the factory.
const createAPI = createAPIUntyped as unknown as (options: Options) => API;

const app = processApp();
const api = createAPI({ version: VERSION, logger: false });

api.get('/', (_req: Request, res: Response) => {
  res.json({ service: 'matrx-sandbox-orchestrator', version: VERSION, docs: '/docs' });
});

api.get('/openapi.json', (_req: Request, res: Response) => {
  res.json(openApiDocument(app.routes, VERSION, app.settings.API_KEY_HEADER));
});

api.get('/docs', (_req: Request, res: Response) => {
  res.html(DOCS_HTML);
});

api.get('/docs/:asset', (req: Request, res: Response) => {
  const name = req.params.asset ?? '';
  if (!isDocsAsset(name)) return notFound(res);
  const asset = docsAsset(name);
  res.header('content-type', asset.contentType).header('cache-control', 'max-age=3600');
  res.send(asset.body);
});

api.any('/*', (_req: Request, res: Response) => notFound(res));

function notFound(res: Response) {
  res.status(404).json({ detail: 'Not Found' });
}

/**
 * What lambda-api is given of a request: none of these routes reads cookies or a query, and
 * lambda-api decodes both as it starts (a malformed `%` in a cookie was a 500).
 */
function withoutCookiesOrQuery(event: APIGatewayProxyEvent): APIGatewayProxyEvent {
  const unread = (name: string) => name.toLowerCase() !== 'cookie';
  const headers = Object.fromEntries(
    Object.entries(event.headers ?? {}).filter(([name]) => unread(name)),
  );
  const multiValueHeaders = Object.fromEntries(
    Object.entries(event.multiValueHeaders ?? {}).filter(([name]) => unread(name)),
  );
  return {
    ...event,
    headers,
    multiValueHeaders,
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
  };
}

/** Serves `/`, `/docs`, `/openapi.json`, and the JSON 404 for every route nothing else serves. */
const deps = stackDependencies(app);
export const handler = served(
  deps,
  baseStack(deps).handler(
    (event: APIGatewayProxyEvent, context: Context) =>
      api.run(withoutCookiesOrQuery(event), context) as Promise<HttpResponse>,
  ),
);
