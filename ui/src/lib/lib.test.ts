import { describe, expect, it } from 'vitest';
import { diffLines } from './diff';
import { configErrors, otherErrors, placeError } from './locations';
import { specToYaml, yamlToSpec } from './specyaml';
import { errorsOf, pointerToProperty, validator } from './validator';
import { localInputToISO, prettyBody } from './json';
import type { RJSFSchema } from '@rjsf/utils';

describe('diffLines', () => {
  it('marks removed and added lines and keeps the common ones', () => {
    expect(diffLines('a\nb\nc', 'a\nx\nc')).toEqual([
      { op: ' ', text: 'a' },
      { op: '-', text: 'b' },
      { op: '+', text: 'x' },
      { op: ' ', text: 'c' },
    ]);
    expect(diffLines('same', 'same').every((l) => l.op === ' ')).toBe(true);
    expect(diffLines('', 'new').filter((l) => l.op === '+')).toEqual([{ op: '+', text: 'new' }]);
  });
});

describe('placing API errors', () => {
  it('finds the section and the config path of create and test errors', () => {
    expect(placeError('body.steps[0].config.expression', 'bad')).toEqual({ section: 'steps[0]', field: 'config', path: ['expression'], message: 'bad' });
    expect(placeError('body.spec.steps[12].config.routes[1].when', 'bad')).toEqual({ section: 'steps[12]', field: 'config', path: ['routes', '1', 'when'], message: 'bad' });
    expect(placeError('body.producers.orders-db.connector', 'unknown')).toEqual({ section: 'producers.orders-db', field: 'connector', path: [], message: 'unknown' });
    expect(placeError('body.consumer.config.signature.secret', 'no such secret').path).toEqual(['signature', 'secret']);
    expect(placeError('body.name', 'taken')).toEqual({ section: 'spec', field: 'name', path: [], message: 'taken' });
    expect(placeError(undefined, 'whole body').section).toBe('spec');
    expect(placeError('body.steps[1].config', 'expr: boom')).toEqual({ section: 'steps[1]', field: 'config', path: [], message: 'expr: boom' });
  });
  it('builds the form error tree of one section', () => {
    const placed = [placeError('body.steps[0].config.set.total', 'a'), placeError('body.steps[0].config', 'b'), placeError('body.steps[0].connector', 'c'), placeError('body.steps[1].config.x', 'd')];
    expect(configErrors(placed, 'steps[0]')).toEqual({ set: { total: { __errors: ['a'] } } });
    expect(otherErrors(placed, 'steps[0]')).toEqual(['connector: c']);
    expect(configErrors(placed, 'consumer')).toBeUndefined();
  });
  it('does not let a hostile location climb the prototype', () => {
    const tree = configErrors([placeError('body.consumer.config.__proto__.polluted', 'x')], 'consumer');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).__errors).toBeUndefined();
    expect(tree).toEqual({ __errors: ['x'] });
  });
});

describe('the YAML round trip', () => {
  const spec = {
    name: 'order-routing',
    consumer: { connector: 'http-webhook', config: { signature: { scheme: 'github', secret: { secret: 'hook' } } } },
    steps: [{ connector: 'router', config: { routes: [{ when: 'total > 1000', to: ['big'] }], default: ['all'] } }],
    producers: { all: { connector: 'file', config: { dir: 'orders' } } },
  };
  it('gives back the same spec', () => {
    const back = yamlToSpec(specToYaml(spec));
    expect(back).toEqual({ ok: true, spec });
  });
  it('says where YAML is broken and refuses what is not a mapping', () => {
    const bad = yamlToSpec('name: x\nconsumer: [unclosed');
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error).toMatch(/line \d+/);
    expect(yamlToSpec('- a\n- b')).toEqual({ ok: false, error: expect.stringContaining('mapping') });
    expect(yamlToSpec('just text').ok).toBe(false);
  });
  it('refuses alias bombs and oversize input', () => {
    const bomb = 'a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]';
    expect(() => yamlToSpec(bomb)).not.toThrow();
    expect(yamlToSpec(bomb).ok).toBe(false);
    expect(yamlToSpec('a: ' + 'x'.repeat(1 << 20))).toEqual({ ok: false, error: 'The YAML is over 1 MiB.' });
  });
});

describe('the form validator', () => {
  const schema: RJSFSchema = {
    type: 'object',
    additionalProperties: false,
    required: ['routes'],
    properties: { routes: { type: ['array', 'null'], items: { $ref: '#/$defs/Route' } }, mode: { type: 'string', enum: ['first', 'all'] } },
    $defs: { Route: { type: 'object', required: ['when', 'to'], properties: { when: { type: 'string' }, to: { type: 'array', items: { type: 'string' } } } } },
  };
  it('accepts a valid config and places the errors of an invalid one', () => {
    expect(errorsOf(schema, { routes: [{ when: 'x', to: ['a'] }] })).toEqual([]);
    const errs = errorsOf(schema, { routes: [{ to: 'a' }], mode: 'sometimes' });
    const props = errs.map((e) => e.property);
    expect(props).toContain('.routes.0');
    expect(props).toContain('.mode');
    const data = validator.validateFormData({ mode: 'sometimes' }, schema);
    expect(data.errors.length).toBeGreaterThan(0);
    expect(validator.isValid(schema, { routes: [] }, schema)).toBe(true);
    expect(validator.isValid(schema, { routes: 5 }, schema)).toBe(false);
  });
  it('reads JSON pointers into rjsf properties', () => {
    expect(pointerToProperty('#/a/0/b~1c')).toBe('.a.0.b/c');
    expect(pointerToProperty('#')).toBe('.');
  });
});

describe('body and time helpers', () => {
  it('pretty-prints JSON bodies and leaves others', () => {
    expect(prettyBody('{"a":1}')).toEqual({ text: '{\n  "a": 1\n}', json: true });
    expect(prettyBody('{broken', 'application/json')).toEqual({ text: '{broken', json: false });
    expect(prettyBody('<a/>', 'application/xml')).toEqual({ text: '<a/>', json: false });
    expect(prettyBody(undefined)).toEqual({ text: '', json: false });
  });
  it('turns datetime-local values into RFC 3339', () => {
    expect(localInputToISO('')).toBeUndefined();
    expect(localInputToISO('nonsense')).toBeUndefined();
    expect(localInputToISO('2026-12-06T10:00')).toMatch(/^2026-12-0\dT\d\d:00:00.000Z$/);
  });
});
