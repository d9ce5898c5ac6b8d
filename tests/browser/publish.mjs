// Publishing in the browser: log in, fill /publish's form#publish (the file with setInputFiles,
// a name, a description; the piece size from details#options when asked), send it, watch
// progress#upload-progress and then progress#hash-progress, and land on the torrent page
// /t/<40 hex>.
//
// Parameters: base, user, password, file (path of the file to upload), name, description,
// piece_size (optional: an option value of select[name=piece_size]), upload_rate (optional:
// bytes per second the upload is throttled to, so its progress can be seen), wait (seconds
// the whole publish may take).
// Result: url (the torrent page's), hex, h1, magnet (input#magnet's value), magnetReadonly,
// seen {"upload-progress": bool, "hash-progress": bool} (each was shown at some point), options
// {details, pieceSizes, private, trackers} (what details#options holds), dialogs, errors.
import { login, newPage, open, run, submitButton, text } from './lib.mjs';

// Notes in sessionStorage (kept across the tab's documents) each progress bar that was ever
// rendered: a MutationObserver sees every change, so a bar shown only for a moment counts too.
function recordProgress() {
  const ids = ['upload-progress', 'hash-progress'];
  const check = () => {
    const seen = JSON.parse(sessionStorage.getItem('evert-seen') || '{}');
    let changed = false;
    for (const id of ids) {
      const el = document.getElementById(id);
      if (!seen[id] && el && el.tagName === 'PROGRESS' && el.getClientRects().length > 0) {
        seen[id] = true;
        changed = true;
      }
    }
    if (changed) sessionStorage.setItem('evert-seen', JSON.stringify(seen));
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true });
  document.addEventListener('DOMContentLoaded', check);
}

await run(async (browser, p) => {
  const page = await newPage(browser);
  await page.context().addInitScript(recordProgress);
  await login(page, p.base, p.user, p.password);
  await open(page, `${p.base}/publish`);

  const f = 'form#publish';
  const options = await page.evaluate((f) => {
    const q = (s) => document.querySelector(`${f} details#options ${s}`);
    return {
      details: !!document.querySelector(`${f} details#options`),
      pieceSizes: [...document.querySelectorAll(`${f} details#options select[name=piece_size] option`)]
        .map((o) => o.value),
      private: !!q('input[name=private][type=checkbox]'),
      trackers: q('textarea[name=trackers]') ? q('textarea[name=trackers]').value : null,
    };
  }, f);
  await page.setInputFiles(`${f} input#file[type=file][name=file]`, p.file);
  await page.fill(`${f} input[name=name]`, p.name);
  await page.fill(`${f} textarea[name=description]`, p.description);
  if (p.piece_size) {
    await page.click(`${f} details#options > summary`);
    await page.selectOption(`${f} details#options select[name=piece_size]`, p.piece_size);
  }
  if (p.upload_rate) {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: p.upload_rate,
    });
  }
  await page.click(submitButton(f));
  await page.waitForURL(/\/t\/[0-9a-f]{40}$/, { timeout: (p.wait ?? 60) * 1000 });
  await page.waitForLoadState('load');

  const magnet = page.locator('input#magnet');
  return {
    url: page.url(),
    hex: page.url().slice(-40),
    h1: await text(page, 'h1'),
    magnet: await magnet.inputValue(),
    magnetReadonly: (await magnet.getAttribute('readonly')) !== null,
    seen: await page.evaluate(() => JSON.parse(sessionStorage.getItem('evert-seen') || '{}')),
    options,
    dialogs: page.evert.dialogs,
    errors: page.evert.errors,
  };
});
