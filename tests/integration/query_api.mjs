// Qdrant's Query API through the official JS client: prefetch with fusion
// (RRF, DBSF) and re-ranking, query by point id, recommend strategies,
// discover, context, order_by, sample, groups with lookups, facets, the
// batch forms and the older recommend/discover endpoints. Exits 1 on any
// error or wrong answer.
// Usage: node query_api.mjs http://127.0.0.1:PORT
import { QdrantClient } from '@qdrant/js-client-rest';
import assert from 'node:assert/strict';

const url = process.argv[2];
const client = new QdrantClient({ url, checkCompatibility: false });
const name = 'query_api';
const other = 'query_api_lookup';

const idsOf = (r) => (r.points ?? r).map((p) => p.id);

async function main() {
  for (const c of [name, other]) {
    if ((await client.collectionExists(c)).exists) await client.deleteCollection(c);
  }
  await client.createCollection(name, { vectors: { size: 2, distance: 'Cosine' } });
  // Points on the unit circle at 10-degree steps: angles make the answers obvious.
  const points = [];
  for (let i = 0; i < 36; ++i) {
    const a = (i * 10 * Math.PI) / 180;
    points.push({ id: i, vector: [Math.cos(a), Math.sin(a)], payload: { deg: i * 10, half: i < 18 ? 'upper' : 'lower', tens: Math.floor(i / 10) } });
  }
  await client.upsert(name, { wait: true, points });
  await client.createPayloadIndex(name, { field_name: 'deg', field_schema: 'integer', wait: true });
  await client.createPayloadIndex(name, { field_name: 'half', field_schema: 'keyword', wait: true });

  // Nearest by vector and by point id (the example itself left out).
  assert.deepEqual(idsOf(await client.query(name, { query: [1, 0], limit: 3 })), [0, 1, 35]);
  assert.deepEqual(idsOf(await client.query(name, { query: 9, limit: 2 })).sort((a, b) => a - b), [8, 10]);

  // Prefetch + re-rank: only prefetched points come back.
  let r = await client.query(name, { prefetch: { query: [1, 0], limit: 5 }, query: [0, 1], limit: 3 });
  assert.deepEqual(idsOf(r), [2, 1, 0]);
  // The outer filter applies to the prefetches too.
  r = await client.query(name, {
    prefetch: { query: [1, 0], limit: 5 }, query: [1, 0], limit: 10,
    filter: { must: [{ key: 'half', match: { value: 'lower' } }] },
  });
  assert.deepEqual(idsOf(r), [35, 34, 33, 32, 31]);

  // Fusion: RRF (k = 2 by default: the top scores 1/2) and DBSF.
  r = await client.query(name, {
    prefetch: [{ query: [1, 0], limit: 3 }, { query: [Math.cos(0.2), Math.sin(0.2)], limit: 3 }],
    query: { fusion: 'rrf' }, limit: 4,
  });
  assert.equal(r.points[0].id, 1);  // 2nd and 1st: 1/3 + 1/2
  assert.ok(Math.abs(r.points[0].score - (1 / 3 + 1 / 2)) < 1e-5, `rrf score ${r.points[0].score}`);
  r = await client.query(name, {
    prefetch: [{ query: [1, 0], limit: 3 }, { query: [0, 1], limit: 3 }],
    query: { rrf: { k: 60 } }, limit: 6,
  });
  assert.equal(r.points.length, 6);
  assert.ok(Math.abs(r.points[0].score - 1 / 60) < 1e-6);
  r = await client.query(name, {
    prefetch: [{ query: [1, 0], limit: 5 }, { query: [0, 1], limit: 5 }],
    query: { fusion: 'dbsf' }, limit: 3,
  });
  assert.equal(r.points.length, 3);

  // Recommend: average_vector between two positives, away from a negative.
  r = await client.query(name, { query: { recommend: { positive: [0, 2] } }, limit: 1 });
  assert.deepEqual(idsOf(r), [1]);
  r = await client.query(name, { query: { recommend: { positive: [0], negative: [18], strategy: 'best_score' } }, limit: 2 });
  assert.deepEqual(idsOf(r).sort((a, b) => a - b), [1, 35]);
  assert.ok(r.points[0].score > 0.5 && r.points[0].score < 1);  // sf(cos 10 degrees)
  r = await client.query(name, { query: { recommend: { positive: [0, 9], strategy: 'sum_scores' } }, limit: 1 });
  assert.deepEqual(idsOf(r), [4]);  // ties with 5; by id

  // Discover: near the target, on the positive side of every pair.
  r = await client.query(name, {
    query: { discover: { target: [1, 0], context: [{ positive: 9, negative: 27 }] } }, limit: 3,
  });
  for (const p of r.points) assert.ok(p.id <= 17, `discover ${p.id}`);  // 0 sits on the border (rounding)
  // Context only: zero loss for points closer to the positive.
  r = await client.query(name, { query: { context: [{ positive: 9, negative: 27 }] }, limit: 5 });
  for (const p of r.points) assert.ok(p.score === 0);

  // order_by and sample.
  r = await client.query(name, { query: { order_by: { key: 'deg', direction: 'desc' } }, limit: 2 });
  assert.deepEqual(idsOf(r), [35, 34]);
  assert.equal(r.points[0].order_value, 350);
  r = await client.query(name, { query: { sample: 'random' }, limit: 5 });
  assert.equal(new Set(idsOf(r)).size, 5);

  // Batch.
  const batch = await client.queryBatch(name, { searches: [{ query: [1, 0], limit: 1 }, { query: [0, 1], limit: 1 }] });
  assert.deepEqual(batch.map((b) => b.points[0].id), [0, 9]);

  // Groups, with a lookup into another collection whose ids are the group values.
  await client.createCollection(other, { vectors: { size: 2, distance: 'Dot' } });
  await client.upsert(other, { wait: true, points: [{ id: 0, vector: [1, 1], payload: { label: 'zero' } }, { id: 3, vector: [0, 1], payload: { label: 'three' } }] });
  const groups = await client.queryGroups(name, {
    query: [1, 0], group_by: 'tens', group_size: 2, limit: 3, with_lookup: { collection: other, with_payload: true },
  });
  assert.deepEqual(groups.groups.map((g) => g.id), [0, 3, 2]);  // 290 degrees beats 100
  assert.deepEqual(groups.groups[0].hits.map((h) => h.id), [0, 1]);
  assert.equal(groups.groups[0].lookup.payload.label, 'zero');
  assert.equal(groups.groups[2].lookup, undefined);
  const sg = await client.searchPointGroups(name, { vector: [0, 1], group_by: 'half', group_size: 1, limit: 2 });
  assert.deepEqual(sg.groups.map((g) => g.id), ['upper', 'lower']);

  // Distance matrix of a sample: each point's nearest among the sample.
  const pairs = await client.searchMatrixPairs(name, { sample: 36, limit: 1 });
  assert.equal(pairs.pairs.length, 36);
  for (const p of pairs.pairs) assert.ok(Math.abs(p.a - p.b) === 1 || Math.abs(p.a - p.b) === 35, `${p.a}-${p.b}`);
  const offsets = await client.searchMatrixOffsets(name, { sample: 5, limit: 2, filter: { must: [{ key: 'deg', range: { lt: 50 } }] } });
  assert.deepEqual(offsets.ids, [0, 1, 2, 3, 4]);
  assert.equal(offsets.scores.length, 10);
  assert.equal(offsets.offsets_row.length, 10);

  // Facets.
  const facet = await client.facet(name, { key: 'half', filter: { must: [{ key: 'deg', range: { lt: 100 } }] } });
  assert.deepEqual(facet.hits, [{ value: 'upper', count: 10 }]);

  // lookup_from: the query point's vector comes from the other collection.
  r = await client.query(name, { query: 3, lookup_from: { collection: other }, limit: 1 });
  assert.deepEqual(idsOf(r), [9]);

  // The older endpoints.
  const rec = await client.recommend(name, { positive: [0, 2], limit: 1 });
  assert.deepEqual(idsOf(rec), [1]);
  const recBatch = await client.recommendBatch(name, { searches: [{ positive: [0, 2], limit: 1 }, { positive: [9], limit: 1 }] });
  assert.equal(recBatch.length, 2);
  const disc = await client.discoverPoints(name, { target: [1, 0], context: [{ positive: 9, negative: 27 }], limit: 2 });
  assert.equal(disc.length, 2);
  const discBatch = await client.discoverBatchPoints(name, { searches: [{ target: 0, limit: 1 }, { target: 9, limit: 1 }] });
  assert.equal(discBatch.length, 2);
  const rg = await client.recommendPointGroups(name, { positive: [0], group_by: 'half', group_size: 1, limit: 2 });
  assert.equal(rg.groups.length, 2);

  // Refusals: fusion without prefetches, prefetches without a query, an
  // unknown example point.
  await assert.rejects(client.query(name, { query: { fusion: 'rrf' } }));
  await assert.rejects(client.query(name, { prefetch: { query: [1, 0] } }));
  // Formulas re-score the prefetched points: a boost for the lower half,
  // and a payload number with a default; a missing one without default fails.
  r = await client.query(name, {
    prefetch: { query: [1, 0], limit: 3 },
    query: { formula: { sum: ['$score', { mult: [0.5, { key: 'half', match: { value: 'lower' } }] }] } },
  });
  assert.deepEqual(idsOf(r), [35, 0, 1]);
  assert.ok(Math.abs(r.points[0].score - (Math.cos(Math.PI / 18) + 0.5)) < 1e-4);
  r = await client.query(name, {
    prefetch: { query: [1, 0], limit: 3 },
    query: { formula: { mult: ['$score', { sum: ['deg', 1] }] } },
  });
  assert.deepEqual(idsOf(r), [35, 1, 0]);
  await assert.rejects(client.query(name, { prefetch: { query: [1, 0] }, query: { formula: { sum: ['$score', 'nope'] } } }));
  r = await client.query(name, { prefetch: { query: [1, 0], limit: 2 }, query: { formula: { sum: ['$score', 'nope'] }, defaults: { nope: 2 } } });
  assert.ok(Math.abs(r.points[0].score - 3) < 1e-4);
  await assert.rejects(client.query(name, { query: 12345 }));
  await client.deleteCollection(name);
  await client.deleteCollection(other);
  await hybrid();
}

// Hybrid search as retrieval apps build it: a dense and a sparse (BM25-like,
// idf modifier) field, both prefetched and fused with RRF.
async function hybrid() {
  const h = 'query_api_hybrid';
  if ((await client.collectionExists(h)).exists) await client.deleteCollection(h);
  await client.createCollection(h, {
    vectors: { dense: { size: 2, distance: 'Cosine' } },
    sparse_vectors: { text: { modifier: 'idf' } },
  });
  const info = await client.getCollection(h);
  assert.equal(info.config.params.sparse_vectors.text.modifier, 'idf');
  // Words as dimensions: 1 "vector", 2 "database", 3 "int8", 4 "cat".
  const docs = [
    { id: 1, dense: [1, 0], text: { indices: [1, 2], values: [1, 1] } },
    { id: 2, dense: [0.9, 0.1], text: { indices: [2], values: [1] } },
    { id: 3, dense: [0, 1], text: { indices: [3, 1], values: [2, 1] } },
    { id: 4, dense: [-1, 0], text: { indices: [4], values: [1] } },
  ];
  await client.upsert(h, {
    wait: true,
    points: docs.map((d) => ({ id: d.id, vector: { dense: d.dense, text: d.text }, payload: { n: d.id } })),
  });
  // Sparse alone: "int8" is rare (idf high), so point 3 wins.
  let r = await client.query(h, { query: { indices: [3, 2], values: [1, 1] }, using: 'text', limit: 4 });
  assert.deepEqual(idsOf(r), [3, 1, 2]);
  // Point 4 shares no word: never returned by the sparse retriever.
  r = await client.query(h, {
    prefetch: [
      { query: [1, 0], using: 'dense', limit: 3 },
      { query: { indices: [3, 2], values: [1, 1] }, using: 'text', limit: 3 },
    ],
    query: { fusion: 'rrf' }, limit: 3, with_vector: ['text'],
  });
  // Dense [1, 2, 3], sparse [3, 1, 2]: point 1 has 1/2 + 1/3, point 3
  // 1/4 + 1/2, point 2 1/3 + 1/4.
  assert.deepEqual(idsOf(r), [1, 3, 2]);
  assert.ok(Math.abs(r.points[0].score - (1 / 2 + 1 / 3)) < 1e-5);
  assert.deepEqual(r.points[0].vector.text, { indices: [1, 2], values: [1, 1] });
  // The older search endpoint with a named sparse vector.
  const s = await client.search(h, { vector: { name: 'text', vector: { indices: [4], values: [1] } }, limit: 2 });
  assert.deepEqual(s.map((p) => p.id), [4]);
  // A sparse query on the dense field, and duplicate indices, are refused.
  await assert.rejects(client.query(h, { query: { indices: [1], values: [1] }, using: 'dense' }));
  await assert.rejects(client.upsert(h, { wait: true, points: [{ id: 9, vector: { text: { indices: [1, 1], values: [1, 2] } } }] }));
  assert.equal((await client.count(h, {})).count, 4);
  await client.deleteCollection(h);
}

main().then(
  () => { console.log('query api: all checks passed'); },
  (err) => { console.error(err); process.exit(1); },
);
