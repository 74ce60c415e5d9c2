// Her pages' only script (tiny; the link works without it): the quick exit replaces this page
// in the browser's history, so Back does not return to it.
"use strict";
document.addEventListener("click", function (event) {
  var exit = event.target.closest ? event.target.closest("[data-quick-exit]") : null;
  if (!exit) { return; }
  event.preventDefault();
  window.location.replace(exit.getAttribute("href"));
});
