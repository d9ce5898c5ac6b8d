// What every browser script shares: launching Debian's Chromium headless through Playwright,
// pages that record what a test must see (dialogs, script errors), logging in, and the one JSON
// line each script prints for tests/integration/browser_test.py.
//
// A script is `node SCRIPT.mjs 'JSON'`: its parameters are one JSON object in argv[2]. It prints
// exactly one line on stdout, {"ok": true, ...result} or {"ok": false, "error": "..."}, and exits
// 0 or 1, within params.time_limit seconds (default 120). Everything else (Playwright's
// DEBUG=pw:api log, say) goes to stderr.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

export const kViewport = { width: 1280, height: 800 };

// Seconds one Playwright action or navigation may take: a page of ours answers in milliseconds,
// so a wait this long means the selector or the page is wrong (and the error says which).
const kActionTimeoutMs = 15000;

// Chromium, with the browsers Playwright would download replaced by Debian's package.
// --no-sandbox: the tests run as root (in containers), where Chromium's sandbox refuses to start.
export async function launch() {
  return chromium.launch({
    executablePath: process.env.EVERT_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox'],
    timeout: 60000,
  });
}

// A fresh context (its own cookies) at 1280x800 and a page in it. page.evert collects the
// dialogs (alert/confirm/prompt: dismissed, a page of ours never opens one) and uncaught script
// errors of every document the page shows.
export async function newPage(browser, { javaScriptEnabled = true } = {}) {
  const context = await browser.newContext({
    viewport: kViewport,
    javaScriptEnabled,
    acceptDownloads: true,
  });
  context.setDefaultTimeout(kActionTimeoutMs);
  context.setDefaultNavigationTimeout(kActionTimeoutMs);
  const page = await context.newPage();
  page.evert = { dialogs: [], errors: [] };
  page.on('dialog', (d) => {
    page.evert.dialogs.push({ type: d.type(), message: d.message() });
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => page.evert.errors.push(String(e)));
  return page;
}

// Goes to `url` and fails unless the answer is `status` (200 by default).
export async function open(page, url, status = 200) {
  const r = await page.goto(url);
  if (!r) throw new Error(`${url}: no response`);
  if (r.status() !== status) throw new Error(`${url}: HTTP ${r.status()}, expected ${status}`);
  return r;
}

// Logs in through /login's form#login; returns once the answer to the form has loaded (a
// wrong password stays on a page with .error: the caller looks).
export async function login(page, base, user, password) {
  await open(page, `${base}/login`);
  await page.fill('form#login input[name=user]', user);
  await page.fill('form#login input[name=password]', password);
  await submit(page, 'form#login');
}

// Submits `form` (a CSS selector) with its submit button, as a user would, and waits for the
// page the answer loads.
export async function submit(page, form) {
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.click(submitButton(form)),
  ]);
}

// A form's submit button: <button> (submit unless its type says otherwise) or <input type=submit>.
export function submitButton(form) {
  return [`${form} button:not([type])`, `${form} button[type=submit]`,
          `${form} input[type=submit]`].join(', ');
}

// The text of the first element `selector` matches (trimmed), or null when none does.
export async function text(page, selector) {
  const el = page.locator(selector).first();
  return (await el.count()) ? (await el.textContent()).trim() : null;
}

// Runs `body(browser, params)` with a bounded time, prints its result as one JSON line and
// closes the browser. On failure it saves a screenshot and the HTML of every open page into
// params.artifacts (when given) and names them in the error.
export async function run(body) {
  const params = JSON.parse(process.argv[2] ?? '{}');
  const limitMs = (params.time_limit ?? 120) * 1000;
  let browser;
  const timer = setTimeout(async () => {
    let error = `timed out after ${limitMs / 1000} s`;
    if (browser && params.artifacts) {
      const bound = new Promise((resolve) => setTimeout(() => resolve(''), 5000));
      error += await Promise.race([saveArtifacts(browser, params.artifacts), bound]);
    }
    // Playwright kills the browser it launched when node exits.
    finish({ ok: false, error }, 1);
  }, limitMs);
  try {
    browser = await launch();
    const result = await body(browser, params);
    await browser.close();
    finish({ ok: true, ...result }, 0);
  } catch (e) {
    let error = e && e.stack ? e.stack : String(e);
    if (browser && params.artifacts) error += await saveArtifacts(browser, params.artifacts);
    finish({ ok: false, error }, 1);
  } finally {
    clearTimeout(timer);
  }
}

function finish(result, code) {
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code));
}

async function saveArtifacts(browser, dir) {
  const saved = [];
  try {
    mkdirSync(dir, { recursive: true });
    let n = 0;
    for (const context of browser.contexts()) {
      for (const page of context.pages()) {
        n += 1;
        const png = join(dir, `page-${n}.png`);
        const html = join(dir, `page-${n}.html`);
        await page.screenshot({ path: png, timeout: 5000 });
        writeFileSync(html, `<!-- ${page.url()} -->\n` + (await page.content()));
        saved.push(png, html);
      }
    }
  } catch (e) {
    saved.push(`(saving failed: ${e})`);
  }
  return saved.length ? `\nsaved: ${saved.join(' ')}` : '';
}
