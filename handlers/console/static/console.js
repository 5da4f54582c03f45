// The console's scripts: confirmations, CSRF on scripted requests, and charts drawn by ECharts.
(function () {
  "use strict";
  var csrf = document.body ? document.body.dataset.csrf : "";

  // Scripted requests carry the session's CSRF token in a header.
  window.consoleFetch = function (url, options) {
    options = options || {};
    options.headers = Object.assign({"X-CSRF-Token": csrf, "Accept": "application/json"}, options.headers || {});
    options.credentials = "same-origin";
    return fetch(url, options);
  };

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });

  // <div data-chart="id-of-a-json-script"> draws the ECharts option in <script type="application/json" id=...>.
  function drawCharts() {
    if (!window.echarts) { return; }
    document.querySelectorAll("[data-chart]").forEach(function (element) {
      var source = document.getElementById(element.getAttribute("data-chart"));
      if (!source) { return; }
      var chart = window.echarts.init(element);
      chart.setOption(JSON.parse(source.textContent));
      window.addEventListener("resize", function () { chart.resize(); });
      element.setAttribute("data-drawn", "true");
    });
  }
  document.addEventListener("DOMContentLoaded", drawCharts);
})();
