// The offline queue (IndexedDB): every report and action is stored here first, with the photos'
// bytes, and sent from here; each carries an idempotency key drawn once, so a resend after a lost
// answer is taken once by the server. An item leaves the queue only when the server answered it.
const DB = "onegrid-worker";
const STORE = "outbox";

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "key" });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(mode, fn) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const out = fn(t.objectStore(STORE));
    t.oncomplete = () => resolve(out && "result" in out ? out.result : undefined);
    t.onerror = () => reject(t.error);
  });
}

export const put = (item) => tx("readwrite", (s) => s.put(item));
export const remove = (key) => tx("readwrite", (s) => s.delete(key));
export const all = () => tx("readonly", (s) => s.getAll());
