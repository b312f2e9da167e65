// Runs `method` ('tsne', 'umap' or 'pca') on x (n * d floats) in a web
// worker (embed_worker.js, its own bundle); onProgress({progress, stage, y?})
// as it goes; resolves with the n * 2 embedding.
export function embed(x, n, d, method, onProgress) {
  const worker = new Worker('/dashboard/embed_worker.js');
  return new Promise((resolve, reject) => {
    worker.onmessage = (e) => {
      if (e.data.error) { reject(new Error(e.data.error)); worker.terminate(); return; }
      if (e.data.done) { resolve(e.data.y); worker.terminate(); return; }
      onProgress(e.data);
    };
    worker.onerror = (e) => { reject(new Error(e.message || 'the map worker failed to load')); worker.terminate(); };
    worker.postMessage({ x, n, d, method });
  });
}
