/* Times written in UTC by the server, shown in the reader's own time zone (data-local-time). */
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, { weekday: "short", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
  document.querySelectorAll("time[data-local-time]").forEach(function (node) {
    var moment = new Date(node.getAttribute("datetime"));
    if (!isNaN(moment)) {
      node.title = node.textContent;
      node.textContent = format.format(moment);
    }
  });
})();
