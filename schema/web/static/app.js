// The dashboard's only script of its own: focus after htmx swaps, quick exit.
// No inline scripts anywhere (Content-Security-Policy: script-src 'self').
"use strict";
document.addEventListener("htmx:afterSettle", function (event) {
  // After a page swap, put the focus on the new content so keyboard and screen-reader users
  // land where the change is.
  if (event.detail && event.detail.boosted) {
    var main = document.getElementById("main");
    // Unless the person has already moved into the new page (the swap settles a moment after
    // it shows): her focus is not taken away from where she went.
    var active = document.activeElement;
    if (main && !(active && active !== main && main.contains(active))) { main.focus(); }
  }
});
document.addEventListener("click", function (event) {
  var exit = event.target.closest ? event.target.closest("[data-quick-exit]") : null;
  if (!exit) { return; }
  event.preventDefault();
  var form = document.getElementById("quick-exit-form");
  if (form) { form.submit(); }
});
