// PNGs of the web pages at 1280x800 for docs/screenshots/: login (logged out), then, logged
// in as an admin, the index, a torrent page, publish and admin. Run by scripts/screenshots,
// which starts a daemon with a few published torrents first.
//
// Parameters: base, user, password (an admin), hex (the torrent page to show), out (folder).
// Result: files (the PNGs written).
import { join } from 'node:path';

import { login, newPage, open, run } from './lib.mjs';

await run(async (browser, p) => {
  const files = [];
  const shot = async (page, name) => {
    // Fonts and images are in before the picture is taken.
    await page.waitForLoadState('networkidle');
    const path = join(p.out, `${name}.png`);
    await page.screenshot({ path, fullPage: false });
    files.push(path);
  };

  const visitor = await newPage(browser);
  await open(visitor, `${p.base}/login`);
  await shot(visitor, 'login');

  const page = await newPage(browser);
  await login(page, p.base, p.user, p.password);
  for (const [name, path] of [['index', '/'], ['torrent', `/t/${p.hex}`], ['publish', '/publish'],
                              ['admin', '/admin']]) {
    await open(page, p.base + path);
    await shot(page, name);
  }
  return { files, dialogs: page.evert.dialogs, errors: [...visitor.evert.errors, ...page.evert.errors] };
});
