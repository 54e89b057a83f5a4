/* After a failed submit, move focus to the error summary so screen readers and keyboards start there. */
(function () {
  "use strict";
  var summary = document.querySelector("[data-error-summary]");
  if (summary) {
    summary.focus();
  }
})();
