/* Drill clock: counts up from the drill's start time as recorded by the server.
 * The page carries the server's start time and the server's "now" at render
 * (epoch milliseconds, data- attributes). The browser clock may be wrong, so
 * only its progress since the page loaded is used, never its absolute time.
 * Finishing is a form POST: the server records the finish time itself. */
(function () {
  "use strict";

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  function format(ms) {
    var total = Math.max(0, Math.floor(ms / 1000));
    var hours = Math.floor(total / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    var seconds = total % 60;
    return hours ? hours + ":" + pad(minutes) + ":" + pad(seconds) : pad(minutes) + ":" + pad(seconds);
  }

  function start(el) {
    var startedMs = Number(el.getAttribute("data-started-ms"));
    var serverNowMs = Number(el.getAttribute("data-server-now-ms"));
    var targetMs = Number(el.getAttribute("data-target-ms"));
    if (!isFinite(startedMs) || !isFinite(serverNowMs)) {
      return;
    }
    var loadedAt = Date.now();
    var output = el.querySelector("[data-clock-value]") || el;

    function tick() {
      var elapsed = serverNowMs - startedMs + (Date.now() - loadedAt);
      output.textContent = format(elapsed);
      el.classList.toggle("over-target", targetMs > 0 && elapsed > targetMs);
    }

    tick();
    window.setInterval(tick, 1000);
  }

  var clocks = document.querySelectorAll("[data-drill-clock]");
  for (var i = 0; i < clocks.length; i++) {
    start(clocks[i]);
  }
})();
