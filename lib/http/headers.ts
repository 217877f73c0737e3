import type { APIGatewayProxyEvent } from 'aws-lambda';

/** A request header, looked up as HTTP means it: names are case-insensitive. */
export function headerValue(
  event: Pick<APIGatewayProxyEvent, 'headers'>,
  name: string,
): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === wanted && value !== undefined) return value;
  }
  return undefined;
}
