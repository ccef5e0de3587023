// The waiting login page: poll the status with backoff and carry on by
// itself once the scan is approved. Without JavaScript the page's
// data-login="continue" link does the same, once per click.
(function () {
  "use strict";
  var el = document.getElementById("wait");
  if (!el || el.getAttribute("data-status") !== "pending") return;
  var statusURL = el.getAttribute("data-status-url");
  var next = el.getAttribute("data-continue");
  var delay = +el.getAttribute("data-interval") || 2000;
  var expires = (+el.getAttribute("data-expires") || 0) * 1000;
  function later(ms) { setTimeout(tick, ms); }
  function tick() {
    if (expires && Date.now() > expires + 1000) { location.reload(); return; }
    fetch(statusURL, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (j) {
        if (j.status === "approved") { location.replace(next); return; }
        if (j.status !== "pending") { location.reload(); return; }
        delay = Math.min(delay * 1.15, 5000);
        later(delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000);
        later(delay);
      });
  }
  later(delay);
})();
