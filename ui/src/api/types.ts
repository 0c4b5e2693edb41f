// Names for the shapes the views pass around, all taken from the generated
// schema: by path (so they follow the API contract) or by component.
import type { paths } from './schema';
import type { Schemas } from './client';

type Content<R> = R extends { content: { 'application/json': infer T } } ? T : never;

/** Success is the JSON body of an operation's 200/201/202 answer. */
export type Success<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends { responses: infer R }
  ? R extends { 200: infer A }
    ? Content<A>
    : R extends { 201: infer B }
      ? Content<B>
      : R extends { 202: infer C }
        ? Content<C>
        : never
  : never;

/** RequestBody is the JSON body an operation takes. */
export type RequestBody<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: { content: { 'application/json': infer T } };
}
  ? T
  : never;

export type Tenant = Schemas['Tenant'];
export type TenantLimits = Schemas['TenantLimits'];
export type APIKey = Schemas['APIKey'];
export type Integration = Schemas['Integration'];
export type IntegrationSpec = Schemas['IntegrationSpec'];
export type Step = Schemas['Step'];
export type IntegrationStatus = Schemas['IntegrationStatus'];
export type IntegrationVersion = Schemas['IntegrationVersion'];
export type IntegrationEvent = Schemas['IntegrationEvent'];
export type DeadLetter = Schemas['DeadLetter'];
export type DeadLetterWithBody = Schemas['DeadLetterWithBody'];
export type Scope = NonNullable<APIKey['scopes']>[number];

export type Connector = NonNullable<Success<'/v1/connectors', 'get'>['items']>[number];
export type MetricsPoint = NonNullable<Success<'/v1/integrations/{integrationId}/metrics', 'get'>['points']>[number];
export type Overview = Success<'/v1/overview', 'get'>;
export type TestResult = NonNullable<Success<'/v1/integrations/test', 'post'>['results']>[number];
export type ReplayProgress = Success<'/v1/dlq/replays/{replayId}', 'get'>;
