// The admin UI's end-to-end suite: it builds the vrsky binary (or takes
// VRSKY_BIN), starts a real `vrsky dev` on free ports with a temporary data
// directory, and drives Debian's chromium through playwright-core:
//
//   admin signs in -> creates a tenant (and lets it reach a local sink) ->
//   the tenant signs in -> builds webhook -> json-transform -> router ->
//   file + http in the wizard -> tests it with a sample -> deploys ->
//   webhooks are sent -> the detail page shows the counts and the chart
//   moving -> the failing http producer fills the DLQ -> the DLQ view
//   replays them once the sink works -> they arrive.
//
// Steps that need an API route the server does not serve (it is read from
// the served /openapi.json) are reported as skipped with the route they
// wait for; every other failure fails the suite. It saves a screenshot of
// every view to docs/ui/ and prints each view's time-to-usable.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const uiDir = resolve(here, '..');
const repo = resolve(uiDir, '..');
const shots = join(repo, 'docs', 'ui');
const out = join(here, 'out');
mkdirSync(shots, { recursive: true });
mkdirSync(out, { recursive: true });

const chromiumPath = process.env.VRSKY_CHROMIUM ?? '/usr/bin/chromium';
const TENANT = `e2e-${Date.now().toString(36)}`;
const INTEGRATION = 'order-routing';
const ORDERS = 12; // webhooks sent; every third one is big

const results = [];
const timings = {};
const cleanups = [];
const cspViolations = [];

function log(...a) {
  console.log(new Date().toISOString().slice(11, 19), ...a);
}

async function freePort() {
  return new Promise((res, rej) => {
    const s = createNetServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function until(what, fn, { timeout = 60_000, every = 500 } = {}) {
  const start = Date.now();
  let last;
  while (Date.now() - start < timeout) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

// --- the server under test ---------------------------------------------

function buildBinary() {
  if (process.env.VRSKY_BIN) return process.env.VRSKY_BIN;
  const bin = join(out, 'vrsky');
  log('building the binary (go build ./cmd/vrsky)');
  execFileSync('go', ['build', '-o', bin, './cmd/vrsky'], {
    cwd: repo,
    stdio: 'inherit',
    env: { ...process.env, GOTOOLCHAIN: process.env.GOTOOLCHAIN ?? 'go1.27.3', PATH: `${process.env.PATH}:/usr/local/go/bin` },
  });
  return bin;
}

async function startDev(bin) {
  const dataDir = mkdtempSync(join(tmpdir(), 'vrsky-ui-e2e-'));
  chmodSync(dataDir, 0o755);
  const [http, nats, temporal, temporalUI, s3, pg] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const args = [
    'dev',
    '--data-dir', dataDir,
    '--http-addr', `127.0.0.1:${http}`,
    '--nats-addr', `127.0.0.1:${nats}`,
    '--temporal-addr', `127.0.0.1:${temporal}`,
    '--temporal-ui-addr', `127.0.0.1:${temporalUI}`,
    '--s3-addr', `127.0.0.1:${s3}`,
    '--postgres-port', String(pg),
    '--webhook-tenant-rate', '-1',
    '--log-level', 'warn',
  ];
  log(`starting vrsky dev in ${dataDir}`);
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VRSKY_DATABASE_URL: '' } });
  const logFile = join(out, 'vrsky-dev.log');
  const chunks = [];
  proc.stdout.on('data', (d) => chunks.push(d));
  proc.stderr.on('data', (d) => chunks.push(d));
  let exited = null;
  proc.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  cleanups.push(async () => {
    if (exited === null) {
      proc.kill('SIGTERM');
      await until('vrsky dev to stop', () => exited !== null, { timeout: 30_000 }).catch(() => proc.kill('SIGKILL'));
    }
    writeFileSync(logFile, Buffer.concat(chunks));
    rmSync(dataDir, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${http}`;
  await until(
    'vrsky dev to be ready',
    async () => {
      if (exited) throw new Error(`vrsky dev exited (${JSON.stringify(exited)}): ${Buffer.concat(chunks).toString().slice(-2000)}`);
      if (!existsSync(join(dataDir, 'endpoints.json'))) return false;
      const r = await fetch(`${base}/readyz`);
      return r.status === 200;
    },
    { timeout: 240_000, every: 1000 },
  );
  const adminKey = readFileSync(join(dataDir, 'admin-key'), 'utf8').trim();
  const doc = await (await fetch(`${base}/openapi.json`)).json();
  return { base, dataDir, adminKey, paths: new Set(Object.keys(doc.paths ?? {})) };
}

/** A local HTTP sink the http producer delivers to; it fails until told not to. */
async function startSink() {
  const port = await freePort();
  const sink = { port, failing: true, received: [], headers: [] };
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (sink.failing) {
        res.writeHead(500).end('sink is down');
        return;
      }
      sink.received.push(body);
      sink.headers.push(req.headers);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => srv.close(r)));
  return sink;
}

// --- steps ----------------------------------------------------------------

const ctx = {};

async function step(name, needs, fn) {
  const missing = (needs ?? []).filter((p) => !ctx.server.paths.has(p));
  if (missing.length > 0) {
    results.push({ name, status: 'skipped', reason: `needs ${missing.join(', ')}, which this server does not serve` });
    log(`SKIP ${name}: needs ${missing.join(', ')}`);
    return false;
  }
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, status: 'passed', ms: Date.now() - t0 });
    log(`PASS ${name} (${Date.now() - t0} ms)`);
    return true;
  } catch (e) {
    results.push({ name, status: 'failed', error: String(e?.stack ?? e).slice(0, 2000) });
    log(`FAIL ${name}: ${e?.message ?? e}`);
    await ctx.page?.screenshot({ path: join(out, `failed-${name.replace(/\W+/g, '-')}.png`), fullPage: true }).catch(() => {});
    return false;
  }
}

/** visit loads a URL and measures the time until the view's ready element is visible. */
async function visit(view, path, ready) {
  const t0 = Date.now();
  await ctx.page.goto(`${ctx.server.base}${path}`);
  await ready(ctx.page).waitFor({ state: 'visible', timeout: 30_000 });
  timings[view] = Date.now() - t0;
}

async function shot(name, opts = {}) {
  await ctx.page.screenshot({ path: join(shots, `${name}.png`), fullPage: opts.fullPage ?? true });
}

async function apiCall(method, path, body, key = ctx.tenantKey) {
  const r = await fetch(`${ctx.server.base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function signIn(key, heading) {
  const page = ctx.page;
  await page.goto(`${ctx.server.base}/ui/`);
  if (await page.getByRole('button', { name: 'Sign out' }).isVisible()) {
    await page.getByRole('button', { name: 'Sign out' }).click();
  }
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
  const stored = await page.evaluate(() => ({ session: sessionStorage.getItem('vrsky.apiKey'), local: localStorage.length, url: location.href }));
  if (stored.session !== key) throw new Error('the key is not in sessionStorage');
  if (stored.local !== 0) throw new Error('something was written to localStorage');
  if (stored.url.includes(key)) throw new Error('the key is in the URL');
}

function specFor(sinkPort) {
  return {
    name: INTEGRATION,
    consumer: { connector: 'http-webhook' },
    steps: [
      { connector: 'json-transform', config: { set: { total: 'sum(map(items, #.qty * #.price))' } } },
      { connector: 'router', config: { mode: 'all', routes: [{ when: 'total > 1000', to: ['alerts'] }, { when: 'true', to: ['orders'] }] } },
    ],
    producers: {
      orders: { connector: 'file', config: { dir: 'orders', format: 'ndjson' } },
      alerts: { connector: 'http', config: { url: `http://127.0.0.1:${sinkPort}/alerts` } },
    },
  };
}

/** canonical is JSON with sorted keys, to compare specs whatever order the server writes. */
function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

function ordersWritten() {
  const dir = join(ctx.server.dataDir, 'files', TENANT, 'orders');
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const f of readdirSync(dir, { recursive: true })) {
    const p = join(dir, String(f));
    try {
      n += readFileSync(p, 'utf8').split('\n').filter((l) => l.trim().startsWith('{')).length;
    } catch {
      /* a directory */
    }
  }
  return n;
}

async function sendOrders(from, count) {
  for (let i = from; i < from + count; i++) {
    const big = i % 3 === 0;
    if (big) ctx.bigSent = (ctx.bigSent ?? 0) + 1;
    const r = await fetch(`${ctx.server.base}/v1/hooks/${TENANT}/${INTEGRATION}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': `order-${i}` },
      body: JSON.stringify({ id: `order-${i}`, items: [{ qty: big ? 3 : 1, price: big ? 500 : 20 }] }),
    });
    if (r.status !== 202) throw new Error(`webhook ${i}: ${r.status} ${await r.text()}`);
  }
}

async function main() {
  const bin = buildBinary();
  ctx.server = await startDev(bin);
  ctx.sink = await startSink();
  const userDataDir = mkdtempSync(join(tmpdir(), 'vrsky-ui-chromium-'));
  cleanups.push(() => rmSync(userDataDir, { recursive: true, force: true }));
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  cleanups.unshift(() => browser.close());
  const page = browser.pages()[0] ?? (await browser.newPage());
  ctx.page = page;
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) cspViolations.push(`${page.url()}: ${m.text()}`);
  });
  const { server } = ctx;

  await step('the UI and the API reference are served with a strict CSP', [], async () => {
    for (const path of ['/ui/', '/docs', '/docs/interactive']) {
      const r = await fetch(`${server.base}${path}`);
      const csp = r.headers.get('content-security-policy') ?? '';
      if (r.status !== 200 || !csp.includes("script-src 'self'")) throw new Error(`${path}: ${r.status} ${csp}`);
      const html = await r.text();
      if (html.includes('not built')) throw new Error(`${path} serves the not-built page: run make ui first`);
      if (/<script>(?!\s*<\/script>)/.test(html) || /https?:\/\/(?!127\.0\.0\.1)/.test(html.replace(/apiDescriptionUrl="[^"]*"/, ''))) throw new Error(`${path} has an inline script or a remote origin`);
    }
    const root = await fetch(`${server.base}/`, { redirect: 'manual' });
    if (root.headers.get('location') !== '/ui/') throw new Error(`/ does not redirect to /ui/: ${root.status}`);
  });

  await step('the sign-in page', [], async () => {
    await visit('sign-in', '/ui/', (p) => p.getByLabel('API key'));
    await shot('sign-in', { fullPage: false });
  });

  await step('admin signs in and sees the platform overview', ['/v1/overview'], async () => {
    const t0 = Date.now();
    await signIn(server.adminKey, 'Platform overview');
    await page.getByTestId('stat-tenants').waitFor();
    timings.overview = Date.now() - t0;
    await page.getByTestId('components').getByText('postgres').waitFor();
    await shot('overview');
  });
  if (!ctx.page.url().includes('/ui/overview')) await signIn(server.adminKey, 'Platform overview').catch(() => {});

  await step('admin creates a tenant; its first key is shown once', [], async () => {
    await visit('tenants', '/ui/tenants', (p) => p.getByRole('heading', { name: 'Tenants', level: 1 }));
    await page.getByRole('button', { name: 'New tenant' }).click();
    await page.getByLabel('ID').fill(TENANT);
    await page.getByLabel('Name').fill('End-to-end Corp');
    await page.getByRole('button', { name: 'Create tenant' }).click();
    ctx.tenantKey = (await page.getByTestId('new-tenant-key').textContent()).trim();
    if (!/^vrsky_[0-9a-f]{64}$/.test(ctx.tenantKey)) throw new Error(`unexpected key ${ctx.tenantKey}`);
    await page.getByText(`Created tenant ${TENANT}`).waitFor();
    await shot('tenant-created');
    await page.getByRole('button', { name: 'Done' }).click();
    const row = page.getByRole('row').filter({ hasText: TENANT });
    await row.getByText('active', { exact: true }).waitFor({ timeout: 180_000 });
    await row.getByTestId('placement-badge').getByText('shared', { exact: true }).waitFor();
  });

  await step('admin lets the tenant reach loopback (egress) with PATCH', [], async () => {
    await page.getByRole('button', { name: `Manage ${TENANT}` }).click();
    await page.getByRole('checkbox', { name: /Allow loopback/ }).check();
    await page.getByRole('button', { name: 'Save limits and egress' }).click();
    await page.getByText(`Saved the limits and egress policy of ${TENANT}.`).waitFor();
    await shot('tenants');
    const t = await apiCall('GET', `/v1/tenants/${TENANT}`, undefined, server.adminKey);
    if (!t.egress?.allowPrivate) throw new Error('egress policy not saved');
  });

  await step('admin sees the connector catalogue', ['/v1/connectors'], async () => {
    await visit('connectors', '/ui/connectors', (p) => p.getByRole('heading', { name: 'json-transform' }));
    await page.getByRole('button', { name: /Settings of json-transform/ }).click();
    await page.getByText('Field path to an expr expression').waitFor();
    await shot('connectors');
  });

  await step('the tenant signs in', [], async () => {
    const t0 = Date.now();
    await signIn(ctx.tenantKey, 'Integrations');
    timings.integrations = Date.now() - t0;
    await page.getByText('No integrations yet').waitFor();
    await shot('integrations-empty');
  });

  await step('the tenant creates an API key and stores a secret', [], async () => {
    await visit('api-keys', '/ui/keys', (p) => p.getByRole('heading', { name: 'API keys', level: 1 }));
    await page.getByRole('checkbox', { name: /dlq/ }).check();
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByTestId('new-api-key').waitFor();
    await shot('api-keys');
    await visit('secrets', '/ui/secrets', (p) => p.getByRole('heading', { name: 'Secrets', level: 1 }));
    await page.getByLabel('Name').fill('hook-token');
    await page.getByLabel('Value').fill('s3cr3t-value');
    await page.getByRole('button', { name: 'Store secret' }).click();
    await page.getByText('Stored secret hook-token').waitFor();
    await shot('secrets');
  });

  const wizardOK = await step('the wizard builds webhook -> json-transform -> router -> file + http, round-trips YAML, shows API errors on their field', ['/v1/connectors'], async () => {
    await visit('wizard', '/ui/integrations/new', (p) => p.getByRole('heading', { name: 'New integration' }));
    await page.getByLabel('Name', { exact: true }).fill(INTEGRATION);
    await page.getByLabel('1. Consumer: where messages come from: connector').selectOption('http-webhook');
    await page.getByRole('button', { name: 'Add step' }).click();
    await page.getByLabel('Step 1: connector').selectOption('json-transform');
    await page.getByRole('button', { name: 'Add step' }).click();
    await page.getByLabel('Step 2: connector').selectOption('router');
    await page.getByRole('button', { name: 'Add producer' }).click();
    await page.getByLabel('Producer 1 name').fill('orders');
    await page.getByLabel('Producer orders: connector').selectOption('file');
    await page.locator('[data-section="producers.orders"]').getByLabel('dir').fill('orders');
    await page.getByRole('button', { name: 'Add producer' }).click();
    await page.getByLabel('Producer 2 name').fill('alerts');
    await page.getByLabel('Producer alerts: connector').selectOption('http');
    await shot('wizard-form');
    // The expressions go in through the YAML tab: the whole spec, replaced.
    await page.getByRole('tab', { name: 'YAML' }).click();
    const editor = page.getByTestId('yaml-editor');
    await editor.waitFor();
    const yamlBefore = await editor.textContent();
    // CodeMirror renders the lines in view only: check the top of the spec.
    if (!yamlBefore.includes(`name: ${INTEGRATION}`) || !yamlBefore.includes('connector: http-webhook')) throw new Error(`the YAML tab does not show the form's spec: ${yamlBefore}`);
    const { stringify } = await import('yaml');
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.insertText(stringify(specFor(ctx.sink.port)));
    await page.waitForTimeout(600);
    await shot('wizard-yaml');
    await page.getByRole('tab', { name: 'Form' }).click();
    // Round trip: the router's expression typed in YAML is in the form.
    await page.locator('[data-section="steps[1]"] input[value="total > 1000"]').waitFor();
  });

  await step('the wizard picks a secret header from the tenant\'s secret names; it round-trips through YAML', ['/v1/connectors', '/v1/secrets'], async () => {
    if (!wizardOK) throw new Error('the wizard step failed');
    const alerts = page.locator('[data-section="producers.alerts"]');
    await alerts.getByRole('button', { name: 'Add to secretHeaders' }).click();
    await alerts.getByLabel('secretHeaders 1: name').fill('Authorization');
    const picker = alerts.getByLabel('secretHeaders 1: secret');
    const options = await picker.locator('option').allTextContents();
    if (!options.includes('hook-token')) throw new Error(`the picker does not list the stored secret: ${options}`);
    await picker.selectOption('hook-token');
    // The value is chosen, never typed: the map's only text field is the header's name.
    const typed = await alerts.getByTestId('secret-map-secretHeaders').locator('input, textarea').count();
    if (typed !== 1) throw new Error(`the secret map has ${typed} text fields`);
    await alerts.getByTestId('secret-map-secretHeaders').scrollIntoViewIfNeeded();
    await shot('wizard-secrets', { fullPage: false });
    await page.getByRole('tab', { name: 'YAML' }).click();
    await page.getByTestId('yaml-editor').getByText('secret: hook-token').waitFor();
    await page.getByRole('tab', { name: 'Form' }).click();
    const again = page.locator('[data-section="producers.alerts"]').getByLabel('secretHeaders 1: secret');
    if ((await again.inputValue()) !== 'hook-token') throw new Error('the secret header did not survive the YAML round trip');
  });

  await step('an API validation error is shown on its field', ['/v1/connectors'], async () => {
    if (!wizardOK) throw new Error('the wizard step failed');
    // An invalid name: create answers 422 located at body.name, shown under the Name field.
    const name = page.getByLabel('Name', { exact: true });
    await name.fill('Order Routing!');
    await page.getByRole('button', { name: 'Create and deploy' }).click();
    await page.getByText(/^Unprocessable Entity/).first().waitFor();
    const field = page.locator('#integration-name').locator('xpath=..').getByRole('alert');
    if (!(await field.isVisible())) throw new Error(`the 422 is not shown on the name: ${JSON.stringify(await page.locator('[role=alert]').allTextContents())}`);
    await shot('wizard-error', { fullPage: false });
    await name.fill(INTEGRATION);
  });

  await step('the wizard tests the integration with a sample message', ['/v1/connectors', '/v1/integrations/test'], async () => {
    if (!wizardOK) throw new Error('the wizard step failed');
    await page.getByLabel('Sample body').fill('{"id":"sample","items":[{"qty":3,"price":500}]}');
    await page.getByRole('button', { name: 'Run test' }).click();
    const res = page.getByTestId('test-results');
    await res.getByText('"total":1500').first().waitFor();
    await res.getByText('alerts').waitFor();
    await shot('wizard-test');
  });

  const created = await step('the wizard creates and deploys the integration', ['/v1/connectors'], async () => {
    if (!wizardOK) throw new Error('the wizard step failed');
    await page.getByRole('button', { name: 'Create and deploy' }).click();
    await page.getByText(`Created ${INTEGRATION}`).waitFor();
    await page.getByTestId('integration-status').getByText('running').waitFor({ timeout: 90_000 });
  });
  if (!created) {
    // Without the catalogue the wizard cannot run: the spec goes in through
    // the API so the rest of the journey is still checked.
    await step('(fallback) the integration is created through the API and deployed from the detail page', [], async () => {
      await apiCall('POST', '/v1/integrations', specFor(ctx.sink.port));
      await visit('integration-detail', `/ui/integrations/${INTEGRATION}`, (p) => p.getByRole('button', { name: /Deploy v1/ }));
      await page.getByRole('button', { name: /Deploy v1/ }).click();
      await page.getByText(`Asked to deploy ${INTEGRATION}`).waitFor();
      await page.getByTestId('integration-status').getByText('running').waitFor({ timeout: 90_000 });
    });
  }

  await step('the detail page shows state, the webhook URL and the lifecycle log', [], async () => {
    await visit('integration-detail', `/ui/integrations/${INTEGRATION}`, (p) => p.getByTestId('integration-status').getByText('running'));
    const url = await page.getByTestId('webhook-url').textContent();
    if (url !== `${server.base}/v1/hooks/${TENANT}/${INTEGRATION}`) throw new Error(`webhook URL ${url}`);
    await page.getByTestId('lifecycle-log').getByText('deploy').first().waitFor({ timeout: 30_000 });
  });

  await step('webhooks are delivered: the detail page counts them and the files arrive', [], async () => {
    await sendOrders(0, ORDERS);
    await until('every order in the orders files', () => ordersWritten() === ORDERS, { timeout: 60_000 });
    const counters = page.getByTestId('stage-counters');
    await until('the process stage to count every order', async () => {
      const finished = await counters.getByRole('row').filter({ hasText: 'process' }).first().locator('td').nth(1).textContent();
      return Number(finished) >= ORDERS;
    }, { timeout: 30_000 });
    await shot('integration-detail');
  });

  await step('the charts move: throughput above zero, latency p50 and p99 in ms', ['/v1/integrations/{integrationId}/metrics'], async () => {
    await sendOrders(100, 3);
    await until('the throughput chart to show traffic', async () => Number(await page.getByTestId('chart-throughput').getAttribute('data-peak')) > 0, { timeout: 60_000, every: 1000 });
    // The deliveries' end-to-end latencies: a number for p50 and p99,
    // the median under the 99th percentile, both well under a minute.
    const latency = page.getByTestId('chart-latency');
    const peaks = await until('the latency chart to show p50 and p99', async () => {
      const p = JSON.parse((await latency.getAttribute('data-peaks')) ?? '{}');
      return p.p50 > 0 && p.p99 > 0 ? p : false;
    }, { timeout: 60_000, every: 1000 });
    if (!(peaks.p50 <= peaks.p99 && peaks.p99 < 60_000)) throw new Error(`implausible latencies: ${JSON.stringify(peaks)}`);
    const caption = await page.getByTestId('chart-latency-latest').textContent();
    if (/not measured/.test(caption ?? '')) throw new Error(`the latency chart says ${caption} while it has values`);
    log(`latency peaks over the window: p50 ${peaks.p50.toFixed(2)} ms, p99 ${peaks.p99.toFixed(2)} ms; ${caption}`);
    await shot('integration-charts');
  });

  await step('the failing http producer fills the DLQ', [], async () => {
    const expected = ctx.bigSent; // every big order went to the failing sink
    await until('the big orders in the DLQ', async () => (await apiCall('GET', `/v1/dlq?integration=${INTEGRATION}`)).items?.length >= expected, { timeout: 90_000, every: 1000 });
    await visit('dead-letters', `/ui/dlq?integration=${INTEGRATION}`, (p) => p.getByTestId('dlq-table'));
    await page.getByRole('button', { name: /Inspect dead letter/ }).first().click();
    await page.getByTestId('dlq-body').waitFor();
    const body = await page.getByTestId('dlq-body').textContent();
    if (!body.includes('"total": 1500')) throw new Error(`the dead letter's body is not the converted order: ${body}`);
    await shot('dead-letters');
  });

  await step('the DLQ view replays them and they arrive', [], async () => {
    ctx.sink.failing = false;
    await page.getByRole('checkbox', { name: 'Select all shown' }).check();
    await page.getByRole('button', { name: /Replay selected/ }).click();
    await page.getByRole('button', { name: 'Replay', exact: true }).click();
    await page.getByText(/Replaying \d+ selected dead letter/).waitFor();
    const expected = ctx.bigSent;
    await until('the replayed orders at the sink', () => ctx.sink.received.length >= expected, { timeout: 90_000 });
    await new Promise((r) => setTimeout(r, 2000)); // a duplicate would come now
    const ids = new Set(ctx.sink.received.map((b) => JSON.parse(b).id));
    if (ids.size !== expected || ctx.sink.received.length !== expected) throw new Error(`the sink got ${[...ids]} (duplicates or missing)`);
    if (created) {
      // The header the wizard took from the secret picker carries the secret's value.
      const auth = ctx.sink.headers.map((h) => h.authorization);
      if (!auth.every((a) => a === 's3cr3t-value')) throw new Error(`the sink got Authorization ${JSON.stringify(auth)}, not the secret's value`);
    }
    await until('the DLQ to be empty', async () => (await apiCall('GET', `/v1/dlq?integration=${INTEGRATION}`)).items?.length === 0, { timeout: 60_000 });
  });

  await step('bulk replay shows its progress', ['/v1/dlq/replays/{replayId}'], async () => {
    await page.getByTestId('bulk-progress').getByText('completed').waitFor({ timeout: 60_000 });
    await shot('dead-letters-replayed');
  });

  const edited = await step('the wizard edits the integration (YAML, then the form), saves v2 and deploys it; new orders carry the change', [], async () => {
    const it = await apiCall('GET', `/v1/integrations/${INTEGRATION}`);
    await visit('integration-detail-reload', `/ui/integrations/${INTEGRATION}`, (p) => p.getByRole('link', { name: 'Edit', exact: true }));
    const t0 = Date.now();
    await page.getByRole('link', { name: 'Edit', exact: true }).click();
    await page.getByTestId('edit-base').getByText(`Editing v${it.version}; saving stores v${it.version + 1}`).waitFor();
    timings['wizard-edit'] = Date.now() - t0;
    if (await page.getByLabel('Name', { exact: true }).isEditable()) throw new Error('the name of an existing integration can be changed');
    // The form starts from the stored spec, secret header included.
    const alerts = page.locator('[data-section="producers.alerts"]');
    if ((await alerts.getByLabel('secretHeaders 1: secret').inputValue()) !== 'hook-token') throw new Error('the stored secret header is not in the form');
    const spec = structuredClone(it.spec);
    spec.steps[0].config.set.vat = 'sum(map(items, #.qty * #.price)) * 0.2';
    const { stringify } = await import('yaml');
    await page.getByRole('tab', { name: 'YAML' }).click();
    const editor = page.getByTestId('yaml-editor');
    await editor.getByText(`name: ${INTEGRATION}`).waitFor();
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.insertText(stringify(spec));
    await page.waitForTimeout(600);
    await page.getByRole('tab', { name: 'Form' }).click();
    await page.locator('[data-section="steps[0]"] input[value="sum(map(items, #.qty * #.price)) * 0.2"]').waitFor();
    await shot('wizard-edit');
    await page.getByRole('button', { name: `Save as v${it.version + 1} and deploy` }).click();
    await page.getByText(`Saved ${INTEGRATION} as version ${it.version + 1} and asked to deploy it.`).waitFor();
    await until('v2 to be deployed and running', async () => {
      const st = await apiCall('GET', `/v1/integrations/${INTEGRATION}/status`);
      return st.version === it.version + 1 && st.status === 'running';
    }, { timeout: 120_000, every: 1000 });
    const after = await apiCall('GET', `/v1/integrations/${INTEGRATION}`);
    if (canonical(after.spec) !== canonical(spec)) throw new Error(`v2 is not the edited spec: ${JSON.stringify(after.spec)}`);
    // Orders sent from now on go through v2: each gets a vat. One is sent
    // every few seconds until one arrives with it (the runner may finish
    // messages it already took with v1).
    const dir = join(ctx.server.dataDir, 'files', TENANT, 'orders');
    const lines = () =>
      readdirSync(dir, { recursive: true }).flatMap((f) => {
        try {
          return readFileSync(join(dir, String(f)), 'utf8').split('\n').filter((l) => l.includes('"order-3'));
        } catch {
          return [];
        }
      });
    let n = 300;
    await until('an order sent after the edit, with its vat, in the orders files', async () => {
      await sendOrders(n++, 1);
      await new Promise((r) => setTimeout(r, 2000));
      return lines().some((l) => l.includes('"vat"'));
    }, { timeout: 90_000, every: 1000 }).catch((e) => {
      throw new Error(`${e.message}; the orders written after the edit: ${lines().slice(-3).join(' | ') || 'none'}`);
    });
  });

  await step('a version diff shows what changed', [], async () => {
    if (!edited) {
      // Without the edit, the second version goes in through the API.
      const it = await apiCall('GET', `/v1/integrations/${INTEGRATION}`);
      const spec = it.spec;
      spec.steps[0].config.set.vat = 'sum(map(items, #.qty * #.price)) * 0.2';
      const r = await fetch(`${server.base}/v1/integrations/${INTEGRATION}`, {
        method: 'PUT',
        headers: { Authorization: `Bearer ${ctx.tenantKey}`, 'Content-Type': 'application/json', 'If-Match': `"v${it.version}"` },
        body: JSON.stringify(spec),
      });
      if (!r.ok) throw new Error(`PUT: ${r.status} ${await r.text()}`);
    }
    await page.goto(`${server.base}/ui/integrations/${INTEGRATION}`);
    await page.getByRole('radio', { name: 'from' }).first().waitFor();
    await page.getByRole('radio', { name: 'from' }).nth(1).check();
    await page.getByRole('radio', { name: 'to' }).first().check();
    await page.getByText('added: ').first().waitFor();
    await page.getByLabel(/Differences between/).getByText(/vat: .*#\.price\)\) \* 0\.2/).waitFor();
    await page.getByRole('heading', { name: 'Versions' }).scrollIntoViewIfNeeded();
    await shot('versions-diff', { fullPage: false });
  });

  await step('the live inspector shows messages, bodies only when asked', ['/v1/integrations/{integrationId}/inspect'], async () => {
    await page.getByRole('button', { name: 'Watch' }).click();
    await page.waitForTimeout(500);
    await sendOrders(200, 1);
    await page.getByText('Body hidden.').first().waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Show bodies' }).click();
    await page.waitForTimeout(500);
    await sendOrders(201, 1);
    await page.getByText('"order-201"').first().waitFor({ timeout: 30_000 });
    await page.getByRole('heading', { name: 'Live inspector' }).scrollIntoViewIfNeeded();
    await shot('inspector', { fullPage: false });
  });

  await step('the views are readable on a phone (390x844)', [], async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await visit('integration-detail-mobile', `/ui/integrations/${INTEGRATION}`, (p) => p.getByTestId('integration-status'));
    await shot('mobile-integration-detail', { fullPage: false });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 2) throw new Error(`the page is ${overflow}px wider than the phone`);
    await visit('dead-letters-mobile', '/ui/dlq', (p) => p.getByRole('heading', { name: 'Dead letters', level: 1 }));
    await shot('mobile-dead-letters', { fullPage: false });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  await step('the API reference lists every operation within 1 s, first visit and repeat; its interactive page loads on demand', [], async () => {
    // Navigation until the operations' groups are listed, first visit
    // (nothing cached) and again (its stylesheet cached for a year, never
    // refetched).
    const ready = async () => {
      await page.getByText('VRSky API').first().waitFor({ timeout: 30_000 });
      await page.getByText('Integrations', { exact: true }).first().waitFor({ timeout: 30_000 });
    };
    let t0 = Date.now();
    await page.goto(`${server.base}/docs`);
    await ready();
    timings.docs = Date.now() - t0;
    await shot('docs', { fullPage: false });
    t0 = Date.now();
    await page.goto(`${server.base}/docs`);
    await ready();
    timings['docs-repeat'] = Date.now() - t0;
    // A resource the cache served has no transfer size.
    const refetched = await page.evaluate(() =>
      performance.getEntriesByType('resource').filter((e) => e.name.includes('/docs/assets/') && e.transferSize > 0).map((e) => e.name),
    );
    if (refetched.length > 0) throw new Error(`cached assets were fetched again: ${refetched}`);
    // The page is the whole reference: every operation the server serves,
    // with its parameters, and every schema.
    const doc = await (await fetch(`${server.base}/openapi.json`)).json();
    const served = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId).filter(Boolean));
    const listed = await page.evaluate(() => [...document.querySelectorAll('article.op')].map((a) => a.dataset.operation));
    const missing = served.filter((id) => !listed.includes(id));
    if (missing.length > 0 || listed.length !== served.length) throw new Error(`the reference lists ${listed.length} operations of ${served.length}; missing: ${missing}`);
    const metrics = page.locator('article.op[data-operation="get-integration-metrics"]');
    for (const text of ['since', 'step', 'Bucket width in seconds.', 'MetricsOutputBody']) {
      if (!(await metrics.getByText(text, { exact: true }).first().isVisible())) throw new Error(`get-integration-metrics does not show ${text}`);
    }
    const schemas = await page.evaluate(() => document.querySelectorAll('article.schema').length);
    if (schemas !== Object.keys(doc.components.schemas).length) throw new Error(`${schemas} schemas listed of ${Object.keys(doc.components.schemas).length}`);
    // "Try it" opens the interactive reference (Stoplight Elements) at the
    // operation, loaded only now.
    const beforeTry = await page.evaluate(() => performance.getEntriesByType('resource').some((e) => e.name.includes('web-components')));
    if (beforeTry) throw new Error('the reference loaded the interactive renderer before it was asked for');
    t0 = Date.now();
    await metrics.getByRole('link', { name: 'Try it' }).click();
    await page.waitForURL(/\/docs\/interactive#\/operations\/get-integration-metrics/);
    await page.getByRole('heading', { name: "Get an integration's metrics history" }).first().waitFor({ timeout: 30_000 });
    timings['docs-interactive'] = Date.now() - t0;
    await shot('docs-interactive', { fullPage: false });
    const html = await (await fetch(`${server.base}/docs/interactive`)).text();
    const js = await fetch(`${server.base}${html.match(/src="([^"]+\.js)"/)[1]}`, { headers: { 'Accept-Encoding': 'gzip' } });
    if (js.headers.get('content-encoding') !== 'gzip' || !js.headers.get('cache-control')?.includes('immutable')) throw new Error(`Elements' script is sent ${js.headers.get('content-encoding')} / ${js.headers.get('cache-control')}`);
    const budget = Number(process.env.VRSKY_DOCS_BUDGET_MS ?? 1000);
    const interactiveBudget = Number(process.env.VRSKY_DOCS_INTERACTIVE_BUDGET_MS ?? 2500);
    if (timings.docs > budget) throw new Error(`the API reference took ${timings.docs} ms to list its operations on a first visit, over the ${budget} ms budget`);
    if (timings['docs-repeat'] > budget) throw new Error(`the API reference took ${timings['docs-repeat']} ms to list its operations on a repeat visit, over the ${budget} ms budget`);
    if (timings['docs-interactive'] > interactiveBudget) throw new Error(`the interactive reference took ${timings['docs-interactive']} ms to show an operation, over the ${interactiveBudget} ms ceiling`);
  });

  await step('keyboard: the sign-in form and the main navigation work without a mouse', [], async () => {
    await page.goto(`${server.base}/ui/`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.keyboard.press('Tab');
    await page.keyboard.type(ctx.tenantKey);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Integrations', level: 1 }).waitFor();
    const focusable = await page.evaluate(() =>
      [...document.querySelectorAll('a, button, input, select, textarea')].filter((e) => !e.closest('[aria-hidden="true"]')).every((e) => (e.getAttribute('aria-label') || e.textContent?.trim() || e.labels?.length || e.getAttribute('title')) ? true : false),
    );
    if (!focusable) throw new Error('a control has no label');
  });

  await step('no Content-Security-Policy violation on any page', [], async () => {
    if (cspViolations.length > 0) throw new Error(cspViolations.join('\n'));
  });
}

// Stop what the suite started when it is interrupted.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, async () => {
    for (const c of cleanups) await Promise.resolve(c()).catch(() => {});
    process.exit(130);
  });
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  results.push({ name: 'suite setup', status: 'failed', error: String(e?.stack ?? e) });
  log(`FAIL suite setup: ${e?.stack ?? e}`);
} finally {
  for (const c of cleanups) await Promise.resolve(c()).catch((e) => log(`cleanup: ${e.message}`));
}
const summary = { results, timings_ms: timings, at: new Date().toISOString() };
writeFileSync(join(out, 'results.json'), JSON.stringify(summary, null, 2));
console.log('\nview time-to-usable (ms):');
for (const [v, ms] of Object.entries(timings)) console.log(`  ${v.padEnd(28)} ${ms}`);
console.log('\nsteps:');
for (const r of results) console.log(`  ${r.status.padEnd(8)} ${r.name}${r.reason ? ` — ${r.reason}` : ''}${r.error ? `\n           ${r.error.split('\n')[0]}` : ''}`);
failed ||= results.some((r) => r.status === 'failed');
process.exit(failed ? 1 : 0);
