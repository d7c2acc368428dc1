// Refreshes the dashboard's content every few seconds from dashboard/live
// (a relative URL: the page may sit behind a proxy's prefix) without
// reloading the page, and shows a hovered partition's detail. Once it has
// run without throwing, the body carries data-ok="1"; a failure sets
// data-error.
(function () {
  "use strict";
  var body = document.body;
  var every = parseInt(body.getAttribute("data-refresh"), 10) || 2000;
  var toggle = document.getElementById("live-toggle");
  var detail = document.getElementById("detail");

  function failed(err) {
    body.setAttribute("data-error", String((err && err.message) || err));
  }
  window.addEventListener("error", function (e) { failed(e.message); });

  function stamp(ok) {
    document.getElementById("stale").hidden = ok;
    if (ok) {
      document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    }
  }

  var busy = false;
  function refresh() {
    if (busy || !toggle.checked) {
      return;
    }
    busy = true;
    fetch("dashboard/live", { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        return r.text();
      })
      .then(function (html) {
        document.getElementById("live").innerHTML = html;
        stamp(true);
      })
      .catch(function (err) {
        stamp(false);
        failed(err);
      })
      .then(function () { busy = false; });
  }

  // Hovering a partition shows its detail in a panel (the title
  // attribute says the same where the pointer cannot hover).
  document.addEventListener("mouseover", function (e) {
    var p = e.target.closest ? e.target.closest(".p[title]") : null;
    if (!p) {
      detail.hidden = true;
      return;
    }
    detail.textContent = p.getAttribute("title");
    detail.hidden = false;
  });

  try {
    stamp(true);
    setInterval(refresh, every);
    body.setAttribute("data-ok", "1");
  } catch (err) {
    failed(err);
  }
})();
