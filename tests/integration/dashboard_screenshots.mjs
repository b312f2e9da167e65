// The README's dashboard pictures, taken on Fashion-MNIST: starts a qvec
// server on a fresh data directory, loads N training images (784 pixels,
// Euclid; payload: the garment's name and class number) into the collection
// "fashion-mnist" with an IVF index, then photographs every page with
// Debian's chromium, and the map as t-SNE coloured by IVF list and by the
// garment label. `make dashboard-screenshots` runs it and writes docs/dashboard/.
// Usage: node dashboard_screenshots.mjs QVEC_BINARY OUT_DIR [N]
import puppeteer from 'puppeteer-core';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

const [binary, out, nArg] = process.argv.slice(2);
const n = Number(nArg ?? 10000);
const dataDir = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';
const port = Number(process.env.QVEC_SHOTS_PORT ?? 6398);
const url = `http://127.0.0.1:${port}`;
const garments = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
mkdirSync(out, { recursive: true });

function readIdx(file) {
  const bytes = gunzipSync(readFileSync(join(dataDir, file)));
  const dims = bytes[3];
  const shape = [];
  for (let i = 0; i < dims; ++i) shape.push(bytes.readUInt32BE(4 + 4 * i));
  return { shape, data: bytes.subarray(4 + 4 * dims) };
}
const images = readIdx('train-images-idx3-ubyte.gz');
const labels = readIdx('train-labels-idx1-ubyte.gz');
const dim = images.shape[1] * images.shape[2];

const work = mkdtempSync(join(tmpdir(), 'qvec-shots-'));
const server = spawn(binary, ['serve', '--data', join(work, 'data'), '--port', String(port), '--log-level', 'warn'], { stdio: 'inherit' });
async function call(method, path, body) {
  const res = await fetch(url + path, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json)}`);
  return json.result;
}
try {
  for (let t = 0; ; ++t) {
    try { await call('GET', '/collections'); break; } catch (e) { if (t > 100) throw e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  await call('PUT', '/collections/fashion-mnist', { vectors: { size: dim, distance: 'Euclid' }, qvec: { index: { ivf_threshold: 2000, nlist: 64 } } });
  for (let start = 0; start < n; start += 500) {
    const points = [];
    for (let i = start; i < Math.min(n, start + 500); ++i) {
      const label = labels.data[i];
      points.push({ id: i, vector: Array.from(images.data.subarray(i * dim, (i + 1) * dim)), payload: { garment: garments[label], class: label } });
    }
    await call('PUT', '/collections/fashion-mnist/points?wait=true', { points });
  }
  for (let t = 0; ; ++t) {
    const info = await call('GET', '/collections/fashion-mnist');
    if (info.qvec.index.state === 'ivf' && !info.qvec.index.rebuild_pending && info.status === 'green') break;
    if (t > 3000) throw new Error('the IVF index was not built within 5 minutes');
    await new Promise((r) => setTimeout(r, 100));
  }
  await call('PUT', '/collections/empty', { vectors: { size: 4, distance: 'Dot' } });

  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    const shot = async (name) => page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
    const c = `${url}/dashboard#/c/fashion-mnist`;
    await page.goto(`${url}/dashboard`, { waitUntil: 'networkidle0' });
    await shot('collections');
    await page.goto(c, { waitUntil: 'networkidle0' });
    await page.waitForSelector('#points-count');
    await new Promise((r) => setTimeout(r, 1000));  // the charts' first frame
    await shot('overview');
    await page.goto(`${c}/points`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('#points-table');
    await shot('points');
    await page.goto(`${c}/search`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('#query');
    await page.$eval('#query', (e) => { e.value = '42'; });
    await page.click('#run');
    await page.waitForSelector('#hits');
    await shot('search');
    await page.goto(`${c}/snapshots`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('#create');
    await page.click('#create');
    await page.waitForSelector('#snapshots');
    await shot('snapshots');
    await page.goto(`${c}/map`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('#map-run');
    await page.$eval('#map-n', (e) => { e.value = '5000'; });
    const t0 = Date.now();
    await page.click('#map-run');
    await page.waitForFunction(() => document.querySelector('#map')?.dataset.done === '1', { timeout: 600000 });
    console.log(`dashboard-screenshots: 5000-point t-SNE map of Fashion-MNIST in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await shot('map-by-ivf-list');
    await page.select('#map-colour', 'garment');
    await shot('map-by-garment');
    await page.setViewport({ width: 480, height: 800 });
    await page.goto(c, { waitUntil: 'networkidle0' });
    await page.waitForSelector('#points-count');
    await shot('narrow');
  } finally {
    await browser.close();
  }
  console.log(`dashboard-screenshots: written to ${out}`);
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.on('exit', r));
  rmSync(work, { recursive: true, force: true });
}
