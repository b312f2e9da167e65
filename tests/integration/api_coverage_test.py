#!/usr/bin/env python3
"""Every request field of every endpoint qvec serves either works or is refused.

Walks the request-body schemas of Qdrant's OpenAPI description
(tests/fixtures/qdrant-openapi/) for the endpoints qvec serves and checks
against a real `qvec serve`:

  * every field the schemas define is classified in FIELDS below (a field
    Qdrant adds later fails the test until someone decides what it does);
  * an APPLIED or NO_EFFECT field is accepted (HTTP 200) in a request that
    sets it; APPLIED fields have their effect tested elsewhere
    (tests/server/router_test.cc, tests/integration/*), NO_EFFECT ones only
    tune Qdrant internals and are the list in README.md ("Accepted without
    effect"), which this test compares;
  * a REFUSED field gets HTTP 400 with a JSON message that names it;
  * a field that is in no schema gets a 400 naming it, at every level;
  * query parameters: the documented ones pass, any other is refused.

Usage: api_coverage_test.py QVEC_BINARY SOURCE_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

APPLIED, NO_EFFECT, REFUSED, OBJECT = "applied", "no effect", "refused", "object"

V = [0.1, 0.2, 0.3, 0.4]
VP = {"size": 4, "distance": "Cosine"}

# Endpoints qvec serves that take a JSON body: (method, OpenAPI path).
ENDPOINTS = [
    ("put", "/collections/{collection_name}"),
    ("patch", "/collections/{collection_name}"),
    ("put", "/collections/{collection_name}/index"),
    ("put", "/collections/{collection_name}/points"),
    ("post", "/collections/{collection_name}/points"),
    ("post", "/collections/{collection_name}/points/delete"),
    ("post", "/collections/{collection_name}/points/count"),
    ("post", "/collections/{collection_name}/points/scroll"),
    ("post", "/collections/{collection_name}/points/search"),
    ("post", "/collections/{collection_name}/points/query"),
    ("post", "/collections/{collection_name}/points/payload"),
    ("put", "/collections/{collection_name}/points/payload"),
    ("post", "/collections/{collection_name}/points/payload/delete"),
    ("post", "/collections/{collection_name}/points/payload/clear"),
    ("put", "/collections/{collection_name}/points/vectors"),
    ("post", "/collections/{collection_name}/points/vectors/delete"),
    ("post", "/collections/{collection_name}/points/search/batch"),
    ("post", "/collections/{collection_name}/points/query/batch"),
    ("post", "/collections/aliases"),
    ("post", "/collections/{collection_name}/points/batch"),
    ("put", "/collections/{collection_name}/snapshots/recover"),
    ("post", "/collections/{collection_name}/points/query/groups"),
    ("post", "/collections/{collection_name}/points/search/groups"),
    ("post", "/collections/{collection_name}/points/recommend"),
    ("post", "/collections/{collection_name}/points/recommend/batch"),
    ("post", "/collections/{collection_name}/points/recommend/groups"),
    ("post", "/collections/{collection_name}/points/discover"),
    ("post", "/collections/{collection_name}/points/discover/batch"),
    ("post", "/collections/{collection_name}/facet"),
    ("post", "/collections/{collection_name}/points/search/matrix/pairs"),
    ("post", "/collections/{collection_name}/points/search/matrix/offsets"),
]


def count(flt):
    return ("POST", "/collections/c/points/count", {"filter": flt})


def cond(c):
    return count({"must": [c]})


def create(body):
    return ("PUT", "/collections/{new}", body)


def patch(body):
    return ("PATCH", "/collections/c", body)


def search(extra):
    return ("POST", "/collections/c/points/search", dict({"vector": V, "limit": 2}, **extra))


def query(extra):
    return ("POST", "/collections/c/points/query", dict({"query": V, "limit": 2}, **extra))


def params(p):
    return search({"params": p})


UPSERT = "/collections/c/points"
RING = {"points": [{"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}, {"lon": 0, "lat": 0}]}

# (schema, field path inside it, handling, request or None). A schema that
# has rows here is walked on its own wherever it is referenced; "*" stands
# for a key the user names (vector names). A field may have several rows
# (e.g. one value applied, another refused).
FIELDS = [
    # POST .../points/query/groups
    ("QueryGroupsRequest", "group_by", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "city"})),
    ("QueryGroupsRequest", "group_size", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "city", "group_size": 1})),
    ("QueryGroupsRequest", "limit", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "city", "limit": 1})),
    ("QueryGroupsRequest", "with_lookup", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "n", "with_lookup": "nv"})),
    ("QueryGroupsRequest", "with_lookup", OBJECT, None),
    ("QueryGroupsRequest", "with_lookup.collection", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "n", "with_lookup": {"collection": "nv"}})),
    ("QueryGroupsRequest", "with_lookup.with_payload", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "n", "with_lookup": {"collection": "nv", "with_payload": False}})),
    ("QueryGroupsRequest", "with_lookup.with_vectors", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "n", "with_lookup": {"collection": "nv", "with_vectors": True}})),
    ("QueryGroupsRequest", "query", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": {"nearest": V}, "group_by": "city"})),
    ("QueryGroupsRequest", "prefetch", APPLIED, ("POST", "/collections/c/points/query/groups", {"prefetch": {"query": V}, "query": V, "group_by": "city"})),
    ("QueryGroupsRequest", "using", APPLIED, ("POST", "/collections/nv/points/query/groups", {"query": V, "using": "text", "group_by": "k"})),
    ("QueryGroupsRequest", "filter", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "city", "filter": {"must": [{"has_id": [1, 2]}]}})),
    ("QueryGroupsRequest", "params", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "city", "params": {"exact": True}})),
    ("QueryGroupsRequest", "score_threshold", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "city", "score_threshold": 0.1})),
    ("QueryGroupsRequest", "with_vector", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "city", "with_vector": True})),
    ("QueryGroupsRequest", "with_payload", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "city", "with_payload": True})),
    ("QueryGroupsRequest", "lookup_from", OBJECT, None),
    ("QueryGroupsRequest", "lookup_from.collection", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": 1, "group_by": "city", "lookup_from": {"collection": "nv", "vector": "text"}})),
    ("QueryGroupsRequest", "lookup_from.vector", APPLIED, ("POST", "/collections/c/points/query/groups", {"query": 1, "group_by": "city", "lookup_from": {"collection": "nv", "vector": "text"}})),
    ("QueryGroupsRequest", "lookup_from.shard_key", REFUSED, ("POST", "/collections/c/points/query/groups", {"query": 1, "group_by": "city", "lookup_from": {"collection": "nv", "shard_key": "a"}})),
    ("QueryGroupsRequest", "shard_key", REFUSED, ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "city", "shard_key": "a"})),
    # POST .../points/search/groups
    ("SearchGroupsRequest", "vector", APPLIED, ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "city", "group_size": 2, "limit": 2})),
    ("SearchGroupsRequest", "vector", OBJECT, None),
    ("SearchGroupsRequest", "vector.name", APPLIED, ("POST", "/collections/nv/points/search/groups", {"vector": {"name": "text", "vector": V}, "group_by": "k", "group_size": 2, "limit": 2})),
    ("SearchGroupsRequest", "vector.vector", APPLIED, ("POST", "/collections/nv/points/search/groups", {"vector": {"name": "text", "vector": V}, "group_by": "k", "group_size": 2, "limit": 2})),
    ("SearchGroupsRequest", "vector.indices", APPLIED, ("POST", "/collections/nv/points/search/groups", {"vector": {"name": "s", "vector": {"indices": [1], "values": [0.5]}}, "group_by": "k", "group_size": 2, "limit": 2})),
    ("SearchGroupsRequest", "vector.values", APPLIED, ("POST", "/collections/nv/points/search/groups", {"vector": {"name": "s", "vector": {"indices": [1], "values": [0.5]}}, "group_by": "k", "group_size": 2, "limit": 2})),
    ("SearchGroupsRequest", "filter", APPLIED, ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "city", "group_size": 2, "limit": 2, "filter": {"must": []}})),
    ("SearchGroupsRequest", "params", APPLIED, ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "city", "group_size": 2, "limit": 2, "params": {"exact": True}})),
    ("SearchGroupsRequest", "with_payload", APPLIED, ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "city", "group_size": 2, "limit": 2, "with_payload": True})),
    ("SearchGroupsRequest", "with_vector", APPLIED, ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "city", "group_size": 2, "limit": 2, "with_vector": True})),
    ("SearchGroupsRequest", "score_threshold", APPLIED, ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "city", "group_size": 2, "limit": 2, "score_threshold": 0.1})),
    ("SearchGroupsRequest", "group_by", APPLIED, ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "city", "group_size": 2, "limit": 2})),
    ("SearchGroupsRequest", "group_size", APPLIED, ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "city", "group_size": 2, "limit": 2})),
    ("SearchGroupsRequest", "limit", APPLIED, ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "city", "group_size": 2, "limit": 2})),
    ("SearchGroupsRequest", "with_lookup", APPLIED, ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "n", "group_size": 2, "limit": 2, "with_lookup": "nv"})),
    ("SearchGroupsRequest", "with_lookup", OBJECT, None),
    ("SearchGroupsRequest", "with_lookup.collection", APPLIED, ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "n", "group_size": 2, "limit": 2, "with_lookup": {"collection": "nv"}})),
    ("SearchGroupsRequest", "with_lookup.with_payload", APPLIED, ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "n", "group_size": 2, "limit": 2, "with_lookup": {"collection": "nv", "with_payload": True}})),
    ("SearchGroupsRequest", "with_lookup.with_vectors", APPLIED, ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "n", "group_size": 2, "limit": 2, "with_lookup": {"collection": "nv", "with_vectors": ["text"]}})),
    ("SearchGroupsRequest", "shard_key", REFUSED, ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "city", "group_size": 2, "limit": 2, "shard_key": "a"})),
    ("RecommendRequest", "positive", APPLIED, ("POST", "/collections/c/points/recommend", {"limit": 2, "positive": [1]})),
    ("RecommendRequest", "negative", APPLIED, ("POST", "/collections/c/points/recommend", {"limit": 2, "positive": [1], "negative": [2]})),
    ("RecommendRequest", "strategy", APPLIED, ("POST", "/collections/c/points/recommend", {"limit": 2, "positive": [1], "strategy": "sum_scores"})),
    ("RecommendRequest", "filter", APPLIED, ("POST", "/collections/c/points/recommend", {"limit": 2, "positive": [1], "filter": {"must": []}})),
    ("RecommendRequest", "params", APPLIED, ("POST", "/collections/c/points/recommend", {"limit": 2, "positive": [1], "params": {"exact": True}})),
    ("RecommendRequest", "limit", APPLIED, ("POST", "/collections/c/points/recommend", {"limit": 2, "positive": [1]})),
    ("RecommendRequest", "offset", APPLIED, ("POST", "/collections/c/points/recommend", {"limit": 2, "positive": [1], "offset": 1})),
    ("RecommendRequest", "with_payload", APPLIED, ("POST", "/collections/c/points/recommend", {"limit": 2, "positive": [1], "with_payload": True})),
    ("RecommendRequest", "with_vector", APPLIED, ("POST", "/collections/c/points/recommend", {"limit": 2, "positive": [1], "with_vector": True})),
    ("RecommendRequest", "score_threshold", APPLIED, ("POST", "/collections/c/points/recommend", {"limit": 2, "positive": [1], "score_threshold": 0.1})),
    ("RecommendRequest", "using", APPLIED, ("POST", "/collections/nv/points/recommend", {"positive": [1], "using": "text", "limit": 2})),
    ("RecommendRequest", "lookup_from", OBJECT, None),
    ("RecommendRequest", "lookup_from.collection", APPLIED, ("POST", "/collections/c/points/recommend", {"positive": [1], "limit": 2, "lookup_from": {"collection": "nv", "vector": "text"}})),
    ("RecommendRequest", "lookup_from.vector", APPLIED, ("POST", "/collections/c/points/recommend", {"positive": [1], "limit": 2, "lookup_from": {"collection": "nv", "vector": "text"}})),
    ("RecommendRequest", "lookup_from.shard_key", REFUSED, ("POST", "/collections/c/points/recommend", {"positive": [1], "limit": 2, "lookup_from": {"collection": "nv", "shard_key": "a"}})),
    ("RecommendRequest", "shard_key", REFUSED, ("POST", "/collections/c/points/recommend", {"positive": [1], "limit": 2, "shard_key": "a"})),
    ("RecommendRequestBatch", "searches", APPLIED, ("POST", "/collections/c/points/recommend/batch", {"searches": [{"positive": [1], "limit": 2}]})),
    ("DiscoverRequestBatch", "searches", APPLIED, ("POST", "/collections/c/points/discover/batch", {"searches": [{"target": 1, "limit": 2}]})),
    ("DiscoverRequest", "target", APPLIED, ("POST", "/collections/c/points/discover", {"limit": 2, "target": 1})),
    ("DiscoverRequest", "filter", APPLIED, ("POST", "/collections/c/points/discover", {"limit": 2, "target": 1, "filter": {"must": []}})),
    ("DiscoverRequest", "params", APPLIED, ("POST", "/collections/c/points/discover", {"limit": 2, "target": 1, "params": {"exact": True}})),
    ("DiscoverRequest", "limit", APPLIED, ("POST", "/collections/c/points/discover", {"limit": 2, "target": 1})),
    ("DiscoverRequest", "offset", APPLIED, ("POST", "/collections/c/points/discover", {"limit": 2, "target": 1, "offset": 1})),
    ("DiscoverRequest", "with_payload", APPLIED, ("POST", "/collections/c/points/discover", {"limit": 2, "target": 1, "with_payload": True})),
    ("DiscoverRequest", "with_vector", APPLIED, ("POST", "/collections/c/points/discover", {"limit": 2, "target": 1, "with_vector": True})),
    ("DiscoverRequest", "context", OBJECT, None),
    ("DiscoverRequest", "context.positive", APPLIED, ("POST", "/collections/c/points/discover", {"target": 1, "context": [{"positive": 2, "negative": 3}], "limit": 2})),
    ("DiscoverRequest", "context.negative", APPLIED, ("POST", "/collections/c/points/discover", {"context": [{"positive": 2, "negative": 3}], "limit": 2})),
    ("DiscoverRequest", "using", APPLIED, ("POST", "/collections/nv/points/discover", {"target": 1, "using": "text", "limit": 2})),
    ("DiscoverRequest", "lookup_from", OBJECT, None),
    ("DiscoverRequest", "lookup_from.collection", APPLIED, ("POST", "/collections/c/points/discover", {"target": 1, "limit": 2, "lookup_from": {"collection": "nv", "vector": "text"}})),
    ("DiscoverRequest", "lookup_from.vector", APPLIED, ("POST", "/collections/c/points/discover", {"target": 1, "limit": 2, "lookup_from": {"collection": "nv", "vector": "text"}})),
    ("DiscoverRequest", "lookup_from.shard_key", REFUSED, ("POST", "/collections/c/points/discover", {"target": 1, "limit": 2, "lookup_from": {"collection": "nv", "shard_key": "a"}})),
    ("DiscoverRequest", "shard_key", REFUSED, ("POST", "/collections/c/points/discover", {"target": 1, "limit": 2, "shard_key": "a"})),
    ("RecommendGroupsRequest", "positive", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"group_by": "city", "group_size": 2, "limit": 2, "positive": [1]})),
    ("RecommendGroupsRequest", "negative", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"group_by": "city", "group_size": 2, "limit": 2, "positive": [1], "negative": [2]})),
    ("RecommendGroupsRequest", "strategy", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"group_by": "city", "group_size": 2, "limit": 2, "positive": [1], "strategy": "best_score"})),
    ("RecommendGroupsRequest", "filter", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"group_by": "city", "group_size": 2, "limit": 2, "positive": [1], "filter": {"must": []}})),
    ("RecommendGroupsRequest", "params", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"group_by": "city", "group_size": 2, "limit": 2, "positive": [1], "params": {"exact": True}})),
    ("RecommendGroupsRequest", "with_payload", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"group_by": "city", "group_size": 2, "limit": 2, "positive": [1], "with_payload": True})),
    ("RecommendGroupsRequest", "with_vector", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"group_by": "city", "group_size": 2, "limit": 2, "positive": [1], "with_vector": True})),
    ("RecommendGroupsRequest", "score_threshold", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"group_by": "city", "group_size": 2, "limit": 2, "positive": [1], "score_threshold": 0.1})),
    ("RecommendGroupsRequest", "group_by", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"group_by": "city", "group_size": 2, "limit": 2, "positive": [1]})),
    ("RecommendGroupsRequest", "group_size", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"group_by": "city", "group_size": 2, "limit": 2, "positive": [1]})),
    ("RecommendGroupsRequest", "limit", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"group_by": "city", "group_size": 2, "limit": 2, "positive": [1]})),
    ("RecommendGroupsRequest", "with_lookup", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"group_by": "n", "group_size": 2, "limit": 2, "positive": [1], "with_lookup": "nv"})),
    ("RecommendGroupsRequest", "with_lookup", OBJECT, None),
    ("RecommendGroupsRequest", "with_lookup.collection", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"positive": [1], "group_by": "n", "group_size": 2, "limit": 2, "with_lookup": {"collection": "nv"}})),
    ("RecommendGroupsRequest", "with_lookup.with_payload", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"positive": [1], "group_by": "n", "group_size": 2, "limit": 2, "with_lookup": {"collection": "nv", "with_payload": True}})),
    ("RecommendGroupsRequest", "with_lookup.with_vectors", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"positive": [1], "group_by": "n", "group_size": 2, "limit": 2, "with_lookup": {"collection": "nv", "with_vectors": True}})),
    ("RecommendGroupsRequest", "using", APPLIED, ("POST", "/collections/nv/points/recommend/groups", {"positive": [1], "using": "text", "group_by": "k", "group_size": 2, "limit": 2})),
    ("RecommendGroupsRequest", "lookup_from", OBJECT, None),
    ("RecommendGroupsRequest", "lookup_from.collection", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"positive": [1], "group_by": "city", "group_size": 2, "limit": 2, "lookup_from": {"collection": "nv", "vector": "text"}})),
    ("RecommendGroupsRequest", "lookup_from.vector", APPLIED, ("POST", "/collections/c/points/recommend/groups", {"positive": [1], "group_by": "city", "group_size": 2, "limit": 2, "lookup_from": {"collection": "nv", "vector": "text"}})),
    ("RecommendGroupsRequest", "lookup_from.shard_key", REFUSED, ("POST", "/collections/c/points/recommend/groups", {"positive": [1], "group_by": "city", "group_size": 2, "limit": 2, "lookup_from": {"collection": "nv", "shard_key": "a"}})),
    ("RecommendGroupsRequest", "shard_key", REFUSED, ("POST", "/collections/c/points/recommend/groups", {"positive": [1], "group_by": "city", "group_size": 2, "limit": 2, "shard_key": "a"})),
    # POST .../points/search/matrix/{pairs,offsets}
    ("SearchMatrixRequest", "filter", APPLIED, ("POST", "/collections/c/points/search/matrix/pairs", {"filter": {"must": [{"has_id": [1, 2]}]}})),
    ("SearchMatrixRequest", "sample", APPLIED, ("POST", "/collections/c/points/search/matrix/offsets", {"sample": 3})),
    ("SearchMatrixRequest", "limit", APPLIED, ("POST", "/collections/c/points/search/matrix/pairs", {"limit": 1})),
    ("SearchMatrixRequest", "using", APPLIED, ("POST", "/collections/nv/points/search/matrix/pairs", {"using": "image"})),
    ("SearchMatrixRequest", "shard_key", REFUSED, ("POST", "/collections/c/points/search/matrix/pairs", {"shard_key": "a"})),
    # POST .../facet (the setup indexes "city")
    ("FacetRequest", "key", APPLIED, ("POST", "/collections/c/facet", {"key": "city"})),
    ("FacetRequest", "limit", APPLIED, ("POST", "/collections/c/facet", {"key": "city", "limit": 1})),
    ("FacetRequest", "filter", APPLIED, ("POST", "/collections/c/facet", {"key": "city", "filter": {"must": [{"has_id": [1]}]}})),
    ("FacetRequest", "exact", APPLIED, ("POST", "/collections/c/facet", {"key": "city", "exact": True})),
    ("FacetRequest", "shard_key", REFUSED, ("POST", "/collections/c/facet", {"key": "city", "shard_key": "a"})),
    # PUT /collections/{name}/snapshots/recover ("{snapshot_url}": a snapshot
    # of collection c made at setup)
    ("SnapshotRecover", "location", APPLIED, ("PUT", "/collections/{new}/snapshots/recover", {"location": "{snapshot_url}"})),
    ("SnapshotRecover", "priority", NO_EFFECT, ("PUT", "/collections/{new}/snapshots/recover", {"location": "{snapshot_url}", "priority": "replica"})),
    ("SnapshotRecover", "checksum", APPLIED, ("PUT", "/collections/{new}/snapshots/recover", {"location": "{snapshot_url}", "checksum": "{snapshot_checksum}"})),
    ("SnapshotRecover", "api_key", APPLIED, ("PUT", "/collections/{new}/snapshots/recover", {"location": "{snapshot_url}", "api_key": "k"})),
    # PUT /collections/{name}
    ("CreateCollection", "vectors", OBJECT, None),
    ("CreateCollection", "vectors.*", APPLIED, create({"vectors": {"a": VP, "b": {"size": 2, "distance": "Dot"}}})),
    ("CreateCollection", "hnsw_config", NO_EFFECT, create({"vectors": VP, "hnsw_config": {"m": 32}})),
    ("CreateCollection", "wal_config", NO_EFFECT, create({"vectors": VP, "wal_config": {"wal_capacity_mb": 64}})),
    ("CreateCollection", "optimizers_config", NO_EFFECT, create({"vectors": VP, "optimizers_config": {"indexing_threshold": 1000}})),
    ("CreateCollection", "shard_number", NO_EFFECT, create({"vectors": VP, "shard_number": 2})),
    ("CreateCollection", "replication_factor", NO_EFFECT, create({"vectors": VP, "replication_factor": 2})),
    ("CreateCollection", "write_consistency_factor", NO_EFFECT, create({"vectors": VP, "write_consistency_factor": 1})),
    ("CreateCollection", "on_disk_payload", NO_EFFECT, create({"vectors": VP, "on_disk_payload": True})),
    ("CreateCollection", "sharding_method", APPLIED, create({"vectors": VP, "sharding_method": "auto"})),
    ("CreateCollection", "sharding_method", REFUSED, create({"vectors": VP, "sharding_method": "custom"})),
    ("CreateCollection", "quantization_config", APPLIED, create({"vectors": VP, "quantization_config": {"scalar": {"type": "int8", "quantile": 0.99}}})),
    ("CreateCollection", "sparse_vectors", APPLIED, create({"vectors": VP, "sparse_vectors": {"s": {"modifier": "idf", "index": {"full_scan_threshold": 100, "datatype": "float32"}}}})),
    ("CreateCollection", "strict_mode_config", REFUSED, create({"vectors": VP, "strict_mode_config": {"enabled": True}})),
    ("CreateCollection", "metadata", REFUSED, create({"vectors": VP, "metadata": {"team": "search"}})),
    ("VectorParams", "size", APPLIED, create({"vectors": VP})),
    ("VectorParams", "distance", APPLIED, create({"vectors": {"size": 4, "distance": "Manhattan"}})),
    ("VectorParams", "hnsw_config", NO_EFFECT, create({"vectors": dict(VP, hnsw_config={"m": 8})})),
    ("VectorParams", "quantization_config", APPLIED, create({"vectors": {"a": dict(VP, quantization_config={"scalar": {"type": "int8"}})}})),
    ("VectorParams", "on_disk", NO_EFFECT, create({"vectors": dict(VP, on_disk=True)})),
    ("VectorParams", "datatype", APPLIED, create({"vectors": dict(VP, datatype="float32")})),
    ("VectorParams", "datatype", REFUSED, create({"vectors": dict(VP, datatype="float16")})),
    ("VectorParams", "multivector_config", REFUSED, create({"vectors": dict(VP, multivector_config={"comparator": "max_sim"})})),
    ("QuantizationConfig", "scalar", OBJECT, None),
    ("QuantizationConfig", "scalar.type", APPLIED, create({"vectors": VP, "quantization_config": {"scalar": {"type": "int8"}}})),
    ("QuantizationConfig", "scalar.quantile", APPLIED, create({"vectors": VP, "quantization_config": {"scalar": {"type": "int8", "quantile": 0.95}}})),
    ("QuantizationConfig", "scalar.always_ram", APPLIED, create({"vectors": VP, "quantization_config": {"scalar": {"type": "int8", "always_ram": True}}})),
    ("QuantizationConfig", "product", REFUSED, create({"vectors": VP, "quantization_config": {"product": {"compression": "x16"}}})),
    ("QuantizationConfig", "binary", REFUSED, create({"vectors": VP, "quantization_config": {"binary": {}}})),
    ("QuantizationConfig", "turbo", REFUSED, create({"vectors": VP, "quantization_config": {"turbo": {}}})),
    # PATCH /collections/{name}
    ("UpdateCollection", "vectors", OBJECT, None),
    ("UpdateCollection", "vectors.*", OBJECT, None),
    ("UpdateCollection", "vectors.*.hnsw_config", NO_EFFECT, patch({"vectors": {"": {"hnsw_config": {"m": 8}}}})),
    ("UpdateCollection", "vectors.*.on_disk", NO_EFFECT, patch({"vectors": {"": {"on_disk": True}}})),
    ("UpdateCollection", "vectors.*.quantization_config", APPLIED, patch({"vectors": {"": {"quantization_config": {"scalar": {"type": "int8", "quantile": 0.99}}}}})),
    ("UpdateCollection", "vectors.*.quantization_config", REFUSED, patch({"vectors": {"": {"quantization_config": {"product": {"compression": "x16"}}}}})),
    ("UpdateCollection", "optimizers_config", NO_EFFECT, patch({"optimizers_config": {"indexing_threshold": 1000}})),
    ("UpdateCollection", "hnsw_config", NO_EFFECT, patch({"hnsw_config": {"ef_construct": 64}})),
    ("UpdateCollection", "params", OBJECT, None),
    ("UpdateCollection", "params.replication_factor", NO_EFFECT, patch({"params": {"replication_factor": 2}})),
    ("UpdateCollection", "params.write_consistency_factor", NO_EFFECT, patch({"params": {"write_consistency_factor": 1}})),
    ("UpdateCollection", "params.read_fan_out_factor", NO_EFFECT, patch({"params": {"read_fan_out_factor": 0}})),
    ("UpdateCollection", "params.read_fan_out_delay_ms", NO_EFFECT, patch({"params": {"read_fan_out_delay_ms": 10}})),
    ("UpdateCollection", "params.on_disk_payload", NO_EFFECT, patch({"params": {"on_disk_payload": False}})),
    ("UpdateCollection", "quantization_config", APPLIED, patch({"quantization_config": {"scalar": {"type": "int8", "quantile": 1}}})),
    ("UpdateCollection", "quantization_config", REFUSED, patch({"quantization_config": {"binary": {}}})),
    ("UpdateCollection", "sparse_vectors", APPLIED, ("PATCH", "/collections/nv", {"sparse_vectors": {"s": {}}})),
    ("UpdateCollection", "strict_mode_config", REFUSED, patch({"strict_mode_config": {"enabled": True}})),
    ("UpdateCollection", "metadata", REFUSED, patch({"metadata": {"k": "v"}})),
    # PUT /collections/{name}/index
    ("CreateFieldIndex", "field_name", APPLIED, ("PUT", "/collections/c/index", {"field_name": "city", "field_schema": "keyword"})),
    ("CreateFieldIndex", "field_schema", OBJECT, None),
    ("CreateFieldIndex", "field_schema", APPLIED, ("PUT", "/collections/c/index", {"field_name": "n", "field_schema": "integer"})),
    ("CreateFieldIndex", "field_schema", APPLIED, ("PUT", "/collections/c/index", {"field_name": "loc", "field_schema": "geo"})),
    ("CreateFieldIndex", "field_schema", REFUSED, ("PUT", "/collections/c/index", {"field_name": "loc", "field_schema": {"type": "text", "tokenizer": "multilingual"}})),
    ("CreateFieldIndex", "field_schema.type", APPLIED, ("PUT", "/collections/c/index", {"field_name": "flag", "field_schema": {"type": "bool"}})),
    ("CreateFieldIndex", "field_schema.is_tenant", NO_EFFECT, ("PUT", "/collections/c/index", {"field_name": "city", "field_schema": {"type": "keyword", "is_tenant": True}})),
    ("CreateFieldIndex", "field_schema.on_disk", NO_EFFECT, ("PUT", "/collections/c/index", {"field_name": "city", "field_schema": {"type": "keyword", "on_disk": True}})),
    ("CreateFieldIndex", "field_schema.enable_hnsw", NO_EFFECT, ("PUT", "/collections/c/index", {"field_name": "n", "field_schema": {"type": "float", "enable_hnsw": False}})),
    ("CreateFieldIndex", "field_schema.is_principal", NO_EFFECT, ("PUT", "/collections/c/index", {"field_name": "n", "field_schema": {"type": "integer", "is_principal": True}})),
    ("CreateFieldIndex", "field_schema.lookup", NO_EFFECT, ("PUT", "/collections/c/index", {"field_name": "n", "field_schema": {"type": "integer", "lookup": False}})),
    ("CreateFieldIndex", "field_schema.range", NO_EFFECT, ("PUT", "/collections/c/index", {"field_name": "n", "field_schema": {"type": "integer", "range": True}})),
    ("CreateFieldIndex", "field_schema", APPLIED, ("PUT", "/collections/c/index", {"field_name": "text", "field_schema": "text"})),
    ("CreateFieldIndex", "field_schema", APPLIED, ("PUT", "/collections/c/index", {"field_name": "when", "field_schema": "datetime"})),
    ("CreateFieldIndex", "field_schema.tokenizer", APPLIED, ("PUT", "/collections/c/index", {"field_name": "text", "field_schema": {"type": "text", "tokenizer": "word"}})),
    ("CreateFieldIndex", "field_schema.tokenizer", REFUSED, ("PUT", "/collections/c/index", {"field_name": "text", "field_schema": {"type": "text", "tokenizer": "prefix"}})),
    ("CreateFieldIndex", "field_schema.lowercase", APPLIED, ("PUT", "/collections/c/index", {"field_name": "text", "field_schema": {"type": "text", "lowercase": True}})),
    ("CreateFieldIndex", "field_schema.lowercase", REFUSED, ("PUT", "/collections/c/index", {"field_name": "text", "field_schema": {"type": "text", "lowercase": False}})),
    ("CreateFieldIndex", "field_schema.phrase_matching", NO_EFFECT, ("PUT", "/collections/c/index", {"field_name": "text", "field_schema": {"type": "text", "phrase_matching": True}})),
    ("CreateFieldIndex", "field_schema.min_token_len", REFUSED, ("PUT", "/collections/c/index", {"field_name": "text", "field_schema": {"type": "text", "min_token_len": 2}})),
    ("CreateFieldIndex", "field_schema.max_token_len", REFUSED, ("PUT", "/collections/c/index", {"field_name": "text", "field_schema": {"type": "text", "max_token_len": 20}})),
    ("CreateFieldIndex", "field_schema.ascii_folding", REFUSED, ("PUT", "/collections/c/index", {"field_name": "text", "field_schema": {"type": "text", "ascii_folding": True}})),
    ("CreateFieldIndex", "field_schema.stopwords", REFUSED, ("PUT", "/collections/c/index", {"field_name": "text", "field_schema": {"type": "text", "stopwords": "english"}})),
    ("CreateFieldIndex", "field_schema.stemmer", REFUSED, ("PUT", "/collections/c/index", {"field_name": "text", "field_schema": {"type": "text", "stemmer": {"type": "snowball", "language": "english"}}})),
    # PUT /collections/{name}/points
    ("PointInsertOperations", "points", APPLIED, ("PUT", UPSERT, {"points": [{"id": 9, "vector": V}]})),
    ("PointInsertOperations", "batch", APPLIED, ("PUT", UPSERT, {"batch": {"ids": [9], "vectors": [V]}})),
    ("PointInsertOperations", "shard_key", REFUSED, ("PUT", UPSERT, {"points": [{"id": 9, "vector": V}], "shard_key": "a"})),
    ("PointInsertOperations", "update_filter", REFUSED, ("PUT", UPSERT, {"points": [{"id": 9, "vector": V}], "update_filter": {"must": []}})),
    ("PointInsertOperations", "update_mode", APPLIED, ("PUT", UPSERT, {"points": [{"id": 9, "vector": V}], "update_mode": "upsert"})),
    ("PointInsertOperations", "update_mode", REFUSED, ("PUT", UPSERT, {"points": [{"id": 9, "vector": V}], "update_mode": "insert_only"})),
    ("PointStruct", "id", APPLIED, ("PUT", UPSERT, {"points": [{"id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "vector": V}]})),
    ("PointStruct", "vector", APPLIED, ("PUT", UPSERT, {"points": [{"id": 9, "vector": V}]})),
    ("PointStruct", "payload", APPLIED, ("PUT", UPSERT, {"points": [{"id": 9, "vector": V, "payload": {"city": "Rome"}}]})),
    ("Batch", "ids", APPLIED, ("PUT", UPSERT, {"batch": {"ids": [9, 10], "vectors": [V, V]}})),
    ("Batch", "vectors", APPLIED, ("PUT", UPSERT, {"batch": {"ids": [9], "vectors": [V]}})),
    ("Batch", "payloads", APPLIED, ("PUT", UPSERT, {"batch": {"ids": [9], "vectors": [V], "payloads": [{"city": "Oslo"}]}})),
    # POST /collections/{name}/points (retrieve)
    ("PointRequest", "ids", APPLIED, ("POST", "/collections/c/points", {"ids": [1, 2]})),
    ("PointRequest", "with_payload", APPLIED, ("POST", "/collections/c/points", {"ids": [1], "with_payload": ["city"]})),
    ("PointRequest", "with_vector", APPLIED, ("POST", "/collections/c/points", {"ids": [1], "with_vector": True})),
    ("PointRequest", "shard_key", REFUSED, ("POST", "/collections/c/points", {"ids": [1], "shard_key": "a"})),
    ("WithPayloadInterface", "include", APPLIED, ("POST", "/collections/c/points", {"ids": [1], "with_payload": {"include": ["city"]}})),
    ("WithPayloadInterface", "exclude", APPLIED, ("POST", "/collections/c/points", {"ids": [1], "with_payload": {"exclude": ["city"]}})),
    # POST /collections/{name}/points/delete
    ("PointsSelector", "points", APPLIED, ("POST", "/collections/c/points/delete", {"points": [77]})),
    ("PointsSelector", "filter", APPLIED, ("POST", "/collections/c/points/delete", {"filter": {"must": [{"key": "city", "match": {"value": "Nowhere"}}]}})),
    ("PointsSelector", "shard_key", REFUSED, ("POST", "/collections/c/points/delete", {"points": [77], "shard_key": "a"})),
    # POST /collections/{name}/points/count
    ("CountRequest", "filter", APPLIED, count({"must": [{"key": "city", "match": {"value": "Berlin"}}]})),
    ("CountRequest", "exact", APPLIED, ("POST", "/collections/c/points/count", {"exact": False})),
    ("CountRequest", "shard_key", REFUSED, ("POST", "/collections/c/points/count", {"shard_key": "a"})),
    # POST /collections/{name}/points/scroll
    ("ScrollRequest", "offset", APPLIED, ("POST", "/collections/c/points/scroll", {"offset": 2})),
    ("ScrollRequest", "limit", APPLIED, ("POST", "/collections/c/points/scroll", {"limit": 1})),
    ("ScrollRequest", "filter", APPLIED, ("POST", "/collections/c/points/scroll", {"filter": {"must": []}})),
    ("ScrollRequest", "with_payload", APPLIED, ("POST", "/collections/c/points/scroll", {"with_payload": False})),
    ("ScrollRequest", "with_vector", APPLIED, ("POST", "/collections/c/points/scroll", {"with_vector": True})),
    ("ScrollRequest", "order_by", OBJECT, None),
    ("ScrollRequest", "order_by", APPLIED, ("POST", "/collections/c/points/scroll", {"order_by": "n"})),
    ("ScrollRequest", "order_by", REFUSED, ("POST", "/collections/c/points/scroll", {"order_by": "city"})),
    ("ScrollRequest", "order_by.key", APPLIED, ("POST", "/collections/c/points/scroll", {"order_by": {"key": "n"}})),
    ("ScrollRequest", "order_by.direction", APPLIED, ("POST", "/collections/c/points/scroll", {"order_by": {"key": "n", "direction": "desc"}})),
    ("ScrollRequest", "order_by.start_from", APPLIED, ("POST", "/collections/c/points/scroll", {"order_by": {"key": "n", "start_from": 2}})),
    ("ScrollRequest", "order_by.start_from", REFUSED, ("POST", "/collections/c/points/scroll", {"order_by": {"key": "n", "start_from": "2024-01-01T00:00:00Z"}})),
    ("ScrollRequest", "shard_key", REFUSED, ("POST", "/collections/c/points/scroll", {"shard_key": "a"})),
    # POST /collections/{name}/points/search
    ("SearchRequest", "vector", OBJECT, None),
    ("SearchRequest", "vector.name", APPLIED, ("POST", "/collections/nv/points/search", {"vector": {"name": "text", "vector": V}})),
    ("SearchRequest", "vector.vector", APPLIED, ("POST", "/collections/nv/points/search", {"vector": {"name": "text", "vector": V}})),
    ("SearchRequest", "vector.vector", APPLIED, ("POST", "/collections/nv/points/search", {"vector": {"name": "s", "vector": {"indices": [1], "values": [0.5]}}})),
    ("SearchRequest", "filter", APPLIED, search({"filter": {"must": [{"key": "n", "range": {"gte": 2}}]}})),
    ("SearchRequest", "params", APPLIED, search({"params": {"exact": True}})),
    ("SearchRequest", "limit", APPLIED, search({"limit": 1})),
    ("SearchRequest", "offset", APPLIED, search({"offset": 1})),
    ("SearchRequest", "with_payload", APPLIED, search({"with_payload": True})),
    ("SearchRequest", "with_vector", APPLIED, search({"with_vector": True})),
    ("SearchRequest", "score_threshold", APPLIED, search({"score_threshold": 0.5})),
    ("SearchRequest", "shard_key", REFUSED, search({"shard_key": "a"})),
    ("SearchParams", "exact", APPLIED, params({"exact": True})),
    ("SearchParams", "hnsw_ef", NO_EFFECT, params({"hnsw_ef": 128})),
    ("SearchParams", "acorn", NO_EFFECT, params({"acorn": {"enable": True}})),
    ("SearchParams", "indexed_only", APPLIED, params({"indexed_only": True})),
    ("SearchParams", "quantization", OBJECT, None),
    ("SearchParams", "quantization.ignore", APPLIED, params({"quantization": {"ignore": True}})),
    ("SearchParams", "quantization.rescore", APPLIED, params({"quantization": {"rescore": False}})),
    ("SearchParams", "quantization.oversampling", APPLIED, params({"quantization": {"oversampling": 2.0}})),
    # POST /collections/{name}/points/query
    ("QueryRequest", "query", APPLIED, query({"query": V})),
    ("QueryRequest", "query", APPLIED, query({"query": 1})),
    # The query forms (QueryInterface, also under prefetch), relative paths.
    ("QueryInterface", "nearest", APPLIED, query({"query": {"nearest": 2}})),
    ("QueryInterface", "mmr", OBJECT, None),
    ("QueryInterface", "mmr.diversity", APPLIED, query({"query": {"nearest": V, "mmr": {"diversity": 0.5}}})),
    ("QueryInterface", "mmr.candidates_limit", APPLIED, query({"query": {"nearest": V, "mmr": {"candidates_limit": 3}}})),
    ("QueryInterface", "indices", APPLIED, ("POST", "/collections/nv/points/query", {"query": {"indices": [1], "values": [0.5]}, "using": "s"})),
    ("QueryInterface", "values", APPLIED, ("POST", "/collections/nv/points/query", {"query": {"indices": [1], "values": [0.5]}, "using": "s"})),
    ("QueryInterface", "text", REFUSED, query({"query": {"text": "hello", "model": "m"}})),
    ("QueryInterface", "image", REFUSED, query({"query": {"image": "x.png", "model": "m"}})),
    ("QueryInterface", "object", REFUSED, query({"query": {"object": {}, "model": "m"}})),
    ("QueryInterface", "model", REFUSED, query({"query": {"model": "m"}})),
    ("QueryInterface", "options", REFUSED, query({"query": {"options": {}}})),
    ("QueryInterface", "recommend", OBJECT, None),
    ("QueryInterface", "recommend.positive", APPLIED, query({"query": {"recommend": {"positive": [1, V]}}})),
    ("QueryInterface", "recommend.negative", APPLIED, query({"query": {"recommend": {"positive": [1], "negative": [2]}}})),
    ("QueryInterface", "recommend.strategy", APPLIED, query({"query": {"recommend": {"positive": [1], "negative": [2], "strategy": "best_score"}}})),
    ("QueryInterface", "discover", OBJECT, None),
    ("QueryInterface", "discover.target", APPLIED, query({"query": {"discover": {"target": 1, "context": [{"positive": 2, "negative": 3}]}}})),
    ("QueryInterface", "discover.context", OBJECT, None),
    ("QueryInterface", "discover.context.positive", APPLIED, query({"query": {"discover": {"target": V, "context": {"positive": 2, "negative": 3}}}})),
    ("QueryInterface", "discover.context.negative", APPLIED, query({"query": {"discover": {"target": V, "context": [{"positive": 2, "negative": V}]}}})),
    ("QueryInterface", "context", OBJECT, None),
    ("QueryInterface", "context.positive", APPLIED, query({"query": {"context": [{"positive": 2, "negative": 3}]}})),
    ("QueryInterface", "context.negative", APPLIED, query({"query": {"context": {"positive": V, "negative": 3}}})),
    ("QueryInterface", "order_by", OBJECT, None),
    ("QueryInterface", "order_by", APPLIED, query({"query": {"order_by": "n"}})),
    ("QueryInterface", "order_by.key", APPLIED, query({"query": {"order_by": {"key": "n"}}})),
    ("QueryInterface", "order_by.direction", APPLIED, query({"query": {"order_by": {"key": "n", "direction": "desc"}}})),
    ("QueryInterface", "order_by.start_from", APPLIED, query({"query": {"order_by": {"key": "n", "start_from": 2}}})),
    ("QueryInterface", "fusion", APPLIED, query({"prefetch": [{"query": V}, {"query": 1}], "query": {"fusion": "dbsf"}})),
    ("QueryInterface", "rrf", OBJECT, None),
    ("QueryInterface", "rrf.k", APPLIED, query({"prefetch": [{"query": V}], "query": {"rrf": {"k": 60}}})),
    ("QueryInterface", "rrf.weights", APPLIED, query({"prefetch": [{"query": V}, {"query": 1}], "query": {"rrf": {"weights": [1, 0.5]}}})),
    ("QueryInterface", "formula", APPLIED, query({"prefetch": {"query": V}, "query": {"formula": {"sum": ["$score", {"mult": [0.5, {"key": "city", "match": {"value": "Berlin"}}]}]}}})),
    ("QueryInterface", "defaults", APPLIED, query({"prefetch": {"query": V}, "query": {"formula": {"mult": ["$score", "n"]}, "defaults": {"n": 1}}})),
    ("QueryInterface", "sample", APPLIED, query({"query": {"sample": "random"}})),
    ("QueryInterface", "relevance_feedback", APPLIED, query({"query": {"relevance_feedback": {"target": V, "feedback": [{"example": 1, "score": 0.9}, {"example": 2, "score": 0.1}], "strategy": {"naive": {"a": 1, "b": 1, "c": 1}}}}})),
    ("QueryRequest", "using", APPLIED, ("POST", "/collections/nv/points/query", {"query": V, "using": "text"})),
    ("QueryRequest", "prefetch", APPLIED, query({"prefetch": [{"query": V, "limit": 5}]})),
    ("QueryRequest", "lookup_from", OBJECT, None),
    ("QueryRequest", "lookup_from.collection", APPLIED, query({"query": 1, "lookup_from": {"collection": "nv", "vector": "text"}})),
    ("QueryRequest", "lookup_from.vector", APPLIED, query({"query": 1, "lookup_from": {"collection": "nv", "vector": "text"}})),
    ("QueryRequest", "lookup_from.shard_key", REFUSED, query({"query": 1, "lookup_from": {"collection": "nv", "shard_key": "a"}})),
    # prefetch stages
    ("Prefetch", "prefetch", APPLIED, query({"prefetch": {"prefetch": {"query": V, "limit": 9}, "query": 1}})),
    ("Prefetch", "query", APPLIED, query({"prefetch": {"query": {"recommend": {"positive": [1]}}}})),
    ("Prefetch", "using", APPLIED, ("POST", "/collections/nv/points/query", {"query": V, "using": "text", "prefetch": {"query": [1, 0], "using": "image"}})),
    ("Prefetch", "filter", APPLIED, query({"prefetch": {"query": V, "filter": {"must": [{"has_id": [1, 2]}]}}})),
    ("Prefetch", "params", APPLIED, query({"prefetch": {"query": V, "params": {"exact": True}}})),
    ("Prefetch", "score_threshold", APPLIED, query({"prefetch": {"query": V, "score_threshold": 0.5}})),
    ("Prefetch", "limit", APPLIED, query({"prefetch": {"query": V, "limit": 3}})),
    ("Prefetch", "lookup_from", OBJECT, None),
    ("Prefetch", "lookup_from.collection", APPLIED, query({"prefetch": {"query": 1, "lookup_from": {"collection": "nv", "vector": "text"}}})),
    ("Prefetch", "lookup_from.vector", APPLIED, query({"prefetch": {"query": 1, "lookup_from": {"collection": "nv", "vector": "text"}}})),
    ("Prefetch", "lookup_from.shard_key", REFUSED, query({"prefetch": {"query": 1, "lookup_from": {"collection": "nv", "shard_key": "a"}}})),
    ("QueryRequest", "filter", APPLIED, query({"filter": {"must_not": [{"has_id": [1]}]}})),
    ("QueryRequest", "params", APPLIED, query({"params": {"exact": True}})),
    ("QueryRequest", "score_threshold", APPLIED, query({"score_threshold": 0.1})),
    ("QueryRequest", "limit", APPLIED, query({"limit": 1})),
    ("QueryRequest", "offset", APPLIED, query({"offset": 1})),
    ("QueryRequest", "with_vector", APPLIED, query({"with_vector": True})),
    ("QueryRequest", "with_payload", APPLIED, query({"with_payload": True})),
    ("QueryRequest", "shard_key", REFUSED, query({"shard_key": "a"})),
    # POST/PUT /collections/{name}/points/payload
    ("SetPayload", "payload", APPLIED, ("POST", "/collections/c/points/payload", {"payload": {"x": 1}, "points": [1]})),
    ("SetPayload", "points", APPLIED, ("PUT", "/collections/c/points/payload", {"payload": {"city": "Berlin", "n": 1}, "points": [1]})),
    ("SetPayload", "filter", APPLIED, ("POST", "/collections/c/points/payload", {"payload": {"x": 1}, "filter": {"must": [{"has_id": [1]}]}})),
    ("SetPayload", "key", APPLIED, ("POST", "/collections/c/points/payload", {"payload": {"x": 1}, "points": [1], "key": "meta"})),
    ("SetPayload", "key", APPLIED, ("PUT", "/collections/c/points/payload", {"payload": {"x": 1}, "points": [1], "key": "meta"})),
    ("SetPayload", "key", REFUSED, ("POST", "/collections/c/points/payload", {"payload": {"x": 1}, "points": [1], "key": "meta[0]"})),
    # POST .../points/payload/delete and .../clear (a PointsSelector, above)
    ("DeletePayload", "keys", APPLIED, ("POST", "/collections/c/points/payload/delete", {"keys": ["x", "meta.x"], "points": [1]})),
    ("DeletePayload", "points", APPLIED, ("POST", "/collections/c/points/payload/delete", {"keys": ["x"], "points": [1]})),
    ("DeletePayload", "filter", APPLIED, ("POST", "/collections/c/points/payload/delete", {"keys": ["x"], "filter": {"must": [{"has_id": [1]}]}})),
    ("DeletePayload", "shard_key", REFUSED, ("POST", "/collections/c/points/payload/delete", {"keys": ["x"], "points": [1], "shard_key": "a"})),
    # PUT .../points/vectors and POST .../points/vectors/delete
    ("UpdateVectors", "points", APPLIED, ("PUT", "/collections/nv/points/vectors", {"points": [{"id": 1, "vector": {"image": [0, 1]}}]})),
    ("UpdateVectors", "shard_key", REFUSED, ("PUT", "/collections/nv/points/vectors", {"points": [], "shard_key": "a"})),
    ("UpdateVectors", "update_filter", REFUSED, ("PUT", "/collections/nv/points/vectors", {"points": [], "update_filter": {"must": []}})),
    ("PointVectors", "id", APPLIED, ("PUT", "/collections/nv/points/vectors", {"points": [{"id": 1, "vector": {"text": V}}]})),
    ("PointVectors", "vector", APPLIED, ("PUT", "/collections/nv/points/vectors", {"points": [{"id": 1, "vector": {"text": V, "image": [1, 0]}}]})),
    ("DeleteVectors", "points", APPLIED, ("POST", "/collections/nv/points/vectors/delete", {"points": [2], "vector": ["image"]})),
    ("DeleteVectors", "vector", APPLIED, ("POST", "/collections/nv/points/vectors/delete", {"points": [2], "vector": ["image"]})),
    ("DeleteVectors", "filter", APPLIED, ("POST", "/collections/nv/points/vectors/delete", {"filter": {"must": [{"has_id": [1]}]}, "vector": ["image"]})),
    ("DeleteVectors", "shard_key", REFUSED, ("POST", "/collections/nv/points/vectors/delete", {"points": [2], "vector": ["image"], "shard_key": "a"})),
    ("SetPayload", "shard_key", REFUSED, ("POST", "/collections/c/points/payload", {"payload": {"x": 1}, "points": [1], "shard_key": "a"})),
    # .../search/batch and .../query/batch
    ("SearchRequestBatch", "searches", APPLIED, ("POST", "/collections/c/points/search/batch", {"searches": [{"vector": V, "limit": 1}]})),
    ("QueryRequestBatch", "searches", APPLIED, ("POST", "/collections/c/points/query/batch", {"searches": [{"query": V, "limit": 1}]})),
    # POST .../points/batch (each operation body is its endpoint's schema, walked above)
    ("UpdateOperations", "operations", OBJECT, None),
    ("UpdateOperations", "operations.upsert", APPLIED, ("POST", "/collections/c/points/batch", {"operations": [{"upsert": {"points": [{"id": 9, "vector": V}]}}]})),
    ("UpdateOperations", "operations.delete", APPLIED, ("POST", "/collections/c/points/batch", {"operations": [{"delete": {"points": [77]}}]})),
    ("UpdateOperations", "operations.set_payload", APPLIED, ("POST", "/collections/c/points/batch", {"operations": [{"set_payload": {"payload": {"x": 1}, "points": [1]}}]})),
    ("UpdateOperations", "operations.overwrite_payload", APPLIED, ("POST", "/collections/c/points/batch", {"operations": [{"overwrite_payload": {"payload": {"city": "Berlin", "n": 1}, "points": [1]}}]})),
    ("UpdateOperations", "operations.delete_payload", APPLIED, ("POST", "/collections/c/points/batch", {"operations": [{"delete_payload": {"keys": ["x"], "points": [1]}}]})),
    ("UpdateOperations", "operations.clear_payload", APPLIED, ("POST", "/collections/c/points/batch", {"operations": [{"clear_payload": {"points": [9]}}]})),
    ("UpdateOperations", "operations.update_vectors", APPLIED, ("POST", "/collections/c/points/batch", {"operations": [{"update_vectors": {"points": [{"id": 9, "vector": V}]}}]})),
    ("UpdateOperations", "operations.delete_vectors", APPLIED, ("POST", "/collections/c/points/batch", {"operations": [{"delete_vectors": {"points": [9], "vector": [""]}}]})),
    # POST /collections/aliases
    ("ChangeAliasesOperation", "actions", OBJECT, None),
    ("ChangeAliasesOperation", "actions.create_alias", OBJECT, None),
    ("ChangeAliasesOperation", "actions.create_alias.collection_name", APPLIED, ("POST", "/collections/aliases", {"actions": [{"create_alias": {"collection_name": "c", "alias_name": "c_alias"}}]})),
    ("ChangeAliasesOperation", "actions.create_alias.alias_name", APPLIED, ("POST", "/collections/aliases", {"actions": [{"create_alias": {"collection_name": "c", "alias_name": "c_alias2"}}]})),
    ("ChangeAliasesOperation", "actions.rename_alias", OBJECT, None),
    ("ChangeAliasesOperation", "actions.rename_alias.old_alias_name", APPLIED, ("POST", "/collections/aliases", {"actions": [{"rename_alias": {"old_alias_name": "c_alias2", "new_alias_name": "c_alias3"}}]})),
    ("ChangeAliasesOperation", "actions.rename_alias.new_alias_name", APPLIED, ("POST", "/collections/aliases", {"actions": [{"rename_alias": {"old_alias_name": "c_alias3", "new_alias_name": "c_alias4"}}]})),
    ("ChangeAliasesOperation", "actions.delete_alias", OBJECT, None),
    ("ChangeAliasesOperation", "actions.delete_alias.alias_name", APPLIED, ("POST", "/collections/aliases", {"actions": [{"delete_alias": {"alias_name": "c_alias4"}}]})),
    # Filters (through count)
    ("Filter", "must", APPLIED, count({"must": [{"key": "city", "match": {"value": "Berlin"}}]})),
    ("Filter", "should", APPLIED, count({"should": [{"key": "city", "match": {"value": "Berlin"}}]})),
    ("Filter", "must_not", APPLIED, count({"must_not": {"key": "city", "match": {"value": "Berlin"}}})),
    ("Filter", "min_should", OBJECT, None),
    ("Filter", "min_should.conditions", APPLIED, count({"min_should": {"conditions": [{"has_id": [1]}, {"has_id": [2]}], "min_count": 1}})),
    ("Filter", "min_should.min_count", APPLIED, count({"min_should": {"conditions": [{"has_id": [1]}], "min_count": 1}})),
    ("Condition", "key", APPLIED, cond({"key": "city", "match": {"value": "Berlin"}})),
    ("Condition", "match", OBJECT, None),
    ("Condition", "match.value", APPLIED, cond({"key": "n", "match": {"value": 2}})),
    ("Condition", "match.text", APPLIED, cond({"key": "text", "match": {"text": "llo wor"}})),
    ("Condition", "match.text_any", APPLIED, cond({"key": "text", "match": {"text_any": "hello moon"}})),
    ("Condition", "match.phrase", APPLIED, cond({"key": "text", "match": {"phrase": "hello world"}})),
    ("Condition", "match.any", APPLIED, cond({"key": "city", "match": {"any": ["Berlin", "London"]}})),
    ("Condition", "match.except", APPLIED, cond({"key": "city", "match": {"except": ["Berlin"]}})),
    ("Condition", "range", OBJECT, None),
    ("Condition", "range.gt", APPLIED, cond({"key": "n", "range": {"gt": 1}})),
    ("Condition", "range.gte", APPLIED, cond({"key": "n", "range": {"gte": 1}})),
    ("Condition", "range.lt", APPLIED, cond({"key": "n", "range": {"lt": 3}})),
    ("Condition", "range.lte", APPLIED, cond({"key": "n", "range": {"lte": 3}})),
    ("Condition", "range.gt", APPLIED, cond({"key": "when", "range": {"gt": "2024-01-01T00:00:00Z"}})),
    ("Condition", "range.lte", APPLIED, cond({"key": "when", "range": {"lte": "2024-01-01 10:00"}})),
    ("Condition", "values_count", OBJECT, None),
    ("Condition", "values_count.gt", APPLIED, cond({"key": "tags", "values_count": {"gt": 1}})),
    ("Condition", "values_count.gte", APPLIED, cond({"key": "tags", "values_count": {"gte": 1}})),
    ("Condition", "values_count.lt", APPLIED, cond({"key": "tags", "values_count": {"lt": 2}})),
    ("Condition", "values_count.lte", APPLIED, cond({"key": "tags", "values_count": {"lte": 2}})),
    ("Condition", "is_empty", APPLIED, cond({"is_empty": {"key": "tags"}})),
    ("Condition", "is_empty", APPLIED, cond({"key": "tags", "is_empty": False})),
    ("Condition", "is_null", APPLIED, cond({"is_null": {"key": "tags"}})),
    ("Condition", "is_null", APPLIED, cond({"key": "tags", "is_null": True})),
    ("Condition", "has_id", APPLIED, cond({"has_id": [1, 2]})),
    ("Condition", "has_vector", APPLIED, ("POST", "/collections/nv/points/count", {"filter": {"must": [{"has_vector": "image"}]}})),
    ("Condition", "nested", OBJECT, None),
    ("Condition", "nested.key", APPLIED, cond({"nested": {"key": "items", "filter": {"must": [{"key": "a", "match": {"value": 1}}]}}})),
    ("Condition", "nested.filter", APPLIED, cond({"nested": {"key": "items[]", "filter": {"should": [{"key": "a", "range": {"gt": 0}}]}}})),
    ("Condition", "geo_radius", OBJECT, None),
    ("Condition", "geo_radius.center", OBJECT, None),
    ("Condition", "geo_radius.center.lon", APPLIED, cond({"key": "loc", "geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 10}})),
    ("Condition", "geo_radius.center.lat", APPLIED, cond({"key": "loc", "geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 10}})),
    ("Condition", "geo_radius.radius", APPLIED, cond({"key": "loc", "geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 10}})),
    ("Condition", "geo_bounding_box", OBJECT, None),
    ("Condition", "geo_bounding_box.top_left", OBJECT, None),
    ("Condition", "geo_bounding_box.top_left.lon", APPLIED, cond({"key": "loc", "geo_bounding_box": {"top_left": {"lon": 0, "lat": 1}, "bottom_right": {"lon": 1, "lat": 0}}})),
    ("Condition", "geo_bounding_box.top_left.lat", APPLIED, cond({"key": "loc", "geo_bounding_box": {"top_left": {"lon": 0, "lat": 1}, "bottom_right": {"lon": 1, "lat": 0}}})),
    ("Condition", "geo_bounding_box.bottom_right", OBJECT, None),
    ("Condition", "geo_bounding_box.bottom_right.lon", APPLIED, cond({"key": "loc", "geo_bounding_box": {"top_left": {"lon": 0, "lat": 1}, "bottom_right": {"lon": 1, "lat": 0}}})),
    ("Condition", "geo_bounding_box.bottom_right.lat", APPLIED, cond({"key": "loc", "geo_bounding_box": {"top_left": {"lon": 0, "lat": 1}, "bottom_right": {"lon": 1, "lat": 0}}})),
    ("Condition", "geo_polygon", OBJECT, None),
    ("Condition", "geo_polygon.exterior", OBJECT, None),
    ("Condition", "geo_polygon.exterior.points", OBJECT, None),
    ("Condition", "geo_polygon.exterior.points.lon", APPLIED, cond({"key": "loc", "geo_polygon": {"exterior": RING}})),
    ("Condition", "geo_polygon.exterior.points.lat", APPLIED, cond({"key": "loc", "geo_polygon": {"exterior": RING}})),
    ("Condition", "geo_polygon.interiors", OBJECT, None),
    ("Condition", "geo_polygon.interiors.points", OBJECT, None),
    ("Condition", "geo_polygon.interiors.points.lon", APPLIED, cond({"key": "loc", "geo_polygon": {"exterior": RING, "interiors": [RING]}})),
    ("Condition", "geo_polygon.interiors.points.lat", APPLIED, cond({"key": "loc", "geo_polygon": {"exterior": RING, "interiors": [RING]}})),
]

# Requests into which a made-up field is slipped at some level: each must be
# refused, naming that field.
UNKNOWN = "qvec_no_such_field"
PROBES = [
    ("PUT", "/collections/{new}/snapshots/recover", {"location": "{snapshot_url}", UNKNOWN: 1}),
    create({"vectors": VP, UNKNOWN: 1}),
    create({"vectors": dict(VP, **{UNKNOWN: 1})}),
    create({"vectors": VP, "quantization_config": {"scalar": {"type": "int8", UNKNOWN: 1}}}),
    create({"vectors": VP, "qvec": {"index": {UNKNOWN: 1}}}),
    patch({UNKNOWN: 1}),
    patch({"params": {UNKNOWN: 1}}),
    ("PUT", UPSERT, {"points": [{"id": 9, "vector": V, UNKNOWN: 1}]}),
    ("PUT", UPSERT, {"batch": {"ids": [9], "vectors": [V], UNKNOWN: 1}}),
    ("PUT", UPSERT, {"points": [], UNKNOWN: 1}),
    ("POST", "/collections/c/points", {"ids": [1], UNKNOWN: 1}),
    ("POST", "/collections/c/points", {"ids": [1], "with_payload": {"include": ["a"], UNKNOWN: 1}}),
    ("POST", "/collections/c/points/delete", {"points": [77], UNKNOWN: 1}),
    ("POST", "/collections/c/points/count", {UNKNOWN: 1}),
    count({UNKNOWN: 1}),
    cond({"key": "city", "match": {"value": "Berlin"}, UNKNOWN: 1}),
    cond({"key": "city", "match": {"value": "Berlin", UNKNOWN: 1}}),
    cond({"key": "n", "range": {"gt": 1, UNKNOWN: 1}}),
    cond({"is_empty": {"key": "tags", UNKNOWN: 1}}),
    count({"min_should": {"conditions": [], "min_count": 1, UNKNOWN: 1}}),
    ("POST", "/collections/c/points/scroll", {UNKNOWN: 1}),
    search({UNKNOWN: 1}),
    params({UNKNOWN: 1}),
    params({"quantization": {UNKNOWN: 1}}),
    ("POST", "/collections/nv/points/search", {"vector": {"name": "text", "vector": V, UNKNOWN: 1}}),
    query({UNKNOWN: 1}),
    query({"query": {"nearest": V, UNKNOWN: 1}}),
    ("POST", "/collections/c/points/payload", {"payload": {"x": 1}, "points": [1], UNKNOWN: 1}),
    ("POST", "/collections/c/points/search/batch", {"searches": [{"vector": V, UNKNOWN: 1}]}),
    ("POST", "/collections/c/points/query/batch", {"searches": [], UNKNOWN: 1}),
    ("PUT", "/collections/c/index", {"field_name": "city", UNKNOWN: 1}),
    ("POST", "/collections/c/points/payload/delete", {"keys": [], "points": [1], UNKNOWN: 1}),
    ("POST", "/collections/c/points/payload/clear", {"points": [77], UNKNOWN: 1}),
    ("PUT", "/collections/nv/points/vectors", {"points": [{"id": 1, "vector": {"text": V}, UNKNOWN: 1}]}),
    ("POST", "/collections/nv/points/vectors/delete", {"points": [1], "vector": [], UNKNOWN: 1}),
    ("POST", "/collections/aliases", {"actions": [], UNKNOWN: 1}),
    ("POST", "/collections/c/points/batch", {"operations": [], UNKNOWN: 1}),
    ("POST", "/collections/c/points/batch", {"operations": [{"delete": {"points": [77]}, UNKNOWN: 1}]}),
    ("POST", "/collections/c/points/batch", {"operations": [{"delete": {"points": [77], UNKNOWN: 1}}]}),
    ("POST", "/collections/aliases", {"actions": [{"delete_alias": {"alias_name": "x", UNKNOWN: 1}}]}),
    ("POST", "/collections/aliases", {"actions": [{"delete_alias": {"alias_name": "x"}, UNKNOWN: 1}]}),
]


class Walk:
    """Enumerates request fields of the OpenAPI schemas, guided by FIELDS."""

    def __init__(self, spec):
        self.schemas = spec["components"]["schemas"]
        self.rows = {}
        for schema, field, handling, _ in FIELDS:
            self.rows.setdefault(schema, {}).setdefault(field, set()).add(handling)
        self.errors = []
        self.walked = set()

    def refs(self, s):
        """Schema names that `s` refers to directly (through anyOf/arrays)."""
        if "$ref" in s:
            return [s["$ref"].split("/")[-1]]
        out = []
        for k in ("anyOf", "oneOf", "allOf"):
            for x in s.get(k, []):
                out += self.refs(x)
        if s.get("type") == "array" and "items" in s:
            out += self.refs(s["items"])
        return out

    def properties(self, s, root, seen=()):
        """(name, schema) of the object properties `s` can carry; refs to
        other walked schemas are walked on their own."""
        if "$ref" in s:
            name = s["$ref"].split("/")[-1]
            if name in self.rows and name != root:
                self.schema(name)
                return []
            if name in seen:
                return []
            return self.properties(self.schemas[name], root, seen + (name,))
        out = []
        for k in ("anyOf", "oneOf", "allOf"):
            for x in s.get(k, []):
                out += self.properties(x, root, seen)
        if s.get("type") == "array" and "items" in s:
            out += self.properties(s["items"], root, seen)
        out += list(s.get("properties", {}).items())
        extra = s.get("additionalProperties")
        if isinstance(extra, dict):
            out.append(("*", extra))
        return out

    def schema(self, name):
        if name in self.walked:
            return
        self.walked.add(name)
        if name not in self.rows:
            self.errors.append(f"schema {name} has no rows in FIELDS")
            return
        self.fields(self.schemas[name], name, "")

    def fields(self, s, root, prefix):
        done = set()
        for prop, sub in self.properties(s, root):
            path = f"{prefix}.{prop}" if prefix else prop
            if path in done:
                continue
            done.add(path)
            handling = self.rows[root].get(path)
            if handling is None:
                self.errors.append(f"{root}: field '{path}' is not classified in FIELDS")
                continue
            if OBJECT in handling:
                self.fields(sub, root, path)
            elif APPLIED in handling or NO_EFFECT in handling:
                for r in self.refs(sub):
                    if r in self.rows:
                        self.schema(r)


def body_schema(spec, method, path):
    op = spec["paths"][path][method]
    s = op["requestBody"]["content"]["application/json"]["schema"]
    return s["$ref"].split("/")[-1]


class Server:
    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="qvec-api-coverage-")
        self.proc = subprocess.Popen(
            [binary, "serve", "--data", os.path.join(self.dir, "data"), "--port", "0",
             "--log-level", "info"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        for line in self.proc.stderr:
            m = re.search(r"listening on http://([\d.]+):(\d+)", line)
            if m:
                self.base = f"http://{m.group(1)}:{m.group(2)}"
                break
        else:
            raise RuntimeError("qvec serve did not start")

    def call(self, method, target, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + target, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    binary, source = sys.argv[1], sys.argv[2]
    spec = json.load(open(os.path.join(source, "tests/fixtures/qdrant-openapi/qdrant-openapi-1.18.json")))
    failures = []

    # 1. Every field of every served endpoint's request schema is classified.
    walk = Walk(spec)
    for method, path in ENDPOINTS:
        walk.schema(body_schema(spec, method, path))
    failures += walk.errors
    unused = {s for s, _, _, _ in FIELDS} - walk.walked
    failures += [f"FIELDS has rows for {s}, which no served endpoint reaches" for s in sorted(unused)]

    # 2. README lists exactly the fields accepted without effect.
    readme = open(os.path.join(source, "README.md")).read()
    m = re.search(r"### Accepted without effect\n(.*?)\n### ", readme, re.S)
    if not m:
        failures.append("README.md has no '### Accepted without effect' section")
    else:
        listed = {x.split(".")[-1] for x in re.findall(r"`([a-z_.]+)`", m.group(1))}
        no_effect = {f.split(".")[-1] for _, f, h, _ in FIELDS if h == NO_EFFECT}
        if no_effect - listed:
            failures.append(f"README.md does not list {sorted(no_effect - listed)} as accepted without effect")
        extra = listed - no_effect - {"timeout", "consistency", "wait", "ordering"}
        if extra:
            failures.append(f"README.md lists {sorted(extra)} as accepted without effect, FIELDS does not")

    server = Server(binary)
    try:
        setup = [
            ("PUT", "/collections/c", {"vectors": VP}),
            ("PUT", "/collections/c/points?wait=true", {"points": [
                {"id": 1, "vector": [0.05, 0.61, 0.76, 0.74], "payload": {"city": "Berlin", "n": 1, "tags": ["a", "b"], "text": "hello world"}},
                {"id": 2, "vector": [0.19, 0.81, 0.75, 0.11], "payload": {"city": "London", "n": 2, "tags": [], "text": "Hello there"}},
                {"id": 3, "vector": [0.36, 0.55, 0.47, 0.94], "payload": {"city": "Moscow", "n": 3, "tags": None}}]}),
            ("PUT", "/collections/nv", {"vectors": {"text": VP, "image": {"size": 2, "distance": "Dot"}}, "sparse_vectors": {"s": {}}}),
            ("PUT", "/collections/nv/points", {"points": [{"id": 1, "vector": {"text": V, "image": [1, 0], "s": {"indices": [1, 7], "values": [0.5, 1]}}, "payload": {"k": "a"}},
                                                          {"id": 2, "vector": {"text": V, "image": [0, 1]}, "payload": {"k": 1}}]}),
            ("PUT", "/collections/c/index", {"field_name": "city", "field_schema": "keyword"}),
            ("PUT", "/collections/c/index", {"field_name": "n", "field_schema": "integer"}),
        ]
        for method, target, body in setup:
            status, text = server.call(method, target, body)
            if status != 200:
                raise RuntimeError(f"setup {method} {target}: {status} {text}")
        status, text = server.call("POST", "/collections/c/snapshots", {})
        if status != 200:
            raise RuntimeError(f"setup snapshot: {status} {text}")
        snap = json.loads(text)["result"]
        fill = {"{snapshot_url}": f"{server.base}/collections/c/snapshots/{snap['name']}",
                "{snapshot_checksum}": snap["checksum"]}

        def filled(body):
            text = json.dumps(body)
            for k, v in fill.items():
                text = text.replace(k, v)
            return json.loads(text)

        # 3. Each classified field behaves as classified.
        checked = 0
        for i, (schema, field, handling, request) in enumerate(FIELDS):
            if request is None:
                continue
            method, target, body = request
            target = target.replace("{new}", f"new_{i}")
            body = filled(body)
            status, text = server.call(method, target, body)
            checked += 1
            where = f"{schema}.{field} ({handling}): {method} {target} {json.dumps(body)} -> {status} {text[:300]}"
            if handling in (APPLIED, NO_EFFECT):
                if status != 200:
                    failures.append(where)
            else:
                name = field.split(".")[-1]
                if status != 400 or name not in text or "support" not in text:
                    failures.append(f"expected 400 naming '{name}' as not supported: {where}")

        # 4. Made-up fields are refused at every level.
        for method, target, body in PROBES:
            target = target.replace("{new}", "probe")
            status, text = server.call(method, target, filled(body))
            if status != 400 or UNKNOWN not in text:
                failures.append(f"made-up field not refused: {method} {target} {json.dumps(body)} -> {status} {text[:300]}")

        # 5. Query parameters.
        for target, ok in [("/collections/c/points/count?timeout=10", True),
                           ("/collections/c/points/count?consistency=majority", True),
                           ("/collections/c/points/count?consistency=2", True),
                           ("/collections/c/points/count?wait=true&ordering=strong", True),
                           ("/collections/c/points/count?timeout=soon", False),
                           ("/collections/c/points/count?consistency=most", False),
                           ("/collections/c/points/count?qvec_no_such_param=1", False)]:
            status, text = server.call("POST", target, {})
            if ok and status != 200:
                failures.append(f"{target} -> {status} {text[:200]}")
            if not ok and (status != 400 or target.split("?")[1].split("=")[0] not in text):
                failures.append(f"{target} should be refused, naming the parameter -> {status} {text[:200]}")
    finally:
        server.stop()

    for f in failures:
        print("FAIL:", f)
    print(f"{len(walk.walked)} schemas walked, {checked} field requests, {len(PROBES)} made-up-field "
          f"probes, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
