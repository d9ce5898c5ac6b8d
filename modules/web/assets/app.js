// Evertorrent's pages work without this script; it adds the copy button, drag and drop, and
// the publish page's upload with progress (upload, then the daemon's hashing, then the torrent
// page).
'use strict';

for (const b of document.querySelectorAll('button[data-copy]')) {
  b.addEventListener('click', async () => {
    const input = document.getElementById(b.dataset.copy);
    try {
      await navigator.clipboard.writeText(input.value);
    } catch (e) {
      input.select();
      document.execCommand('copy');
    }
    b.textContent = 'Copied';
    setTimeout(() => { b.textContent = 'Copy'; }, 1500);
  });
}

// The torrent page's swarm counts, kept live (every 10 s while the page is shown).
const swarm = document.getElementById('swarm');
if (swarm && swarm.dataset.hash) {
  const refresh = async () => {
    if (document.hidden) return;
    try {
      const r = await fetch('/api/v1/torrent?id=' + swarm.dataset.hash, { headers: { Accept: 'application/json' } });
      if (!r.ok) return;
      const t = await r.json();
      for (const k of ['seeders', 'leechers', 'completed']) {
        if (typeof t[k] === 'number') document.getElementById(k).textContent = String(t[k]);
      }
    } catch (e) {
      // offline for a moment: the next round tries again
    }
  };
  setInterval(refresh, 10000);
}

const form = document.getElementById('publish');
if (form) {
  const fileInput = document.getElementById('file');
  const folderInput = document.getElementById('folder');
  const drop = document.getElementById('drop');
  const nameInput = form.elements.name;
  const max = Number(form.dataset.max || 0);
  let dropped = null;  // files dropped on the page

  const chosen = () => {
    if (dropped) return dropped;
    if (folderInput.files.length) return Array.from(folderInput.files);
    return Array.from(fileInput.files);
  };
  const suggestName = () => {
    const files = chosen();
    if (!files.length || nameInput.value) return;
    const rel = files[0].webkitRelativePath || '';
    nameInput.placeholder = rel ? rel.split('/')[0] : files[0].name;
  };
  fileInput.addEventListener('change', () => { dropped = null; folderInput.value = ''; suggestName(); });
  folderInput.addEventListener('change', () => { dropped = null; fileInput.value = ''; suggestName(); });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer.files.length) {
      dropped = Array.from(e.dataTransfer.files).slice(0, 1);
      drop.querySelector('.hint').textContent = dropped[0].name;
      suggestName();
    }
  });

  const show = (id, fraction, text) => {
    document.getElementById(id).value = Math.round(fraction * 100);
    document.getElementById(id.replace('progress', 'text')).textContent = text;
  };
  const fail = (message) => {
    const p = document.getElementById('publish-error');
    p.textContent = message;
    p.hidden = false;
    form.querySelector('button[type=submit]').disabled = false;
  };
  const mib = (n) => (n / 1048576).toFixed(1) + ' MiB';

  const follow = async (job) => {
    for (;;) {
      const r = await fetch('/job/' + job + '?format=json', { headers: { Accept: 'application/json' } });
      const j = await r.json();
      if (j.state === 'done') {
        show('hash-progress', 1, 'done');
        location.href = '/t/' + j.info_hash;
        return;
      }
      if (j.state === 'failed' || j.state === 'cancelled' || j.error) {
        fail('Publishing failed: ' + (j.error || j.state));
        return;
      }
      const total = j.total || 0;
      show('hash-progress', total ? j.done / total : 0, (j.phase || '') + ' ' + mib(j.done || 0) + ' of ' + mib(total));
      await new Promise((ok) => setTimeout(ok, 300));
    }
  };

  form.addEventListener('submit', (e) => {
    const files = chosen();
    if (!files.length) return;  // the server says what is missing
    e.preventDefault();
    const size = files.reduce((n, f) => n + f.size, 0);
    if (max && size > max) {
      fail('Too large: ' + mib(size) + ' (at most ' + mib(max) + ')');
      return;
    }
    const data = new FormData();
    data.append('csrf', form.elements.csrf.value);
    for (const k of ['name', 'description', 'piece_size', 'trackers']) data.append(k, form.elements[k].value);
    if (form.elements.private.checked) data.append('private', '1');
    for (const f of files) data.append('file', f, f.webkitRelativePath || f.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', form.getAttribute('action'));
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('X-CSRF-Token', form.elements.csrf.value);
    document.getElementById('progress').hidden = false;
    document.getElementById('publish-error').hidden = true;
    form.querySelector('button[type=submit]').disabled = true;
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) show('upload-progress', ev.loaded / ev.total, mib(ev.loaded) + ' of ' + mib(ev.total));
    };
    xhr.onload = () => {
      let j = {};
      try { j = JSON.parse(xhr.responseText); } catch (err) { j = { error: { message: xhr.responseText } }; }
      if (xhr.status >= 400 || !j.job) {
        fail((j.error && j.error.message) || ('HTTP ' + xhr.status));
        return;
      }
      show('upload-progress', 1, 'uploaded');
      follow(j.job).catch((err) => fail(String(err)));
    };
    xhr.onerror = () => fail('The upload was interrupted.');
    xhr.send(data);
  });
}
