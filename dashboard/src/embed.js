// 2-D embeddings of a sample of vectors, run in a web worker: PCA (power
// iteration) and t-SNE (van der Maaten's Barnes-Hut approximation: sparse
// input affinities over each point's 3 x perplexity nearest neighbours,
// found after a PCA to 50 dimensions; repulsion through a quadtree with
// theta = 0.7; 500 iterations, the first 200 exaggerated). The worker posts {progress, y} as it goes and {done, y} at
// the end; y is n * 2 floats.

function workerMain() {
  function pca(x, n, d, k) {
    // Centre, then the top-k eigenvectors of the covariance by power
    // iteration with deflation (deterministic start vectors).
    const mean = new Float64Array(d);
    for (let i = 0; i < n; ++i) for (let j = 0; j < d; ++j) mean[j] += x[i * d + j] / n;
    const c = new Float32Array(n * d);
    for (let i = 0; i < n; ++i) for (let j = 0; j < d; ++j) c[i * d + j] = x[i * d + j] - mean[j];
    const comps = [];
    const tmp = new Float64Array(n);
    for (let comp = 0; comp < Math.min(k, d); ++comp) {
      let v = new Float64Array(d);
      for (let j = 0; j < d; ++j) v[j] = Math.sin(1 + j * 7 + comp * 13);
      for (let it = 0; it < 30; ++it) {
        for (let i = 0; i < n; ++i) {
          let s = 0;
          for (let j = 0; j < d; ++j) s += c[i * d + j] * v[j];
          tmp[i] = s;
        }
        const w = new Float64Array(d);
        for (let i = 0; i < n; ++i) for (let j = 0; j < d; ++j) w[j] += c[i * d + j] * tmp[i];
        for (const u of comps) {
          let dot = 0;
          for (let j = 0; j < d; ++j) dot += w[j] * u[j];
          for (let j = 0; j < d; ++j) w[j] -= dot * u[j];
        }
        let norm = 0;
        for (let j = 0; j < d; ++j) norm += w[j] * w[j];
        norm = Math.sqrt(norm) || 1;
        for (let j = 0; j < d; ++j) w[j] /= norm;
        v = w;
      }
      comps.push(v);
    }
    const out = new Float32Array(n * comps.length);
    for (let i = 0; i < n; ++i) {
      for (let q = 0; q < comps.length; ++q) {
        let s = 0;
        for (let j = 0; j < d; ++j) s += c[i * d + j] * comps[q][j];
        out[i * comps.length + q] = s;
      }
    }
    return { y: out, k: comps.length };
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

  self.onmessage = (e) => {
    const { x, n, d, method } = e.data;
    const post = (m) => self.postMessage(m);
    try {
      const y = method === 'pca' ? pca(x, n, d, 2).y : tsne(x, n, d, post);
      post({ done: true, y });
    } catch (err) {
      post({ error: String(err) });
    }
  };
}

// Runs `method` ('tsne' or 'pca') on x (n * d floats); onProgress({progress,
// stage, y?}) as it goes; resolves with the n * 2 embedding.
export function embed(x, n, d, method, onProgress) {
  const url = URL.createObjectURL(new Blob([`(${workerMain.toString()})()`], { type: 'text/javascript' }));
  const worker = new Worker(url);
  return new Promise((resolve, reject) => {
    worker.onmessage = (e) => {
      if (e.data.error) { reject(new Error(e.data.error)); worker.terminate(); return; }
      if (e.data.done) { resolve(e.data.y); worker.terminate(); URL.revokeObjectURL(url); return; }
      onProgress(e.data);
    };
    worker.onerror = (e) => { reject(new Error(e.message)); worker.terminate(); };
    worker.postMessage({ x, n, d, method });
  });
}
