// tminus dashboard: the countdown ticks, "in 3m12s" counts down, and the parts of the
// page marked data-live are refreshed from the server every few seconds. Everything
// works without this file; it only keeps the page current. Written for this project.
"use strict";

(function () {
  var REFRESH_MS = 10000;
  // The server's clock, not the browser's: the page says what time the server had.
  var offset = 0;

  function setOffset(doc) {
    var at = Date.parse(doc.body.getAttribute("data-now") || "");
    if (!isNaN(at)) offset = at - Date.now();
  }

  function nowMs() { return Date.now() + offset; }

  function parts(seconds) {
    return [[Math.floor(seconds / 86400), "day"], [Math.floor(seconds % 86400 / 3600), "hour"],
            [Math.floor(seconds % 3600 / 60), "minute"], [seconds % 60, "second"]];
  }

  // The same words as content.countdown.time_left: the two largest adjacent units,
  // floored ("3 days 4 hours", "45 minutes", "no time").
  function timeLeft(seconds) {
    if (seconds <= 0) return "no time";
    var all = parts(seconds), shown = [];
    for (var i = 0; i < all.length; i++) {
      if (all[i][0]) {
        shown.push(all[i]);
        if (i + 1 < all.length && all[i + 1][0]) shown.push(all[i + 1]);
        break;
      }
    }
    return shown.map(function (p) { return p[0] + " " + p[1] + (p[0] === 1 ? "" : "s"); }).join(" ");
  }

  // The same as content.countdown.duration: "4d3h", "3h30m", "45s" (no seconds past a day).
  function duration(seconds) {
    var names = ["d", "h", "m", "s"], all = parts(seconds), out = "";
    for (var i = 0; i < all.length; i++) {
      if (all[i][0] && !(names[i] === "s" && seconds >= 86400)) out += all[i][0] + names[i];
    }
    return out || "0";
  }

  function secondsUntil(iso) {
    return Math.floor((Date.parse(iso) - nowMs()) / 1000);
  }

  function tick() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      el.textContent = timeLeft(Math.max(0, secondsUntil(el.getAttribute("data-countdown"))));
    });
    document.querySelectorAll("[data-tminus-at]").forEach(function (el) {
      var left = secondsUntil(el.getAttribute("data-tminus-at"));
      el.textContent = left >= 1 ? "in " + duration(left) : "now";
    });
  }

  function liveKeys(doc) {
    return Array.prototype.map.call(doc.querySelectorAll("[data-live]"),
                                    function (el) { return el.getAttribute("data-live"); }).sort().join(" ");
  }

  var dirty = false;
  document.addEventListener("input", function () { dirty = true; });

  function refresh() {
    if (document.hidden) return;
    fetch(window.location.href, {credentials: "same-origin", headers: {"X-Tminus-Live": "1"}})
      .then(function (r) {
        if (!r.ok || r.redirected) throw new Error("not refreshed");
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        if (liveKeys(doc) !== liveKeys(document)) {
          // something appeared or went (a pause began or ended): show the whole page anew,
          // unless a person is typing in a form here
          if (!dirty) window.location.reload();
          return;
        }
        setOffset(doc);
        doc.querySelectorAll("[data-live]").forEach(function (fresh) {
          var here = document.querySelector('[data-live="' + fresh.getAttribute("data-live") + '"]');
          if (here && here.innerHTML !== fresh.innerHTML) here.innerHTML = fresh.innerHTML;
        });
        document.body.setAttribute("data-refreshed", String(nowMs()));
        tick();
      })
      .catch(function () { /* offline or logged out: the page stays as it was */ });
  }

  function enhance() {
    document.querySelectorAll("form[data-autosubmit] select").forEach(function (sel) {
      sel.addEventListener("change", function () { sel.form.submit(); });
    });
    document.querySelectorAll("[data-select-all]").forEach(function (box) {
      box.closest("label").hidden = false;
      box.addEventListener("change", function () {
        box.form.querySelectorAll('input[name="post"]:not(:disabled)').forEach(function (c) {
          c.checked = box.checked;
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setOffset(document);
    enhance();
    tick();
    window.setInterval(tick, 1000);
    if (document.querySelector("[data-live]")) window.setInterval(refresh, REFRESH_MS);
  });

  window.tminus = {timeLeft: timeLeft, duration: duration, refresh: refresh};
})();
