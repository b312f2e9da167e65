// Drives a running qvec server with Qdrant's official REST client and fails
// (exit 1) on any error, wrong answer or client warning.
// Usage: node qdrant_client.mjs http://127.0.0.1:PORT
import { QdrantClient } from '@qdrant/js-client-rest';
import assert from 'node:assert/strict';

const warnings = [];
console.warn = (...args) => warnings.push(args.join(' '));

const url = process.argv[2];
const client = new QdrantClient({ url });
const name = 'js_client_test';
const uuid = '5c56c793-69f3-4fbf-87e6-c4bf54c28c26';

async function main() {
  if ((await client.collectionExists(name)).exists) await client.deleteCollection(name);
  assert.equal((await client.collectionExists(name)).exists, false);

  assert.equal(await client.createCollection(name, { vectors: { size: 4, distance: 'Cosine' } }), true);
  const list = await client.getCollections();
  assert.ok(list.collections.some((c) => c.name === name), 'getCollections lists the collection');
  assert.equal((await client.collectionExists(name)).exists, true);

  // Upsert, list form, integer and UUID ids.
  let op = await client.upsert(name, {
    wait: true,
    points: [
      { id: 1, vector: [0.05, 0.61, 0.76, 0.74], payload: { city: 'Berlin', n: 1 } },
      { id: 2, vector: [0.19, 0.81, 0.75, 0.11], payload: { city: 'London', n: 2 } },
      { id: uuid, vector: [0.36, 0.55, 0.47, 0.94], payload: { city: 'Moscow', n: 3 } },
    ],
  });
  assert.equal(op.status, 'completed');
  // Upsert, columnar batch form.
  op = await client.upsert(name, {
    wait: true,
    batch: {
      ids: [10, 11],
      vectors: [[0.18, 0.01, 0.85, 0.8], [0.24, 0.18, 0.22, 0.44]],
      payloads: [{ city: 'Rome', n: 10 }, { city: 'Paris', n: 11 }],
    },
  });
  assert.equal(op.status, 'completed');

  const info = await client.getCollection(name);
  assert.equal(info.points_count, 5);
  assert.equal(info.status, 'green');
  assert.equal(info.config.params.vectors.size, 4);
  assert.equal(info.config.params.vectors.distance, 'Cosine');

  const res = await client.query(name, { query: [0.2, 0.1, 0.9, 0.7], limit: 3, with_payload: true });
  assert.equal(res.points.length, 3);
  assert.equal(res.points[0].id, 10);
  assert.equal(res.points[0].payload.city, 'Rome');
  for (let i = 1; i < res.points.length; i++) assert.ok(res.points[i - 1].score >= res.points[i].score);

  const filtered = await client.query(name, {
    query: [0.2, 0.1, 0.9, 0.7],
    limit: 10,
    filter: { must: [{ key: 'n', range: { gte: 2, lte: 10 } }] },
    with_payload: true,
  });
  assert.deepEqual(filtered.points.map((p) => p.payload.n).sort((a, b) => a - b), [2, 3, 10]);

  const got = await client.retrieve(name, { ids: [uuid, 2], with_payload: true, with_vector: true });
  assert.equal(got.length, 2);
  const moscow = got.find((p) => p.id === uuid);
  assert.equal(moscow.payload.city, 'Moscow');
  const norm = Math.hypot(...moscow.vector);
  assert.ok(Math.abs(norm - 1) < 1e-4, 'Cosine vectors come back normalized');

  assert.equal((await client.count(name, { exact: true })).count, 5);
  assert.equal((await client.count(name, { filter: { must: [{ key: 'city', match: { value: 'London' } }] }, exact: true })).count, 1);

  op = await client.delete(name, { wait: true, points: [1, uuid] });
  assert.equal(op.status, 'completed');
  op = await client.delete(name, { wait: true, filter: { must: [{ key: 'city', match: { any: ['Rome'] } }] } });
  assert.equal(op.status, 'completed');
  assert.equal((await client.count(name, { exact: true })).count, 2);

  assert.equal(await client.deleteCollection(name), true);
  assert.equal((await client.collectionExists(name)).exists, false);

  // Named vectors, one of them Manhattan: create, upsert (points carrying
  // some fields and not others), query with `using`, retrieve and scroll
  // with named vectors, and the collection info reporting each field.
  const named = 'js_client_named';
  if ((await client.collectionExists(named)).exists) await client.deleteCollection(named);
  assert.equal(await client.createCollection(named, {
    vectors: {
      text: { size: 4, distance: 'Cosine' },
      image: { size: 3, distance: 'Manhattan' },
    },
  }), true);
  const ninfo = await client.getCollection(named);
  assert.equal(ninfo.config.params.vectors.text.size, 4);
  assert.equal(ninfo.config.params.vectors.text.distance, 'Cosine');
  assert.equal(ninfo.config.params.vectors.image.size, 3);
  assert.equal(ninfo.config.params.vectors.image.distance, 'Manhattan');
  op = await client.upsert(named, {
    wait: true,
    points: [
      { id: 1, vector: { text: [0.05, 0.61, 0.76, 0.74], image: [1, 2, 3] }, payload: { kind: 'both' } },
      { id: 2, vector: { text: [0.19, 0.81, 0.75, 0.11] }, payload: { kind: 'text' } },
      { id: 3, vector: { image: [4, 4, 4] }, payload: { kind: 'image' } },
      { id: 4, vector: { image: [1, 2, 2.5] }, payload: { kind: 'image' } },
    ],
  });
  assert.equal(op.status, 'completed');
  op = await client.upsert(named, {
    wait: true,
    batch: { ids: [5], vectors: { text: [[0.9, 0.1, 0.1, 0.1]], image: [[9, 9, 9]] } },
  });
  assert.equal(op.status, 'completed');
  // Manhattan: smaller distance first, the score is the L1 distance.
  const byImage = await client.query(named, { query: [1, 2, 3], using: 'image', limit: 10, with_vector: ['image'] });
  assert.deepEqual(byImage.points.map((p) => p.id), [1, 4, 3, 5]);
  const wantL1 = [0, 0.5, 6, 21];
  byImage.points.forEach((p, i) => assert.ok(Math.abs(p.score - wantL1[i]) < 1e-4, `L1 score ${p.score}`));
  assert.deepEqual(byImage.points[0].vector.image, [1, 2, 3]);
  assert.equal(byImage.points[0].vector.text, undefined, 'only the asked-for field comes back');
  const byText = await client.query(named, { query: [0.2, 0.8, 0.7, 0.1], using: 'text', limit: 2, with_payload: true });
  assert.equal(byText.points[0].id, 2);
  assert.equal(byText.points.length, 2);
  const searched = await client.search(named, { vector: { name: 'image', vector: [4, 4, 4] }, limit: 1 });
  assert.equal(searched[0].id, 3);
  const nget = await client.retrieve(named, { ids: [1, 2, 3], with_vector: true });
  const p1 = nget.find((p) => p.id === 1);
  assert.deepEqual(p1.vector.image, [1, 2, 3]);
  assert.ok(Math.abs(Math.hypot(...p1.vector.text) - 1) < 1e-4);
  assert.deepEqual(Object.keys(nget.find((p) => p.id === 2).vector), ['text']);
  assert.deepEqual(Object.keys(nget.find((p) => p.id === 3).vector), ['image']);
  const page = await client.scroll(named, { limit: 10, with_vector: ['text'] });
  assert.equal(page.points.length, 5);
  assert.deepEqual(page.points.find((p) => p.id === 3).vector, {});
  // A name that does not exist, or no name on a named collection, is an error.
  await assert.rejects(client.query(named, { query: [1, 2, 3], using: 'nope' }));
  await assert.rejects(client.query(named, { query: [1, 2, 3] }));
  assert.equal(await client.deleteCollection(named), true);

  // Errors surface as client exceptions, not crashes.
  await assert.rejects(client.getCollection(name));
  await new Promise((r) => setTimeout(r, 200));  // let the version check report
  assert.deepEqual(warnings, [], 'the client printed warnings');
}

main().then(
  () => { console.log('qdrant js client: all checks passed'); },
  (err) => { console.error(err); console.error('warnings:', warnings); process.exit(1); },
);
