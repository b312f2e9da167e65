// Collection and full snapshots through Qdrant's official REST client, and
// raw HTTP where the client has no method (download, multipart upload).
// Exits 1 on any error or wrong answer.
// Usage: node snapshots.mjs http://127.0.0.1:PORT
import { QdrantClient } from '@qdrant/js-client-rest';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

const url = process.argv[2];
const client = new QdrantClient({ url, checkCompatibility: false });
const src = 'snap_src';

// Deterministic vectors (a fixed LCG).
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
const vec = () => Array.from({ length: 8 }, rand);
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

async function expectStatus(promise, status, what) {
  const res = await promise;
  const body = await res.text();
  assert.equal(res.status, status, `${what}: HTTP ${res.status} ${body}`);
  return body;
}

async function searchIds(collection, query) {
  const res = await client.query(collection, { query, limit: 10, with_payload: false });
  return res.points.map((p) => [p.id, Math.round(p.score * 1e5)]);
}

async function main() {
  for (const c of ['snap_src', 'snap_copy', 'snap_up', 'snap_full']) {
    if ((await client.collectionExists(c)).exists) await client.deleteCollection(c);
  }
  await client.createCollection(src, { vectors: { size: 8, distance: 'Cosine' } });
  const points = [];
  for (let i = 0; i < 300; ++i) {
    points.push({ id: i, vector: vec(), payload: { color: ['red', 'green', 'blue'][i % 3], n: i } });
  }
  await client.upsert(src, { wait: true, points });
  await client.createPayloadIndex(src, { field_name: 'color', field_schema: 'keyword', wait: true });
  await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: src, alias_name: 'snap_alias' } }] });
  const query = vec();
  const before = await searchIds(src, query);

  // Create, list, download: the file's SHA-256 is the checksum reported.
  const desc = await client.createSnapshot(src, { wait: true });
  assert.match(desc.name, /^snap_src-.*\.snapshot$/);
  assert.match(desc.checksum, /^[0-9a-f]{64}$/);
  assert.ok(desc.size > 300 * 8 * 4, `size ${desc.size}`);
  const listed = await client.listSnapshots(src);
  assert.deepEqual(listed.map((d) => d.name), [desc.name]);
  assert.equal(listed[0].checksum, desc.checksum);
  const dl = await fetch(`${url}/collections/${src}/snapshots/${desc.name}`);
  assert.equal(dl.status, 200);
  const bytes = Buffer.from(await dl.arrayBuffer());
  assert.equal(bytes.length, desc.size);
  assert.equal(sha256(bytes), desc.checksum);
  // Through the alias too (the alias names the collection's snapshots).
  assert.equal((await client.listSnapshots('snap_alias')).length, 1);

  // Recover from a URL on this machine into a new collection: same points,
  // same search answers, the payload index rebuilt.
  assert.equal(await client.recoverSnapshot('snap_copy', {
    location: `${url}/collections/${src}/snapshots/${desc.name}`, checksum: desc.checksum, priority: 'snapshot',
  }), true);
  assert.equal((await client.count('snap_copy', { exact: true })).count, 300);
  assert.deepEqual(await searchIds('snap_copy', query), before);
  const copyInfo = await client.getCollection('snap_copy');
  assert.equal(copyInfo.payload_schema.color.data_type, 'keyword');
  assert.equal(copyInfo.payload_schema.color.points, 300);
  assert.equal((await client.count('snap_copy', { filter: { must: [{ key: 'color', match: { value: 'red' } }] } })).count, 100);
  // The snapshot holds that collection only.
  assert.equal((await client.listSnapshots('snap_copy')).length, 0);

  // Change the source, then recover it in place through its alias: the
  // snapshot's state comes back, the alias still names it.
  await client.delete(src, { wait: true, points: [0, 1, 2, 3, 4] });
  await client.upsert(src, { wait: true, points: [{ id: 9999, vector: vec() }] });
  assert.equal(await client.recoverSnapshot('snap_alias', {
    location: `http://localhost:${new URL(url).port}/collections/${src}/snapshots/${desc.name}`,
  }), true);
  assert.equal((await client.count(src, { exact: true })).count, 300);
  assert.equal((await client.retrieve(src, { ids: [9999] })).length, 0);
  assert.equal((await client.retrieve(src, { ids: [0] })).length, 1);
  assert.deepEqual(await searchIds('snap_alias', query), before);

  // Upload (multipart, Qdrant's form) with a checksum.
  const form = new FormData();
  form.append('snapshot', new Blob([bytes]), desc.name);
  await expectStatus(fetch(`${url}/collections/snap_up/snapshots/upload?priority=snapshot&checksum=${desc.checksum}`,
    { method: 'POST', body: form }), 200, 'upload');
  assert.deepEqual(await searchIds('snap_up', query), before);

  // Bad input: nothing is created or changed.
  const bad = new FormData();
  bad.append('snapshot', new Blob([bytes.subarray(0, bytes.length - 40)]), 'x.snapshot');
  await expectStatus(fetch(`${url}/collections/snap_bad/snapshots/upload`, { method: 'POST', body: bad }), 400, 'truncated upload');
  const flipped = Buffer.from(bytes);
  flipped[Math.floor(flipped.length / 2)] ^= 0x40;
  const bad2 = new FormData();
  bad2.append('snapshot', new Blob([flipped]), 'x.snapshot');
  await expectStatus(fetch(`${url}/collections/snap_up/snapshots/upload`, { method: 'POST', body: bad2 }), 400, 'corrupt upload');
  const tar = new FormData();
  tar.append('snapshot', new Blob([Buffer.alloc(4096, 7)]), 'qdrant.snapshot');
  await expectStatus(fetch(`${url}/collections/snap_up/snapshots/upload`, { method: 'POST', body: tar }), 400, 'foreign upload');
  await expectStatus(fetch(`${url}/collections/snap_up/snapshots/upload?checksum=${'0'.repeat(64)}`,
    { method: 'POST', body: form }), 400, 'checksum mismatch');
  await expectStatus(fetch(`${url}/collections/snap_up/snapshots/upload?checksum=abc`, { method: 'POST', body: form }), 400, 'bad checksum');
  await expectStatus(fetch(`${url}/collections/snap_up/snapshots/upload?colour=1`, { method: 'POST', body: form }), 400, 'unknown param');
  assert.equal((await client.collectionExists('snap_bad')).exists, false);
  assert.deepEqual(await searchIds('snap_up', query), before);
  await assert.rejects(client.recoverSnapshot('snap_up', { location: 'http://example.com/x.snapshot' }));
  await assert.rejects(client.recoverSnapshot('snap_up', { location: 'file:///etc/passwd' }));
  await assert.rejects(client.recoverSnapshot('snap_up', { location: `${url}/collections/${src}/snapshots/nope.snapshot` }));
  await assert.rejects(client.recoverSnapshot('snap_up', { location: `${url}/collections/${src}/snapshots/${desc.name}`, checksum: 'f'.repeat(64) }));
  await expectStatus(fetch(`${url}/collections/snap_up/snapshots/recover`, {
    method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ location: 'file:///x', wal: true }),
  }), 400, 'unknown field');
  await expectStatus(fetch(`${url}/collections/${src}/snapshots/nope.snapshot`), 404, 'unknown snapshot');
  await expectStatus(fetch(`${url}/collections/${src}/snapshots/..%2F..%2Fetc%2Fpasswd`), 400, 'traversal');
  await expectStatus(fetch(`${url}/collections/nope/snapshots`), 404, 'unknown collection');
  assert.deepEqual(await searchIds('snap_up', query), before);

  // Full snapshots: every collection and alias in one file; a collection
  // can be recovered from it by name.
  const full = await client.createFullSnapshot({ wait: true });
  assert.match(full.name, /^full-snapshot-.*\.snapshot$/);
  assert.ok((await client.listFullSnapshots()).some((d) => d.name === full.name));
  const fdl = await fetch(`${url}/snapshots/${full.name}`);
  assert.equal(sha256(Buffer.from(await fdl.arrayBuffer())), full.checksum);
  await client.deleteCollection('snap_copy');
  assert.equal(await client.recoverSnapshot('snap_copy', { location: `${url}/snapshots/${full.name}` }), true);
  assert.deepEqual(await searchIds('snap_copy', query), before);
  await assert.rejects(client.recoverSnapshot('snap_never', { location: `${url}/snapshots/${full.name}` }));
  assert.equal(await client.deleteFullSnapshot(full.name), true);
  assert.ok(!(await client.listFullSnapshots()).some((d) => d.name === full.name));

  // Delete.
  assert.equal(await client.deleteSnapshot(src, desc.name), true);
  assert.equal((await client.listSnapshots(src)).length, 0);
  await assert.rejects(client.deleteSnapshot(src, desc.name));
}

main().then(
  () => { console.log('snapshots: all checks passed'); },
  (err) => { console.error(err); process.exit(1); },
);
