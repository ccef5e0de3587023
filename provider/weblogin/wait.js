// The waiting login page: poll the status with backoff and carry on by
// itself once the scan is approved. Without JavaScript the page reloads
// itself (a noscript refresh) and its data-login="continue" link checks
// once per click. Each poll also tells the provider the page is still
// open; closing the page says it is gone (a beacon), so that a scan then
// is refused and the person told so, rather than signing in nobody.
(function () {
  "use strict";
  var el = document.getElementById("wait");
  if (!el || el.getAttribute("data-status") !== "pending") return;
  var statusURL = el.getAttribute("data-status-url");
  var next = el.getAttribute("data-continue");
  var leftURL = el.getAttribute("data-left");
  var delay = +el.getAttribute("data-interval") || 2000;
  var expires = (+el.getAttribute("data-expires") || 0) * 1000;
  var timer = 0;
  var leaving = false; // this script is moving the page on: no beacon
  function go(f) { leaving = true; f(); }
  function later(ms) { clearTimeout(timer); timer = setTimeout(tick, ms); }
  function tick() {
    if (expires && Date.now() > expires + 1000) { go(function () { location.reload(); }); return; }
    fetch(statusURL, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (j) {
        if (j.status === "approved") { go(function () { location.replace(next); }); return; }
        if (j.status !== "pending") { go(function () { location.reload(); }); return; }
        delay = Math.min(delay * 1.15, 5000);
        later(delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000);
        later(delay);
      });
  }
  var cont = el.querySelector('[data-login="continue"]');
  if (cont) cont.addEventListener("click", function () { leaving = true; });
  window.addEventListener("pagehide", function () {
    if (!leaving && leftURL && navigator.sendBeacon) navigator.sendBeacon(leftURL);
  });
  // Back from the back-forward cache, or shown again after the browser
  // throttled a hidden tab: say so at once.
  window.addEventListener("pageshow", function (e) { if (e.persisted) { leaving = false; later(0); } });
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "visible") later(0); });
  later(delay);
})();
