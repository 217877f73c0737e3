import { z } from 'zod';
import {
  PUBLIC_ROUTES,
  SERVICE_ROUTES,
  type RouteName,
  type RouteSpec,
  type Routes,
} from './routes.js';

type JsonSchema = Record<string, unknown>;

function schemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' });
  return rest;
}

function parameters(schema: z.ZodObject | undefined, where: 'path' | 'query') {
  if (!schema) return [];
  const json = schemaOf(schema, 'input') as { properties?: Record<string, JsonSchema> };
  const required = new Set((json as { required?: string[] }).required ?? []);
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    schema: property,
  }));
}

function operation(route: RouteSpec, isPublic: boolean) {
  return {
    operationId: route.functionName,
    summary: route.summary,
    ...(isPublic && { security: [] }),
    parameters: [...parameters(route.params, 'path'), ...parameters(route.query, 'query')],
    ...(route.body && {
      requestBody: {
        required: route.bodyRequired ?? false,
        content: { 'application/json': { schema: schemaOf(route.body, 'input') } },
      },
    }),
    ...(route.rawBody && {
      requestBody: {
        required: true,
        content: { [route.rawBody]: { schema: { type: 'string', format: 'binary' } } },
      },
    }),
    responses: Object.fromEntries(
      Object.entries(route.responses).map(([status, response]) => [
        status,
        {
          description: response.description,
          ...(response.schema && {
            content: { 'application/json': { schema: schemaOf(response.schema, 'output') } },
          }),
          ...(response.mediaType && {
            content: { [response.mediaType]: { schema: { type: 'string', format: 'binary' } } },
          }),
        },
      ]),
    ),
  };
}

/** The OpenAPI 3.1 document, generated from the same schemas that validate requests. */
export function openApiDocument(routes: Routes, version: string, apiKeyHeader: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  const all: [string, RouteSpec][] = [...Object.entries(SERVICE_ROUTES), ...Object.entries(routes)];
  for (const [name, route] of all) {
    paths[route.path] = {
      ...paths[route.path],
      [route.method]: operation(route, PUBLIC_ROUTES.has(name as RouteName)),
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Matrx sandbox orchestrator', version },
    components: {
      securitySchemes: {
        apiKeyHeader: { type: 'apiKey', in: 'header', name: apiKeyHeader },
        bearer: { type: 'http', scheme: 'bearer' },
      },
    },
    // Either scheme is enough.
    security: [{ apiKeyHeader: [] }, { bearer: [] }],
    paths,
  };
}
