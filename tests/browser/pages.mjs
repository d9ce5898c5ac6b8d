// Reads what the index and a torrent page show, as a visitor sees them (logged in or not, with
// or without JavaScript), for the test to compare with what the daemon knows.
//
// Parameters: base, hex (the torrent page to read: /t/<hex>), javascript (default true),
// user and password (log in first when given), search (a text to search for with form#search),
// copy (press button#copy-magnet and read the clipboard; needs javascript).
// Result:
//   index {rows: [{name, href, size, files, seeders, leechers, completed, datetime,
//          torrentFile, magnet, download}] (hrefs absolute), search, next, prev, loggedIn}
//   searched {url, rows: [names]} (with search)
//   torrent {title, h1, description, descriptionHtml, files: [[cell texts]], infohashV1,
//            infohashV2, magnet, magnetReadonly, copyButton, qr, trackers: [texts],
//            webseed: [hrefs], seeders, leechers, completed}
//   copied (with copy: the clipboard's text after the button was pressed)
//   dialogs, errors (of every page shown)
import { login, newPage, open, run } from './lib.mjs';

function readIndex() {
  const t = (row, s) => {
    const el = row.querySelector(s);
    return el ? el.textContent.trim() : null;
  };
  const href = (row, s) => {
    const el = row.querySelector(s);
    return el ? el.href : null;
  };
  return {
    rows: [...document.querySelectorAll('table#torrents tr.torrent')].map((row) => ({
      name: t(row, 'a.name'),
      href: href(row, 'a.name'),
      size: t(row, 'td.size'),
      files: t(row, 'td.files'),
      seeders: t(row, 'td.seeders'),
      leechers: t(row, 'td.leechers'),
      completed: t(row, 'td.completed'),
      datetime: row.querySelector('time') ? row.querySelector('time').getAttribute('datetime') : null,
      torrentFile: href(row, 'a.torrent-file'),
      magnet: row.querySelector('a.magnet') ? row.querySelector('a.magnet').getAttribute('href') : null,
      download: href(row, 'a.download'),
    })),
    search: !!document.querySelector('form#search input[name=q]'),
    next: document.querySelector('a#next') ? document.querySelector('a#next').href : null,
    prev: document.querySelector('a#prev') ? document.querySelector('a#prev').href : null,
    loggedIn: !!document.querySelector('form#logout'),
  };
}

function readTorrent() {
  const one = (s) => document.querySelector(s);
  const t = (s) => (one(s) ? one(s).textContent.trim() : null);
  const magnet = one('input#magnet');
  return {
    title: document.title,
    h1: t('h1'),
    description: t('#description'),
    descriptionHtml: one('#description') ? one('#description').innerHTML : null,
    files: [...document.querySelectorAll('table#files tr')]
      .filter((tr) => tr.querySelector('td'))
      .map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())),
    infohashV1: t('#infohash-v1'),
    infohashV2: t('#infohash-v2'),
    magnet: magnet ? magnet.value : null,
    magnetReadonly: magnet ? magnet.readOnly : null,
    copyButton: !!one('button#copy-magnet'),
    qr: !!one('#qr svg'),
    trackers: [...document.querySelectorAll('ul#trackers li')].map((li) => li.textContent.trim()),
    webseed: [...document.querySelectorAll('#webseed a')].map((a) => a.href),
    seeders: t('#seeders'),
    leechers: t('#leechers'),
    completed: t('#completed'),
  };
}

await run(async (browser, p) => {
  const javascript = p.javascript ?? true;
  const page = await newPage(browser, { javaScriptEnabled: javascript });
  if (p.user) await login(page, p.base, p.user, p.password);
  const result = {};

  await open(page, `${p.base}/`);
  result.index = await page.evaluate(readIndex);

  if (p.search !== undefined) {
    await page.fill('form#search input[name=q]', p.search);
    // A search form is sent with Enter like any other (without JavaScript too).
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }),
                       page.press('form#search input[name=q]', 'Enter')]);
    result.searched = { url: page.url(), rows: (await page.evaluate(readIndex)).rows.map((r) => r.name) };
  }

  if (p.hex) {
    if (p.copy) {
      await page.context().grantPermissions(['clipboard-read', 'clipboard-write'],
                                            { origin: p.base });
    }
    await open(page, `${p.base}/t/${p.hex}`);
    result.torrent = await page.evaluate(readTorrent);
    if (p.copy) {
      await page.click('button#copy-magnet');
      // The copy may finish after the click returns (navigator.clipboard is asynchronous).
      for (let tries = 0; tries < 50 && !result.copied; tries += 1) {
        result.copied = await page.evaluate(() => navigator.clipboard.readText());
        if (!result.copied) await page.waitForTimeout(100);
      }
    }
  }
  return { ...result, dialogs: page.evert.dialogs, errors: page.evert.errors };
});
