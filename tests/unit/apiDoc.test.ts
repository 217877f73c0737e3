import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import type { RouteSpec } from '../../lib/http/routes.js';
import { PROJECT_ROOT } from '../../lib/projectRoot.js';
import { allRoutes } from '../support/contract.js';

/**
 * docs/API.md against lib/http/routes.ts and schemas.ts, both ways. A field is every innermost
 * property of a schema, at any depth: `a.b` inside an object, `a[].b` in the objects of an array;
 * an object of free keys, or a value of any type, is one field. Request fields are read from the
 * input side of the schemas, response fields from the output side.
 */
interface JsonSchema {
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  $ref?: string;
}

function fieldPaths(schema: JsonSchema, prefix = ''): string[] {
  if (schema.$ref) throw new Error(`${prefix || 'a schema'} is a $ref: not walked`);
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches) return [...new Set(branches.flatMap((branch) => fieldPaths(branch, prefix)))];
  if (schema.items) return fieldPaths(schema.items, `${prefix}[]`);
  return Object.entries(schema.properties ?? {}).flatMap(([name, property]) => {
    const path = prefix ? `${prefix}.${name}` : name;
    const inner = fieldPaths(property, path);
    return inner.length > 0 ? inner : [path];
  });
}

function fieldsOf(schema: z.ZodType | undefined, io: 'input' | 'output'): string[] {
  if (!schema) return [];
  return fieldPaths(z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema);
}

/** What a route or a doc section says: statuses, request fields, response fields per status. */
interface Contract {
  statuses: string[];
  request: Record<'Path' | 'Query' | 'Body', string[]>;
  responses: Map<string, string[]>;
}

function declared(route: RouteSpec): Contract {
  const responses = new Map<string, string[]>();
  for (const [status, response] of Object.entries(route.responses)) {
    responses.set(status, fieldsOf(response.schema, 'output'));
  }
  return {
    statuses: Object.keys(route.responses),
    request: {
      Path: fieldsOf(route.params, 'input'),
      Query: fieldsOf(route.query, 'input'),
      Body: fieldsOf(route.body, 'input'),
    },
    responses,
  };
}

const ticked = (text: string) => [...text.matchAll(/`([^`]+)`/g)].map((match) => match[1] ?? '');
const ENDPOINT_HEADING = /^### (GET|POST|PUT|PATCH|DELETE) (\/\S*)$/;

/** The endpoint sections of the doc, by `METHOD /path`; a duplicate is reported. */
function documented(markdown: string, problems: string[]): Map<string, Contract> {
  const sections = new Map<string, Contract>();
  let current: Contract | undefined;
  for (const line of markdown.split('\n')) {
    const heading = ENDPOINT_HEADING.exec(line);
    if (heading) {
      const key = `${heading[1]} ${heading[2]}`;
      if (sections.has(key)) problems.push(`${key}: documented twice`);
      current = { statuses: [], request: { Path: [], Query: [], Body: [] }, responses: new Map() };
      sections.set(key, current);
      continue;
    }
    if (line.startsWith('#')) current = undefined;
    const item = /^- (Statuses|Path|Query|Body|Response)([^:]*): (.*)$/.exec(line);
    if (!current || !item) continue;
    const [, kind = '', label = '', value = ''] = item;
    if (kind === 'Statuses') current.statuses.push(...ticked(value));
    else if (kind === 'Response') {
      for (const status of ticked(label)) {
        current.responses.set(status, [...(current.responses.get(status) ?? []), ...ticked(value)]);
      }
    } else current.request[kind as keyof Contract['request']].push(...ticked(value));
  }
  return sections;
}

/** Each way the two sets differ, as a sentence naming where. */
function differences(where: string, inCode: string[], inDoc: string[]): string[] {
  const code = new Set(inCode);
  const doc = new Set(inDoc);
  return [
    ...[...code]
      .filter((x) => !doc.has(x))
      .map((x) => `${where}: \`${x}\` is missing from the doc`),
    ...[...doc]
      .filter((x) => !code.has(x))
      .map((x) => `${where}: the doc has \`${x}\`, the code not`),
  ];
}

function compare(key: string, code: Contract, doc: Contract): string[] {
  const problems = differences(`${key} statuses`, code.statuses, doc.statuses);
  for (const part of ['Path', 'Query', 'Body'] as const) {
    problems.push(...differences(`${key} ${part}`, code.request[part], doc.request[part]));
  }
  for (const [status, fields] of code.responses) {
    problems.push(
      ...differences(`${key} response ${status}`, fields, doc.responses.get(status) ?? []),
    );
  }
  for (const status of doc.responses.keys()) {
    if (!code.responses.has(status)) problems.push(`${key}: the doc has a response ${status}`);
  }
  return problems;
}

const markdown = readFileSync(join(PROJECT_ROOT, 'docs/API.md'), 'utf8');
const routes = allRoutes();

describe('docs/API.md', () => {
  it('documents every route, status and field of routes.ts and schemas.ts, and no other', () => {
    const problems: string[] = [];
    const sections = documented(markdown, problems);
    const inCode = new Map(
      routes.map((route) => [`${route.method.toUpperCase()} ${route.path}`, route]),
    );
    problems.push(...differences('endpoints', [...inCode.keys()], [...sections.keys()]));
    for (const [key, route] of inCode) {
      const section = sections.get(key);
      if (section) problems.push(...compare(key, declared(route), section));
    }
    expect(problems).toEqual([]);
  });

  it('knows every path functions/catchAll.ts serves', () => {
    const source = readFileSync(join(PROJECT_ROOT, 'functions/catchAll.ts'), 'utf8');
    const served = [...source.matchAll(/\.(get|post|put|patch|delete)\(\s*'(\/[^']*)'/g)].map(
      ([, method = '', path = '']) => `${method} ${path.replace(/:(\w+)/g, '{$1}')}`,
    );
    const known = routes
      .filter((r) => r.functionName === 'catchAll')
      .map((r) => `${r.method} ${r.path}`);
    expect(served.length).toBeGreaterThan(0);
    expect(served.sort()).toEqual(known.sort());
  });

  it('stands alone: no link or path outside the repository', () => {
    expect(markdown).not.toMatch(/\.\.\/|\/work\/|shared\/API\.md/);
  });

  it('names nested fields by their path: a.b in objects, a[].b in arrays', () => {
    const schema = z.strictObject({
      a: z.strictObject({ b: z.string() }),
      list: z.array(z.strictObject({ c: z.number() })),
      free: z.record(z.string(), z.unknown()),
      any: z.unknown(),
      either: z.union([z.strictObject({ d: z.string() }), z.strictObject({ e: z.string() })]),
      maybe: z.strictObject({ f: z.string() }).nullable(),
    });
    expect(fieldsOf(schema, 'output')).toEqual([
      'a.b',
      'list[].c',
      'free',
      'any',
      'either.d',
      'either.e',
      'maybe.f',
    ]);
  });
});
