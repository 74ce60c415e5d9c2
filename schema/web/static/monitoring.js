// Monitoring charts (the /monitoring page): each <figure data-chart='{"labels":[...],
// "values":[...],"series":"..."}'> gets a bar chart of the published row totals, drawn by the
// vendored uPlot. The figures stay in the accessible table beside it; the chart is a picture of
// them (aria-hidden). No inline script anywhere (Content-Security-Policy: script-src 'self'):
// this file is loaded on staff pages and fetches uPlot only when a page has a chart.
"use strict";
(function () {
  var loading = null;

  function loadUPlot() {
    if (window.uPlot) { return Promise.resolve(); }
    if (loading) { return loading; }
    loading = new Promise(function (resolve, reject) {
      var css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = "/static/web/uPlot.min.css";
      document.head.appendChild(css);
      var script = document.createElement("script");
      script.src = "/static/web/uPlot.iife.min.js";
      script.onload = function () { resolve(); };
      script.onerror = function () { loading = null; reject(new Error("uPlot did not load")); };
      document.head.appendChild(script);
    });
    return loading;
  }

  function draw(figure) {
    if (figure.getAttribute("data-drawn") === "1") { return; }
    var spec;
    try { spec = JSON.parse(figure.getAttribute("data-chart")); } catch (e) { return; }
    var target = figure.querySelector(".chart-canvas") || figure;
    var xs = spec.values.map(function (_v, i) { return i; });
    var top = spec.values.reduce(function (m, v) { return v !== null && v > m ? v : m; }, 0);
    var width = Math.max(280, Math.min(target.clientWidth || figure.clientWidth || 640, 1000));
    var opts = {
      width: width,
      height: 260,
      legend: { show: false },
      cursor: { show: false },
      scales: {
        x: { time: false, range: [-0.5, Math.max(xs.length - 0.5, 0.5)] },
        y: { range: [0, Math.max(top * 1.1, 5)] }
      },
      axes: [
        {
          splits: function () { return xs; },
          values: function (_u, splits) {
            return splits.map(function (i) { return spec.labels[i] || ""; });
          },
          rotate: xs.length > 4 ? -30 : 0,
          size: xs.length > 4 ? 90 : 40,
          stroke: "#1a1a1a",
          grid: { show: false }
        },
        { stroke: "#1a1a1a" }
      ],
      series: [
        {},
        {
          label: spec.series || "",
          stroke: "#0b4f8a",
          fill: "#0b4f8a",
          width: 0,
          points: { show: false },
          paths: window.uPlot.paths.bars({ size: [0.6, 80] })
        }
      ]
    };
    target.textContent = "";
    new window.uPlot(opts, [xs, spec.values], target);
    figure.setAttribute("data-drawn", "1");
  }

  function drawAll() {
    var figures = document.querySelectorAll("figure[data-chart]");
    if (!figures.length) { return; }
    loadUPlot().then(function () {
      Array.prototype.forEach.call(figures, draw);
    }, function () { /* the tables carry the figures; a chart is a picture of them */ });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
  document.addEventListener("htmx:afterSettle", drawAll);
})();
