// The app shell, cached so the app opens without a connection; data (/worker/api/) always goes to
// the network: what cannot be sent waits in the app's own IndexedDB outbox, never in this cache.
"use strict";
const SHELL = "onegrid-worker-v1";
const FILES = [
  "/worker/", "/worker/app.js", "/worker/api.js", "/worker/outbox.js", "/worker/photos.js",
  "/worker/map.js", "/worker/i18n.js", "/worker/app.css", "/worker/manifest.webmanifest",
  "/worker/icon-192.png", "/worker/icon-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  if (!url.pathname.startsWith("/worker/") || url.pathname.startsWith("/worker/api/")) return;
  // network first (a new release shows at once), the cached shell when offline
  event.respondWith(
    fetch(event.request)
      .then((resp) => {
        if (resp.ok) {
          const copy = resp.clone();
          caches.open(SHELL).then((c) => c.put(event.request, copy));
        }
        return resp;
      })
      .catch(() => caches.match(event.request, { ignoreSearch: true })
        .then((hit) => hit || caches.match("/worker/"))),
  );
});
