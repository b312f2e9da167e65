// qvec's dashboard: a single page over the public REST API only (the same
// calls Qdrant's clients make), so it doubles as a proof of that API.
// Routes (location hash): #/ collections, #/c/NAME[/points|/search|/snapshots].
import {
  Chart, LineController, LineElement, PointElement, LinearScale, CategoryScale, BarController,
  BarElement, Tooltip, Legend,
} from 'chart.js';

import { embed } from './embed.js';

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale,
  BarController, BarElement, Tooltip, Legend);

const main = document.getElementById('main');
const crumbs = document.getElementById('crumbs');
const keyStore = 'qvec.apiKey';
let charts = [];

// ---- API ----

class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = {};
  const key = localStorage.getItem(keyStore);
  if (key) headers['api-key'] = key;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError('The qvec server does not answer. Start it (make run) and reload this page.', 0);
  }
  if (res.status === 401 || res.status === 403) {
    throw new ApiError('The server refused the API key. Set the right one with the "API key" button.', res.status);
  }
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  if (!res.ok) {
    const why = json?.status?.error ?? text ?? res.statusText;
    throw new ApiError(`${method} ${path}: ${res.status} ${why}`, res.status);
  }
  return json?.result ?? json;
}

// ---- helpers ----

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const enc = encodeURIComponent;
const num = (x, digits = 0) => (x === undefined || x === null ? '–' : Number(x).toLocaleString('en-US', { maximumFractionDigits: digits }));
function bytes(n) {
  if (n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; ++i; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
function view(html) {
  for (const c of charts) c.destroy();
  charts = [];
  main.innerHTML = html;
}
function showError(e) {
  view(`<div class="error" id="error">${esc(e.message)}</div>`);
}
function setCrumbs(parts) {
  crumbs.innerHTML = parts.map(([label, href]) => `<a href="${href}">${esc(label)}</a>`).join('');
}
// The dense fields of a collection's config: {"": params} or named.
function denseFields(params) {
  const v = params.vectors ?? {};
  if (v.size !== undefined) return { '': v };
  return v;
}
function stateOf(index) {
  if (!index) return '<span class="pill">–</span>';
  const cls = index.state === 'training' || index.rebuild_pending ? 'warn' : 'ok';
  const label = index.rebuild_pending ? `${index.state}, rebuild pending` : index.state;
  return `<span class="pill ${cls}">${esc(label)}${index.kind ? ` (${esc(index.kind)})` : ''}</span>`;
}

// ---- pages ----

async function collectionsPage() {
  setCrumbs([]);
  const list = await api('GET', '/collections');
  const names = list.collections.map((c) => c.name).sort();
  if (names.length === 0) {
    view(`<h1>Collections</h1><div class="empty" id="empty">No collections yet. Create one with
      <code>PUT /collections/{name}</code> (see the README), then reload.</div>`);
    return;
  }
  const infos = await Promise.all(names.map((n) => api('GET', `/collections/${enc(n)}`).catch((e) => ({ error: e.message }))));
  view(`<h1>Collections</h1><div class="cards" id="collections">${names.map((n, i) => {
    const info = infos[i];
    if (info.error) return `<div class="card"><b>${esc(n)}</b><div class="error">${esc(info.error)}</div></div>`;
    const fields = Object.keys(denseFields(info.config.params)).length;
    const sparse = Object.keys(info.config.params.sparse_vectors ?? {}).length;
    return `<div class="card collection" data-name="${esc(n)}">
      <a class="title" href="#/c/${enc(n)}">${esc(n)}</a>
      <table>
        <tr><th>points</th><td class="num points">${num(info.points_count)}</td></tr>
        <tr><th>vector fields</th><td class="num">${fields}${sparse ? ` + ${sparse} sparse` : ''}</td></tr>
        <tr><th>index</th><td>${stateOf(info.qvec?.index)}</td></tr>
        <tr><th>memory</th><td class="num">${bytes(info.qvec?.memory_bytes)}</td></tr>
        <tr><th>status</th><td><span class="pill ${info.status === 'green' ? 'ok' : 'warn'}">${esc(info.status)}</span></td></tr>
      </table></div>`;
  }).join('')}</div>`);
}

function tabs(name, active) {
  const t = [['overview', ''], ['map', '/map'], ['points', '/points'], ['search', '/search'], ['snapshots', '/snapshots']];
  return `<h1>${esc(name)}</h1><div class="tabs">${t.map(([label, suffix]) =>
    `<a href="#/c/${enc(name)}${suffix}" class="${label === active ? 'active' : ''}">${label}</a>`).join('')}</div>`;
}

function fieldFigures(name, figures) {
  const ix = figures.index ?? {};
  const q = figures.quality ?? {};
  const list = ix.nlist ? `<tr><th>IVF lists</th><td class="num">${num(ix.nlist)}</td></tr>
    <tr><th>list size min / median / max</th><td class="num">${num(ix.list_min)} / ${num(ix.list_median)} / ${num(ix.list_max)}</td></tr>
    <tr><th>imbalance</th><td class="num">${num(ix.imbalance, 3)}</td></tr>
    <tr><th>k-means objective</th><td class="num">${num(ix.kmeans_objective, 4)}</td></tr>
    <tr><th>trained on</th><td class="num">${num(ix.trained_on_points)} points in ${num(ix.training_seconds, 2)} s</td></tr>` : '';
  const building = ix.state === 'training' || ix.rebuild_pending
    ? '<div class="bar" id="build-progress"><span style="width:50%"></span></div><p class="muted">An index build runs in the background; searches use the current index meanwhile.</p>' : '';
  return `<div class="card field" data-field="${esc(name)}"><h2>${name === '' ? 'vector' : `vector “${esc(name)}”`} ${stateOf(ix)}</h2>
    ${building}
    <table>
      <tr><th>vectors</th><td class="num">${num(figures.vectors_count)}</td></tr>
      ${list}
      <tr><th>quality sample</th><td class="num">${num(q.sample_size)} vectors</td></tr>
      <tr><th>int8 MSE</th><td class="num quality-mse">${num(q.mse, 8)}</td></tr>
      <tr><th>SQNR</th><td class="num quality-sqnr">${num(q.sqnr_db, 2)} dB</td></tr>
      <tr><th>score error (mean / max)</th><td class="num">${num(q.score_mean_abs_error, 6)} / ${num(q.score_max_abs_error, 6)}</td></tr>
      <tr><th>default oversampling</th><td class="num">${ix.rescore_curve?.length ? num(ix.default_oversampling, 2) : `${num(ix.default_oversampling, 2)} (not measured yet)`}</td></tr>
      <tr><th>expected recall@10 (default search)</th><td class="num estimated-recall">${ix.estimated_recall == null ? '–' : num(ix.estimated_recall, 3)}</td></tr>
      ${(ix.rescore_curve ?? []).length ? `<tr><th>recall after rescoring at oversampling</th><td class="num">${ix.rescore_curve.map((p) => `${num(p.oversampling, 2)}×: ${num(p.recall_at_10, 3)}`).join(' · ')}</td></tr>` : ''}
      ${ix.last_error ? `<tr><th>last build error</th><td class="error">${esc(ix.last_error)}</td></tr>` : ''}
    </table>
    ${(ix.recall_curve ?? []).length ? `<h2 style="margin-top:12px">nprobe → recall@10</h2><canvas class="recall" data-field="${esc(name)}" height="160"></canvas>` : ''}
  </div>`;
}

async function overviewPage(name) {
  const info = await api('GET', `/collections/${enc(name)}`);
  const params = info.config.params;
  const dense = denseFields(params);
  const figures = params.vectors?.size !== undefined
    ? { '': { ...info.qvec, vectors_count: info.indexed_vectors_count } } : (info.qvec?.vectors ?? {});
  const sparse = info.qvec?.sparse_vectors ?? {};
  const schema = Object.entries(info.payload_schema ?? {});
  view(`${tabs(name, 'overview')}
    <div class="grid2">
      <div class="card"><h2>Collection</h2><table>
        <tr><th>points</th><td class="num" id="points-count">${num(info.points_count)}</td></tr>
        <tr><th>status</th><td>${esc(info.status)}</td></tr>
        <tr><th>memory</th><td class="num">${bytes(info.qvec?.memory_bytes)}</td></tr>
        <tr><th>disk (database)</th><td class="num">${bytes(info.qvec?.disk_bytes)}</td></tr>
        <tr><th>SIMD kernels</th><td>${esc(info.qvec?.simd ?? '–')}</td></tr>
        <tr><th>quarantined points</th><td class="num">${num(info.qvec?.quarantined_points)}</td></tr>
      </table>
      <h2 style="margin-top:12px">Vector fields</h2><table><tr><th>name</th><th>size</th><th>distance</th></tr>
        ${Object.entries(dense).map(([n, p]) => `<tr><td>${esc(n || '(unnamed)')}</td><td class="num">${p.size}</td><td>${esc(p.distance)}</td></tr>`).join('')}
        ${Object.entries(params.sparse_vectors ?? {}).map(([n, p]) => `<tr><td>${esc(n)}</td><td class="num">sparse (${num(sparse[n]?.vectors_count)} vectors, ${num(sparse[n]?.entries)} entries)</td><td>dot${p.modifier === 'idf' ? ', idf' : ''}</td></tr>`).join('')}
      </table>
      <h2 style="margin-top:12px">Payload indexes</h2>
      ${schema.length ? `<table>${schema.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v.data_type)}</td><td class="num">${num(v.points)} points</td></tr>`).join('')}</table>` : '<p class="muted">None.</p>'}
      </div>
      <div class="card"><h2>Config</h2><pre>${esc(JSON.stringify(info.config, null, 2))}</pre></div>
    </div>
    <div class="grid2" style="margin-top:14px">${Object.entries(figures).map(([n, f]) => fieldFigures(n, f)).join('')}</div>`);
  for (const canvas of main.querySelectorAll('canvas.recall')) {
    const f = figures[canvas.dataset.field];
    const curve = f.index.recall_curve;
    charts.push(new Chart(canvas, {
      type: 'line',
      data: { labels: curve.map((p) => p.nprobe), datasets: [{ label: 'recall@10', data: curve.map((p) => p.recall_at_10), borderColor: '#3b5bdb', tension: 0.2 }] },
      options: {
        animation: false,
        scales: { x: { title: { display: true, text: 'nprobe (lists probed)' } }, y: { min: 0, max: 1, title: { display: true, text: 'recall@10' } } },
        plugins: { legend: { display: false } },
      },
    }));
  }
}

async function pointsPage(name, state = {}) {
  const offsets = state.offsets ?? [null];
  const page = state.page ?? 0;
  const filterText = state.filter ?? '';
  let filter;
  view(`${tabs(name, 'points')}<div class="card">
    <div class="row"><label>Filter (JSON, as in Qdrant)</label></div>
    <textarea id="filter" placeholder='{"must": [{"key": "city", "match": {"value": "London"}}]}'>${esc(filterText)}</textarea>
    <div class="row"><button id="apply">Apply</button><span class="muted" id="page-info"></span></div>
    <div id="points"><p class="muted">Loading…</p></div>
    <div class="row"><button class="secondary" id="prev">Previous</button><button class="secondary" id="next">Next</button></div></div>`);
  document.getElementById('apply').onclick = () => pointsPage(name, { filter: document.getElementById('filter').value });
  const out = document.getElementById('points');
  try {
    filter = filterText.trim() ? JSON.parse(filterText) : undefined;
  } catch (e) {
    out.innerHTML = `<div class="error">The filter is not valid JSON: ${esc(e.message)}</div>`;
    return;
  }
  try {
    const body = { limit: 20, with_payload: true, with_vector: true };
    if (filter) body.filter = filter;
    if (offsets[page] !== null) body.offset = offsets[page];
    const res = await api('POST', `/collections/${enc(name)}/points/scroll`, body);
    document.getElementById('page-info').textContent = `page ${page + 1}`;
    if (res.points.length === 0) {
      out.innerHTML = '<div class="empty">No points here.</div>';
    } else {
      out.innerHTML = `<table id="points-table"><tr><th>id</th><th>payload</th><th>vector</th></tr>${res.points.map((p) =>
        `<tr><td>${esc(p.id)}</td><td><pre>${esc(JSON.stringify(p.payload))}</pre></td><td><pre>${esc(JSON.stringify(p.vector).slice(0, 300))}</pre></td></tr>`).join('')}</table>`;
    }
    const next = document.getElementById('next');
    next.disabled = res.next_page_offset === null || res.next_page_offset === undefined;
    next.onclick = () => pointsPage(name, { filter: filterText, page: page + 1, offsets: [...offsets.slice(0, page + 1), res.next_page_offset] });
    const prev = document.getElementById('prev');
    prev.disabled = page === 0;
    prev.onclick = () => pointsPage(name, { filter: filterText, page: page - 1, offsets });
  } catch (e) {
    out.innerHTML = `<div class="error">${esc(e.message)}</div>`;
  }
}

async function searchPage(name) {
  const info = await api('GET', `/collections/${enc(name)}`);
  const fields = [...Object.keys(denseFields(info.config.params)), ...Object.keys(info.config.params.sparse_vectors ?? {})];
  view(`${tabs(name, 'search')}<div class="card">
    <div class="row"><label>Query: a vector (JSON array), a sparse vector ({"indices": [...], "values": [...]}) or a point id</label></div>
    <textarea id="query" placeholder="[0.1, 0.2, ...] or 42"></textarea>
    <div class="row">
      ${fields.length > 1 || fields[0] !== '' ? `<label>using <select id="using">${fields.map((f) => `<option>${esc(f)}</option>`).join('')}</select></label>` : ''}
      <label>limit <input id="limit" type="number" value="10" min="1" max="10000" style="width:80px"></label>
      <label><input id="exact" type="checkbox"> exact</label>
      <label>nprobe <input id="nprobe" type="number" min="0" style="width:80px"></label>
      <label>target recall <input id="target" type="number" step="0.01" min="0" max="1" style="width:80px"></label>
      <label><input id="rescore" type="checkbox" checked> rescore</label>
      <label>oversampling <input id="oversampling" type="number" step="0.5" min="1" placeholder="auto" title="empty: the field's default, from its measured rescore curve" style="width:70px"></label>
      <button id="run">Search</button>
    </div><div id="results"></div></div>`);
  document.getElementById('run').onclick = async () => {
    const out = document.getElementById('results');
    let query;
    try {
      query = JSON.parse(document.getElementById('query').value);
    } catch (e) {
      out.innerHTML = `<div class="error">The query is not valid JSON: ${esc(e.message)}</div>`;
      return;
    }
    // An empty oversampling is left out: the server then uses the field's
    // default (from its rescore curve), as a client sending none would.
    const over = document.getElementById('oversampling').value.trim();
    const quantization = { rescore: document.getElementById('rescore').checked };
    if (over !== '') quantization.oversampling = Number(over);
    const params = { exact: document.getElementById('exact').checked, quantization };
    const nprobe = document.getElementById('nprobe').value;
    const target = document.getElementById('target').value;
    if (nprobe) params.nprobe = Number(nprobe);
    if (target) params.target_recall = Number(target);
    const body = { query, limit: Number(document.getElementById('limit').value) || 10, with_payload: true, params };
    const using = document.getElementById('using');
    if (using) body.using = using.value;
    const start = performance.now();
    try {
      const res = await api('POST', `/collections/${enc(name)}/points/query`, body);
      const ms = performance.now() - start;
      out.innerHTML = `<p class="muted" id="took">${res.points.length} results in ${ms.toFixed(1)} ms (round trip)</p>
        <table id="hits"><tr><th>#</th><th>id</th><th>score</th><th>payload</th></tr>${res.points.map((p, i) =>
          `<tr><td>${i + 1}</td><td class="hit-id">${esc(p.id)}</td><td class="num">${p.score.toFixed(6)}</td><td><pre>${esc(JSON.stringify(p.payload))}</pre></td></tr>`).join('')}</table>`;
    } catch (e) {
      out.innerHTML = `<div class="error">${esc(e.message)}</div>`;
    }
  };
}

const palette = ['#3b5bdb', '#e8590c', '#2b8a3e', '#c2255c', '#5f3dc4', '#0b7285', '#f08c00', '#862e9c',
  '#1864ab', '#a61e4d', '#5c940d', '#d9480f', '#364fc7', '#087f5b', '#e67700', '#9c36b5'];

async function mapPage(name) {
  const info = await api('GET', `/collections/${enc(name)}`);
  const fields = Object.keys(denseFields(info.config.params));
  if (fields.length === 0) {
    view(`${tabs(name, 'map')}<div class="empty">This collection has sparse vectors only: there is no dense space to map.</div>`);
    return;
  }
  view(`${tabs(name, 'map')}<div class="card">
    <div class="row">
      ${fields.length > 1 || fields[0] !== '' ? `<label>field <select id="map-field">${fields.map((f) => `<option>${esc(f)}</option>`).join('')}</select></label>` : ''}
      <label>points <input id="map-n" type="number" value="1000" min="10" max="5000" style="width:90px"></label>
      <label>method <select id="map-method"><option value="tsne">t-SNE</option><option value="umap">UMAP</option><option value="pca">PCA</option></select></label>
      <label>colour by <select id="map-colour"><option value="list">IVF list</option></select></label>
      <button id="map-run">Draw</button>
      <span class="muted" id="map-status"></span>
    </div>
    <div class="bar" id="map-progress" style="display:none"><span style="width:0%"></span></div>
    <div style="position:relative"><canvas id="map" width="1200" height="720" style="width:100%;border:1px solid var(--line);border-radius:6px;background:#fff"></canvas>
      <div id="map-tip" class="card" style="position:absolute;display:none;pointer-events:none;max-width:360px;font-size:12px"></div></div>
    <div id="map-legend" class="legend"></div>
    <div id="map-point"></div>
    <h2 style="margin-top:14px">IVF list sizes</h2><p class="muted" id="hist-note"></p><canvas id="list-hist" height="140"></canvas>
    <h2 style="margin-top:14px">Centroids: hierarchical clustering (average linkage)</h2>
    <p class="muted" id="dendro-note"></p>
    <canvas id="dendrogram" width="1200" height="320" style="width:100%"></canvas>
  </div>`);
  const status = document.getElementById('map-status');
  const progress = document.getElementById('map-progress');
  const canvas = document.getElementById('map');
  const tip = document.getElementById('map-tip');
  let state = null;

  function draw() {
    if (!state) return;
    const { y, n, colours } = state;
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < n; ++i) {
      x0 = Math.min(x0, y[i * 2]); x1 = Math.max(x1, y[i * 2]);
      y0 = Math.min(y0, y[i * 2 + 1]); y1 = Math.max(y1, y[i * 2 + 1]);
    }
    const pad = 20, w = canvas.width - 2 * pad, h = canvas.height - 2 * pad;
    const sx = w / ((x1 - x0) || 1), sy = h / ((y1 - y0) || 1), sc = Math.min(sx, sy);
    state.screen = new Float32Array(n * 2);
    for (let i = 0; i < n; ++i) {
      const px = pad + (y[i * 2] - x0) * sc + (w - (x1 - x0) * sc) / 2;
      const py = pad + (y[i * 2 + 1] - y0) * sc + (h - (y1 - y0) * sc) / 2;
      state.screen[i * 2] = px; state.screen[i * 2 + 1] = py;
      ctx.fillStyle = colours[i];
      ctx.beginPath();
      ctx.arc(px, py, 3, 0, Math.PI * 2);
      ctx.fill();
    }
  }
  function nearest(ev) {
    if (!state?.screen) return -1;
    const r = canvas.getBoundingClientRect();
    const mx = (ev.clientX - r.left) * canvas.width / r.width, my = (ev.clientY - r.top) * canvas.height / r.height;
    let best = -1, bd = 64;
    for (let i = 0; i < state.n; ++i) {
      const dx = state.screen[i * 2] - mx, dy = state.screen[i * 2 + 1] - my;
      if (dx * dx + dy * dy < bd) { bd = dx * dx + dy * dy; best = i; }
    }
    return best;
  }
  canvas.onmousemove = (ev) => {
    const i = nearest(ev);
    if (i < 0) { tip.style.display = 'none'; return; }
    const p = state.points[i];
    tip.innerHTML = `<b>${esc(p.id)}</b> · list ${state.lists[i]}<pre>${esc(JSON.stringify(p.payload))}</pre>`;
    const r = canvas.getBoundingClientRect();
    tip.style.left = `${ev.clientX - r.left + 12}px`;
    tip.style.top = `${ev.clientY - r.top + 12}px`;
    tip.style.display = 'block';
  };
  canvas.onmouseleave = () => { tip.style.display = 'none'; };
  canvas.onclick = async (ev) => {
    const i = nearest(ev);
    if (i < 0) return;
    const p = await api('GET', `/collections/${enc(name)}/points/${enc(state.points[i].id)}`);
    document.getElementById('map-point').innerHTML = `<h2 style="margin-top:12px">Point ${esc(p.id)}</h2><pre>${esc(JSON.stringify(p, null, 2))}</pre>`;
  };
  document.getElementById('map-colour').onchange = () => {
    if (!state) return;
    recolour();
    draw();
  };
  function recolour() {
    const by = document.getElementById('map-colour').value;
    const values = new Map();
    state.colours = state.points.map((p, i) => {
      const v = by === 'list' ? state.lists[i] : JSON.stringify(p.payload?.[by] ?? null);
      if (!values.has(v)) values.set(v, palette[values.size % palette.length]);
      return values.get(v);
    });
    // The legend: a colour per value, most frequent first; the palette
    // repeats past its length, so beyond 20 values only the count is shown.
    const counts = new Map();
    state.points.forEach((p, i) => {
      const v = by === 'list' ? state.lists[i] : JSON.stringify(p.payload?.[by] ?? null);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    });
    const legend = document.getElementById('map-legend');
    const entries = [...counts.entries()].sort((a, b) => b[1] - a[1]);
    const label = (v) => (by === 'list' ? `list ${v}` : (() => { try { const j = JSON.parse(v); return typeof j === 'string' ? j : v; } catch { return v; } })());
    legend.innerHTML = entries.length > 20
      ? `<span class="muted">${entries.length} distinct values of ${esc(by === 'list' ? 'the IVF list' : by)}; hover a point to see its own.</span>`
      : entries.map(([v, c]) => `<span class="item"><i style="background:${values.get(v)}"></i>${esc(label(v))} <span class="muted">${c}</span></span>`).join('');
  }

  document.getElementById('map-run').onclick = async () => {
    const fieldSel = document.getElementById('map-field');
    const field = fieldSel ? fieldSel.value : '';
    const want = Math.max(10, Math.min(5000, Number(document.getElementById('map-n').value) || 1000));
    const method = document.getElementById('map-method').value;
    canvas.dataset.done = '0';
    status.textContent = 'Reading a sample…';
    progress.style.display = 'block';
    progress.firstElementChild.style.width = '0%';
    const start = performance.now();
    try {
      // The sample: the first points in id order (scrolled with their vectors).
      const points = [];
      let offset;
      while (points.length < want) {
        const body = { limit: Math.min(1000, want - points.length), with_payload: true, with_vector: field === '' ? true : [field] };
        if (offset !== undefined) body.offset = offset;
        const page = await api('POST', `/collections/${enc(name)}/points/scroll`, body);
        for (const p of page.points) {
          const v = field === '' ? p.vector : p.vector?.[field];
          if (Array.isArray(v)) points.push({ id: p.id, payload: p.payload, v });
        }
        if (page.next_page_offset === null || page.next_page_offset === undefined) break;
        offset = page.next_page_offset;
      }
      if (points.length < 2) {
        status.textContent = '';
        progress.style.display = 'none';
        document.getElementById('map-point').innerHTML = '<div class="empty">Too few points with this vector to draw a map.</div>';
        return;
      }
      const lists = await api('POST', `/collections/${enc(name)}/qvec/lists`, { using: field, ids: points.map((p) => p.id) });
      const n = points.length, d = points[0].v.length;
      const x = new Float32Array(n * d);
      points.forEach((p, i) => x.set(p.v, i * d));
      const colour = document.getElementById('map-colour');
      const keys = new Set();
      for (const p of points.slice(0, 50)) for (const k of Object.keys(p.payload ?? {})) keys.add(k);
      colour.innerHTML = '<option value="list">IVF list</option>' + [...keys].map((k) => `<option>${esc(k)}</option>`).join('');
      state = { n, points, lists: lists.lists, y: null };
      recolour();
      const y = await embed(x, n, d, method, (m) => {
        progress.firstElementChild.style.width = `${Math.round(100 * m.progress)}%`;
        status.textContent = `${m.stage}… ${Math.round(100 * m.progress)} %`;
        if (m.y) { state.y = m.y; draw(); }
      });
      state.y = y;
      draw();
      progress.firstElementChild.style.width = '100%';
      status.textContent = `${n} points, ${{ tsne: 't-SNE', umap: 'UMAP', pca: 'PCA' }[method]}, ${((performance.now() - start) / 1000).toFixed(1)} s`;
      canvas.dataset.points = String(n);
      await centroidTree(name, field).catch((e) => { document.getElementById('dendro-note').textContent = e.message; });
      canvas.dataset.done = '1';
      // Lists: how many lists hold how many vectors.
      const sizes = lists.list_sizes;
      document.getElementById('hist-note').textContent = sizes.length <= 1
        ? 'The index is flat: one list holds every vector (IVF starts past the field\'s ivf_threshold points).' : '';
      const max = Math.max(...sizes, 1);
      const bins = Math.min(20, sizes.length);
      const counts = new Array(bins).fill(0);
      for (const sz of sizes) counts[Math.min(bins - 1, Math.floor(sz / max * bins))] += 1;
      for (const c of charts) c.destroy();
      charts = [];
      document.getElementById('list-hist').style.display = sizes.length <= 1 ? 'none' : '';
      if (sizes.length > 1) charts = [new Chart(document.getElementById('list-hist'), {
        type: 'bar',
        data: { labels: counts.map((_, b) => `${Math.round(b * max / bins)}–${Math.round((b + 1) * max / bins)}`), datasets: [{ label: 'lists', data: counts, backgroundColor: '#3b5bdb' }] },
        options: { animation: false, plugins: { legend: { display: false } }, scales: { x: { title: { display: true, text: 'vectors in the list' } }, y: { title: { display: true, text: 'lists' } } } },
      })];
    } catch (e) {
      status.textContent = '';
      document.getElementById('map-point').innerHTML = `<div class="error">${esc(e.message)}</div>`;
    }
  };
}

// Average-linkage agglomerative clustering of m points (m * d floats), by
// Euclidean distance: the merges [a, b, height] in order, clusters m.. being
// the merges' results.
function averageLinkage(x, m, d) {
  const dist = [];
  for (let i = 0; i < m; ++i) {
    dist.push(new Float64Array(m));
    for (let j = 0; j < i; ++j) {
      let s = 0;
      for (let t = 0; t < d; ++t) { const e = x[i * d + t] - x[j * d + t]; s += e * e; }
      dist[i][j] = dist[j][i] = Math.sqrt(s);
    }
  }
  const active = new Map();  // cluster id -> {row, size}
  for (let i = 0; i < m; ++i) active.set(i, { row: i, size: 1 });
  const merges = [];
  let next = m;
  while (active.size > 1) {
    let best = Infinity, ba = -1, bb = -1;
    const ids = [...active.keys()];
    for (let i = 0; i < ids.length; ++i) {
      for (let j = i + 1; j < ids.length; ++j) {
        const v = dist[active.get(ids[i]).row][active.get(ids[j]).row];
        if (v < best) { best = v; ba = ids[i]; bb = ids[j]; }
      }
    }
    const A = active.get(ba), B = active.get(bb);
    // The merged cluster reuses A's row: average of the two, by size.
    for (const [id, C] of active) {
      if (id === ba || id === bb) continue;
      const v = (dist[A.row][C.row] * A.size + dist[B.row][C.row] * B.size) / (A.size + B.size);
      dist[A.row][C.row] = dist[C.row][A.row] = v;
    }
    active.delete(ba);
    active.delete(bb);
    active.set(next, { row: A.row, size: A.size + B.size });
    merges.push([ba, bb, best]);
    ++next;
  }
  return merges;
}

function drawDendrogram(canvas, merges, m, labels) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const children = new Map();
  merges.forEach(([a, b, h], i) => children.set(m + i, [a, b, h]));
  const order = [];
  const walk = (c) => { if (c < m) order.push(c); else { walk(children.get(c)[0]); walk(children.get(c)[1]); } };
  walk(m + merges.length - 1);
  const pad = 30, w = canvas.width - 2 * pad, h = canvas.height - 2 * pad;
  const top = merges.length ? merges[merges.length - 1][2] : 1;
  const pos = new Map();
  order.forEach((leaf, i) => pos.set(leaf, [pad + (i + 0.5) * w / m, pad + h]));
  ctx.strokeStyle = '#3b5bdb';
  ctx.fillStyle = '#6b7385';
  ctx.font = '10px system-ui';
  merges.forEach(([a, b, height], i) => {
    const [ax, ay] = pos.get(a), [bx, by] = pos.get(b);
    const y = pad + h - (height / (top || 1)) * h;
    ctx.beginPath();
    ctx.moveTo(ax, ay); ctx.lineTo(ax, y); ctx.lineTo(bx, y); ctx.lineTo(bx, by);
    ctx.stroke();
    pos.set(m + i, [(ax + bx) / 2, y]);
  });
  if (m <= 64) order.forEach((leaf, i) => ctx.fillText(String(labels[leaf]), pad + (i + 0.5) * w / m - 6, canvas.height - 8));
  ctx.fillText(`height: centroid distance (top ${top.toFixed(3)})`, pad, 14);
}

async function centroidTree(name, field) {
  const note = document.getElementById('dendro-note');
  const canvas = document.getElementById('dendrogram');
  const res = await api('POST', `/collections/${enc(name)}/qvec/lists`, { using: field, with_centroids: true });
  if (!res.centroids || res.centroids.length === 0) {
    note.textContent = 'The index is flat: it has no centroids yet (IVF starts past the field\'s ivf_threshold points).';
    canvas.dataset.leaves = '0';
    return;
  }
  // The 64 largest lists, for a readable tree.
  const order = res.list_sizes.map((sz, i) => [sz, i]).sort((a, b) => b[0] - a[0]).slice(0, 64).map((e) => e[1]);
  const d = res.centroids[0].length, m = order.length;
  const x = new Float64Array(m * d);
  order.forEach((l, i) => x.set(res.centroids[l], i * d));
  const merges = averageLinkage(x, m, d);
  drawDendrogram(canvas, merges, m, order);
  canvas.dataset.leaves = String(m);
  note.textContent = `${m} of ${res.list_sizes.length} lists (the largest), labelled by list number.`;
}

async function snapshotsPage(name) {
  const list = await api('GET', `/collections/${enc(name)}/snapshots`);
  view(`${tabs(name, 'snapshots')}<div class="card">
    <div class="row"><button id="create">Create a snapshot</button><span class="muted" id="snap-status"></span></div>
    ${list.length ? `<table id="snapshots"><tr><th>name</th><th>created</th><th>size</th><th>checksum</th><th></th></tr>${list.map((s) =>
      `<tr><td>${esc(s.name)}</td><td>${esc(s.creation_time ?? '')}</td><td class="num">${bytes(s.size)}</td><td><code>${esc((s.checksum ?? '').slice(0, 16))}…</code></td>
       <td><button class="secondary download" data-snap="${esc(s.name)}">Download</button></td></tr>`).join('')}</table>`
      : '<div class="empty">No snapshots of this collection yet.</div>'}</div>`);
  document.getElementById('create').onclick = async () => {
    document.getElementById('snap-status').textContent = 'Creating…';
    try {
      await api('POST', `/collections/${enc(name)}/snapshots`);
      snapshotsPage(name);
    } catch (e) {
      document.getElementById('snap-status').textContent = e.message;
    }
  };
  for (const b of main.querySelectorAll('button.download')) {
    b.onclick = async () => {
      const headers = {};
      const key = localStorage.getItem(keyStore);
      if (key) headers['api-key'] = key;
      const res = await fetch(`/collections/${enc(name)}/snapshots/${enc(b.dataset.snap)}`, { headers });
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement('a');
      a.href = url;
      a.download = b.dataset.snap;
      a.click();
      URL.revokeObjectURL(url);
    };
  }
}

// ---- routing ----

async function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  try {
    if (parts[0] === 'c' && parts[1]) {
      const name = parts[1];
      setCrumbs([['collections', '#/'], [name, `#/c/${enc(name)}`]]);
      const tab = parts[2] ?? '';
      if (tab === 'points') await pointsPage(name);
      else if (tab === 'map') await mapPage(name);
      else if (tab === 'search') await searchPage(name);
      else if (tab === 'snapshots') await snapshotsPage(name);
      else await overviewPage(name);
    } else {
      await collectionsPage();
    }
  } catch (e) {
    showError(e);
  }
}

document.getElementById('key-button').onclick = () => {
  const current = localStorage.getItem(keyStore) ?? '';
  const key = prompt('API key of this qvec server (empty for none):', current);
  if (key === null) return;
  if (key) localStorage.setItem(keyStore, key); else localStorage.removeItem(keyStore);
  route();
};
window.addEventListener('hashchange', route);
api('GET', '/').then((r) => { document.getElementById('server').textContent = `qvec ${r.qvec_version ?? ''}`; }).catch(() => {});
route();
