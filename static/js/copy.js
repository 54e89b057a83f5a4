/* "Copy" buttons for values shown once (hidden without script): data-copy names the input. */
(function () {
  "use strict";
  var buttons = document.querySelectorAll("[data-copy]");
  var status = document.querySelector("[data-copy-status]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].hidden = false;
    buttons[i].addEventListener("click", function (event) {
      var input = document.getElementById(event.currentTarget.getAttribute("data-copy"));
      input.select();
      var done = function () { if (status) { status.textContent = "Copied."; } };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
      } else {
        document.execCommand("copy");
        done();
      }
    });
  }
})();
