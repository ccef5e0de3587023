// wxoidc console: small enhancements. Every action also works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // After sign-in: move on to the console (a same-site navigation, so the
  // SameSite=Strict session cookie goes along).
  var cont = document.getElementById("continue");
  if (cont && cont.dataset.next) {
    window.location.replace(cont.dataset.next);
  }
  // Copy buttons: copy the named field's value.
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var field = document.getElementById(b.dataset.copy);
      if (!field) return;
      field.select();
      var done = function () { b.textContent = b.dataset.done || "✓"; b.dataset.copied = "1"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
      } else {
        document.execCommand("copy");
        done();
      }
    });
  });
  // Typed confirmations: the button works once the right text is typed
  // (the server checks it again).
  document.querySelectorAll("input[data-confirm]").forEach(function (input) {
    var button = input.form && input.form.querySelector("button");
    if (!button) return;
    var sync = function () { button.disabled = input.value.trim() !== input.dataset.confirm; };
    input.addEventListener("input", sync);
    sync();
  });
});
