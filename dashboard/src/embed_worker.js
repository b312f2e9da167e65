// 2-D embeddings of a sample of vectors, computed in a web worker (this file,
// bundled on its own as /dashboard/embed_worker.js):
// - PCA: a randomized SVD (see pca below);
// - t-SNE: van der Maaten's Barnes-Hut approximation (sparse input affinities
//   over each point's 3 x perplexity nearest neighbours, found after a PCA to
//   50 dimensions; repulsion through a quadtree with theta = 0.7; 500
//   iterations, the first 200 exaggerated);
// - UMAP: umap-js (npm) on the same 50-dimension PCA, 15 neighbours, a
//   seeded generator so a map is the same every time it is drawn.
// The worker posts {progress, stage, y?} as it goes, {done, y} at the end
// and {error} if it fails; y is n * 2 floats.
import { UMAP } from 'umap-js';

// The top-k principal components' scores (n * k) of x (n * d), by a
// randomized SVD (Halko, Martinsson and Tropp): a Gaussian test matrix of
// k + 10 columns, two power iterations with re-orthonormalization, then the
// exact eigenvectors of the small (k + 10) x (k + 10) problem by Jacobi
// rotations. Cost ~6 n d (k + 10) multiply-adds: 1-2 s for 5000 x 784 to
// 50, where deflated power iteration per component took 40 s.
function pca(x, n, d, k) {
  k = Math.min(k, d, n);
  const l = Math.min(d, n, k + 10);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; ++i) for (let j = 0; j < d; ++j) mean[j] += x[i * d + j];
  for (let j = 0; j < d; ++j) mean[j] /= n;
  const c = new Float32Array(n * d);
  for (let i = 0; i < n; ++i) for (let j = 0; j < d; ++j) c[i * d + j] = x[i * d + j] - mean[j];
  // A seeded Gaussian test matrix (d * l): the same picture every time.
  let seed = 12345;
  const uniform = () => ((seed = (seed * 48271) % 2147483647) + 0.5) / 2147483647;
  const omega = new Float64Array(d * l);
  for (let t = 0; t < d * l; ++t) omega[t] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  // rows * cols by (cols * l): out[r] = sum_j a[r, j] * m[j, :].
  const times = (a, rows, cols, m) => {
    const out = new Float64Array(rows * l);
    for (let r = 0; r < rows; ++r) {
      const o = r * l;
      for (let j = 0; j < cols; ++j) {
        const v = a[r * cols + j];
        if (v === 0) continue;
        const mj = j * l;
        for (let t = 0; t < l; ++t) out[o + t] += v * m[mj + t];
      }
    }
    return out;
  };
  // c^T * y (d * l) without forming c^T.
  const transposeTimes = (y) => {
    const out = new Float64Array(d * l);
    for (let i = 0; i < n; ++i) {
      const yi = i * l;
      for (let j = 0; j < d; ++j) {
        const v = c[i * d + j];
        if (v === 0) continue;
        const o = j * l;
        for (let t = 0; t < l; ++t) out[o + t] += v * y[yi + t];
      }
    }
    return out;
  };
  // Modified Gram-Schmidt on the l columns of a (rows * l), in place.
  const orthonormalize = (a, rows) => {
    for (let t = 0; t < l; ++t) {
      for (let u = 0; u < t; ++u) {
        let dot = 0;
        for (let r = 0; r < rows; ++r) dot += a[r * l + t] * a[r * l + u];
        for (let r = 0; r < rows; ++r) a[r * l + t] -= dot * a[r * l + u];
      }
      let norm = 0;
      for (let r = 0; r < rows; ++r) norm += a[r * l + t] * a[r * l + t];
      norm = Math.sqrt(norm);
      for (let r = 0; r < rows; ++r) a[r * l + t] = norm > 1e-12 ? a[r * l + t] / norm : 0;
    }
    return a;
  };
  let q = orthonormalize(times(c, n, d, omega), n);
  for (let it = 0; it < 2; ++it) {
    const z = orthonormalize(transposeTimes(q), d);
    q = orthonormalize(times(c, n, d, z), n);
  }
  // B = q^T c (l * d); its Gram matrix G = B B^T (l * l) has the squared
  // singular values as eigenvalues and the left singular vectors of B as
  // eigenvectors; the scores are q * U.
  const bt = transposeTimes(q);  // d * l, i.e. B^T
  const g = new Float64Array(l * l);
  for (let j = 0; j < d; ++j) {
    for (let a = 0; a < l; ++a) {
      const v = bt[j * l + a];
      for (let b = 0; b < l; ++b) g[a * l + b] += v * bt[j * l + b];
    }
  }
  const u = new Float64Array(l * l);
  for (let a = 0; a < l; ++a) u[a * l + a] = 1;
  for (let sweep = 0; sweep < 30; ++sweep) {
    let off = 0;
    for (let a = 0; a < l; ++a) for (let b = a + 1; b < l; ++b) off += g[a * l + b] * g[a * l + b];
    if (off < 1e-20) break;
    for (let a = 0; a < l; ++a) {
      for (let b = a + 1; b < l; ++b) {
        const gab = g[a * l + b];
        if (Math.abs(gab) < 1e-300) continue;
        const theta = (g[b * l + b] - g[a * l + a]) / (2 * gab);
        const tt = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cs = 1 / Math.sqrt(tt * tt + 1), sn = tt * cs;
        for (let r = 0; r < l; ++r) {  // columns a, b
          const ga = g[r * l + a], gb = g[r * l + b];
          g[r * l + a] = cs * ga - sn * gb;
          g[r * l + b] = sn * ga + cs * gb;
        }
        for (let r = 0; r < l; ++r) {  // rows a, b
          const ga = g[a * l + r], gb = g[b * l + r];
          g[a * l + r] = cs * ga - sn * gb;
          g[b * l + r] = sn * ga + cs * gb;
        }
        for (let r = 0; r < l; ++r) {
          const ua = u[r * l + a], ub = u[r * l + b];
          u[r * l + a] = cs * ua - sn * ub;
          u[r * l + b] = sn * ua + cs * ub;
        }
      }
    }
  }
  const order = Array.from({ length: l }, (_, t) => t).sort((a, b) => g[b * l + b] - g[a * l + a]);
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; ++i) {
    for (let p = 0; p < k; ++p) {
      const col = order[p];
      let s = 0;
      for (let t = 0; t < l; ++t) s += q[i * l + t] * u[t * l + col];
      out[i * k + p] = s * Math.sqrt(Math.max(0, g[col * l + col]));
    }
  }
  return { y: out, k };
}

function tsne(x, n, d, post) {
  const perplexity = Math.min(30, Math.max(2, (n - 1) / 3));
  const reduced = d > 50 ? pca(x, n, d, 50) : { y: x, k: d };
  const z = reduced.y, dz = reduced.k;
  const k = Math.min(n - 1, Math.floor(3 * perplexity));
  // Exact k nearest neighbours (squared distances).
  const nbr = new Int32Array(n * k), dist = new Float64Array(n * k);
  // Per row: the k smallest kept sorted by insertion; most candidates are
  // rejected against the current k-th at once.
  const bestD = new Float64Array(k), bestJ = new Int32Array(k);
  for (let i = 0; i < n; ++i) {
    let filled = 0;
    for (let j = 0; j < n; ++j) {
      if (j === i) continue;
      let s = 0;
      for (let t = 0; t < dz; ++t) { const e = z[i * dz + t] - z[j * dz + t]; s += e * e; }
      if (filled === k && s >= bestD[k - 1]) continue;
      let at = filled < k ? filled++ : k - 1;
      while (at > 0 && bestD[at - 1] > s) { bestD[at] = bestD[at - 1]; bestJ[at] = bestJ[at - 1]; --at; }
      bestD[at] = s; bestJ[at] = j;
    }
    for (let t = 0; t < k; ++t) { nbr[i * k + t] = bestJ[t]; dist[i * k + t] = bestD[t]; }
    if (i % 250 === 0) post({ progress: 0.3 * i / n, stage: 'neighbours' });
  }
  // Conditional affinities matching the perplexity (binary search on beta).
  const p = new Float64Array(n * k);
  const target = Math.log(perplexity);
  for (let i = 0; i < n; ++i) {
    let lo = 0, hi = Infinity, beta = 1;
    for (let it = 0; it < 64; ++it) {
      let sum = 0, h = 0;
      const d0 = dist[i * k];
      for (let t = 0; t < k; ++t) { const v = Math.exp(-beta * (dist[i * k + t] - d0)); p[i * k + t] = v; sum += v; }
      for (let t = 0; t < k; ++t) { p[i * k + t] /= sum; if (p[i * k + t] > 1e-12) h -= p[i * k + t] * Math.log(p[i * k + t]); }
      if (Math.abs(h - target) < 1e-5) break;
      if (h > target) { lo = beta; beta = hi === Infinity ? beta * 2 : (beta + hi) / 2; } else { hi = beta; beta = (beta + lo) / 2; }
    }
  }
  // Symmetric P as directed edges, each weighing (p_j|i) / 2n on both ends.
  for (let e = 0; e < n * k; ++e) p[e] /= 2 * n;
  // Start from the 2-D PCA, scaled small.
  const init = pca(z, n, dz, 2).y;
  let sd = 0;
  for (let i = 0; i < n * 2; ++i) sd += init[i] * init[i];
  sd = Math.sqrt(sd / (2 * n)) || 1;
  const y = new Float64Array(n * 2);
  for (let i = 0; i < n * 2; ++i) y[i] = (init[i] / sd) * 1e-4;
  const vel = new Float64Array(n * 2), gains = new Float64Array(n * 2).fill(1);
  const grad = new Float64Array(n * 2);
  const iters = 500, exag_iters = 200, eta = Math.max(n / 12, 50);
  // Quadtree arrays (rebuilt each iteration).
  const cap = 8 * n + 64;
  const cx = new Float64Array(cap), cy = new Float64Array(cap), cnt = new Float64Array(cap);
  const minx = new Float64Array(cap), miny = new Float64Array(cap), size = new Float64Array(cap);
  const child = new Int32Array(cap * 4), leaf = new Int32Array(cap);
  let nodes = 0;
  function newNode(x0, y0, s) {
    const id = nodes++;
    minx[id] = x0; miny[id] = y0; size[id] = s; cx[id] = 0; cy[id] = 0; cnt[id] = 0; leaf[id] = -1;
    child[id * 4] = child[id * 4 + 1] = child[id * 4 + 2] = child[id * 4 + 3] = -1;
    return id;
  }
  for (let it = 0; it < iters; ++it) {
    const exag = it < exag_iters ? 12 : 1;
    const momentum = it < exag_iters ? 0.5 : 0.8;
    // Build the tree.
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (let i = 0; i < n; ++i) { x0 = Math.min(x0, y[i * 2]); x1 = Math.max(x1, y[i * 2]); y0 = Math.min(y0, y[i * 2 + 1]); y1 = Math.max(y1, y[i * 2 + 1]); }
    nodes = 0;
    const root = newNode(x0, y0, Math.max(x1 - x0, y1 - y0) * 1.0001 + 1e-12);
    for (let i = 0; i < n; ++i) insertPoint(root, i);
    // Repulsion by Barnes-Hut.
    let zsum = 0;
    const rep = new Float64Array(n * 2);
    const stack = new Int32Array(cap);
    for (let i = 0; i < n; ++i) {
      const px = y[i * 2], py = y[i * 2 + 1];
      let sp = 0;
      stack[sp++] = root;
      while (sp > 0) {
        const nd = stack[--sp];
        if (cnt[nd] === 0) continue;
        const dx = px - cx[nd], dy = py - cy[nd];
        const d2 = dx * dx + dy * dy;
        const isLeaf = child[nd * 4] < 0 && child[nd * 4 + 1] < 0 && child[nd * 4 + 2] < 0 && child[nd * 4 + 3] < 0;
        if (isLeaf || size[nd] * size[nd] < 0.49 * d2) {  // theta = 0.7
          let m = cnt[nd];
          if (isLeaf && d2 === 0) m -= 1;  // the point itself (and exact duplicates)
          if (m <= 0) continue;
          const q = 1 / (1 + d2);
          zsum += m * q;
          rep[i * 2] += m * q * q * dx;
          rep[i * 2 + 1] += m * q * q * dy;
        } else {
          for (let c = 0; c < 4; ++c) if (child[nd * 4 + c] >= 0) stack[sp++] = child[nd * 4 + c];
        }
      }
    }
    // Attraction along the neighbour edges, then the update.
    grad.fill(0);
    for (let i = 0; i < n; ++i) {
      for (let t = 0; t < k; ++t) {
        const j = nbr[i * k + t];
        const dx = y[i * 2] - y[j * 2], dy = y[i * 2 + 1] - y[j * 2 + 1];
        const w = exag * p[i * k + t] / (1 + dx * dx + dy * dy);
        grad[i * 2] += w * dx; grad[i * 2 + 1] += w * dy;
        grad[j * 2] -= w * dx; grad[j * 2 + 1] -= w * dy;
      }
    }
    for (let e = 0; e < n * 2; ++e) {
      const g = 4 * (grad[e] - rep[e] / zsum);
      gains[e] = Math.sign(g) !== Math.sign(vel[e]) ? gains[e] + 0.2 : Math.max(gains[e] * 0.8, 0.01);
      vel[e] = momentum * vel[e] - eta * gains[e] * g;
      y[e] += vel[e];
    }
    if (it % 25 === 0) post({ progress: 0.3 + 0.7 * it / iters, stage: 't-SNE', y: Float32Array.from(y) });
  }
  return Float32Array.from(y);

  function insertPoint(node, i) {
    // Iterative descent: every node on the path counts the point.
    let nd = node, depth = 0;
    for (;;) {
      const px = y[i * 2], py = y[i * 2 + 1];
      cx[nd] = (cx[nd] * cnt[nd] + px) / (cnt[nd] + 1);
      cy[nd] = (cy[nd] * cnt[nd] + py) / (cnt[nd] + 1);
      cnt[nd] += 1;
      if (cnt[nd] === 1) { leaf[nd] = i; return; }
      if (depth > 40 || nodes + 8 > cap) return;
      const half = size[nd] / 2;
      if (leaf[nd] >= 0) {
        // Push the resident point one level down first.
        const old = leaf[nd];
        leaf[nd] = -2;
        const ox = y[old * 2] >= minx[nd] + half ? 1 : 0, oy = y[old * 2 + 1] >= miny[nd] + half ? 1 : 0;
        const oq = oy * 2 + ox;
        const c = newNode(minx[nd] + ox * half, miny[nd] + oy * half, half);
        child[nd * 4 + oq] = c;
        cx[c] = y[old * 2]; cy[c] = y[old * 2 + 1]; cnt[c] = 1; leaf[c] = old;
      }
      const qx = px >= minx[nd] + half ? 1 : 0, qy = py >= miny[nd] + half ? 1 : 0;
      const q = qy * 2 + qx;
      if (child[nd * 4 + q] < 0) child[nd * 4 + q] = newNode(minx[nd] + qx * half, miny[nd] + qy * half, half);
      nd = child[nd * 4 + q];
      ++depth;
    }
  }
}

function umap(x, n, d, post) {
  const reduced = d > 50 ? pca(x, n, d, 50) : { y: x, k: d };
  const z = reduced.y, dz = reduced.k;
  const rows = new Array(n);
  for (let i = 0; i < n; ++i) rows[i] = Array.from(z.subarray(i * dz, (i + 1) * dz));
  // Park-Miller generator: umap-js draws its initial layout and its negative
  // samples from `random`, Math.random would give a new picture each time.
  let seed = 42;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  const model = new UMAP({ nComponents: 2, nNeighbors: Math.max(2, Math.min(15, n - 1)), minDist: 0.1, random });
  post({ progress: 0, stage: 'nearest neighbours' });
  const epochs = model.initializeFit(rows);
  const y = new Float32Array(n * 2);
  const snapshot = () => {
    const e = model.getEmbedding();
    for (let i = 0; i < n; ++i) { y[i * 2] = e[i][0]; y[i * 2 + 1] = e[i][1]; }
  };
  for (let epoch = 0; epoch < epochs; ++epoch) {
    model.step();
    if (epoch % 25 === 0) {
      snapshot();
      post({ progress: epoch / epochs, stage: 'optimising', y: y.slice() });
    }
  }
  snapshot();
  return y;
}

self.onmessage = (e) => {
  const { x, n, d, method } = e.data;
  const post = (m) => self.postMessage(m);
  try {
    let y;
    if (method === 'pca') y = pca(x, n, d, 2).y;
    else if (method === 'umap') y = umap(x, n, d, post);
    else y = tsne(x, n, d, post);
    post({ done: true, y });
  } catch (err) {
    post({ error: String(err) });
  }
};
