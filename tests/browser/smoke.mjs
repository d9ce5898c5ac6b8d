// The whole chain works: Chromium, launched by Playwright, downloads a published file through
// the web seed URL as a user following a link would, and a script on a page of the web
// listener reads a byte range of it with fetch().
//
// Parameters: base (http://ADDR:PORT), url (a /data/<hex>/<name> path), save (where to write
// the download), range ([first, last] bytes for the fetch).
// Result: name (the download's suggested file name), range {status, contentRange, text}.
import { newPage, run } from './lib.mjs';

await run(async (browser, p) => {
  const page = await newPage(browser);
  // application/octet-stream is not shown but downloaded: goto ends in an aborted navigation.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.goto(p.base + p.url).catch(() => {}),
  ]);
  await download.saveAs(p.save);
  const failure = await download.failure();
  if (failure) throw new Error(`download failed: ${failure}`);

  // A page of the same origin (any answer will do, a 404 too) for a same-origin fetch.
  await page.goto(p.base + '/data/');
  const range = await page.evaluate(async ({ url, range }) => {
    const r = await fetch(url, { headers: { Range: `bytes=${range[0]}-${range[1]}` } });
    return { status: r.status, contentRange: r.headers.get('content-range'), text: await r.text() };
  }, { url: p.url, range: p.range });
  return { name: download.suggestedFilename(), range };
});
