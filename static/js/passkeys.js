/* After django-otp-webauthn's script registers a passkey, go and name it:
   data-passkey-name-url holds the rename address for id 0. */
(function () {
  "use strict";
  var holder = document.querySelector("[data-passkey-name-url]");
  if (!holder) { return; }
  document.addEventListener("otp_webauthn.register_complete", function (event) {
    var url = holder.getAttribute("data-passkey-name-url").replace("/0/", "/" + encodeURIComponent(event.detail.id) + "/");
    window.location.assign(url + "?added=1");
  });
})();
