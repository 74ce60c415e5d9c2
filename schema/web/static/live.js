// The queue's live updates (schema/web/live.py): an EventSource on /queue/live while the queue
// is on screen; on each alert, the queue's lists are fetched again (/queue/fragment) and swapped
// in place, keeping the keyboard focus where it was and announcing the change politely.
// Nothing is stored in the browser. No inline script anywhere (CSP: script-src 'self',
// connect-src 'self').
"use strict";
(function () {
  var source = null;
  var timer = null;
  var busy = false;
  var again = false;

  function box() { return document.getElementById("queue-live"); }

  function announce(key) {
    var region = document.getElementById("queue-announce");
    if (!region) { return; }
    var text = region.getAttribute("data-" + key) || "";
    // Emptied first so the same sentence is announced again.
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  function focusKey() {
    var active = document.activeElement;
    var container = box();
    if (!active || !container || !container.contains(active)) { return null; }
    return active.getAttribute("data-focus-key") || (active.id ? "#" + active.id : null);
  }

  function restoreFocus(key, container) {
    if (!key) { return; }
    var target = null;
    if (key.charAt(0) === "#") {
      target = document.getElementById(key.slice(1));
    } else {
      var all = container.querySelectorAll("[data-focus-key]");
      for (var i = 0; i < all.length; i++) {
        if (all[i].getAttribute("data-focus-key") === key) { target = all[i]; break; }
      }
    }
    // What had the focus is gone (e.g. acknowledged elsewhere): the lists' first heading.
    if (!target) {
      target = container.querySelector("h2");
      if (target) { target.setAttribute("tabindex", "-1"); }
    }
    if (target) { target.focus(); }
  }

  function changed(container, html) {
    var holder = document.createElement("template");
    holder.innerHTML = html;
    var fresh = holder.content.querySelector("[data-digest]");
    var current = container.querySelector("[data-digest]");
    return !(fresh && current &&
             fresh.getAttribute("data-digest") === current.getAttribute("data-digest"));
  }

  function refresh() {
    var container = box();
    if (!container) { return; }
    if (busy) { again = true; return; }
    busy = true;
    var url = container.getAttribute("data-live-fragment");
    fetch(url, { credentials: "same-origin", cache: "no-store", redirect: "manual",
                 headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.status !== 200) {
          // Signed out, purpose gone: the whole page says why.
          stop();
          if (response.status === 401 || response.status === 403 || response.type === "opaqueredirect") {
            window.location.reload();
          }
          return null;
        }
        return response.text();
      })
      .then(function (html) {
        // The page may have moved on meanwhile (a boosted navigation swapped the body).
        if (html === null || html === undefined || box() !== container) { return; }
        if (!changed(container, html)) { return; }  // nothing new on the lists: no noise
        var key = focusKey();
        container.innerHTML = html;
        if (window.htmx) { window.htmx.process(container); }
        restoreFocus(key, container);
        announce("updated");
      })
      .catch(function () { /* the next alert tries again */ })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  function onAlert() {
    // Several alerts at once (an incident and its reassessment) make one refresh.
    if (timer) { window.clearTimeout(timer); }
    timer = window.setTimeout(refresh, 300);
  }

  function mark() {
    // The stream's state on the lists' box (styles and tests read it; nothing personal).
    var container = box();
    if (container) {
      container.setAttribute("data-live", source && source.readyState === 1 ? "open" : "closed");
    }
  }

  function stop() {
    if (source) { source.close(); source = null; }
    mark();
  }

  function start() {
    var container = box();
    if (!container) { stop(); return; }
    if (source || !window.EventSource) { mark(); return; }
    source = new EventSource(container.getAttribute("data-live-source"));
    // No refresh on open: each one costs the person's API quota (reconnects replay what they
    // missed by their last event's ID).
    source.addEventListener("open", mark);
    source.addEventListener("alert", onAlert);
    source.addEventListener("end", function (event) {
      if (event.data === "signedout") {
        stop();
        window.location.reload();  // the session ended: the sign-in page, not stale records
      } else if (event.data === "stopped") {
        stop();
        announce("stopped");
      }
    });
    source.addEventListener("error", function () {
      // The server refused (401/403/404/429): the browser does not retry by itself.
      if (source && source.readyState === EventSource.CLOSED) {
        stop();
        announce("stopped");
      } else {
        mark();  // reconnecting
      }
    });
  }

  document.addEventListener("DOMContentLoaded", start);
  // Boosted navigation swaps the body: start on the queue, stop elsewhere.
  document.addEventListener("htmx:afterSettle", start);
  window.addEventListener("pagehide", stop);
}());
