// The points, payload, collection and filter surface of Qdrant's REST API
// through the official JS client: payload and vector operations, batches,
// payload indexes with payload_schema, every filter kind, scroll order_by,
// PATCH, aliases and MMR. Fails (exit 1) on any error or wrong answer.
// Usage: node qdrant_api.mjs http://127.0.0.1:PORT
import { QdrantClient } from '@qdrant/js-client-rest';
import assert from 'node:assert/strict';

const url = process.argv[2];
const client = new QdrantClient({ url, checkCompatibility: false });
const name = 'api_surface';

const ids = (points) => points.map((p) => p.id).sort((a, b) => a - b);
const countOf = async (filter) => (await client.count(name, { filter, exact: true })).count;

async function main() {
  if ((await client.collectionExists(name)).exists) await client.deleteCollection(name);
  await client.createCollection(name, { vectors: { size: 4, distance: 'Cosine' } });
  const cities = [
    { city: 'Berlin', loc: { lon: 13.405, lat: 52.52 } },
    { city: 'London', loc: { lon: -0.1276, lat: 51.5072 } },
    { city: 'Paris', loc: { lon: 2.3522, lat: 48.8566 } },
    { city: 'Tokyo', loc: { lon: 139.6917, lat: 35.6895 } },
    { city: 'Sydney', loc: { lon: 151.2093, lat: -33.8688 } },
  ];
  const points = cities.map((c, i) => ({
    id: i + 1,
    vector: [1, i * 0.1, 0.5, -0.2 * i],
    payload: {
      ...c,
      n: i + 1,
      text: ['The quick brown fox', 'Lazy dogs sleep', 'A quick nap', 'Foxes and dogs', ''][i],
      at: `2024-0${i + 1}-15T12:00:00Z`,
      tags: i % 2 ? ['a', 'b'] : [],
      items: [{ kind: 'x', qty: i }, { kind: 'y', qty: 10 - i }],
      ...(i === 4 ? { maybe: null } : { maybe: i }),
    },
  }));
  await client.upsert(name, { wait: true, points });

  // Payload indexes: real, listed with their points.
  for (const [field, schema] of [['city', 'keyword'], ['n', 'integer'], ['at', 'datetime'],
    ['text', 'text'], ['loc', 'geo']]) {
    const r = await client.createPayloadIndex(name, { field_name: field, field_schema: schema, wait: true });
    assert.equal(r.status, 'completed');
  }
  let info = await client.getCollection(name);
  assert.equal(info.payload_schema.city.data_type, 'keyword');
  assert.equal(info.payload_schema.city.points, 5);
  assert.equal(info.payload_schema.loc.data_type, 'geo');
  assert.equal(info.payload_schema.loc.points, 5);
  assert.equal(info.payload_schema.text.points, 5);
  await client.deletePayloadIndex(name, 'city', { wait: true });
  assert.equal((await client.getCollection(name)).payload_schema.city, undefined);
  await client.createPayloadIndex(name, { field_name: 'city', field_schema: 'keyword', wait: true });

  // Filters.
  assert.equal(await countOf({ must: [{ key: 'text', match: { text: 'QUICK' } }] }), 2);
  assert.equal(await countOf({ must: [{ key: 'text', match: { text_any: 'nap dogs' } }] }), 3);
  assert.equal(await countOf({ must: [{ key: 'text', match: { phrase: 'quick brown' } }] }), 1);
  assert.equal(await countOf({ must: [{ key: 'text', match: { phrase: 'brown quick' } }] }), 0);
  assert.equal(await countOf({ must: [{ key: 'loc', geo_radius: { center: { lon: 2.35, lat: 48.85 }, radius: 1100000 } }] }), 3);
  assert.equal(await countOf({ must: [{ key: 'loc', geo_bounding_box: { top_left: { lon: 130, lat: 40 }, bottom_right: { lon: 160, lat: -40 } } }] }), 2);
  assert.equal(await countOf({ must: [{ key: 'loc', geo_polygon: { exterior: { points: [{ lon: -5, lat: 45 }, { lon: 15, lat: 45 }, { lon: 15, lat: 55 }, { lon: -5, lat: 55 }, { lon: -5, lat: 45 }] } } }] }), 3);
  assert.equal(await countOf({ must: [{ key: 'tags', values_count: { gte: 2 } }] }), 2);
  assert.equal(await countOf({ must: [{ is_empty: { key: 'tags' } }] }), 3);
  assert.equal(await countOf({ must: [{ is_null: { key: 'maybe' } }] }), 1);
  assert.equal(await countOf({ must: [{ key: 'at', range: { gte: '2024-02-01T00:00:00Z', lt: '2024-04-15T12:00:00Z' } }] }), 2);
  assert.equal(await countOf({ must: [{ nested: { key: 'items', filter: { must: [{ key: 'kind', match: { value: 'y' } }, { key: 'qty', range: { gte: 8 } }] } } }] }), 3);
  assert.equal(await countOf({ must: [{ has_id: [1, 3, 99] }], must_not: [{ key: 'city', match: { value: 'Paris' } }] }), 1);
  assert.equal(await countOf({ min_should: { conditions: [{ key: 'n', range: { lte: 2 } }, { key: 'city', match: { any: ['London', 'Tokyo'] } }], min_count: 2 } }), 1);
  assert.equal(await countOf({ must: [{ has_vector: '' }] }), 5);

  // Scroll order_by: numbers and date-times.
  let page = await client.scroll(name, { order_by: { key: 'n', direction: 'desc' }, limit: 2 });
  assert.deepEqual(page.points.map((p) => p.id), [5, 4]);
  page = await client.scroll(name, { order_by: { key: 'at', start_from: '2024-03-01T00:00:00Z' }, limit: 10 });
  assert.deepEqual(page.points.map((p) => p.id), [3, 4, 5]);

  // Payload operations, by ids and by filter, with nested keys.
  await client.setPayload(name, { points: [1], payload: { style: 'bold' }, key: 'meta', wait: true });
  await client.setPayload(name, { filter: { must: [{ key: 'city', match: { value: 'London' } }] }, payload: { flag: true }, wait: true });
  let [r1] = await client.retrieve(name, { ids: [1], with_payload: true });
  assert.deepEqual(r1.payload.meta, { style: 'bold' });
  let [r2] = await client.retrieve(name, { ids: [2], with_payload: true });
  assert.equal(r2.payload.flag, true);
  await client.overwritePayload(name, { points: [2], payload: { only: 1 }, wait: true });
  [r2] = await client.retrieve(name, { ids: [2], with_payload: true });
  assert.deepEqual(r2.payload, { only: 1 });
  await client.deletePayload(name, { points: [1], keys: ['meta.style', 'tags'], wait: true });
  [r1] = await client.retrieve(name, { ids: [1], with_payload: true });
  assert.deepEqual(r1.payload.meta, {});
  assert.equal(r1.payload.tags, undefined);
  await client.clearPayload(name, { points: [2], wait: true });
  [r2] = await client.retrieve(name, { ids: [2], with_payload: true });
  assert.deepEqual(r2.payload, {});
  // The indexes follow: London's city is gone.
  assert.equal(await countOf({ must: [{ key: 'city', match: { value: 'London' } }] }), 0);

  // Vectors: update some, delete by ids and by filter.
  await client.updateVectors(name, { points: [{ id: 3, vector: [0, 0, 1, 0] }], wait: true });
  const [v3] = await client.retrieve(name, { ids: [3], with_vector: true });
  assert.ok(Math.abs(v3.vector[2] - 1) < 1e-6);
  await client.deleteVectors(name, { points: [4], vector: [''], wait: true });
  await client.deleteVectors(name, { filter: { must: [{ key: 'city', match: { value: 'Sydney' } }] }, vector: [''], wait: true });
  assert.equal(await countOf({ must: [{ has_vector: '' }] }), 3);

  // Batches: in order, each atomic.
  const batch = await client.batchUpdate(name, {
    wait: true,
    operations: [
      { upsert: { points: [{ id: 10, vector: [1, 1, 1, 1], payload: { city: 'Rome', n: 10 } }] } },
      { set_payload: { payload: { seen: true }, points: [10] } },
      { delete: { points: [5] } },
    ],
  });
  assert.equal(batch.length, 3);
  const [r10] = await client.retrieve(name, { ids: [10], with_payload: true });
  assert.deepEqual(r10.payload, { city: 'Rome', n: 10, seen: true });
  assert.equal((await client.retrieve(name, { ids: [5] })).length, 0);

  // PATCH: quantization and qvec's index options, for real.
  assert.equal(await client.updateCollection(name, { quantization_config: { scalar: { type: 'int8', quantile: 0.99 } } }), true);
  info = await client.getCollection(name);
  assert.ok(Math.abs(info.config.quantization_config.scalar.quantile - 0.99) < 1e-6);
  await assert.rejects(client.updateCollection(name, { quantization_config: { binary: {} } }));
  await assert.rejects(client.updateCollection(name, { sparse_vectors: { s: {} } }));

  // Aliases.
  await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: name, alias_name: 'api_alias' } }] });
  assert.ok((await client.getAliases()).aliases.some((a) => a.alias_name === 'api_alias'));
  assert.deepEqual((await client.getCollectionAliases(name)).aliases.map((a) => a.alias_name), ['api_alias']);
  assert.equal((await client.count('api_alias', { exact: true })).count, 5);
  await client.updateCollectionAliases({ actions: [{ rename_alias: { old_alias_name: 'api_alias', new_alias_name: 'api_alias2' } }] });
  await client.updateCollectionAliases({ actions: [{ delete_alias: { alias_name: 'api_alias2' } }] });
  assert.equal((await client.getCollectionAliases(name)).aliases.length, 0);

  // MMR: diverse picks, query scores.
  const plain = await client.query(name, { query: [1, 0.1, 0.5, 0], limit: 2 });
  const mmr = await client.query(name, { query: { nearest: [1, 0.1, 0.5, 0], mmr: { diversity: 0.9, candidates_limit: 10 } }, limit: 2 });
  assert.equal(mmr.points.length, 2);
  assert.equal(mmr.points[0].id, plain.points[0].id);

  // Fields qvec does not implement are refused, never ignored.
  await assert.rejects(client.query(name, { query: { relevance_feedback: { target: [1, 0, 0, 0], feedback: [], strategy: { naive: { a: 1, b: 1 } } } } }));
  await assert.rejects(client.createPayloadIndex(name, { field_name: 'text', field_schema: { type: 'text', tokenizer: 'multilingual' } }));
  await client.deleteCollection(name);
}

main().then(
  () => { console.log('qdrant api surface: all checks passed'); },
  (err) => { console.error(err); process.exit(1); },
);
